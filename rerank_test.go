package blipcuda

import (
	"context"
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

// TestRerankTextCandidates: texts whose embeddings are given (all, or some)
// score exactly as RerankTexts scores them, with more texts than one batch
// (WithTextBatch(2)) so the image's shared cross keys serve several.
func TestRerankTextCandidates(t *testing.T) {
	ctx := context.Background()
	m := loadTiny(t, "tiny-base", WithTextBatch(2))
	ims := images(t, m, []string{"scene.png"})
	texts := []string{"a woman and her dog on a beach", "red and blue blocks", "waves!", "a dog", "two people talking on a bench"}
	enc, err := m.EncodeImages(ctx, ims, true)
	if err != nil {
		t.Fatal(err)
	}
	img := ImageCandidate{Name: ims[0].Name, Features: enc[0].Features, Embedding: enc[0].Embedding}
	want, err := m.RerankTexts(ctx, ImageCandidate{Name: ims[0].Name, Image: ims[0]}, texts)
	if err != nil {
		t.Fatal(err)
	}
	tenc, err := m.EncodeTexts(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}
	for _, some := range []bool{false, true} {
		cands := make([]TextCandidate, len(texts))
		for j := range texts {
			cands[j] = TextCandidate{Text: texts[j]}
			if !some || j%2 == 0 {
				cands[j].Embedding = tenc[j].Embedding
			}
		}
		got, err := m.RerankTextCandidates(ctx, img, cands)
		if err != nil {
			t.Fatal(err)
		}
		for j := range texts {
			if got[j] != want[j] {
				t.Errorf("some %v, text %d: %+v, RerankTexts %+v", some, j, got[j], want[j])
			}
		}
	}
	if _, err := m.RerankTextCandidates(ctx, img, []TextCandidate{{Text: "a dog", Embedding: make([]float32, 3)}}); err == nil {
		t.Error("no error for a text embedding of the wrong size")
	}
	if _, err := m.RerankTextCandidates(ctx, img, nil); err == nil {
		t.Error("no error without candidate texts")
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
