package ops

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkCUDAOps times the ops of the BLIP graph at BLIP's shapes on the
// CUDA backend (a real device, or the emulation under -tags cudaemu), in
// every dtype: BenchmarkCUDAOps/{F32,F16,BF16}/OP/SHAPE. Each iteration is
// one call; the device is synchronised before the timer starts and after the
// last call, so ns/op is device time per call (plus launch overhead for the
// small shapes).
//
// Metrics, beside ns/op:
//
//	TFLOP/s    matrix multiplies and attention (2 FLOP per multiply-add;
//	           attention QKᵀ + PV = 4·Lq·Lk·width per sequence, as
//	           bench/CEILINGS.md counts)
//	GB/s       the op's minimum traffic (every input read once, every output
//	           written once, in the dtype's size) over the measured time
//	floor-us   the physical floor of the op on this card: max(FLOPs / compute
//	           ceiling, bytes / bandwidth ceiling), with the measured ceilings
//	           of bench/CEILINGS.md (H100: 3.0 TB/s copy, H200: 4.3 TB/s; 16-bit
//	           tensor cores 790 TFLOP/s on both; float32 67 TFLOP/s, the
//	           CUDA-core datasheet rate: blipcuda's float32 uses no TF32)
//	pct-floor  floor / measured × 100: how close the op is to its floor
//
// Floors are reported only on a card the table knows (H100, H200); elsewhere
// and under emulation, only the achieved rates. The large shapes (ViT batch
// 64, 256 captions) are skipped under emulation, where they would take
// minutes.
func BenchmarkCUDAOps(b *testing.B) {
	for _, dt := range []DType{F32, F16, BF16} {
		b.Run(dt.String(), func(b *testing.B) { benchCUDAOps(b, dt) })
	}
}

// ceiling is a card's measured compute and bandwidth ceilings.
type ceiling struct {
	match      string  // substring of the device name
	bandwidth  float64 // bytes/s, device-to-device copy (read + write)
	tensor16   float64 // FLOP/s, float16/bfloat16 tensor cores, float32 accumulate
	float32FMA float64 // FLOP/s, float32 on CUDA cores
}

// ceilings: bench/CEILINGS.md (measured on the project's machines; float32
// from the datasheet).
var ceilings = []ceiling{
	{"H200", 4.3e12, 790e12, 67e12},
	{"H100", 3.0e12, 790e12, 67e12},
}

