package blipcuda

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/blipcuda/blipcuda/ops"
)

// EmbeddingMatrix is a collection of N unit-norm ITC embeddings to search,
// stored row-major: Half always (float16 bits, the fast pass: half the
// memory traffic of float32) and Full optionally (float32, the same rows
// exactly). Both may be memory-mapped files.
type EmbeddingMatrix struct {
	// Dim is the embedding size (256 for the BLIP ITM models).
	Dim int
	// Half holds N×Dim float16 values (see ops.Float32ToFloat16).
	Half []uint16
	// Full holds the same N×Dim values in float32, or is nil. With it,
	// TopK's scores and ranking are exact (see TopK).
	Full []float32
	// Skip reports rows that are not part of the collection (free slots of
	// an index); nil keeps every row. It is called only for rows that
	// could enter a result.
	Skip func(row int) bool
}

// Rows returns N, the number of rows.
func (e EmbeddingMatrix) Rows() int {
	if e.Dim <= 0 {
		return 0
	}
	return len(e.Half) / e.Dim
}

// Hit is one row found by TopK with its ITC score (the cosine of the query
// and the row).
type Hit struct {
	Row int
	ITC float32
}

// halfErrorBound bounds |q·v − q·half(v)| for a unit query q and unit row
// v: rounding to float16 moves each component by at most 2⁻¹¹ of itself
// (or 2⁻²⁵ below the normal range), so ‖v − half(v)‖ ≤ 2⁻¹¹ + 16·2⁻²⁵ ≈
// 4.9e-4, and float32 accumulation over 256 terms adds at most ~1.6e-5.
// The bound used is twice that, scaled by ‖q‖.
const halfErrorBound = 1e-3

// searchBlock is how many rows one worker scores at a time (128 KiB of
// float16 for 256-d rows: the block stays in cache while every query of a
// group is scored against it).
const searchBlock = 256

// queryGroup bounds how many queries share a pass over the matrix (their
// score vectors take 4·N bytes each).
const queryGroup = 16

// TopK returns, for each query (a unit-norm ITC embedding of Dim values),
// the k rows of e with the highest ITC score, best first, ties broken by
// the lower row; fewer when the collection holds fewer rows (then all of
// them). The scan is one pass over the float16 matrix for up to 16 queries
// at once, on every core (ops.DotRowsF16: AVX2/F16C where the CPU has it).
//
// With e.Full, the result is exact: the float16 scores are within ε =
// 1e-3·‖q‖ of the true ones, so every row of the true top k scores at
// least (k-th best float16 score) − 2ε; those rows are rescored in float32,
// summed in order (the sum ITCRow and Match compute), and the best k
// returned. Without e.Full the scores and ranking are the float16 ones.
func TopK(ctx context.Context, e EmbeddingMatrix, queries [][]float32, k int) ([][]Hit, error) {
	if e.Dim <= 0 || len(e.Half)%e.Dim != 0 {
		return nil, fmt.Errorf("blipcuda: embedding matrix of %d values is not a whole number of %d-d rows", len(e.Half), e.Dim)
	}
	n := e.Rows()
	if e.Full != nil && len(e.Full) != len(e.Half) {
		return nil, fmt.Errorf("blipcuda: embedding matrix: %d float32 values for %d float16", len(e.Full), len(e.Half))
	}
	if k <= 0 {
		return nil, fmt.Errorf("blipcuda: top-k with k = %d", k)
	}
	for i, q := range queries {
		if len(q) != e.Dim {
			return nil, fmt.Errorf("blipcuda: query %d has %d values; the collection's embeddings have %d", i, len(q), e.Dim)
		}
	}
	out := make([][]Hit, len(queries))
	if n == 0 {
		for i := range out {
			out[i] = []Hit{}
		}
		return out, ctx.Err()
	}
	scores := make([][]float32, min(queryGroup, len(queries)))
	for i := range scores {
		scores[i] = make([]float32, n)
	}
	for g := 0; g < len(queries); g += queryGroup {
		group := queries[g:min(g+queryGroup, len(queries))]
		if err := scoreHalf(ctx, e, group, scores[:len(group)]); err != nil {
			return nil, err
		}
		for i, q := range group {
			out[g+i] = selectTop(e, q, scores[i], k)
		}
	}
	return out, nil
}

