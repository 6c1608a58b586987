package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blipcuda/blipcuda"
	"github.com/blipcuda/blipcuda/batcher"
)

var (
	modelOnce sync.Once
	tinyModel *blipcuda.Model
	modelErr  error
)

// tiny is the tiny-base test checkpoint, shared by the tests (a Model is
// safe for concurrent use).
func tiny(t testing.TB) *blipcuda.Model {
	t.Helper()
	modelOnce.Do(func() {
		tinyModel, modelErr = blipcuda.Load(context.Background(), filepath.Join("..", "testdata", "models", "tiny-base"),
			blipcuda.WithDevice("cpu"), blipcuda.WithMaxPixels(4000*4000))
	})
	if modelErr != nil {
		t.Fatal(modelErr)
	}
	return tinyModel
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// start serves a Server configured by cfg over the tiny model.
func start(t *testing.T, cfg Config) (*httptest.Server, *Server) {
	t.Helper()
	cfg.Model = tiny(t)
	if cfg.ModelName == "" {
		cfg.ModelName = "tiny-base"
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return newTestServer(t, s), s
}

// newTestServer serves s on loopback until the test ends.
func newTestServer(t *testing.T, s *Server) *httptest.Server {
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response %d is not JSON: %v\n%s", r.status, err, r.body)
	}
}

// errorOf returns the error body of a reply.
func (r reply) errorOf(t *testing.T) errorDetail {
	t.Helper()
	var e errorBody
	r.json(t, &e)
	return e.Error
}

func do(t *testing.T, ts *httptest.Server, method, path, contentType string, body io.Reader, header ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}
}

