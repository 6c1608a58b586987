package blipcuda

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// TestRerankMatchesMatch checks both re-rank directions against Match on
// the same pairs: from pixels, and from features (float32 here, so exact).
func TestRerankMatchesMatch(t *testing.T) {
	ctx := context.Background()
	m := loadTiny(t, "tiny-base", WithImageBatch(2))
	ims := images(t, m, []string{"scene.png", "blocks.png", "waves_rgba.png"})
	texts := []string{"a woman and her dog on a beach", "red and blue blocks", "waves!"}
	want, err := m.Match(ctx, ims, texts)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := m.EncodeImages(ctx, ims, true)
	if err != nil {
		t.Fatal(err)
	}
	for j, text := range texts {
		for _, fromFeatures := range []bool{false, true} {
			cands := make([]ImageCandidate, len(ims))
			for i := range ims {
				cands[i] = ImageCandidate{Name: ims[i].Name, Image: ims[i]}
				if fromFeatures {
					cands[i] = ImageCandidate{Name: ims[i].Name, Features: enc[i].Features}
					if i == 0 {
						cands[i].Embedding = enc[i].Embedding
					}
				}
			}
			got, err := m.RerankImages(ctx, text, cands)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range got {
				if s.Index != i || s.ITMLogits != want.ITMLogits[i][j] || s.ITMProb != want.ITMProb[i][j] || s.ITC != want.ITC[i][j] {
					t.Errorf("text %d image %d (features %v): got %+v, Match %v %v %v", j, i, fromFeatures, s,
						want.ITMLogits[i][j], want.ITMProb[i][j], want.ITC[i][j])
				}
			}
		}
	}
	for i := range ims {
		got, err := m.RerankTexts(ctx, ImageCandidate{Name: ims[i].Name, Image: ims[i]}, texts)
		if err != nil {
			t.Fatal(err)
		}
		for j, s := range got {
			if s.Index != j || s.Name != texts[j] || s.ITMLogits != want.ITMLogits[i][j] || s.ITC != want.ITC[i][j] {
				t.Errorf("image %d text %d: got %+v, Match %v %v", i, j, s, want.ITMLogits[i][j], want.ITC[i][j])
			}
			if s.BLIP() != s.ITMLogits[1]+s.ITC {
				t.Error("BLIP() is not the match logit plus the cosine")
			}
		}
	}
}

