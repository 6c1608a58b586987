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
// stored row-major twice: quantised to int8 (the fast pass: a quarter of
// the memory traffic of float32) and, optionally, in float32 (exact).
// Both may be memory-mapped files. QuantizeRows makes Quant and Bounds.
type EmbeddingMatrix struct {
	// Dim is the embedding size (256 for the BLIP ITM models).
	Dim int
	// Quant holds N×Dim int8 values: row r is approximately
	// Bounds[2r]·Quant[r·Dim:(r+1)·Dim].
	Quant []int8
	// Bounds holds two values per row: its scale, and an upper bound on
	// the L2 norm of its quantisation error (‖row − scale·quant‖).
	Bounds []float32
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
	return len(e.Quant) / e.Dim
}

// QuantizeRows quantises rows (n×dim float32) into quant (n×dim int8) and
// bounds (2n: per row its scale max|v|/127 and the L2 norm of its
// rounding error, rounded up), for an EmbeddingMatrix.
func QuantizeRows(quant []int8, bounds []float32, rows []float32, dim int) {
	n := len(rows) / dim
	if dim <= 0 || len(rows)%dim != 0 || len(quant) < len(rows) || len(bounds) < 2*n {
		panic(errors.New("blipcuda: QuantizeRows: mismatched lengths"))
	}
	for r := 0; r < n; r++ {
		row := rows[r*dim : (r+1)*dim]
		var peak float64
		for _, v := range row {
			peak = max(peak, math.Abs(float64(v)))
		}
		scale := float32(peak / 127)
		var errSq float64
		for j, v := range row {
			var q float64
			if scale > 0 {
				q = math.Max(-127, math.Min(127, math.Round(float64(v)/float64(scale))))
			}
			quant[r*dim+j] = int8(q)
			d := float64(v) - float64(scale)*q
			errSq += d * d
		}
		bounds[2*r] = scale
		bounds[2*r+1] = math.Nextafter32(float32(math.Sqrt(errSq)*(1+1e-6)), float32(math.Inf(1)))
	}
}

// Hit is one row found by TopK with its ITC score (the cosine of the query
// and the row).
type Hit struct {
	Row int
	ITC float32
}

// accumulationSlack bounds, relative to ‖q‖, the float32 rounding of the
// quantised pass (Dim products summed in float32: Dim·2⁻²⁴ of Σ|qᵢ·vᵢ| ≤
// ‖q‖ for a unit row, about 1.5e-5 for 256 values) and of the exact one;
// twice that.
const accumulationSlack = 3e-5

// searchBlock is how many rows one worker scores at a time (64 KiB of int8
// for 256-d rows: the block stays in cache while every query of a group is
// scored against it).
const searchBlock = 256

// queryGroup bounds how many queries share a pass over the matrix (their
// score vectors take 4·N bytes each).
const queryGroup = 16

// TopK returns, for each query (a unit-norm ITC embedding of Dim values),
// the k rows of e with the highest ITC score, best first, ties broken by
// the lower row; fewer when the collection holds fewer rows (then all of
// them). The scan is one pass over the int8 matrix for up to 16 queries at
// once, on every core (ops.DotRowsInt8: AVX2/FMA where the CPU has it).
//
// With e.Full, the result is exact: each quantised score is within e_r =
// ‖q‖·(Bounds[2r+1] + 3e-5) of the true one, so every row of the true top
// k has an upper bound at least the k-th best lower bound; the rows that
// do are rescored in float32, summed in order (the sum ITCRow and Match
// compute), and the best k returned. Without e.Full the scores and
// ranking are the quantised ones.
func TopK(ctx context.Context, e EmbeddingMatrix, queries [][]float32, k int) ([][]Hit, error) {
	if e.Dim <= 0 || len(e.Quant)%e.Dim != 0 {
		return nil, fmt.Errorf("blipcuda: embedding matrix of %d values is not a whole number of %d-d rows", len(e.Quant), e.Dim)
	}
	n := e.Rows()
	if e.Full != nil && len(e.Full) != len(e.Quant) {
		return nil, fmt.Errorf("blipcuda: embedding matrix: %d float32 values for %d int8", len(e.Full), len(e.Quant))
	}
	if len(e.Bounds) != 2*n {
		return nil, fmt.Errorf("blipcuda: embedding matrix: %d bounds for %d rows (want 2 per row)", len(e.Bounds), n)
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
		if err := scoreQuant(ctx, e, group, scores[:len(group)]); err != nil {
			return nil, err
		}
		for i, q := range group {
			out[g+i] = selectTop(e, q, scores[i], k)
		}
	}
	return out, nil
}

// scoreQuant fills scores[i][r] with queries[i] · (scale·quant of row r),
// the rows shared out by blocks among GOMAXPROCS workers.
func scoreQuant(ctx context.Context, e EmbeddingMatrix, queries [][]float32, scores [][]float32) error {
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
				rows := e.Quant[r0*d : r1*d]
				for i, q := range queries {
					out := scores[i][r0:r1]
					ops.DotRowsInt8(out, q, rows)
					for r := range out {
						out[r] *= e.Bounds[2*(r0+r)]
					}
				}
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// selectTop picks the k best rows of one query from its quantised scores,
// rescoring exactly with e.Full when it is there (see TopK).
func selectTop(e EmbeddingMatrix, q, scores []float32, k int) []Hit {
	var norm float64
	for _, v := range q {
		norm += float64(v) * float64(v)
	}
	nq, slack := float32(math.Sqrt(norm)), float32(math.Sqrt(norm)*accumulationSlack)
	// The k best by the quantised score (without Full) or by its lower
	// bound, score − margin (with Full). A row whose score is below the
	// worst kept bound cannot enter: its lower bound is lower still.
	h := &hitHeap{}
	for r, s := range scores {
		if h.Len() == k && s < (*h)[0].ITC {
			continue
		}
		if e.Full != nil {
			s -= nq*e.Bounds[2*r+1] + slack
		}
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
	switch {
	case e.Full == nil:
		hits = append(hits, (*h)...)
	case h.Len() < k: // the whole collection
		for _, hit := range *h {
			hits = append(hits, Hit{hit.Row, dotExact(q, e.Full[hit.Row*e.Dim:(hit.Row+1)*e.Dim])})
		}
	default:
		floor := (*h)[0].ITC
		for r, s := range scores {
			if s+nq*e.Bounds[2*r+1]+slack >= floor && (e.Skip == nil || !e.Skip(r)) {
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

// EncodeHalf converts float32 values (raw image features) to float16 bits,
// rounding to nearest, for storage.
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