func post(t *testing.T, ts *httptest.Server, path string, v any, header ...string) reply {
	t.Helper()
	var body []byte
	switch v := v.(type) {
	case string:
		body = []byte(v)
	case []byte:
		body = v
	default:
		var err error
		if body, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	return do(t, ts, http.MethodPost, path, "application/json", bytes.NewReader(body), header...)
}

func get(t *testing.T, ts *httptest.Server, path string, header ...string) reply {
	t.Helper()
	return do(t, ts, http.MethodGet, path, "", nil, header...)
}

var (
	scenePath  = "models/images/scene.png"
	blocksPath = "models/images/blocks.png"
)

// serial scores images (fixture paths) × texts with the model directly.
func serial(t *testing.T, paths []string, texts []string) *blipcuda.Scores {
	t.Helper()
	m := tiny(t)
	var ims []*blipcuda.Image
	for i, p := range paths {
		im, err := m.DecodeImage(fmt.Sprintf("images[%d]", i), bytes.NewReader(readFixture(t, p)))
		if err != nil {
			t.Fatal(err)
		}
		ims = append(ims, im)
	}
	s, err := m.Match(context.Background(), ims, texts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMatch(t *testing.T) {
	ts, _ := start(t, Config{})
	texts := []string{"a red square", "two cats on a sofa", "blue stripes"}
	want := serial(t, []string{scenePath, blocksPath}, texts)
	scene, blocks := readFixture(t, scenePath), readFixture(t, blocksPath)
	r := post(t, ts, "/v1/match", map[string]any{"images": []string{b64(scene), "data:image/png;base64," + b64(blocks)}, "texts": texts})
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var got MatchResponse
	r.json(t, &got)
	if got.SchemaVersion != 1 || got.Model != "tiny-base" || got.Score != "both" || got.Device != "cpu" || got.Protocol != "blip" {
		t.Errorf("header fields: %+v", got)
	}
	if !reflect.DeepEqual(got.ITMProb, want.ITMProb) || !reflect.DeepEqual(got.ITMLogits, want.ITMLogits) ||
		!reflect.DeepEqual(got.ITC, want.ITC) || !reflect.DeepEqual(got.Images, want.Images) || !reflect.DeepEqual(got.Truncated, want.Truncated) {
		t.Errorf("scores differ from Model.Match:\n%+v\n%+v", got, want)
	}

	// itc only: no ITM fields; the cosines equal Match's.
	r = post(t, ts, "/v1/match", map[string]any{"images": []string{b64(scene), b64(blocks)}, "texts": texts, "score": "itc"})
	var itc MatchResponse
	r.json(t, &itc)
	if r.status != 200 || itc.ITMProb != nil || itc.ITMLogits != nil || !close2(itc.ITC, want.ITC) {
		t.Errorf("score itc: %d %+v", r.status, itc)
	}
	r = post(t, ts, "/v1/match", map[string]any{"images": []string{b64(scene)}, "texts": texts, "score": "itm"})
	var itm MatchResponse
	r.json(t, &itm)
	if r.status != 200 || itm.ITC != nil || !reflect.DeepEqual(itm.ITMProb, want.ITMProb[:1]) {
		t.Errorf("score itm: %d %+v", r.status, itm)
	}

	// The same request as a multipart upload.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, tx := range texts {
		mw.WriteField("texts", tx)
	}
	for _, f := range [][]byte{scene, blocks} {
		w, _ := mw.CreateFormFile("images", "photo.png")
		w.Write(f)
	}
	mw.Close()
	r = do(t, ts, http.MethodPost, "/v1/match", mw.FormDataContentType(), &buf)
	var mp MatchResponse
	r.json(t, &mp)
	if r.status != 200 || !reflect.DeepEqual(mp.ITMLogits, want.ITMLogits) || !reflect.DeepEqual(mp.Images, []string{"photo.png", "photo.png"}) {
		t.Errorf("multipart: %d %s", r.status, r.body)
	}
	// A data URL's name parameter names the image, in results and errors.
	r = post(t, ts, "/v1/match", map[string]any{"images": []string{"data:image/png;name=my%20cat.png;base64," + b64(scene)}, "texts": texts[:1]})
	var named MatchResponse
	r.json(t, &named)
	if r.status != 200 || !reflect.DeepEqual(named.Images, []string{"my cat.png"}) {
		t.Errorf("named data URL: %d %s", r.status, r.body)
	}
	r = post(t, ts, "/v1/match", map[string]any{"images": []string{"data:image/png;name=junk.png;base64," + b64([]byte("junk"))}, "texts": texts[:1]})
	if e := r.errorOf(t); r.status != 400 || e.Param != "images[0]" || !strings.Contains(e.Message, "junk.png") {
		t.Errorf("named bad image: %d %s", r.status, r.body)
	}
}

func close2(a, b [][]float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		for j := range a[i] {
			if math.Abs(float64(a[i][j]-b[i][j])) > 1e-6 {
				return false
			}
		}
	}
	return true
}

func TestEmbeddings(t *testing.T) {
	ts, _ := start(t, Config{})
	m := tiny(t)
	ctx := context.Background()
	tenc, err := m.EncodeTexts(ctx, []string{"a red square", "a dog"})
	if err != nil {
		t.Fatal(err)
	}
	scene := readFixture(t, scenePath)
	im, _ := m.DecodeImage("x", bytes.NewReader(scene))
	ienc, err := m.EncodeImages(ctx, []*blipcuda.Image{im}, false)
	if err != nil {
		t.Fatal(err)
	}

	var res struct {
		Object string `json:"object"`
		Data   []struct {
			Object    string    `json:"object"`
			Index     int       `json:"index"`
			Embedding []float32 `json:"embedding"`
			Modality  string    `json:"modality"`
		} `json:"data"`
		Model string `json:"model"`
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
			TotalTokens  int `json:"total_tokens"`
		} `json:"usage"`
	}
	// An OpenAI client's request: a string.
	r := post(t, ts, "/v1/embeddings", map[string]any{"input": "a red square", "model": "tiny-base"})
	r.json(t, &res)
	if r.status != 200 || res.Object != "list" || len(res.Data) != 1 || res.Data[0].Object != "embedding" ||
		!reflect.DeepEqual(res.Data[0].Embedding, tenc[0].Embedding) || res.Usage.PromptTokens != len(tenc[0].Tokens) {
		t.Errorf("string input: %d %s", r.status, r.body)
	}
	// Texts and an image, mixed.
	r = post(t, ts, "/v1/embeddings", map[string]any{"input": []any{"a red square", map[string]string{"image": b64(scene)}, map[string]string{"text": "a dog"}}})
	res.Data = nil
	r.json(t, &res)
	if r.status != 200 || len(res.Data) != 3 || !reflect.DeepEqual(res.Data[1].Embedding, ienc[0].Embedding) ||
		res.Data[1].Modality != "image" || !reflect.DeepEqual(res.Data[2].Embedding, tenc[1].Embedding) || res.Data[2].Index != 2 {
		t.Errorf("mixed input: %d %s", r.status, r.body)
	}
	// base64 encoding_format: little-endian float32.
	r = post(t, ts, "/v1/embeddings", map[string]any{"input": []string{"a red square"}, "encoding_format": "base64"})
	var b struct {
		Data []struct {
			Embedding string `json:"embedding"`
		} `json:"data"`
	}
	r.json(t, &b)
	raw, _ := base64.StdEncoding.DecodeString(b.Data[0].Embedding)
	if len(raw) != 4*256 || math.Float32frombits(uint32(raw[0])|uint32(raw[1])<<8|uint32(raw[2])<<16|uint32(raw[3])<<24) != tenc[0].Embedding[0] {
		t.Errorf("base64 format: %d bytes", len(raw))
	}

	for name, c := range map[string]struct {
		body   any
		status int
		param  string
	}{
		"no input":         {map[string]any{"model": "tiny-base"}, 400, "input"},
		"empty array":      {map[string]any{"input": []string{}}, 400, "input"},
		"wrong model":      {map[string]any{"input": "a", "model": "gpt"}, 404, "model"},
		"dimensions":       {map[string]any{"input": "a", "dimensions": 512}, 400, "dimensions"},
		"encoding_format":  {map[string]any{"input": "a", "encoding_format": "int8"}, 400, "encoding_format"},
		"both in one item": {map[string]any{"input": []any{"a", map[string]string{"text": "b", "image": b64(scene)}}}, 400, "input[1]"},
		"unknown item key": {map[string]any{"input": []any{map[string]string{"video": "x"}}}, 400, "input[0].video"},
		"empty text":       {map[string]any{"input": []string{"ok", " "}}, 400, "input[1]"},
		"not an image":     {map[string]any{"input": []any{map[string]string{"image": b64([]byte("hello"))}}}, 400, "input[0]"},
		"number input":     {map[string]any{"input": 3}, 400, "input"},
		"unknown field":    {map[string]any{"input": "a", "truncate": true}, 400, "truncate"},
	} {
		t.Run(name, func(t *testing.T) {
			r := post(t, ts, "/v1/embeddings", c.body)
			if e := r.errorOf(t); r.status != c.status || e.Param != c.param || e.Code != c.status {
				t.Errorf("status %d param %q, want %d %q: %s", r.status, e.Param, c.status, c.param, r.body)
			}
		})
	}
}

