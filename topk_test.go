package blipcuda

import (
	"context"
	"math"
	"math/rand"
	"slices"
	"sort"
	"testing"
)

// quantized returns rows as an EmbeddingMatrix with Full.
func quantized(full []float32, dim int) EmbeddingMatrix {
	e := EmbeddingMatrix{Dim: dim, Quant: make([]int8, len(full)), Bounds: make([]float32, 2*len(full)/dim), Full: full}
	QuantizeRows(e.Quant, e.Bounds, full, dim)
	return e
}

// unitRows returns n random unit vectors of dim values, with some rows
// duplicated (exact ties) and some near-duplicates (closer than float16
// resolution), which is where a float16-only ranking would go wrong.
func unitRows(rng *rand.Rand, n, dim int) []float32 {
	out := make([]float32, n*dim)
	for i := 0; i < n; i++ {
		row := out[i*dim : (i+1)*dim]
		switch {
		case i > 0 && i%17 == 0:
			copy(row, out[(i-1)*dim:i*dim])
			continue
		case i > 0 && i%13 == 0:
			copy(row, out[(i-1)*dim:i*dim])
			row[i%dim] += 1e-4
		default:
			for j := range row {
				row[j] = float32(rng.NormFloat64())
			}
		}
		var s float64
		for _, v := range row {
			s += float64(v) * float64(v)
		}
		for j := range row {
			row[j] = float32(float64(row[j]) / math.Sqrt(s))
		}
	}
	return out
}

// TestTopKExact checks TopK with a float32 copy against a brute-force
// ranking in float32: same rows, same scores, same order, for k below,
// at and above the collection's size, with skipped rows.
func TestTopKExact(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	const n, dim = 3000, 256
	full := unitRows(rng, n, dim)
	e := quantized(full, dim)
	skip := func(r int) bool { return r%11 == 5 }
	e.Skip = skip
	var queries [][]float32
	for q := 0; q < 20; q++ {
		v := unitRows(rng, 1, dim)
		if q%5 == 0 { // a query equal to a row: its near-duplicates tie within float16
			v = append([]float32(nil), full[(q*7+12)*dim:(q*7+13)*dim]...)
		}
		queries = append(queries, v)
	}
	for _, k := range []int{1, 10, 128, n - n/11, n + 5} {
		got, err := TopK(context.Background(), e, queries, k)
		if err != nil {
			t.Fatal(err)
		}
		for qi, q := range queries {
			var want []Hit
			for r := 0; r < n; r++ {
				if !skip(r) {
					want = append(want, Hit{r, dotExact(q, full[r*dim:(r+1)*dim])})
				}
			}
			sort.Slice(want, func(a, b int) bool { return better(want[a], want[b]) })
			want = want[:min(k, len(want))]
			if !slices.Equal(got[qi], want) {
				t.Fatalf("k=%d query %d: got %v…, want %v…", k, qi, got[qi][:min(5, len(got[qi]))], want[:min(5, len(want))])
			}
		}
	}
}

// TestTopKQuantOnly checks the path without float32: scores within their
// bounds of the exact ones, and the top k near the true top k.
func TestTopKQuantOnly(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	const n, dim = 1000, 48 // not a multiple of 16: the portable loop
	full := unitRows(rng, n, dim)
	e := quantized(full, dim)
	e.Full = nil
	q := unitRows(rng, 1, dim)
	got, err := TopK(context.Background(), e, [][]float32{q}, 50)
	if err != nil {
		t.Fatal(err)
	}
	exact := make([]float32, n)
	for r := range exact {
		exact[r] = dotExact(q, full[r*dim:(r+1)*dim])
	}
	sorted := slices.Clone(exact)
	slices.Sort(sorted)
	kth := sorted[n-50]
	var worst float32
	for r := 0; r < n; r++ {
		worst = max(worst, e.Bounds[2*r+1]+accumulationSlack)
	}
	for _, h := range got[0] {
		if d := float32(math.Abs(float64(h.ITC - exact[h.Row]))); d > e.Bounds[2*h.Row+1]+accumulationSlack {
			t.Errorf("row %d: quantised score %g, exact %g, beyond its bound", h.Row, h.ITC, exact[h.Row])
		}
		if exact[h.Row] < kth-2*worst {
			t.Errorf("row %d (exact %g) is far below the true 50th score %g", h.Row, exact[h.Row], kth)
		}
	}
}

// TestQuantizeRows checks the stored bound against the actual error, for
// ordinary, zero and extreme rows.
func TestQuantizeRows(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	rows := unitRows(rng, 50, 256)
	clear(rows[256:512])             // a zero row
	rows[512+3], rows[512+4] = 1, -1 // a row of two peaks
	e := quantized(rows, 256)
	for r := 0; r < 50; r++ {
		var errSq float64
		for j := 0; j < 256; j++ {
			d := float64(rows[r*256+j]) - float64(e.Bounds[2*r])*float64(e.Quant[r*256+j])
			errSq += d * d
		}
		if math.Sqrt(errSq) > float64(e.Bounds[2*r+1]) {
			t.Errorf("row %d: error %g above its bound %g", r, math.Sqrt(errSq), e.Bounds[2*r+1])
		}
		if r != 2 && e.Bounds[2*r+1] > 0.02 { // row 2 has a peak of 1: a coarse scale
			t.Errorf("row %d: error bound %g is loose", r, e.Bounds[2*r+1])
		}
	}
	if e.Bounds[2] != 0 || e.Bounds[3] > 1e-44 {
		t.Errorf("zero row: bounds %v", e.Bounds[2:4])
	}
}

func TestTopKErrors(t *testing.T) {
	ctx := context.Background()
	e := EmbeddingMatrix{Dim: 4, Quant: make([]int8, 8), Bounds: make([]float32, 4)}
	if _, err := TopK(ctx, e, [][]float32{{1, 0, 0}}, 1); err == nil {
		t.Error("no error for a query of the wrong size")
	}
	if _, err := TopK(ctx, e, [][]float32{{1, 0, 0, 0}}, 0); err == nil {
		t.Error("no error for k = 0")
	}
	if _, err := TopK(ctx, EmbeddingMatrix{Dim: 4, Quant: make([]int8, 7)}, nil, 1); err == nil {
		t.Error("no error for a ragged matrix")
	}
	if _, err := TopK(ctx, EmbeddingMatrix{Dim: 4, Quant: make([]int8, 8), Bounds: make([]float32, 2)}, nil, 1); err == nil {
		t.Error("no error for missing bounds")
	}
	got, err := TopK(ctx, EmbeddingMatrix{Dim: 4, Bounds: []float32{}}, [][]float32{{1, 0, 0, 0}}, 3)
	if err != nil || len(got[0]) != 0 {
		t.Errorf("empty collection: %v, %v", got, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	big := EmbeddingMatrix{Dim: 16, Quant: make([]int8, 16*100000), Bounds: make([]float32, 2*100000)}
	if _, err := TopK(cctx, big, [][]float32{make([]float32, 16)}, 3); err == nil {
		t.Error("no error from a cancelled context")
	}
}
