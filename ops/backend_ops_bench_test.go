package ops

import (
	"math"
	"testing"
)

// BenchmarkCUDAOps times the BLIP-shaped ops on the CUDA backend (a real
// device, or the emulation under -tags cudaemu), each iteration followed by
// a stream synchronisation. Reports GFLOP/s for the matrix multiplies and
// attention.
func BenchmarkCUDAOps(b *testing.B) {
	be := newTestCUDA(b)
	mk := func(shape ...int) Tensor {
		n := prod(shape)
		d := make([]float32, n)
		for i := range d {
			d[i] = float32(math.Sin(float64(i))) * 0.5
		}
		t, err := be.Upload(d, shape...)
		must(b, err)
		return t
	}
	sync := func() { must(b, be.Device().Synchronize(bg)) }
	run := func(name string, flops float64, f func() error) {
		b.Run(name, func(b *testing.B) {
			must(b, f())
			sync()
			for b.Loop() {
				must(b, f())
			}
			sync()
			if flops > 0 {
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			}
		})
	}
	x, w, bias, h := mk(577, 768), mk(3072, 768), mk(3072), mk(577, 3072)
	run("Linear/577x768x3072/gelu", 2*577*768*3072, func() error { return be.Linear(bg, h, x, w, bias, ActGELU) })
	q, k, v, o := mk(1, 577, 768), mk(1, 577, 768), mk(1, 577, 768), mk(1, 577, 768)
	run("Attention/577x577/12x64", 4*577*577*768, func() error {
		return be.Attention(bg, o, q, k, v, nil, AttentionParams{Heads: 12, Scale: 0.125})
	})
	g, bt, y, x2, h2 := mk(768), mk(768), mk(577, 768), mk(577, 768), mk(577, 768)
	run("LayerNorm/577x768", 0, func() error { return be.LayerNorm(bg, y, x, g, bt, 1e-6) })
	run("AddLayerNorm/577x768", 0, func() error { return be.AddLayerNorm(bg, h2, y, x, x2, g, bt, 1e-6) })
	tq, tk, tv, to := mk(8, 35, 768), mk(1, 577, 768), mk(1, 577, 768), mk(8, 35, 768)
	run("CrossAttention/8x35x577/12x64", 4*8*35*577*768, func() error {
		return be.Attention(bg, to, tq, tk, tv, nil, AttentionParams{Heads: 12, Scale: 0.125})
	})
	px, pw, pb, cls, pe := mk(1, 3, 384, 384), mk(768, 768), mk(768), mk(768), mk(1, 577, 768)
	run("PatchEmbed/384/16", 2*576*768*768, func() error { return be.PatchEmbed(bg, pe, px, pw, pb, cls, 16) })
}
