package ops

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// randSlice returns n values uniform in [-1, 1) from a fixed seed.
func randSlice(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	s := make([]float32, n)
	for i := range s {
		s[i] = 2*r.Float32() - 1
	}
	return s
}

// naiveGemm is the float64 reference for gemmArgs: it returns C[i, j] and
// the magnitude Σ_p |A[i,p]·op(B)[p,j]| (for the error bound), ignoring bias
// and activation.
func naiveGemm(g *gemmArgs) (c, mag []float64) {
	c = make([]float64, g.m*g.n)
	mag = make([]float64, g.m*g.n)
	for i := range g.m {
		for j := range g.n {
			var s, a float64
			for p := range g.k {
				x := float64(g.a[i*g.lda+p])
				var y float64
				if g.bT {
					y = float64(g.b[j*g.ldb+p])
				} else {
					y = float64(g.b[p*g.ldb+j])
				}
				s += x * y
				a += math.Abs(x * y)
			}
			c[i*g.n+j], mag[i*g.n+j] = s, a
		}
	}
	return c, mag
}

// gemmBound is the error allowed for one element of C. The float32 sum runs
// sequentially over at most gemmKC products inside a K block (one rounding
// per fused step), then adds ceil(K/gemmKC) block sums; each rounding costs
// at most u = 2⁻²⁴ relative to the running magnitude, so the classic bound
// |err| ≤ (steps)·u·Σ|a·b| holds with steps = min(K, gemmKC) + ceil(K/gemmKC)
// (+1 for the bias add). Observed errors are far below this bound, which is
// rigorous rather than tight, so a failure means a wrong element, not noise.
func gemmBound(k int, mag float64) float64 {
	steps := min(k, gemmKC) + (k+gemmKC-1)/gemmKC + 1
	return float64(steps)*0x1p-24*mag + 1e-30
}

// gemmCase builds a gemmArgs of the given size with padded leading dimensions
// (ld = width + pad) so the strided paths are exercised.
func gemmCase(m, n, k, pad int, bT bool, seed uint64) *gemmArgs {
	g := &gemmArgs{m: m, n: n, k: k, lda: k + pad, ldc: n + pad, bT: bT}
	g.a = randSlice(seed, max(m*g.lda, 1))
	if bT {
		g.ldb = k + pad
		g.b = randSlice(seed+1, max(n*g.ldb, 1))
	} else {
		g.ldb = n + pad
		g.b = randSlice(seed+1, max(k*g.ldb, 1))
	}
	g.c = make([]float32, max(m*g.ldc, 1))
	for i := range g.c {
		g.c[i] = float32(math.NaN()) // must be overwritten (or left alone in padding)
	}
	return g
}

