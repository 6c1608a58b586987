package ops

import (
	"math"
	"math/rand"
	"testing"
)

// TestDotRowsInt8 checks the kernel (assembly where it runs) and the
// portable loop against a float64 sum, for dimensions with and without the
// assembly's multiple of 16 and the extreme values -128 and 127.
func TestDotRowsInt8(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, dim := range []int{1, 3, 16, 17, 48, 256, 768} {
		for _, n := range []int{1, 2, 7, 64} {
			q := make([]float32, dim)
			rows := make([]int8, n*dim)
			for j := range q {
				q[j] = float32(rng.NormFloat64())
			}
			for i := range rows {
				rows[i] = int8(rng.Intn(256) - 128)
			}
			rows[0], rows[len(rows)-1] = -128, 127
			out, ref := make([]float32, n), make([]float32, n)
			DotRowsInt8(out, q, rows)
			dotRowsInt8Go(ref, q, rows)
			for i := range out {
				var want, mag float64
				for j := 0; j < dim; j++ {
					p := float64(q[j]) * float64(rows[i*dim+j])
					want += p
					mag += math.Abs(p)
				}
				tol := 1e-6 * mag
				if math.Abs(float64(out[i])-want) > tol || math.Abs(float64(ref[i])-want) > tol {
					t.Fatalf("dim %d n %d row %d: got %g (portable %g), want %g ± %g", dim, n, i, out[i], ref[i], want, tol)
				}
			}
		}
	}
}

func TestDotRowsInt8Short(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a short matrix")
		}
	}()
	DotRowsInt8(make([]float32, 2), make([]float32, 16), make([]int8, 31))
}

func TestEncodeDecodeFloat16(t *testing.T) {
	src := []float32{0, 1, -2.5, 65504, 1e-7, float32(math.Inf(1))}
	h := make([]uint16, len(src))
	EncodeFloat16(h, src)
	back := make([]float32, len(src))
	DecodeFloat16(back, h)
	for i, v := range src {
		if back[i] != F16.Round(v) {
			t.Errorf("%g: round trip %g, want %g", v, back[i], F16.Round(v))
		}
	}
}

// BenchmarkDotRowsInt8: 4096 rows of 256 int8 values (1 MiB, in cache).
func BenchmarkDotRowsInt8(b *testing.B) {
	const n, dim = 4096, 256
	q := make([]float32, dim)
	rows := make([]int8, n*dim)
	for i := range rows {
		rows[i] = int8(i%255 - 127)
		q[i%dim] = float32(i%97) / 97
	}
	out := make([]float32, n)
	b.SetBytes(int64(len(rows)))
	c0 := cpuSeconds()
	for b.Loop() {
		DotRowsInt8(out, q, rows)
	}
	b.ReportMetric((cpuSeconds()-c0)*1e9/float64(b.N), "cpu-ns/op")
}
