package server

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"

	"github.com/blipcuda/blipcuda"
)

// MatchRequest is the body of POST /v1/match.
type MatchRequest struct {
	// Images are base64 or data-URL images (multipart: files named images).
	Images []string `json:"images"`
	// Texts are matched against every image.
	Texts []string `json:"texts"`
	// Score is itm, itc or both (the default), as match --score.
	Score string `json:"score,omitempty"`
}

// MatchResponse is the response of POST /v1/match: the library's match
// document, the one `blipcuda match --format json` writes.
type MatchResponse = blipcuda.MatchDocument

func (s *Server) handleMatch(w http.ResponseWriter, r *http.Request) error {
	var req MatchRequest
	if err := decodeRequest(r, &req); err != nil {
		return err
	}
	switch req.Score {
	case "":
		req.Score = "both"
	case "itm", "itc", "both":
	default:
		return badField("score", "%q: want itm, itc or both", quote(req.Score))
	}
	if err := s.checkTexts("texts", req.Texts, true); err != nil {
		return err
	}
	images, err := s.decodeImages(r.Context(), "images", req.Images, true)
	if err != nil {
		return err
	}
	res := blipcuda.NewMatchDocument(s.m, s.name, req.Score, req.Texts)
	if req.Score == "itc" {
		// The cosine alone: no multimodal encoder.
		ienc, tenc, err := s.embedBoth(r, images, req.Texts)
		if err != nil {
			return err
		}
		res.AddITC(ienc, tenc)
	} else {
		sc, err := s.b.Match(r.Context(), images, req.Texts)
		if err != nil {
			return err
		}
		res.AddScores(sc)
	}
	s.metrics.processed(len(images), len(req.Texts))
	writeJSON(w, http.StatusOK, res)
	return nil
}

// embedBoth encodes images and texts (either may be empty) through the
// batcher, the two concurrently.
func (s *Server) embedBoth(r *http.Request, images []*blipcuda.Image, texts []string) ([]blipcuda.ImageEncoding, []blipcuda.TextEncoding, error) {
	var (
		tenc []blipcuda.TextEncoding
		terr error
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		if len(texts) > 0 {
			tenc, terr = s.b.EncodeTexts(r.Context(), texts)
		}
	}()
	var (
		ienc []blipcuda.ImageEncoding
		ierr error
	)
	if len(images) > 0 {
		ienc, ierr = s.b.EncodeImages(r.Context(), images)
	}
	<-done
	if ierr != nil {
		return nil, nil, ierr
	}
	return ienc, tenc, terr
}

// EmbeddingsRequest is the body of POST /v1/embeddings, in the shape of
// the common embeddings APIs: input is a string, an array of strings, or
// an array of objects {"text": ...} or {"image": base64 or data URL}.
type EmbeddingsRequest struct {
	Input          json.RawMessage `json:"input"`
	Model          string          `json:"model,omitempty"`
	EncodingFormat string          `json:"encoding_format,omitempty"`
	Dimensions     int             `json:"dimensions,omitempty"`
	User           string          `json:"user,omitempty"`
}

// embeddingInput is one item of input.
type embeddingInput struct {
	Text  *string `json:"text,omitempty"`
	Image *string `json:"image,omitempty"`
}

// Embedding is one result of /v1/embeddings.
type Embedding struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"` // []float32, or base64 of little-endian float32
	Modality  string `json:"modality"`
	Truncated bool   `json:"truncated,omitempty"`
}

// EmbeddingsResponse is the body /v1/embeddings returns.
type EmbeddingsResponse struct {
	Object string      `json:"object"`
	Data   []Embedding `json:"data"`
	Model  string      `json:"model"`
	Usage  struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
		Images       int `json:"images"`
	} `json:"usage"`
}

