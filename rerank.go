package blipcuda

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/blipcuda/blipcuda/model"
)

// ImageCandidate is an image to re-rank against a text: by its raw
// features when it has them (from EncodeImages with features, or a store),
// else by its pixels, which are encoded.
type ImageCandidate struct {
	// Name identifies the image in results and errors.
	Name string
	// Image is the preprocessed image; it is used when Features is nil.
	Image *Image
	// Features are the image's raw features, Tokens×Width row-major, as
	// ImageEncoding.Features.
	Features []float32
	// Embedding is the image's ITC embedding. When nil it is computed from
	// the features (the image encoder's projection of the [CLS] token).
	Embedding []float32
}

// RerankScore is one candidate's scores against the query of a re-rank.
type RerankScore struct {
	// Index is the candidate's position in the call's candidates.
	Index int
	// Name is the candidate image's name, or the candidate text.
	Name string
	// ITMLogits are the ITM head's raw logits [no-match, match].
	ITMLogits [2]float32
	// ITMProb is P(match) = softmax(ITMLogits)[1].
	ITMProb float32
	// ITC is the cosine of the text's and the image's ITC embeddings.
	ITC float32
	// Truncated reports that the text was cut to the protocol's length.
	Truncated bool
}

// Ranking names the score a re-rank orders by.
type Ranking string

const (
	// RankBLIP orders by the ITM match logit plus the ITC cosine: the
	// score of BLIP's retrieval evaluation (salesforce/BLIP
	// train_retrieval.py and LAVIS: score = itm_head(...)[:, 1] + topk_sim
	// for the k candidates the ITC pass kept).
	RankBLIP Ranking = "blip"
	// RankITM orders by P(match) (compared through the logit margin, which
	// orders as P(match) does without saturating at 1 in float32).
	RankITM Ranking = "itm"
	// RankITC orders by the ITC cosine alone.
	RankITC Ranking = "itc"
)

// ParseRanking checks a ranking name.
func ParseRanking(s string) (Ranking, error) {
	switch r := Ranking(s); r {
	case RankBLIP, RankITM, RankITC:
		return r, nil
	}
	return "", fmt.Errorf("blipcuda: unknown ranking %q (want blip, itm or itc)", s)
}

// BLIP returns the score of BLIP's retrieval evaluation: the ITM match
// logit plus the ITC cosine.
func (s RerankScore) BLIP() float32 { return s.ITMLogits[1] + s.ITC }

// Score returns the value r ranks by: BLIP(), ITMProb or ITC.
func (s RerankScore) Score(r Ranking) float32 {
	switch r {
	case RankITM:
		return s.ITMProb
	case RankITC:
		return s.ITC
	}
	return s.BLIP()
}

// key is the value sorted on: the logit margin for RankITM.
func (s RerankScore) key(r Ranking) float64 {
	if r == RankITM {
		return float64(s.ITMLogits[1]) - float64(s.ITMLogits[0])
	}
	return float64(s.Score(r))
}

// SortScores orders scores best first by r; ties keep the lower Index
// first.
func SortScores(scores []RerankScore, r Ranking) {
	sort.SliceStable(scores, func(a, b int) bool {
		ka, kb := scores[a].key(r), scores[b].key(r)
		if ka != kb {
			return ka > kb
		}
		return scores[a].Index < scores[b].Index
	})
}