func benchCUDAOps(b *testing.B, dt DType) {
	be := newTestCUDA(b, WithDType(dt))
	info := be.Device().Info()
	emulated := info.Driver != "cuda"
	var ceil *ceiling
	for i := range ceilings {
		if !emulated && strings.Contains(info.Name, ceilings[i].match) {
			ceil = &ceilings[i]
			break
		}
	}
	es := float64(dt.Size())

	// Inputs are cached by name for the life of the backend: every leaf
	// benchmark runs twice (b.N = 1, then the real count) and several share
	// operands. Values are pseudo-random in [-0.5, 0.5) (never zeros: zero
	// data runs faster on tensor cores).
	cache := map[string]Tensor{}
	in := func(name string, shape ...int) Tensor {
		key := fmt.Sprint(name, shape)
		if t, ok := cache[key]; ok {
			return t
		}
		n := prod(shape)
		d := make([]float32, n)
		s := uint32(len(cache)*7919 + n)
		for i := range d {
			s = s*1664525 + 1013904223
			d[i] = float32(s>>8)/(1<<24) - 0.5
		}
		t, err := be.Upload(d, shape...)
		must(b, err)
		cache[key] = t
		return t
	}
	outs := map[string]Tensor{}
	out := func(name string, shape ...int) Tensor {
		key := fmt.Sprint(name, shape)
		if t, ok := outs[key]; ok {
			return t
		}
		t, err := be.New(shape...)
		must(b, err)
		outs[key] = t
		return t
	}
	b.Cleanup(func() {
		for _, t := range cache {
			be.Free(t)
		}
		for _, t := range outs {
			be.Free(t)
		}
	})
	sync := func(b *testing.B) { must(b, be.Device().Synchronize(bg)) }

	// run times the op setup returns (setup makes its operands, only when
	// the benchmark runs); flops may be 0 (a bandwidth op), bytes is the
	// op's minimum traffic.
	run := func(name string, big bool, flops, bytes float64, setup func() func() error) {
		b.Run(name, func(b *testing.B) {
			if big && emulated {
				b.Skip("large shape: skipped under emulation")
			}
			f := setup()
			must(b, f())
			sync(b)
			b.ResetTimer()
			for b.Loop() {
				must(b, f())
			}
			sync(b)
			sec := b.Elapsed().Seconds() / float64(b.N)
			if flops > 0 {
				b.ReportMetric(flops/sec/1e12, "TFLOP/s")
			}
			b.ReportMetric(bytes/sec/1e9, "GB/s")
			if ceil != nil {
				peak := ceil.tensor16
				if dt == F32 {
					peak = ceil.float32FMA
				}
				floor := max(flops/peak, bytes/ceil.bandwidth)
				b.ReportMetric(floor*1e6, "floor-us")
				b.ReportMetric(floor/sec*100, "pct-floor")
			}
		})
	}

	// Linear: x [M, K] · w [N, K]ᵀ + b.
	linear := func(tag string, big bool, m, k, n int, act Activation) {
		name := fmt.Sprintf("Linear/%s/%dx%dx%d", tag, m, k, n)
		if act == ActGELU {
			name += "/gelu"
		}
		run(name, big, 2*float64(m)*float64(k)*float64(n), es*float64(m*k+n*k+n+m*n), func() func() error {
			x, w, bias, y := in("x", m, k), in("w", n, k), in("b", n), out("y", m, n)
			return func() error { return be.Linear(bg, y, x, w, bias, act) }
		})
	}
	// The ViT-B/16 layer at batch 1 (577 tokens) and 64 (36 928 rows).
	for _, bs := range []int{1, 64} {
		m, big := 577*bs, bs > 1
		tag := fmt.Sprintf("vitb-bs%d", bs)
		linear(tag+"-qkv", big, m, 768, 2304, ActNone)
		linear(tag+"-proj", big, m, 768, 768, ActNone)
		linear(tag+"-fc1", big, m, 768, 3072, ActGELU)
		linear(tag+"-fc2", big, m, 3072, 768, ActNone)
	}
	// ViT-L/16 at batch 64.
	linear("vitl-bs64-qkv", true, 577*64, 1024, 3072, ActNone)
	linear("vitl-bs64-fc1", true, 577*64, 1024, 4096, ActGELU)
	linear("vitl-bs64-fc2", true, 577*64, 4096, 1024, ActNone)
	// The text side of ITM for 256 captions of 35 tokens (8 960 rows), and
	// one image's cross-attention keys and values for all 12 layers at once
	// (577 × 768 → 12·2·768).
	linear("text-256x35-fc1", true, 256*35, 768, 3072, ActGELU)
	linear("text-256x35-fc2", true, 256*35, 3072, 768, ActNone)
	linear("crosskv-12layers", true, 577, 768, 12*2*768, ActNone)

	// Attention: q [B, Lq, W], k, v [Bk, Lk, W].
	attention := func(tag string, big bool, bq, lq, bk, lk, heads int) {
		const hd = 64
		w := heads * hd
		run(fmt.Sprintf("Attention/%s/%dx%dx%d/%dx%d", tag, bq, lq, lk, heads, hd), big,
			4*float64(bq)*float64(lq)*float64(lk)*float64(w), es*float64(2*bq*lq*w+2*bk*lk*w), func() func() error {
				q, k, v, o := in("q", bq, lq, w), in("k", bk, lk, w), in("v", bk, lk, w), out("y", bq, lq, w)
				p := AttentionParams{Heads: heads, Scale: 0.125}
				return func() error { return be.Attention(bg, o, q, k, v, nil, p) }
			})
	}
	attention("vitb-self-bs1", false, 1, 577, 1, 577, 12)
	attention("vitb-self-bs64", true, 64, 577, 64, 577, 12)
	attention("vitl-self-bs64", true, 64, 577, 64, 577, 16)
	attention("cross-14-shared", false, 14, 35, 1, 577, 12)
	attention("cross-256-shared", true, 256, 35, 1, 577, 12)
	attention("text-self-256", true, 256, 35, 256, 35, 12)

	// Bandwidth-bound ops on the ViT-B residual stream at batch 64 (and 1).
	for _, bs := range []int{1, 64} {
		rows, big := 577*bs, bs > 1
		x := func() Tensor { return in("x", rows, 768) }
		r := func() Tensor { return in("r", rows, 768) }
		g := func() Tensor { return in("g", 768) }
		beta := func() Tensor { return in("beta", 768) }
		y := func() Tensor { return out("y", rows, 768) }
		run(fmt.Sprintf("LayerNorm/%dx768", rows), big, 0, es*float64(2*rows*768+2*768), func() func() error {
			x, g, beta, y := x(), g(), beta(), y()
			return func() error { return be.LayerNorm(bg, y, x, g, beta, 1e-6) }
		})
		run(fmt.Sprintf("AddLayerNorm/%dx768", rows), big, 0, es*float64(4*rows*768+2*768), func() func() error {
			x, r, g, beta, y, sum := x(), r(), g(), beta(), y(), out("sum", rows, 768)
			return func() error { return be.AddLayerNorm(bg, sum, y, x, r, g, beta, 1e-6) }
		})
		run(fmt.Sprintf("Add/%dx768", rows), big, 0, es*float64(3*rows*768), func() func() error {
			x, r, y := x(), r(), y()
			return func() error { return be.Add(bg, y, x, r) }
		})
	}
	run("GELU/36928x3072", true, 0, es*float64(2*577*64*3072), func() func() error {
		h, hy := in("h", 577*64, 3072), out("y", 577*64, 3072)
		return func() error { return be.GELU(bg, hy, h) }
	})

	// The ViT-B stem: 16×16 patches of 384×384 images as a GEMM.
	for _, bs := range []int{1, 64} {
		run(fmt.Sprintf("PatchEmbed/bs%d/384/16", bs), bs > 1, 2*float64(bs)*576*768*768,
			es*float64(bs*3*384*384+768*768+768+bs*577*768), func() func() error {
				px, pw, pb, cls := in("px", bs, 3, 384, 384), in("pw", 768, 768), in("pb", 768), in("cls", 768)
				pe := out("y", bs, 577, 768)
				return func() error { return be.PatchEmbed(bg, pe, px, pw, pb, cls, 16) }
			})
	}

	// Token embeddings of 256 captions of 35 tokens.
	ids := make([]int32, 256*35)
	for i := range ids {
		ids[i] = int32((i*7919 + 1996) % 30524)
	}
	run("Gather/8960x768", true, 0, float64(4*len(ids))+es*float64(2*len(ids)*768), func() func() error {
		table, emb := in("wordemb", 30524, 768), out("y", 256*35, 768)
		return func() error { return be.Gather(bg, emb, table, ids) }
	})
}