func (s *Server) handleEmbeddings(w http.ResponseWriter, r *http.Request) error {
	var req EmbeddingsRequest
	if err := decodeRequest(r, &req); err != nil {
		return err
	}
	if err := s.checkModel(req.Model); err != nil {
		return err
	}
	dim := s.m.Info().Config.ImageTextHiddenSize
	if req.Dimensions != 0 && req.Dimensions != dim {
		return badField("dimensions", "%d: this model's embeddings have %d dimensions", req.Dimensions, dim)
	}
	switch req.EncodingFormat {
	case "", "float", "base64":
	default:
		return badField("encoding_format", "%q: want float or base64", quote(req.EncodingFormat))
	}
	items, err := parseEmbeddingInput(req.Input)
	if err != nil {
		return err
	}
	if len(items) > s.lim.MaxTexts+s.lim.MaxImages {
		return tooMany("input", len(items), s.lim.MaxTexts+s.lim.MaxImages, "--max-texts + --max-images")
	}
	var (
		texts, imgData []string
		textAt, imgAt  []int
	)
	for i, it := range items {
		switch {
		case it.Text != nil && it.Image != nil:
			return badField(fmt.Sprintf("input[%d]", i), "give text or image, not both")
		case it.Text != nil:
			texts, textAt = append(texts, *it.Text), append(textAt, i)
		case it.Image != nil:
			imgData, imgAt = append(imgData, *it.Image), append(imgAt, i)
		default:
			return badField(fmt.Sprintf("input[%d]", i), "give text or image")
		}
	}
	if len(texts) > s.lim.MaxTexts {
		return tooMany("input", len(texts), s.lim.MaxTexts, "--max-texts")
	}
	if len(imgData) > s.lim.MaxImages {
		return tooMany("input", len(imgData), s.lim.MaxImages, "--max-images")
	}
	for k, t := range texts {
		if err := s.checkTexts("input", []string{t}, false); err != nil {
			ae := err.(*apiError)
			ae.param = fmt.Sprintf("input[%d]", textAt[k])
			return ae
		}
	}
	images := make([]*blipcuda.Image, len(imgData))
	for k, v := range imgData {
		if images[k], err = s.decodeImage(r.Context(), fmt.Sprintf("input[%d]", imgAt[k]), v); err != nil {
			return err
		}
	}
	ienc, tenc, err := s.embedBoth(r, images, texts)
	if err != nil {
		return err
	}
	res := EmbeddingsResponse{Object: "list", Model: s.name, Data: make([]Embedding, len(items))}
	put := func(i int, v []float32, modality string, truncated bool) {
		var e any = v
		if req.EncodingFormat == "base64" {
			b := make([]byte, 4*len(v))
			for k, x := range v {
				binary.LittleEndian.PutUint32(b[4*k:], math.Float32bits(x))
			}
			e = base64.StdEncoding.EncodeToString(b)
		}
		res.Data[i] = Embedding{Object: "embedding", Index: i, Embedding: e, Modality: modality, Truncated: truncated}
	}
	for k, t := range tenc {
		put(textAt[k], t.Embedding, "text", t.Truncated)
		res.Usage.PromptTokens += len(t.Tokens)
	}
	for k, e := range ienc {
		put(imgAt[k], e.Embedding, "image", false)
	}
	res.Usage.TotalTokens = res.Usage.PromptTokens
	res.Usage.Images = len(images)
	s.metrics.processed(len(images), len(texts))
	writeJSON(w, http.StatusOK, res)
	return nil
}

// parseEmbeddingInput reads input: a string, an array of strings, or an
// array of {"text"}/{"image"} objects (mixed with strings).
func parseEmbeddingInput(raw json.RawMessage) ([]embeddingInput, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, badField("input", "missing: give a string, an array of strings, or {\"text\"}/{\"image\"} objects")
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []embeddingInput{{Text: &one}}, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, badField("input", "want a string or an array")
	}
	if len(list) == 0 {
		return nil, badField("input", "empty array: give at least one text or image")
	}
	out := make([]embeddingInput, len(list))
	for i, item := range list {
		var str string
		if err := json.Unmarshal(item, &str); err == nil {
			out[i].Text = &str
			continue
		}
		if err := decodeJSON(bytes.NewReader(item), &out[i]); err != nil {
			ae := classify(err)
			if ae.param != "" {
				ae.param = fmt.Sprintf("input[%d].%s", i, ae.param)
			} else {
				ae.param = fmt.Sprintf("input[%d]", i)
			}
			return nil, ae
		}
	}
	return out, nil
}