func TestModelsMetaProbes(t *testing.T) {
	ts, s := start(t, Config{})
	var models struct {
		Object string      `json:"object"`
		Data   []ModelCard `json:"data"`
	}
	r := get(t, ts, "/v1/models")
	r.json(t, &models)
	if r.status != 200 || models.Object != "list" || len(models.Data) != 1 || models.Data[0].ID != "tiny-base" ||
		models.Data[0].Object != "model" || models.Data[0].Dimensions != 256 {
		t.Errorf("/v1/models: %d %s", r.status, r.body)
	}
	var meta map[string]any
	r = get(t, ts, "/meta")
	r.json(t, &meta)
	if r.status != 200 || meta["model"] == nil {
		t.Errorf("/meta: %d %s", r.status, r.body)
	}
	for _, p := range []string{"/.well-known/ready", "/.well-known/live"} {
		if r := get(t, ts, p); r.status != 204 {
			t.Errorf("%s: %d", p, r.status)
		}
	}
	if r := get(t, ts, "/healthz"); r.status != 200 {
		t.Errorf("/healthz: %d", r.status)
	}
	if r := get(t, ts, "/readyz"); r.status != 200 {
		t.Errorf("/readyz: %d", r.status)
	}
	s.SetDraining()
	if r := get(t, ts, "/readyz"); r.status != 503 {
		t.Errorf("/readyz while draining: %d", r.status)
	}
	if r := get(t, ts, "/.well-known/ready"); r.status != 503 {
		t.Errorf("/.well-known/ready while draining: %d", r.status)
	}
	if r := get(t, ts, "/healthz"); r.status != 200 {
		t.Errorf("/healthz while draining: %d", r.status)
	}
}