// TestRerankEncodedTexts: texts given with their tokens, their embeddings,
// both or neither (Tokenize, EncodeTexts) score exactly as RerankTexts
// scores them, with more texts than one batch (WithTextBatch(2)) so the
// image's shared cross keys serve several, under both protocols.
func TestRerankEncodedTexts(t *testing.T) {
	ctx := context.Background()
	for _, protocol := range []Protocol{ProtocolBLIP, ProtocolHF} {
		m := loadTiny(t, "tiny-base", WithTextBatch(2), WithProtocol(protocol))
		ims := images(t, m, []string{"scene.png"})
		texts := []string{"a woman and her dog on a beach", "red and blue blocks", "waves!", "a dog",
			strings.Repeat("two people talking on a bench ", 7)}
		enc, err := m.EncodeImages(ctx, ims, true)
		if err != nil {
			t.Fatal(err)
		}
		img := ImageCandidate{Name: ims[0].Name, Features: enc[0].Features, Embedding: enc[0].Embedding}
		want, err := m.RerankTexts(ctx, ImageCandidate{Name: ims[0].Name, Image: ims[0]}, texts)
		if err != nil {
			t.Fatal(err)
		}
		if protocol == ProtocolBLIP && !want[4].Truncated {
			t.Error("a 35-word text is not reported truncated")
		}
		tenc, err := m.EncodeTexts(ctx, texts)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := m.Tokenize(texts)
		if err != nil {
			t.Fatal(err)
		}
		for j := range texts {
			if !slices.Equal(tok[j].Tokens, tenc[j].Tokens) || tok[j].Truncated != tenc[j].Truncated || tok[j].Embedding != nil {
				t.Errorf("%s: Tokenize(%q) = %+v, EncodeTexts gave %v %v", protocol, texts[j], tok[j], tenc[j].Tokens, tenc[j].Truncated)
			}
		}
		for _, mode := range []string{"encoded", "tokenised", "some of each"} {
			given := make([]TextEncoding, len(texts))
			for j := range texts {
				switch {
				case mode == "encoded":
					given[j] = tenc[j]
				case mode == "tokenised":
					given[j] = tok[j]
				case j%2 == 0:
					given[j] = TextEncoding{Text: texts[j], Embedding: tenc[j].Embedding}
				default:
					given[j] = TextEncoding{Text: texts[j]}
				}
			}
			got, err := m.RerankEncodedTexts(ctx, img, given)
			if err != nil {
				t.Fatal(err)
			}
			for j := range texts {
				if got[j] != want[j] {
					t.Errorf("%s, %s, text %d: %+v, RerankTexts %+v", protocol, mode, j, got[j], want[j])
				}
			}
		}
		if _, err := m.RerankEncodedTexts(ctx, img, []TextEncoding{{Text: "a dog", Embedding: make([]float32, 3)}}); err == nil {
			t.Error("no error for a text embedding of the wrong size")
		}
		if _, err := m.RerankEncodedTexts(ctx, img, []TextEncoding{{Text: "a dog", Tokens: []int32{101}}}); err == nil {
			t.Error("no error for one token")
		}
		if _, err := m.RerankEncodedTexts(ctx, img, []TextEncoding{{Text: "a dog", Tokens: []int32{101, 1 << 30, 102}}}); err == nil {
			t.Error("no error for a token outside the vocabulary")
		}
		if _, err := m.RerankEncodedTexts(ctx, img, nil); err == nil {
			t.Error("no error without candidate texts")
		}
		if _, err := m.Tokenize([]string{"a dog", "  "}); err == nil {
			t.Error("Tokenize accepted an empty text")
		}
	}
}

func TestRerankErrors(t *testing.T) {
	ctx := context.Background()
	m := loadTiny(t, "tiny-base")
	if _, err := m.RerankImages(ctx, "a dog", nil); err == nil {
		t.Error("no error without candidates")
	}
	if _, err := m.RerankImages(ctx, "a dog", []ImageCandidate{{Name: "x"}}); err == nil {
		t.Error("no error for a candidate without pixels or features")
	}
	if _, err := m.RerankImages(ctx, "a dog", []ImageCandidate{{Name: "x", Features: make([]float32, 5)}}); err == nil {
		t.Error("no error for features of the wrong size")
	}
	if _, err := m.RerankImages(ctx, "!!!", []ImageCandidate{{Name: "x", Features: make([]float32, 577*16)}}); err == nil {
		t.Error("no error for a text empty after cleaning")
	}
}

func TestSortScores(t *testing.T) {
	s := []RerankScore{
		{Index: 0, ITMLogits: [2]float32{0, 1}, ITMProb: 0.73, ITC: 0.1},
		{Index: 1, ITMLogits: [2]float32{-30, 30}, ITMProb: 1, ITC: -0.2},
		{Index: 2, ITMLogits: [2]float32{-20, 20}, ITMProb: 1, ITC: 0.3},
	}
	order := func(r Ranking) [3]int {
		c := append([]RerankScore(nil), s...)
		SortScores(c, r)
		return [3]int{c[0].Index, c[1].Index, c[2].Index}
	}
	if got := order(RankBLIP); got != [3]int{1, 2, 0} {
		t.Errorf("blip: %v", got)
	}
	if got := order(RankITM); got != [3]int{1, 2, 0} { // by margin, though P(match) ties at 1
		t.Errorf("itm: %v", got)
	}
	if got := order(RankITC); got != [3]int{2, 0, 1} {
		t.Errorf("itc: %v", got)
	}
	if _, err := ParseRanking("cosine"); err == nil {
		t.Error("no error for an unknown ranking")
	}
}