// RerankImages scores one text against k candidate images with both heads:
// the ITM logits of the text with each image, and the ITC cosine of their
// embeddings. Candidates with features are not re-encoded (their features
// are uploaded in batches); the others are encoded in batches of
// ImageBatch. Scores come back in the candidates' order; SortScores ranks
// them.
func (m *Model) RerankImages(ctx context.Context, text string, candidates []ImageCandidate) ([]RerankScore, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	if len(candidates) == 0 {
		return nil, errors.New("blipcuda: no candidate images")
	}
	prep, tenc, err := m.prepareEncoded(ctx, []string{text})
	if err != nil {
		return nil, err
	}
	tb := model.PadBatch([][]int32{prep[0].itm})
	out := make([]RerankScore, len(candidates))
	err = m.forCandidates(ctx, candidates, func(idx []int, f *model.ImageFeatures) error {
		emb, err := m.candidateEmbeddings(ctx, candidates, idx, f)
		if err != nil {
			return err
		}
		for b, c := range idx {
			logits, err := m.net.ITMLogits(ctx, f, b, tb)
			if err != nil {
				return fmt.Errorf("blipcuda: ITM of image %s: %w", candidates[c].Name, err)
			}
			out[c] = RerankScore{Index: c, Name: candidates[c].Name, ITMLogits: [2]float32{logits[0], logits[1]},
				ITMProb: matchProb(logits[0], logits[1]), ITC: dotExact(emb[b], tenc[0].Embedding), Truncated: prep[0].truncated}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RerankTexts scores k candidate texts against one image with both heads.
// The image is encoded once (or its features uploaded once), and its
// cross-attention keys and values are computed once and shared by every
// text batch. Scores come back in the texts' order.
func (m *Model) RerankTexts(ctx context.Context, image ImageCandidate, texts []string) ([]RerankScore, error) {
	encs := make([]TextEncoding, len(texts))
	for i, t := range texts {
		encs[i].Text = t
	}
	return m.RerankEncodedTexts(ctx, image, encs)
}

// RerankEncodedTexts is RerankTexts for texts this model has tokenised or
// encoded before (Tokenize, EncodeTexts, or those read back from a store):
// a text with Tokens is not tokenised again (Tokens and Truncated are
// taken as Tokenize gave them), and one with an Embedding is not encoded
// again, which saves about a third of the work per text. The others are
// prepared as RerankTexts prepares them.
func (m *Model) RerankEncodedTexts(ctx context.Context, image ImageCandidate, texts []TextEncoding) ([]RerankScore, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	if len(texts) == 0 {
		return nil, errors.New("blipcuda: no candidate texts")
	}
	dim := m.net.Config().ImageTextHiddenSize
	prep := make([]prepared, len(texts))
	var raw, unencoded []int // texts to tokenise, texts to encode
	for j, t := range texts {
		switch {
		case t.Embedding == nil:
			unencoded = append(unencoded, j)
		case len(t.Embedding) != dim:
			return nil, fmt.Errorf("blipcuda: text %d: embedding of %d values, want %d", j, len(t.Embedding), dim)
		}
		if t.Tokens == nil {
			raw = append(raw, j)
			continue
		}
		if len(t.Tokens) < 3 {
			return nil, fmt.Errorf("%w: text %d: %d tokens given", ErrEmptyText, j, len(t.Tokens))
		}
		prep[j] = m.prepared(t.Tokens, t.Truncated)
	}
	if len(raw) > 0 {
		strs := make([]string, len(raw))
		for k, j := range raw {
			strs[k] = texts[j].Text
		}
		p, err := m.prepare(strs)
		if err != nil {
			return nil, err
		}
		for k, j := range raw {
			prep[j] = p[k]
		}
	}
	temb := make([][]float32, len(texts))
	for j, t := range texts {
		temb[j] = t.Embedding
	}
	if len(unencoded) > 0 {
		sub, subPrep := make([]string, len(unencoded)), make([]prepared, len(unencoded))
		for k, j := range unencoded {
			sub[k], subPrep[k] = texts[j].Text, prep[j]
		}
		enc, err := m.encodeTexts(ctx, sub, subPrep)
		if err != nil {
			return nil, err
		}
		for k, j := range unencoded {
			temb[j] = enc[k].Embedding
		}
	}
	cands := []ImageCandidate{image}
	var out []RerankScore
	err := m.forCandidates(ctx, cands, func(idx []int, f *model.ImageFeatures) error {
		emb, err := m.candidateEmbeddings(ctx, cands, idx, f)
		if err != nil {
			return err
		}
		out = make([]RerankScore, len(texts))
		err = m.imageITM(ctx, f, 0, prep, func(j int, l [2]float32) {
			out[j] = RerankScore{Index: j, Name: texts[j].Text, ITMLogits: l, ITMProb: matchProb(l[0], l[1]),
				ITC: dotExact(emb[0], temb[j]), Truncated: prep[j].truncated}
		})
		if err != nil {
			return fmt.Errorf("blipcuda: image %s: %w", image.Name, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// prepareEncoded tokenises texts under the protocol and encodes them for
// ITC.
func (m *Model) prepareEncoded(ctx context.Context, texts []string) ([]prepared, []TextEncoding, error) {
	prep, err := m.prepare(texts)
	if err != nil {
		return nil, nil, err
	}
	tenc, err := m.encodeTexts(ctx, texts, prep)
	return prep, tenc, err
}

// forCandidates puts the candidates' features on the backend, ImageBatch
// at a time: uploaded for those that carry features, encoded from pixels
// for the others. fn gets the candidates' indices in batch order.
func (m *Model) forCandidates(ctx context.Context, cands []ImageCandidate, fn func(idx []int, f *model.ImageFeatures) error) error {
	cfg := m.net.Config()
	per := cfg.NumImageTokens() * cfg.Vision.HiddenSize
	var withF, withImg []int
	for i, c := range cands {
		switch {
		case c.Features != nil:
			if len(c.Features) != per {
				return fmt.Errorf("blipcuda: image %s: %d feature values do not fit this model (%d×%d)",
					c.Name, len(c.Features), cfg.NumImageTokens(), cfg.Vision.HiddenSize)
			}
			withF = append(withF, i)
		case c.Image != nil && len(c.Image.pixels) > 0:
			withImg = append(withImg, i)
		default:
			return fmt.Errorf("blipcuda: image %s has neither features nor pixels", c.Name)
		}
		if c.Embedding != nil && len(c.Embedding) != cfg.ImageTextHiddenSize {
			return fmt.Errorf("blipcuda: image %s: embedding of %d values, want %d", c.Name, len(c.Embedding), cfg.ImageTextHiddenSize)
		}
	}
	bs := m.opts.ImageBatch
	for first := 0; first < len(withF); first += bs {
		idx := withF[first:min(first+bs, len(withF))]
		data := make([]float32, 0, len(idx)*per)
		for _, i := range idx {
			data = append(data, cands[i].Features...)
		}
		f, err := m.net.UploadImageFeatures(data, len(idx))
		if err != nil {
			return fmt.Errorf("blipcuda: image %s: %w", cands[idx[0]].Name, err)
		}
		err = fn(idx, f)
		f.Free()
		if err != nil {
			return err
		}
	}
	if len(withImg) == 0 {
		return nil
	}
	ims := make([]*Image, len(withImg))
	for k, i := range withImg {
		ims[k] = cands[i].Image
	}
	return m.forImageBatches(ctx, ims, func(first int, f *model.ImageFeatures) error {
		return fn(withImg[first:first+f.Len()], f)
	})
}

// candidateEmbeddings returns the ITC embeddings of the candidates idx,
// whose features are f: those given, else computed from f.
func (m *Model) candidateEmbeddings(ctx context.Context, cands []ImageCandidate, idx []int, f *model.ImageFeatures) ([][]float32, error) {
	out := make([][]float32, len(idx))
	missing := false
	for b, c := range idx {
		out[b] = cands[c].Embedding
		missing = missing || out[b] == nil
	}
	if !missing {
		return out, nil
	}
	emb, err := m.net.ImageEmbeddings(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("blipcuda: embedding image %s: %w", cands[idx[0]].Name, err)
	}
	d := len(emb) / f.Len()
	for b := range idx {
		if out[b] == nil {
			out[b] = emb[b*d : (b+1)*d : (b+1)*d]
		}
	}
	return out, nil
}