// scoreHalf fills scores[i][r] with queries[i] · half(row r), the rows
// shared out by blocks among GOMAXPROCS workers.
func scoreHalf(ctx context.Context, e EmbeddingMatrix, queries [][]float32, scores [][]float32) error {
	n, d := e.Rows(), e.Dim
	blocks := (n + searchBlock - 1) / searchBlock
	workers := min(runtime.GOMAXPROCS(0), blocks)
	var next atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				b := int(next.Add(1) - 1)
				if b >= blocks {
					return
				}
				if b%64 == 0 && ctx.Err() != nil {
					stop.Store(true)
					return
				}
				r0, r1 := b*searchBlock, min((b+1)*searchBlock, n)
				rows := e.Half[r0*d : r1*d]
				for i, q := range queries {
					ops.DotRowsF16(scores[i][r0:r1], q, rows)
				}
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// selectTop picks the k best rows of one query from its float16 scores,
// rescoring exactly with e.Full when it is there (see TopK).
func selectTop(e EmbeddingMatrix, q, scores []float32, k int) []Hit {
	h := &hitHeap{}
	for r, s := range scores {
		if h.Len() == k && !better(Hit{r, s}, (*h)[0]) {
			continue
		}
		if e.Skip != nil && e.Skip(r) {
			continue
		}
		if h.Len() < k {
			heap.Push(h, Hit{r, s})
		} else {
			(*h)[0] = Hit{r, s}
			heap.Fix(h, 0)
		}
	}
	var hits []Hit
	if e.Full == nil || h.Len() < k {
		hits = append(hits, (*h)...)
		if e.Full != nil {
			for i := range hits {
				hits[i].ITC = dotExact(q, e.Full[hits[i].Row*e.Dim:(hits[i].Row+1)*e.Dim])
			}
		}
	} else {
		var norm float64
		for _, v := range q {
			norm += float64(v) * float64(v)
		}
		floor := (*h)[0].ITC - float32(2*halfErrorBound*math.Sqrt(norm))
		for r, s := range scores {
			if s >= floor && (e.Skip == nil || !e.Skip(r)) {
				hits = append(hits, Hit{r, dotExact(q, e.Full[r*e.Dim:(r+1)*e.Dim])})
			}
		}
	}
	sort.Slice(hits, func(a, b int) bool { return better(hits[a], hits[b]) })
	if len(hits) > k {
		hits = hits[:k:k]
	}
	return hits
}

// dotExact is the float32 dot product summed in order, as ITCRow does.
func dotExact(a, b []float32) float32 {
	var s float32
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

// better orders hits best first: higher score, then lower row.
func better(a, b Hit) bool {
	if a.ITC != b.ITC {
		return a.ITC > b.ITC
	}
	return a.Row < b.Row
}

// hitHeap is a min-heap of hits under better: the worst kept hit on top.
type hitHeap []Hit

func (h hitHeap) Len() int           { return len(h) }
func (h hitHeap) Less(i, j int) bool { return better(h[j], h[i]) }
func (h hitHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *hitHeap) Push(x any)        { *h = append(*h, x.(Hit)) }
func (h *hitHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// EncodeHalf converts float32 values (embeddings, features) to float16
// bits, rounding to nearest, for storage in an EmbeddingMatrix.
func EncodeHalf(dst []uint16, src []float32) {
	if len(dst) < len(src) {
		panic(errors.New("blipcuda: EncodeHalf: destination too short"))
	}
	ops.EncodeFloat16(dst, src)
}

// DecodeHalf converts float16 bits back to float32 (exact).
func DecodeHalf(dst []float32, src []uint16) {
	if len(dst) < len(src) {
		panic(errors.New("blipcuda: DecodeHalf: destination too short"))
	}
	ops.DecodeFloat16(dst, src)
}
