package eval

import (
	"context"
	"sort"

	"github.com/blipcuda/blipcuda"
)

// candidates are one row's top k by ITC: columns ascending, with their
// sims.
type candidates struct {
	cols []int32
	sims []float32
}

// topKChunk is how many queries go to one blipcuda.TopK call between
// progress reports.
const topKChunk = 512

// itcTopK is the ITC stage of one direction: for every query embedding,
// its k keys of highest sim (BLIP's sims.topk(k)), found by the library's
// exact top-k (the same search `blipcuda search` runs; ties to the lower
// key). The sims are float32 dot products summed in order, as the library's
// ITC scores are, so a pair's sim is the same in both directions. done is
// called with the number of queries finished since the last call.
func itcTopK(ctx context.Context, queries, keys [][]float32, k int, done func(int)) ([]candidates, error) {
	dim := len(keys[0])
	full := make([]float32, 0, len(keys)*dim)
	for _, key := range keys {
		full = append(full, key...)
	}
	quant, bounds := make([]int8, len(full)), make([]float32, 2*len(keys))
	blipcuda.QuantizeRows(quant, bounds, full, dim)
	m := blipcuda.EmbeddingMatrix{Dim: dim, Quant: quant, Bounds: bounds, Full: full}
	out := make([]candidates, 0, len(queries))
	for first := 0; first < len(queries); first += topKChunk {
		chunk := queries[first:min(first+topKChunk, len(queries))]
		hits, err := blipcuda.TopK(ctx, m, chunk, k)
		if err != nil {
			return nil, err
		}
		for _, hs := range hits {
			sort.Slice(hs, func(a, b int) bool { return hs[a].Row < hs[b].Row })
			c := candidates{cols: make([]int32, len(hs)), sims: make([]float32, len(hs))}
			for i, h := range hs {
				c.cols[i], c.sims[i] = int32(h.Row), h.ITC
			}
			out = append(out, c)
		}
		done(len(chunk))
	}
	return out, nil
}
