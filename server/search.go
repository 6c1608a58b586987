package server

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"

	"github.com/blipcuda/blipcuda"
	"github.com/blipcuda/blipcuda/index"
)

// SearchRequest is the body of POST /v1/search (with an index): a text
// query ranks the index's images (ITC top-k, then the ITM head re-ranks
// the k best), an image query finds the images whose ITC embeddings are
// nearest to its own.
type SearchRequest struct {
	Query string `json:"query,omitempty"`
	Image string `json:"image,omitempty"`
	// TopK is how many results come back (default 10).
	TopK int `json:"top_k,omitempty"`
	// K is how many candidates the ITC pass keeps for the re-rank
	// (default max(4×top_k, 32); at most 1024).
	K int `json:"k,omitempty"`
	// Score is blip (default), itm or itc; itc skips the re-rank.
	Score string `json:"score,omitempty"`
}

// SearchResult is one image found.
type SearchResult struct {
	// Path is the image's path as the index stores it.
	Path string `json:"path"`
	// ImageURL serves the image (GET /v1/image?path=..., same
	// authentication).
	ImageURL  string      `json:"image_url"`
	Score     float32     `json:"score"`
	ITC       float32     `json:"itc"`
	ITMProb   *float32    `json:"itm_prob,omitempty"`
	ITMLogits *[2]float32 `json:"itm_logits,omitempty"`
}

// SearchResponse is the body POST /v1/search returns.
type SearchResponse struct {
	Model      string         `json:"model"`
	Index      string         `json:"index"`
	Collection int            `json:"collection"`
	Score      string         `json:"score"`
	K          int            `json:"k"`
	Results    []SearchResult `json:"results"`
	// Skipped counts candidates whose image could not be read again for
	// the re-rank (moved or deleted since indexing).
	Skipped int `json:"skipped,omitempty"`
}

// maxK bounds the candidates of one search.
const maxK = 1024

