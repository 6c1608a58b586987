package ops

import (
	"math"
	"testing"
)

// TestSoftmaxVectorMatchesGo: the AVX2 passes of softmaxRow give bitwise the
// Go result (the code is written for that; see softmax.go), on row lengths
// around the vector width, with and without a mask, including masked keys,
// huge logits and values that underflow the exponential.
func TestSoftmaxVectorMatchesGo(t *testing.T) {
	if !haveSoftmaxAsm {
		t.Skip("no vector softmax in this build or on this CPU")
	}
	for _, n := range []int{1, 7, 8, 9, 16, 35, 63, 64, 65, 577} {
		for _, masked := range []bool{false, true} {
			for _, spread := range []float32{1, 30, 1e4} {
				row := randSlice(uint64(n)*7+uint64(spread), n)
				for i := range row {
					row[i] *= spread
				}
				var mask []float32
				if masked {
					mask = randSlice(uint64(n), n)
					for i := range mask {
						if i%3 == 1 {
							mask[i] = -10000
						} else if i%5 == 2 {
							mask[i] = -math.MaxFloat32
						}
					}
				}
				a := append([]float32(nil), row...)
				b := append([]float32(nil), row...)
				softmaxRow(a, 0.125, mask, false)
				softmaxRow(b, 0.125, mask, true)
				for i := range a {
					if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
						t.Fatalf("n=%d masked=%v spread=%v: [%d] go %v, vector %v", n, masked, spread, i, a[i], b[i])
					}
				}
			}
		}
	}
}

// TestExpfVectorMatchesGo: the vector exponential inside softmaxExpSum
// equals expf bitwise over its whole range, including the clamps.
func TestExpfVectorMatchesGo(t *testing.T) {
	if !haveSoftmaxAsm {
		t.Skip("no vector softmax in this build or on this CPU")
	}
	var xs []float32
	for x := float32(-120); x <= 100; x += 0.00731 {
		xs = append(xs, x)
	}
	xs = append(xs, 0, float32(math.Copysign(0, -1)), expLo, expHi, math.Nextafter32(expLo, -200), math.Nextafter32(expHi, 200),
		float32(math.Inf(-1)), float32(math.Inf(1)), -1e30, 1e30, 1e-40)
	for len(xs)%8 != 0 {
		xs = append(xs, -1)
	}
	got := append([]float32(nil), xs...)
	var lanes [8]float64
	softmaxExpSum(got, 0, &lanes)
	var want [8]float64
	for i, x := range xs {
		e := expf(x)
		if math.Float32bits(e) != math.Float32bits(got[i]) {
			t.Fatalf("exp(%v): go %v, vector %v", x, e, got[i])
		}
		want[i%8] += float64(e)
	}
	if want != lanes {
		t.Fatalf("lane sums %v, want %v", lanes, want)
	}
}
