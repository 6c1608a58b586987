package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blipcuda/blipcuda"
	"github.com/blipcuda/blipcuda/index"
)

// fixtureImages are the images of the test index (in testdata/).
var fixtureImages = []string{
	"models/images/scene.png", "models/images/blocks.png", "models/images/waves_rgba.png",
	"images/exact_384x384.png", "images/big_1000x750.png", "images/bw_53x29.png",
	"images/jpg_noisy_96x64_420.jpg", "images/g2_16x9.png",
}

// buildIndex copies the fixture images into a temporary directory and
// indexes them with the tiny model (with features when features is set).
func buildIndex(t *testing.T, features bool) (*index.Index, []string) {
	t.Helper()
	m := tiny(t)
	ctx := context.Background()
	dir := t.TempDir()
	var items []index.Item
	var keys []string
	var ims []*blipcuda.Image
	for i, f := range fixtureImages {
		data := readFixture(t, f)
		key := strings.ReplaceAll(filepath.Base(f), "_", "-")
		if i == 0 {
			key = "photos/" + key // a path with a directory
			os.MkdirAll(filepath.Join(dir, "photos"), 0o755)
		}
		path := filepath.Join(dir, filepath.FromSlash(key))
		if i == len(fixtureImages)-1 { // outside the index's directory: stored absolute
			path = filepath.Join(t.TempDir(), key)
			key = path
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(path)
		im, err := m.LoadImage(path)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		ims = append(ims, im)
		keys = append(keys, key)
		items = append(items, index.Item{Entry: index.Entry{Path: key, Size: st.Size(), ModTime: st.ModTime(), SHA256: hex.EncodeToString(sum[:])}})
	}
	enc, err := m.EncodeImages(ctx, ims, features)
	if err != nil {
		t.Fatal(err)
	}
	for i := range items {
		items[i].Embedding = enc[i].Embedding
		items[i].Features = enc[i].Features
	}
	ixPath := filepath.Join(dir, "fixture.blipidx")
	w, err := index.Open(ctx, ixPath, index.Options{Write: true, Create: true, Features: features})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.SetModel(ctx, index.ModelOf(m, "tiny-base")); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(ctx, items); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ix, err := index.Open(ctx, ixPath, index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	return ix, keys
}

// wantOrder ranks the index's images for text with the library directly
// (RerankImages over every image, BLIP score).
func wantOrder(t *testing.T, ix *index.Index, keys []string, text string) []string {
	t.Helper()
	m := tiny(t)
	var cands []blipcuda.ImageCandidate
	for _, k := range keys {
		im, err := m.LoadImage(ix.Resolve(k))
		if err != nil {
			t.Fatal(err)
		}
		cands = append(cands, blipcuda.ImageCandidate{Name: k, Image: im})
	}
	scores, err := m.RerankImages(context.Background(), text, cands)
	if err != nil {
		t.Fatal(err)
	}
	blipcuda.SortScores(scores, blipcuda.RankBLIP)
	out := make([]string, len(scores))
	for i, s := range scores {
		out[i] = s.Name
	}
	return out
}

func TestSearch(t *testing.T) {
	for _, features := range []bool{false, true} {
		t.Run(map[bool]string{false: "images decoded again", true: "stored features"}[features], func(t *testing.T) {
			ix, keys := buildIndex(t, features)
			ts, _ := start(t, Config{Index: ix})
			const q = "a red square on a blue background"
			var res SearchResponse
			r := post(t, ts, "/v1/search", map[string]any{"query": q, "top_k": 5})
			r.json(t, &res)
			if r.status != 200 || len(res.Results) != 5 || res.Collection != len(keys) || res.Score != "blip" {
				t.Fatalf("search: %d %s", r.status, r.body)
			}
			// k = 32 ≥ 8 images: every image is re-ranked, so the order is
			// the library's over the whole collection.
			want := wantOrder(t, ix, keys, q)
			for i, got := range res.Results {
				if got.Path != want[i] {
					t.Errorf("result %d: %s, want %s (library order %v)", i, got.Path, want[i], want)
				}
				if got.ITMProb == nil || got.Score != got.ITMLogits[1]+got.ITC {
					t.Errorf("result %d: scores %+v", i, got)
				}
			}
			// Each image URL serves the indexed file (the absolute path of
			// one outside the index's directory too).
			for _, got := range res.Results {
				r := get(t, ts, got.ImageURL)
				data, _ := os.ReadFile(ix.Resolve(got.Path))
				if r.status != 200 || string(r.body) != string(data) || r.header.Get("Content-Type") == "" {
					t.Errorf("%s: %d, %d bytes", got.ImageURL, r.status, len(r.body))
				}
			}
		})
	}
}

func TestSearchModes(t *testing.T) {
	ix, keys := buildIndex(t, false)
	ts, _ := start(t, Config{Index: ix})
	// ITC only: the ITC pass's order, no ITM fields.
	var res SearchResponse
	r := post(t, ts, "/v1/search", map[string]any{"query": "waves", "score": "itc", "top_k": 3})
	r.json(t, &res)
	if r.status != 200 || len(res.Results) != 3 || res.Results[0].ITMProb != nil || res.Results[0].Score < res.Results[1].Score {
		t.Errorf("itc: %d %s", r.status, r.body)
	}
	// An image query finds itself first (cosine 1).
	img := readFixture(t, "models/images/blocks.png")
	r = post(t, ts, "/v1/search", map[string]any{"image": b64(img), "top_k": 2})
	res = SearchResponse{}
	r.json(t, &res)
	if r.status != 200 || len(res.Results) != 2 || res.Results[0].Path != keys[1] || res.Results[0].ITC < 0.9999 {
		t.Errorf("image query: %d %s", r.status, r.body)
	}
	for name, c := range map[string]struct {
		body   any
		status int
		param  string
	}{
		"neither":          {map[string]any{"top_k": 3}, 400, "query"},
		"both":             {map[string]any{"query": "a", "image": b64(img)}, 400, "image"},
		"top_k":            {map[string]any{"query": "a", "top_k": 5000}, 400, "top_k"},
		"score":            {map[string]any{"query": "a", "score": "best"}, 400, "score"},
		"image with itm":   {map[string]any{"image": b64(img), "score": "itm"}, 400, "score"},
		"unknown field":    {map[string]any{"query": "a", "limit": 3}, 400, "limit"},
		"empty query text": {map[string]any{"query": "   "}, 400, "query"},
	} {
		r := post(t, ts, "/v1/search", c.body)
		if e := r.errorOf(t); r.status != c.status || e.Param != c.param {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	// Only indexed paths are served; nothing outside the index.
	for _, p := range []string{"/v1/image?path=fixture.blipidx/index.db", "/v1/image?path=nothere.png", "/v1/image?path=../../etc/passwd",
		"/v1/image?path=/etc/passwd", "/v1/image", "/v1/image?path=photos"} {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+p, nil)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("%s served: %.100s", p, body)
		}
	}
	// The page and its assets.
	page := get(t, ts, "/")
	if page.status != 200 || !strings.Contains(string(page.body), "/static/app.js") || page.header.Get("Content-Security-Policy") == "" {
		t.Errorf("/: %d", page.status)
	}
	for _, a := range []string{"/static/app.js", "/static/style.css"} {
		if r := get(t, ts, a); r.status != 200 {
			t.Errorf("%s: %d", a, r.status)
		}
	}
	if r := get(t, ts, "/static/nothing.js"); r.status != 404 {
		t.Errorf("missing asset: %d", r.status)
	}
}

func TestNoIndex(t *testing.T) {
	ts, _ := start(t, Config{})
	if r := post(t, ts, "/v1/search", map[string]any{"query": "a"}); r.status != 404 || !strings.Contains(r.errorOf(t).Message, "--index") {
		t.Errorf("search without an index: %d %s", r.status, r.body)
	}
	if r := get(t, ts, "/"); r.status != 404 {
		t.Errorf("page without an index: %d", r.status)
	}
}