// checkModel accepts "" or the served model's name.
func (s *Server) checkModel(name string) error {
	info := s.m.Info()
	if name == "" || name == s.name || name == info.Name || (info.Repo != "" && name == info.Repo) {
		return nil
	}
	return &apiError{status: http.StatusNotFound, param: "model", msg: fmt.Sprintf("%q is not served here; this server runs %s", quote(name), s.name)}
}

// ModelCard is one entry of /v1/models.
type ModelCard struct {
	ID         string `json:"id"`
	Object     string `json:"object"`
	Created    int64  `json:"created"`
	OwnedBy    string `json:"owned_by"`
	Repo       string `json:"repo,omitempty"`
	Device     string `json:"device"`
	Precision  string `json:"precision"`
	Protocol   string `json:"protocol"`
	Dimensions int    `json:"dimensions"`
	ImageSize  int    `json:"image_size"`
}

func (s *Server) modelCard() ModelCard {
	info := s.m.Info()
	return ModelCard{ID: s.name, Object: "model", OwnedBy: "blipcuda", Repo: info.Repo, Device: info.Device,
		Precision: info.Precision, Protocol: string(info.Protocol), Dimensions: info.Config.ImageTextHiddenSize,
		ImageSize: info.Config.Vision.ImageSize}
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []ModelCard{s.modelCard()}})
	return nil
}

// RerankRequest is the body of POST /v1/rerank: a text query and candidate
// images, or an image query and candidate texts (documents).
type RerankRequest struct {
	Model     string   `json:"model,omitempty"`
	Query     string   `json:"query,omitempty"`
	Image     string   `json:"image,omitempty"`
	Documents []string `json:"documents,omitempty"`
	Images    []string `json:"images,omitempty"`
	TopN      int      `json:"top_n,omitempty"`
	Score     string   `json:"score,omitempty"`
	// ReturnDocuments includes each text in its result (default true).
	ReturnDocuments *bool `json:"return_documents,omitempty"`
}

// RerankResult is one ranked candidate.
type RerankResult struct {
	Index          int        `json:"index"`
	RelevanceScore float32    `json:"relevance_score"`
	Document       *RerankDoc `json:"document,omitempty"`
	ITMProb        float32    `json:"itm_prob"`
	ITMLogits      [2]float32 `json:"itm_logits"`
	ITC            float32    `json:"itc"`
	Truncated      bool       `json:"truncated,omitempty"`
}

// RerankDoc is a ranked text.
type RerankDoc struct {
	Text string `json:"text"`
}

