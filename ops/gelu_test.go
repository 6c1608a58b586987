package ops

import (
	"math"
	"testing"
)

// TestErfTable measures the table erf against math.Erf on a dense grid and
// requires the largest difference to be a tenth of erfErrMax (the margin
// gelu relies on).
func TestErfTable(t *testing.T) {
	step := 1e-5
	if raceEnabled || testing.Short() {
		step = 1e-4
	}
	worst, at := 0.0, 0.0
	for z := 0.0; z < erfTableMax; z += step {
		if d := math.Abs(erfTable(z) - math.Erf(z)); d > worst {
			worst, at = d, z
		}
	}
	for i := range erfTableLen { // interval edges
		z := float64(i) / erfTableStep
		worst = max(worst, math.Abs(erfTable(z)-math.Erf(z)))
		if i > 0 {
			z = math.Nextafter(z, 0)
			worst = max(worst, math.Abs(erfTable(z)-math.Erf(z)))
		}
	}
	t.Logf("max |erfTable − math.Erf| = %.3g at z = %.5f", worst, at)
	if worst > erfErrMax/10 {
		t.Fatalf("table erf error %.3g exceeds erfErrMax/10 = %.3g", worst, erfErrMax/10)
	}
}

// TestGELUMatchesSpec: gelu equals geluSpec bit for bit, on a sweep of
// float32 bit patterns covering [-16, 16] (every 331st pattern, about 6.6
// million values; fewer under -short and -race), special values, and the
// values around every table interval edge. It also reports how often the
// fast path had to fall back to math.Erf.
func TestGELUMatchesSpec(t *testing.T) {
	stride := uint32(331)
	if raceEnabled || testing.Short() {
		stride = 33331
	}
	n, slow := 0, 0
	check := func(x float32) {
		n++
		v := float64(x)
		z := math.Abs(v * (1 / math.Sqrt2))
		if z < erfTableMax && z != 0 {
			g := 0.5*v + z*(math.Sqrt2/2)*erfTable(z)
			if d := z * geluSlack; float32(g-d) != float32(g+d) {
				slow++
			}
		} else if v <= 0 || v != v {
			slow++
		}
		if got, want := gelu(x), geluSpec(x); math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
			t.Fatalf("gelu(%v) = %v, geluSpec = %v", x, got, want)
		}
	}
	for _, sign := range []uint32{0, 1 << 31} {
		for b := uint32(0); b <= math.Float32bits(16); b += stride {
			check(math.Float32frombits(b | sign))
		}
	}
	for i := range erfTableLen + 1 {
		x := float32(float64(i) / erfTableStep * math.Sqrt2)
		for _, y := range []float32{x, math.Nextafter32(x, 0), math.Nextafter32(x, 100), -x} {
			check(y)
		}
	}
	for _, x := range []float32{0, float32(math.Copysign(0, -1)), 1e-45, -1e-45, 1e30, -1e30, 6.3, -6.3, 8.5, -8.5,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), math.MaxFloat32, -math.MaxFloat32} {
		check(x)
	}
	t.Logf("sweep: %d values, %d (%.4f%%) fell back to math.Erf", n, slow, 100*float64(slow)/float64(n))

	// Activations in the range of a ViT MLP's: the fast path must nearly
	// always hold (below about −4, GELU is so small that erf's error bound
	// spans several float32 ulps, and below −6.36 every value falls back).
	n, slow = 0, 0
	for _, x := range randSlice(3, 1<<18) {
		check(4 * x)
	}
	t.Logf("uniform [-4, 4]: %d values, %d (%.4f%%) fell back", n, slow, 100*float64(slow)/float64(n))
	if slow > n/100 {
		t.Errorf("fast path taken too rarely: %d of %d fell back", slow, n)
	}
}

// BenchmarkGELUScalar compares gelu with geluSpec on activations spread like
// a ViT MLP's (uniform in [-4, 4]: a third of them in math.Erf's slow tail).
func BenchmarkGELUScalar(b *testing.B) {
	xs := randSlice(1, 4096)
	for i := range xs {
		xs[i] *= 4
	}
	for _, f := range []struct {
		name string
		fn   func(float32) float32
	}{{"fast", gelu}, {"spec", geluSpec}} {
		b.Run(f.name, func(b *testing.B) {
			var s float32
			c0 := cpuSeconds()
			for b.Loop() {
				for _, x := range xs {
					s += f.fn(x)
				}
			}
			sinkGELU = s
			b.ReportMetric((cpuSeconds()-c0)/float64(b.N)/float64(len(xs))*1e9, "cpu-ns/elem")
		})
	}
}

var sinkGELU float32