// TestVectorize checks the Weaviate multi2vec inference API's shapes: the
// request of its smoke test ({"texts": [...], "images": [base64 without a
// data-URL prefix]}) and the answer {"textVectors", "imageVectors"}, one
// vector per input, in order.
func TestVectorize(t *testing.T) {
	ts, _ := start(t, Config{})
	m := tiny(t)
	scene, blocks := readFixture(t, scenePath), readFixture(t, blocksPath)
	texts := []string{"This is plane", "Boeing 737", "Blue plane"}
	r := post(t, ts, "/vectorize", map[string]any{"texts": texts, "images": []string{b64(scene), b64(blocks)}})
	var res map[string][][]float32
	r.json(t, &res)
	if r.status != 200 || len(res) != 2 || len(res["textVectors"]) != 3 || len(res["imageVectors"]) != 2 {
		t.Fatalf("/vectorize: %d %s", r.status, r.body)
	}
	tenc, _ := m.EncodeTexts(context.Background(), texts)
	for j := range texts {
		if !reflect.DeepEqual(res["textVectors"][j], tenc[j].Embedding) {
			t.Errorf("textVectors[%d] differs", j)
		}
	}
	// Texts only: imageVectors is an empty list, not null.
	r = post(t, ts, "/vectorize", map[string]any{"texts": texts[:1]})
	if r.status != 200 || !strings.Contains(string(r.body), `"imageVectors":[]`) {
		t.Errorf("texts only: %d %s", r.status, r.body)
	}
	r = post(t, ts, "/vectorize", map[string]any{"texts": texts[:1], "images": []string{"http://example.com/a.jpg"}})
	if e := r.errorOf(t); r.status != 400 || e.Param != "images[0]" || !strings.Contains(e.Message, "not fetched") {
		t.Errorf("URL image: %d %s", r.status, r.body)
	}
}