func (s *Server) handleRerank(w http.ResponseWriter, r *http.Request) error {
	var req RerankRequest
	if err := decodeRequest(r, &req); err != nil {
		return err
	}
	if err := s.checkModel(req.Model); err != nil {
		return err
	}
	rank := blipcuda.RankBLIP
	if req.Score != "" {
		var err error
		if rank, err = blipcuda.ParseRanking(req.Score); err != nil {
			return badField("score", "%q: want blip, itm or itc", quote(req.Score))
		}
	}
	if req.TopN < 0 {
		return badField("top_n", "%d: want a positive number", req.TopN)
	}
	var scores []blipcuda.RerankScore
	switch {
	case req.Query != "" && req.Image != "":
		return badField("image", "give query (a text, ranking images) or image (ranking documents), not both")
	case req.Query != "":
		if len(req.Documents) > 0 {
			return badField("documents", "a text query ranks images: give images")
		}
		if err := s.checkTexts("query", []string{req.Query}, true); err != nil {
			e := err.(*apiError)
			e.param = "query"
			return e
		}
		images, err := s.decodeImages(r.Context(), "images", req.Images, true)
		if err != nil {
			return err
		}
		sc, err := s.b.Match(r.Context(), images, []string{req.Query})
		if err != nil {
			return err
		}
		for i := range images {
			scores = append(scores, blipcuda.RerankScore{Index: i, Name: sc.Images[i], ITMLogits: sc.ITMLogits[i][0],
				ITMProb: sc.ITMProb[i][0], ITC: sc.ITC[i][0], Truncated: sc.Truncated[0]})
		}
		s.metrics.processed(len(images), 1)
	case req.Image != "":
		if len(req.Images) > 0 {
			return badField("images", "an image query ranks texts: give documents")
		}
		if err := s.checkTexts("documents", req.Documents, true); err != nil {
			return err
		}
		im, err := s.decodeImage(r.Context(), "image", req.Image)
		if err != nil {
			return err
		}
		sc, err := s.b.Match(r.Context(), []*blipcuda.Image{im}, req.Documents)
		if err != nil {
			return err
		}
		for j, t := range req.Documents {
			scores = append(scores, blipcuda.RerankScore{Index: j, Name: t, ITMLogits: sc.ITMLogits[0][j],
				ITMProb: sc.ITMProb[0][j], ITC: sc.ITC[0][j], Truncated: sc.Truncated[j]})
		}
		s.metrics.processed(1, len(req.Documents))
	default:
		return badField("query", "give query (a text, ranking images) or image (ranking documents)")
	}
	blipcuda.SortScores(scores, rank)
	if req.TopN > 0 && req.TopN < len(scores) {
		scores = scores[:req.TopN]
	}
	withDocs := req.ReturnDocuments == nil || *req.ReturnDocuments
	res := make([]RerankResult, len(scores))
	for k, sc := range scores {
		res[k] = RerankResult{Index: sc.Index, RelevanceScore: sc.Score(rank), ITMProb: sc.ITMProb, ITMLogits: sc.ITMLogits,
			ITC: sc.ITC, Truncated: sc.Truncated}
		if req.Image != "" && withDocs {
			res[k].Document = &RerankDoc{Text: sc.Name}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"model": s.name, "score": string(rank), "results": res})
	return nil
}

// VectorizeRequest is the body of Weaviate multi2vec's POST /vectorize.
type VectorizeRequest struct {
	Texts  []string `json:"texts"`
	Images []string `json:"images"`
}

// VectorizeResponse is its answer.
type VectorizeResponse struct {
	TextVectors  [][]float32 `json:"textVectors"`
	ImageVectors [][]float32 `json:"imageVectors"`
}

func (s *Server) handleVectorize(w http.ResponseWriter, r *http.Request) error {
	var req VectorizeRequest
	if err := decodeRequest(r, &req); err != nil {
		return err
	}
	if err := s.checkTexts("texts", req.Texts, false); err != nil {
		return err
	}
	images, err := s.decodeImages(r.Context(), "images", req.Images, false)
	if err != nil {
		return err
	}
	ienc, tenc, err := s.embedBoth(r, images, req.Texts)
	if err != nil {
		return err
	}
	res := VectorizeResponse{TextVectors: [][]float32{}, ImageVectors: [][]float32{}}
	for _, t := range tenc {
		res.TextVectors = append(res.TextVectors, t.Embedding)
	}
	for _, e := range ienc {
		res.ImageVectors = append(res.ImageVectors, e.Embedding)
	}
	s.metrics.processed(len(images), len(req.Texts))
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) handleMeta(w http.ResponseWriter, r *http.Request) error {
	info := s.m.Info()
	writeJSON(w, http.StatusOK, map[string]any{
		"model": map[string]any{
			"name": s.name, "repo": info.Repo, "type": "blip-itm", "device": info.Device,
			"precision": info.Precision, "protocol": info.Protocol,
			"dimensions": info.Config.ImageTextHiddenSize, "image_size": info.Config.Vision.ImageSize,
		},
	})
	return nil
}
