package ops

import (
	"fmt"
	"testing"
)

// Benchmarks of the building blocks behind Linear and Attention, for tuning.

// BenchmarkMicroKernel runs the micro-kernel on one K block of panels that
// stay in L1: the ceiling for the blocked multiply. On a core with one
// 256-bit FMA per cycle (AMD Zen 1) the ceiling is 16 flops per cycle; with
// two (Zen 2+, Intel since Haswell), 32.
func BenchmarkMicroKernel(b *testing.B) {
	for name, kern := range kernels() {
		for _, layout := range []struct {
			name   string
			rs, ks int
		}{{"packedA", 1, gemmMR}, {"rowmajorA", gemmKC, 1}} {
			b.Run(fmt.Sprintf("kernel=%s/%s", name, layout.name), func(b *testing.B) {
				k := gemmKC
				a := randSlice(1, k*gemmMR)
				bp := randSlice(2, k*gemmNR)
				c := make([]float32, gemmMR*64)
				c0 := cpuSeconds()
				for b.Loop() {
					kern(k, a, layout.rs, layout.ks, bp, c, 64, true)
				}
				reportFlops(b, 2*float64(k*gemmMR*gemmNR), c0)
			})
		}
	}
}

// BenchmarkPackB packs the fc1 weight [3072, 768] (PyTorch layout, so a
// transpose) into B panels, reporting CPU nanoseconds per element.
func BenchmarkPackB(b *testing.B) {
	const n, k = 3072, 768
	g := &gemmArgs{n: n, k: k, ldb: k, bT: true, b: randSlice(1, n*k)}
	pb := make([]float32, n*k)
	c0 := cpuSeconds()
	for b.Loop() {
		for jp := range n / gemmNR {
			packB(pb, n, g, jp)
		}
	}
	b.ReportMetric((cpuSeconds()-c0)/float64(b.N)/(n*k)*1e9, "cpu-ns/elem")
}

// BenchmarkSoftmaxRow times one 577-wide attention row (vector code where
// available, else Go).
func BenchmarkSoftmaxRow(b *testing.B) {
	for _, vec := range []bool{false, true} {
		b.Run(fmt.Sprintf("vec=%v", vec), func(b *testing.B) {
			src := randSlice(1, 577)
			s := make([]float32, 577)
			c0 := cpuSeconds()
			for b.Loop() {
				copy(s, src)
				softmaxRow(s, 0.125, nil, vec)
			}
			b.ReportMetric((cpuSeconds()-c0)/float64(b.N)/577*1e9, "cpu-ns/elem")
		})
	}
}