func TestRerank(t *testing.T) {
	ts, _ := start(t, Config{})
	scene, blocks := readFixture(t, scenePath), readFixture(t, blocksPath)
	docs := []string{"two cats on a sofa", "a red square", "blue stripes", "a beach"}
	want := serial(t, []string{scenePath}, docs)
	var res struct {
		Score   string         `json:"score"`
		Results []RerankResult `json:"results"`
	}
	r := post(t, ts, "/v1/rerank", map[string]any{"image": b64(scene), "documents": docs, "top_n": 3})
	r.json(t, &res)
	if r.status != 200 || len(res.Results) != 3 || res.Score != "blip" {
		t.Fatalf("image query: %d %s", r.status, r.body)
	}
	for k, x := range res.Results {
		j := x.Index
		if x.Document == nil || x.Document.Text != docs[j] || x.ITMLogits != want.ITMLogits[0][j] || x.ITC != want.ITC[0][j] ||
			x.RelevanceScore != want.ITMLogits[0][j][1]+want.ITC[0][j] {
			t.Errorf("result %d: %+v", k, x)
		}
		if k > 0 && x.RelevanceScore > res.Results[k-1].RelevanceScore {
			t.Errorf("results not in order: %+v", res.Results)
		}
	}
	r = post(t, ts, "/v1/rerank", map[string]any{"query": "a red square", "images": []string{b64(scene), b64(blocks)}, "score": "itm"})
	res.Results = nil
	r.json(t, &res)
	if r.status != 200 || len(res.Results) != 2 || res.Score != "itm" || res.Results[0].Document != nil ||
		res.Results[0].RelevanceScore < res.Results[1].RelevanceScore || res.Results[0].RelevanceScore != res.Results[0].ITMProb {
		t.Errorf("text query: %d %s", r.status, r.body)
	}
	for name, c := range map[string]struct {
		body  any
		param string
	}{
		"neither":       {map[string]any{"documents": docs}, "query"},
		"both":          {map[string]any{"query": "a", "image": b64(scene)}, "image"},
		"no images":     {map[string]any{"query": "a"}, "images"},
		"no documents":  {map[string]any{"image": b64(scene)}, "documents"},
		"bad score":     {map[string]any{"query": "a", "images": []string{b64(scene)}, "score": "best"}, "score"},
		"docs for text": {map[string]any{"query": "a", "documents": docs}, "documents"},
		"empty query":   {map[string]any{"query": "!!!", "images": []string{b64(scene)}}, "query"},
	} {
		r := post(t, ts, "/v1/rerank", c.body)
		if e := r.errorOf(t); r.status != 400 || e.Param != c.param {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
}

// TestBadInput: each bad request gets its 4xx and a JSON error naming the
// field; the server keeps serving and /metrics counts each.
func TestBadInput(t *testing.T) {
	ts, _ := start(t, Config{Limits: Limits{MaxImages: 2, MaxTexts: 3, MaxTextBytes: 100, MaxBodyBytes: 1 << 20}})
	scene := b64(readFixture(t, scenePath))
	bomb := b64(readFixture(t, "images/bad_huge_100000x100000.png"))
	truncated := b64(readFixture(t, "images/bad_truncated.png"))
	for _, c := range []struct {
		name   string
		body   any
		status int
		param  string
		msg    string
	}{
		{"malformed JSON", `{"texts": [`, 400, "", "malformed JSON"},
		{"not an object", `[1,2]`, 400, "", "JSON object"},
		{"empty body", ``, 400, "", "empty body"},
		{"two values", `{"texts":["a"],"images":["` + scene + `"]} {}`, 400, "", "more than one"},
		{"wrong type", `{"texts": "a cat", "images": []}`, 400, "texts", "want an array"},
		{"wrong element type", `{"texts": [1], "images": []}`, 400, "texts", "want a string"},
		{"unknown field", `{"texts": ["a"], "images": ["` + scene + `"], "top": 3}`, 400, "top", "unknown field"},
		{"no texts", map[string]any{"images": []string{scene}}, 400, "texts", "no texts"},
		{"no images", map[string]any{"texts": []string{"a"}}, 400, "images", "no images"},
		{"empty text", map[string]any{"images": []string{scene}, "texts": []string{"a", ""}}, 400, "texts[1]", "empty"},
		{"invalid UTF-8", "{\"images\": [\"" + scene + "\"], \"texts\": [\"a\", \"b\xff\"]}", 400, "texts", "UTF-8"},
		{"long text", map[string]any{"images": []string{scene}, "texts": []string{strings.Repeat("a ", 60)}}, 413, "texts[0]", "--max-text-bytes"},
		{"too many texts", map[string]any{"images": []string{scene}, "texts": []string{"a", "b", "c", "d"}}, 413, "texts", "--max-texts"},
		{"too many images", map[string]any{"images": []string{scene, scene, scene}, "texts": []string{"a"}}, 413, "images", "--max-images"},
		{"not base64", map[string]any{"images": []string{"%%%"}, "texts": []string{"a"}}, 400, "images[0]", "base64"},
		{"base64 not an image", map[string]any{"images": []string{b64([]byte("\x89PNG\r\n\x1a\n garbage"))}, "texts": []string{"a"}}, 400, "images[0]", ""},
		{"declared huge", map[string]any{"images": []string{b64([]byte("GIF89a nonsense"))}, "texts": []string{"a"}}, 413, "images[0]", "pixel limit"},
		{"text as image", map[string]any{"images": []string{b64([]byte("just words"))}, "texts": []string{"a"}}, 400, "images[0]", "not a supported image"},
		{"image bomb", map[string]any{"images": []string{bomb}, "texts": []string{"a"}}, 413, "images[0]", "pixel limit"},
		{"truncated image", map[string]any{"images": []string{truncated}, "texts": []string{"a"}}, 400, "images[0]", "truncated"},
		{"data URL not base64", map[string]any{"images": []string{"data:image/png,abc"}, "texts": []string{"a"}}, 400, "images[0]", "not base64"},
		{"bad score", map[string]any{"images": []string{scene}, "texts": []string{"a"}, "score": "all"}, 400, "score", "want itm"},
		{"body too large", map[string]any{"images": []string{strings.Repeat("A", 2<<20)}, "texts": []string{"a"}}, 413, "", "--max-body"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := post(t, ts, "/v1/match", c.body)
			e := r.errorOf(t)
			if r.status != c.status || e.Param != c.param || !strings.Contains(e.Message, c.msg) || e.Code != c.status {
				t.Errorf("status %d param %q message %q; want %d %q containing %q", r.status, e.Param, e.Message, c.status, c.param, c.msg)
			}
		})
	}
	if r := do(t, ts, http.MethodPost, "/v1/match", "text/plain", strings.NewReader("hi")); r.status != 415 {
		t.Errorf("text/plain: %d", r.status)
	}
	if r := get(t, ts, "/v1/match"); r.status != 405 || r.header.Get("Allow") != "POST" {
		t.Errorf("GET /v1/match: %d %v", r.status, r.header)
	}
	if r := get(t, ts, "/v2/nothing"); r.status != 404 || r.errorOf(t).Code != 404 {
		t.Errorf("unknown route: %d %s", r.status, r.body)
	}
	// Still serving, and every failure counted.
	if r := post(t, ts, "/v1/match", map[string]any{"images": []string{scene}, "texts": []string{"a"}}); r.status != 200 {
		t.Errorf("after bad input: %d %s", r.status, r.body)
	}
	metrics := string(get(t, ts, "/metrics").body)
	for _, want := range []string{
		`blipcuda_http_requests_total{code="400",route="/v1/match"}`,
		`blipcuda_http_requests_total{code="413",route="/v1/match"}`,
		`blipcuda_http_requests_total{code="415",route="/v1/match"}`,
		`blipcuda_http_requests_total{code="405",route="/v1/match"}`,
		`blipcuda_http_requests_total{code="200",route="/v1/match"} 1`,
		`blipcuda_http_requests_total{code="404",route="other"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestMetrics(t *testing.T) {
	ts, _ := start(t, Config{})
	scene := b64(readFixture(t, scenePath))
	post(t, ts, "/v1/match", map[string]any{"images": []string{scene}, "texts": []string{"a", "b"}})
	post(t, ts, "/vectorize", map[string]any{"texts": []string{"a"}})
	r := get(t, ts, "/metrics")
	body := string(r.body)
	for _, want := range []string{
		`blipcuda_http_request_duration_seconds_bucket{route="/v1/match",le=`,
		`blipcuda_batch_requests_bucket{kind="match",le="1"} 1`,
		`blipcuda_batch_inputs_sum{input="texts",kind="match"} 2`,
		`blipcuda_batch_requests_count{kind="embed_texts"} 1`,
		`blipcuda_images_processed_total 1`,
		`blipcuda_texts_processed_total 3`,
		`blipcuda_queue_depth 0`,
		`blipcuda_device_memory_in_use_bytes 0`,
		`blipcuda_ready 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestAPIKey(t *testing.T) {
	ts, _ := start(t, Config{APIKey: "s3cret"})
	body := map[string]any{"texts": []string{"a"}}
	if r := post(t, ts, "/vectorize", body); r.status != 401 || r.header.Get("WWW-Authenticate") == "" {
		t.Errorf("no key: %d", r.status)
	}
	if r := post(t, ts, "/vectorize", body, "Authorization", "Bearer wrong"); r.status != 401 {
		t.Errorf("wrong key: %d", r.status)
	}
	if r := post(t, ts, "/vectorize", body, "Authorization", "Bearer s3cret"); r.status != 200 {
		t.Errorf("right key: %d %s", r.status, r.body)
	}
	if r := get(t, ts, "/metrics"); r.status != 401 {
		t.Errorf("/metrics without a key: %d", r.status)
	}
	for _, p := range []string{"/healthz", "/readyz", "/.well-known/ready"} {
		if r := get(t, ts, p); r.status >= 400 {
			t.Errorf("%s without a key: %d", p, r.status)
		}
	}
}

// blockedServer's batcher holds its first batch until release is closed.
func blockedServer(t *testing.T, lim Limits, queue int) (ts *httptest.Server, entered chan struct{}, release chan struct{}) {
	entered, release = make(chan struct{}, 1), make(chan struct{})
	var once sync.Once
	ts, _ = start(t, Config{Limits: lim, Batch: batcher.Options{MaxBatch: 1, QueueSize: queue, Observe: func(batcher.Stats) {
		once.Do(func() { entered <- struct{}{}; <-release })
	}}})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	return ts, entered, release
}

func TestQueueFullDeadlineCancel(t *testing.T) {
	ts, entered, release := blockedServer(t, Limits{RequestTimeout: 2 * time.Second}, 1)
	body := map[string]any{"texts": []string{"a"}}
	first := make(chan reply, 1)
	go func() { first <- post(t, ts, "/vectorize", body) }()
	<-entered
	// One request fills the queue; its deadline passes while it waits.
	queued := make(chan reply, 1)
	go func() { queued <- post(t, ts, "/vectorize", body) }()
	time.Sleep(100 * time.Millisecond)
	r := post(t, ts, "/vectorize", body)
	if r.status != 429 || r.header.Get("Retry-After") == "" || r.errorOf(t).Type != "rate_limit_error" {
		t.Errorf("full queue: %d %v %s", r.status, r.header, r.body)
	}
	if r := <-queued; r.status != 504 || !strings.Contains(r.errorOf(t).Message, "--request-timeout") {
		t.Errorf("past its deadline: %d %s", r.status, r.body)
	}
	close(release)
	if r := <-first; r.status != 504 {
		t.Errorf("first, held past its deadline: %d", r.status)
	}
	metrics := string(get(t, ts, "/metrics").body)
	for _, want := range []string{`code="429",route="/vectorize"} 1`, `code="504",route="/vectorize"} 2`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestClientGone: a client that disconnects while its request waits is
// counted as 499, and its queued work is dropped unrun.
func TestClientGone(t *testing.T) {
	ts, entered, release := blockedServer(t, Limits{}, 4)
	first := make(chan reply, 1)
	go func() { first <- post(t, ts, "/vectorize", map[string]any{"texts": []string{"a"}}) }()
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/vectorize", strings.NewReader(`{"texts":["b"]}`))
	req.Header.Set("Content-Type", "application/json")
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	if _, err := ts.Client().Do(req); err == nil {
		t.Error("cancelled request answered")
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	if r := <-first; r.status != 200 {
		t.Errorf("first: %d", r.status)
	}
	metrics := string(get(t, ts, "/metrics").body)
	for _, want := range []string{`code="499",route="/vectorize"} 1`, `blipcuda_batch_requests_count{kind="embed_texts"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
