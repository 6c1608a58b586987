package eval

import (
	"fmt"
	"sort"
)

// Unscored is the score BLIP's evaluation gives every pair outside a row's
// top k.
const Unscored = -100

// Row is one row of a score matrix as BLIP's evaluation leaves it: the
// columns of the row's top k by ITC (Cols, ascending) with their scores
// (ITM match logit + ITC sim); every other column scores Unscored.
type Row struct {
	Cols   []int32
	Scores []float32
}

// Score returns the score of column j.
func (r Row) Score(j int) float32 {
	k := sort.Search(len(r.Cols), func(i int) bool { return int(r.Cols[i]) >= j })
	if k < len(r.Cols) && int(r.Cols[k]) == j {
		return r.Scores[k]
	}
	return Unscored
}

// Rank returns the 0-based position of column j when the n columns of the
// row are sorted by score, highest first, as itm_eval's
// np.argsort(score)[::-1] does. Equal scores are ordered with the higher
// column first (a stable ascending sort, reversed). BLIP leaves the order
// of ties to numpy's default (unstable) sort; ties only occur among the
// Unscored cells, whose ranks are all ≥ k, or between exactly equal
// float32 scores.
func (r Row) Rank(j, n int) int {
	s := r.Score(j)
	rank := 0
	scoredAfter := 0 // top-k columns > j
	for i, c := range r.Cols {
		v := r.Scores[i]
		switch {
		case v > s:
			rank++
		case v == s && int(c) > j:
			rank++
		}
		if int(c) > j {
			scoredAfter++
		}
	}
	switch {
	case s < Unscored: // every unscored column is above j
		rank += n - len(r.Cols)
	case s == Unscored: // the unscored columns after j tie with it and come first
		rank += n - 1 - j - scoredAfter
	}
	return rank
}

// Recall holds itm_eval's figures, in percent, under BLIP's key names.
type Recall struct {
	TxtR1    float64 `json:"txt_r1"`
	TxtR5    float64 `json:"txt_r5"`
	TxtR10   float64 `json:"txt_r10"`
	TxtRMean float64 `json:"txt_r_mean"`
	ImgR1    float64 `json:"img_r1"`
	ImgR5    float64 `json:"img_r5"`
	ImgR10   float64 `json:"img_r10"`
	ImgRMean float64 `json:"img_r_mean"`
	RMean    float64 `json:"r_mean"`
}

// ComputeRecall computes itm_eval's figures from the image→text rows
// (one per image, over len(textImage) texts), the text→image rows (one per
// text, over len(imageTexts) images), img2txt and txt2img. An image's
// image→text rank is the best rank among its captions; a text's
// text→image rank is the rank of its image. R@K is the percentage of ranks
// below K, computed as 100.0 * count / total in float64 as numpy does.
func ComputeRecall(i2t, t2i []Row, imageTexts [][]int, textImage []int) (Recall, error) {
	nImg, nTxt := len(imageTexts), len(textImage)
	if len(i2t) != nImg || len(t2i) != nTxt || nImg == 0 || nTxt == 0 {
		return Recall{}, fmt.Errorf("eval: %d image→text rows and %d text→image rows for %d images and %d texts",
			len(i2t), len(t2i), nImg, nTxt)
	}
	var r Recall
	var c1, c5, c10 int
	count := func(rank int) {
		if rank < 1 {
			c1++
		}
		if rank < 5 {
			c5++
		}
		if rank < 10 {
			c10++
		}
	}
	pct := func(c, n int) float64 { return 100.0 * float64(c) / float64(n) }
	for i, texts := range imageTexts {
		best := int(^uint(0) >> 1)
		for _, t := range texts {
			best = min(best, i2t[i].Rank(t, nTxt))
		}
		count(best)
	}
	r.TxtR1, r.TxtR5, r.TxtR10 = pct(c1, nImg), pct(c5, nImg), pct(c10, nImg)
	c1, c5, c10 = 0, 0, 0
	for t, img := range textImage {
		count(t2i[t].Rank(img, nImg))
	}
	r.ImgR1, r.ImgR5, r.ImgR10 = pct(c1, nTxt), pct(c5, nTxt), pct(c10, nTxt)
	r.TxtRMean = (r.TxtR1 + r.TxtR5 + r.TxtR10) / 3
	r.ImgRMean = (r.ImgR1 + r.ImgR5 + r.ImgR10) / 3
	r.RMean = (r.TxtRMean + r.ImgRMean) / 2
	return r, nil
}

// Dense expands rows into a row-major [len(rows), n] matrix with Unscored
// outside each row's top k, as BLIP's evaluation returns it.
func Dense(rows []Row, n int) []float32 {
	out := make([]float32, len(rows)*n)
	for i := range out {
		out[i] = Unscored
	}
	for i, r := range rows {
		base := i * n
		for k, c := range r.Cols {
			out[base+int(c)] = r.Scores[k]
		}
	}
	return out
}