func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request) error {
	if s.ix == nil {
		return &apiError{status: http.StatusNotFound, msg: "no index is loaded: start the server with --index NAME.blipidx"}
	}
	var req SearchRequest
	if err := decodeRequest(r, &req); err != nil {
		return err
	}
	switch {
	case req.TopK < 0 || req.TopK > maxK:
		return badField("top_k", "%d: want 1 to %d", req.TopK, maxK)
	case req.K < 0 || req.K > maxK:
		return badField("k", "%d: want 1 to %d", req.K, maxK)
	}
	if req.TopK == 0 {
		req.TopK = 10
	}
	if req.K == 0 {
		req.K = max(4*req.TopK, 32)
	}
	req.K = max(req.K, req.TopK)
	rank := blipcuda.RankBLIP
	if req.Score != "" {
		var err error
		if rank, err = blipcuda.ParseRanking(req.Score); err != nil {
			return badField("score", "%q: want blip, itm or itc", quote(req.Score))
		}
	}
	res := SearchResponse{Model: s.name, Index: filepath.Base(s.ix.Dir()), Collection: s.ix.Len(), Score: string(rank), K: req.K,
		Results: []SearchResult{}}
	switch {
	case req.Query != "" && req.Image != "":
		return badField("image", "give query (a text) or image, not both")
	case req.Query != "":
		if err := s.checkTexts("query", []string{req.Query}, true); err != nil {
			e := err.(*apiError)
			e.param = "query"
			return e
		}
		tenc, err := s.b.EncodeTexts(r.Context(), []string{req.Query})
		if err != nil {
			return err
		}
		k := req.K
		if rank == blipcuda.RankITC {
			k = req.TopK
		}
		hits, err := s.ix.Search(r.Context(), [][]float32{tenc[0].Embedding}, k)
		if err != nil {
			return err
		}
		if rank == blipcuda.RankITC {
			for _, h := range hits[0] {
				res.Results = append(res.Results, s.result(h.Path, h.ITC, h.ITC, nil))
			}
			break
		}
		if err := s.rerank(r, req.Query, hits[0], rank, req.TopK, &res); err != nil {
			return err
		}
		s.metrics.processed(0, 1)
	case req.Image != "":
		if rank != blipcuda.RankITC && req.Score != "" {
			return badField("score", "an image query ranks by ITC (the image-image cosine): give itc or nothing")
		}
		rank, res.Score = blipcuda.RankITC, string(blipcuda.RankITC)
		im, err := s.decodeImage(r.Context(), "image", req.Image)
		if err != nil {
			return err
		}
		ienc, err := s.b.EncodeImages(r.Context(), []*blipcuda.Image{im})
		if err != nil {
			return err
		}
		hits, err := s.ix.Search(r.Context(), [][]float32{ienc[0].Embedding}, req.TopK)
		if err != nil {
			return err
		}
		for _, h := range hits[0] {
			res.Results = append(res.Results, s.result(h.Path, h.ITC, h.ITC, nil))
		}
		s.metrics.processed(1, 0)
	default:
		return badField("query", "give query (a text) or image")
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// rerank scores the ITC hits with the ITM head (from stored features, or
// the image files decoded again) and keeps the top best by rank.
func (s *Server) rerank(r *http.Request, text string, hits []index.Result, rank blipcuda.Ranking, top int, res *SearchResponse) error {
	var (
		cands []blipcuda.ImageCandidate
		kept  []index.Result
	)
	for _, h := range hits {
		emb, err := s.ix.Embedding(h.Entry)
		if err != nil {
			return err
		}
		c := blipcuda.ImageCandidate{Name: h.Path, Embedding: emb}
		if s.ix.HasFeatures() {
			if c.Features, err = s.ix.Features(h.Entry); err != nil {
				return err
			}
		} else if c.Image, err = s.loadIndexed(r, h.Path); err != nil {
			if r.Context().Err() != nil {
				return r.Context().Err()
			}
			s.log.Warn("search: skipping a candidate that cannot be read again", "path", h.Path, "err", err.Error())
			res.Skipped++
			continue
		}
		cands = append(cands, c)
		kept = append(kept, h)
	}
	if len(cands) == 0 {
		return nil
	}
	scores, err := s.m.RerankImages(r.Context(), text, cands)
	if err != nil {
		return err
	}
	blipcuda.SortScores(scores, rank)
	for _, sc := range scores[:min(top, len(scores))] {
		sc := sc
		out := s.result(kept[sc.Index].Path, sc.Score(rank), sc.ITC, &sc)
		res.Results = append(res.Results, out)
	}
	return nil
}

// loadIndexed decodes an indexed image file, within the decode budget.
func (s *Server) loadIndexed(r *http.Request, key string) (*blipcuda.Image, error) {
	weight := int64(s.m.MaxPixels()) / 16 // a typical photo's share; the budget bounds concurrency
	weight = min(max(weight, 1), s.lim.DecodePixels)
	if err := s.decode.Acquire(r.Context(), weight); err != nil {
		return nil, err
	}
	defer s.decode.Release(weight)
	return s.m.LoadImage(s.ix.Resolve(key))
}

func (s *Server) result(path string, score, itc float32, sc *blipcuda.RerankScore) SearchResult {
	out := SearchResult{Path: path, ImageURL: "/v1/image?path=" + url.QueryEscape(path), Score: score, ITC: itc}
	if sc != nil {
		p, l := sc.ITMProb, sc.ITMLogits
		out.ITMProb, out.ITMLogits = &p, &l
	}
	return out
}

// handleImage serves an indexed image, GET /v1/image?path=PATH (its path
// as the index stores it, relative or absolute): only paths the index
// holds, only regular files.
func (s *Server) handleImage(w http.ResponseWriter, r *http.Request) error {
	if s.ix == nil {
		return &apiError{status: http.StatusNotFound, msg: "no index is loaded"}
	}
	key := r.URL.Query().Get("path")
	if key == "" {
		return badField("path", "give the image's path as the index stores it (?path=...)")
	}
	e, ok, err := s.ix.Lookup(key)
	if err != nil {
		return err
	}
	if !ok {
		return &apiError{status: http.StatusNotFound, param: "path", msg: fmt.Sprintf("%q is not in the index", quote(key))}
	}
	f, err := os.Open(s.ix.Resolve(key))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &apiError{status: http.StatusNotFound, param: "path", msg: "the image has gone since it was indexed"}
		}
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return &apiError{status: http.StatusNotFound, param: "path", msg: "not a regular file"}
	}
	w.Header().Set("Cache-Control", "private, max-age=300")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("ETag", `"`+e.SHA256+`"`)
	http.ServeContent(w, r, filepath.Base(key), st.ModTime(), f)
	return nil
}