// checkGemm compares g.c with the float64 reference and checks that the
// padding columns of C were not written.
func checkGemm(t *testing.T, name string, g *gemmArgs) {
	t.Helper()
	want, mag := naiveGemm(g)
	bad := 0
	for i := range g.m {
		for j := range g.ldc {
			got := g.c[i*g.ldc+j]
			if j >= g.n {
				if !math.IsNaN(float64(got)) {
					t.Fatalf("%s: padding C[%d,%d] written: %v", name, i, j, got)
				}
				continue
			}
			w := want[i*g.n+j]
			if d := math.Abs(float64(got) - w); !(d <= gemmBound(g.k, mag[i*g.n+j])) {
				if bad < 5 {
					t.Errorf("%s: C[%d,%d] = %v, want %v (|err| %.3g > bound %.3g)", name, i, j, got, w, d, gemmBound(g.k, mag[i*g.n+j]))
				}
				bad++
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%s: %d bad elements", name, bad)
	}
}

// kernels lists the micro-kernels this build can run, by name.
func kernels() map[string]kernelFunc {
	ks := map[string]kernelFunc{"go": kernelGo}
	if k := asmKernel(); k != nil {
		ks["asm"] = k
	}
	return ks
}

// TestGemmShapes checks the blocked multiply against the float64 reference on
// degenerate, odd, tile-edge and block-edge sizes, both B layouts, padded
// leading dimensions, every kernel and one and three workers.
func TestGemmShapes(t *testing.T) {
	shapes := [][3]int{ // m, n, k
		{1, 1, 1}, {1, 1, 7}, {1, 33, 5}, {1, 300, 64}, {5, 1, 3},
		{6, 16, 1}, {6, 16, 8}, {7, 17, 9}, {5, 15, 3}, {12, 32, 4},
		{7, 33, 65}, {13, 47, 255}, {13, 47, 256}, {13, 47, 257}, {11, 21, 513},
		{35, 40, 64}, {37, 64, 77}, {97, 257, 31}, {200, 90, 300},
	}
	if raceEnabled || testing.Short() {
		shapes = shapes[:len(shapes)-3]
	}
	ctx := context.Background()
	for kn, kern := range kernels() {
		for _, workers := range []int{1, 3} {
			c := NewCPU(WithWorkers(workers))
			for si, s := range shapes {
				for _, bT := range []bool{true, false} {
					for _, pad := range []int{0, 3} {
						name := fmt.Sprintf("kernel=%s/workers=%d/m=%d,n=%d,k=%d,bT=%v,pad=%d", kn, workers, s[0], s[1], s[2], bT, pad)
						g := gemmCase(s[0], s[1], s[2], pad, bT, uint64(si))
						if err := gemm(ctx, c.parallel, workers, kern, g, nil); err != nil {
							t.Fatal(name, err)
						}
						checkGemm(t, name, g)
					}
				}
			}
		}
	}
}

// TestGemmRealShape checks one BLIP shape (577 tokens, 768 → 768) on fewer
// rows, so the test stays fast while K spans three K blocks.
func TestGemmRealShape(t *testing.T) {
	m, n, k := 61, 768, 768
	if testing.Short() || raceEnabled {
		m = 7
	}
	for kn, kern := range kernels() {
		g := gemmCase(m, n, k, 0, true, 42)
		c := NewCPU(WithWorkers(2))
		if err := gemm(context.Background(), c.parallel, 2, kern, g, nil); err != nil {
			t.Fatal(err)
		}
		checkGemm(t, "kernel="+kn, g)
	}
}

// TestGemmKZero checks that K = 0 gives C = bias (a sum over nothing).
func TestGemmKZero(t *testing.T) {
	g := gemmCase(3, 5, 0, 0, true, 1)
	g.bias = []float32{1, 2, 3, 4, 5}
	if err := gemm(context.Background(), serial, 1, kernelGo, g, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		for j := range 5 {
			if got := g.c[i*5+j]; got != g.bias[j] {
				t.Fatalf("C[%d,%d] = %v, want %v", i, j, got, g.bias[j])
			}
		}
	}
}

// TestGemmDeterministic checks that the result does not depend on the number
// of workers (and so on the task split) and repeats bitwise.
func TestGemmDeterministic(t *testing.T) {
	ctx := context.Background()
	var ref []float32
	for _, workers := range []int{1, 2, 3, 7} {
		for range 2 {
			c := NewCPU(WithWorkers(workers))
			g := gemmCase(67, 130, 600, 0, true, 9)
			if err := gemm(ctx, c.parallel, workers, c.kern, g, nil); err != nil {
				t.Fatal(err)
			}
			if ref == nil {
				ref = g.c
				continue
			}
			for i := range ref {
				if math.Float32bits(ref[i]) != math.Float32bits(g.c[i]) {
					t.Fatalf("workers=%d: C[%d] = %v, first run %v", workers, i, g.c[i], ref[i])
				}
			}
		}
	}
}

// TestKernelAsmMatchesGo runs the assembly micro-kernel and the Go one on the
// same operands, A both row-major (strided) and as a packed panel. They
// differ only by rounding (the assembly fuses the multiply-add), so the
// tolerance is twice the bound of one K block's sum.
func TestKernelAsmMatchesGo(t *testing.T) {
	asm := asmKernel()
	if asm == nil {
		t.Skip("no assembly kernel in this build or on this CPU")
	}
	for _, k := range []int{1, 2, 3, 4, 5, 7, 8, 64, 255, 256} {
		for _, layout := range []struct{ rs, ks int }{{1, gemmMR}, {k, 1}, {k + 5, 1}} {
			a := randSlice(uint64(k), (gemmMR-1)*layout.rs+(k-1)*layout.ks+1)
			b := randSlice(uint64(k)+100, k*gemmNR)
			for _, acc := range []bool{false, true} {
				for _, ldc := range []int{gemmNR, 37} {
					init := randSlice(7, (gemmMR-1)*ldc+gemmNR)
					cg := append([]float32(nil), init...)
					ca := append([]float32(nil), init...)
					kernelGo(k, a, layout.rs, layout.ks, b, cg, ldc, acc)
					asm(k, a, layout.rs, layout.ks, b, ca, ldc, acc)
					for x := range init {
						i, j := x/ldc, x%ldc
						if j >= gemmNR {
							if cg[x] != init[x] || ca[x] != init[x] {
								t.Fatalf("k=%d: C[%d,%d] outside the tile written", k, i, j)
							}
							continue
						}
						var mag float64
						for p := range k {
							mag += math.Abs(float64(a[i*layout.rs+p*layout.ks]) * float64(b[p*gemmNR+j]))
						}
						if acc {
							mag += math.Abs(float64(init[x]))
						}
						if d := math.Abs(float64(cg[x]) - float64(ca[x])); d > 2*gemmBound(k, mag) {
							t.Fatalf("k=%d layout=%v acc=%v ldc=%d: C[%d,%d] go %v asm %v", k, layout, acc, ldc, i, j, cg[x], ca[x])
						}
					}
				}
			}
		}
	}
}

// reportFlops reports GFLOP/s for flops per iteration, by wall clock and
// per CPU-second used since c0 (the latter shows kernel efficiency on a
// shared machine; with several workers it is per core, not total).
func reportFlops(b *testing.B, flops float64, c0 float64) {
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu := cpuSeconds() - c0; cpu > 0 {
		b.ReportMetric(flops*float64(b.N)/cpu/1e9, "GFLOP/cpu-s")
	}
}

// BenchmarkLinear times Linear at the BLIP-base vision shapes (577 tokens)
// and reports GFLOP/s (2·M·N·K per call), for one and two workers and for the
// portable kernel.
func BenchmarkLinear(b *testing.B) {
	shapes := []struct {
		name    string
		m, k, n int
	}{
		{"qkv", 577, 768, 2304},
		{"fc1", 577, 768, 3072},
		{"fc2", 577, 3072, 768},
		{"proj", 577, 768, 768},
		{"text", 35, 768, 768},
	}
	for _, s := range shapes {
		for _, workers := range []int{1, 2} {
			for _, pure := range []bool{false, true} {
				if pure && (workers != 1 || s.name != "fc1") {
					continue
				}
				opts := []CPUOption{WithWorkers(workers)}
				kn := "asm"
				if pure || asmKernel() == nil {
					opts = append(opts, withPureGo())
					kn = "go"
				}
				name := fmt.Sprintf("%s_%dx%dx%d/kernel=%s/workers=%d", s.name, s.m, s.k, s.n, kn, workers)
				b.Run(name, func(b *testing.B) {
					c := NewCPU(opts...)
					x, _ := c.Upload(randSlice(1, s.m*s.k), s.m, s.k)
					w, _ := c.Upload(randSlice(2, s.n*s.k), s.n, s.k)
					bias, _ := c.Upload(randSlice(3, s.n), s.n)
					out, _ := c.New(s.m, s.n)
					ctx := context.Background()
					c0 := cpuSeconds()
					for b.Loop() {
						if err := c.Linear(ctx, out, x, w, bias, ActNone); err != nil {
							b.Fatal(err)
						}
					}
					reportFlops(b, 2*float64(s.m)*float64(s.n)*float64(s.k), c0)
				})
			}
		}
	}
}
