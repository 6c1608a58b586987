package ops

import (
	"math"
	"math/rand"
	"testing"
)

// TestDotRowsF16 checks the kernel (assembly where it runs) against a
// float64 sum of the same converted values, for dimensions with and without
// the assembly's multiple of 16, including subnormal, zero and large halves.
func TestDotRowsF16(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, dim := range []int{1, 3, 16, 17, 32, 256, 768} {
		for _, n := range []int{1, 2, 7, 64} {
			q := make([]float32, dim)
			rows := make([]uint16, n*dim)
			for j := range q {
				q[j] = float32(rng.NormFloat64())
			}
			for i := range rows {
				v := float32(rng.NormFloat64())
				switch rng.Intn(10) {
				case 0:
					v *= 1e-6 // a subnormal half
				case 1:
					v = 0
				case 2:
					v *= 1000
				}
				rows[i] = Float32ToFloat16(v)
			}
			out := make([]float32, n)
			DotRowsF16(out, q, rows)
			ref := make([]float32, n)
			dotRowsF16Go(ref, q, rows)
			for i := range out {
				var want, mag float64
				for j := 0; j < dim; j++ {
					p := float64(q[j]) * float64(Float16ToFloat32(rows[i*dim+j]))
					want += p
					mag += math.Abs(p)
				}
				tol := 1e-6*mag + 1e-30
				if math.Abs(float64(out[i])-want) > tol || math.Abs(float64(ref[i])-want) > tol {
					t.Fatalf("dim %d n %d row %d: got %g (portable %g), want %g ± %g", dim, n, i, out[i], ref[i], want, tol)
				}
			}
		}
	}
}

func TestDotRowsF16Short(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a short matrix")
		}
	}()
	DotRowsF16(make([]float32, 2), make([]float32, 16), make([]uint16, 31))
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

func BenchmarkDotRowsF16(b *testing.B) {
	const n, dim = 4096, 256
	q := make([]float32, dim)
	rows := make([]uint16, n*dim)
	for i := range rows {
		rows[i] = Float32ToFloat16(float32(i%97) / 97)
	}
	out := make([]float32, n)
	b.SetBytes(int64(len(rows) * 2))
	for b.Loop() {
		DotRowsF16(out, q, rows)
	}
}
