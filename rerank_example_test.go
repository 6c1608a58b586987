package blipcuda_test

import (
	"context"
	"fmt"
	"log"

	"github.com/blipcuda/blipcuda"
)

// Retrieval as BLIP evaluates it: ITC top-k over every image's embedding,
// then the ITM head re-ranks the k candidates, scored by the ITM match
// logit plus the ITC cosine. (The tiny random test checkpoint: its ranking
// means nothing.)
func ExampleModel_RerankImages() {
	ctx := context.Background()
	m, err := blipcuda.Load(ctx, "testdata/models/tiny-base")
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	var ims []*blipcuda.Image
	for _, p := range []string{"blocks.png", "scene.png", "waves_rgba.png"} {
		im, err := m.LoadImage("testdata/models/images/" + p)
		if err != nil {
			log.Fatal(err)
		}
		ims = append(ims, im)
	}
	enc, err := m.EncodeImages(ctx, ims, true) // embeddings and features, stored once
	if err != nil {
		log.Fatal(err)
	}
	coll := blipcuda.EmbeddingMatrix{Dim: len(enc[0].Embedding)}
	for _, e := range enc {
		coll.Full = append(coll.Full, e.Embedding...)
	}
	coll.Quant = make([]int8, len(coll.Full))
	coll.Bounds = make([]float32, 2*len(enc))
	blipcuda.QuantizeRows(coll.Quant, coll.Bounds, coll.Full, coll.Dim)

	query := "a woman and her dog on a beach"
	q, err := m.EncodeTexts(ctx, []string{query})
	if err != nil {
		log.Fatal(err)
	}
	hits, err := blipcuda.TopK(ctx, coll, [][]float32{q[0].Embedding}, 2) // k = 2
	if err != nil {
		log.Fatal(err)
	}
	var cands []blipcuda.ImageCandidate
	for _, h := range hits[0] {
		cands = append(cands, blipcuda.ImageCandidate{Name: ims[h.Row].Name, Features: enc[h.Row].Features, Embedding: enc[h.Row].Embedding})
	}
	scores, err := m.RerankImages(ctx, query, cands)
	if err != nil {
		log.Fatal(err)
	}
	blipcuda.SortScores(scores, blipcuda.RankBLIP)
	for _, s := range scores {
		fmt.Printf("%-40s score=%+.4f P(match)=%.4f ITC=%+.4f\n", s.Name, s.BLIP(), s.ITMProb, s.ITC)
	}
	// Output:
	// testdata/models/images/blocks.png        score=+0.2563 P(match)=0.0475 ITC=+0.0044
	// testdata/models/images/scene.png         score=+0.2235 P(match)=0.0849 ITC=-0.0003
}
