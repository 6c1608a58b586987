package ops

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/blipcuda/blipcuda/cuda"
)

// The differential suite (the counterpart of ggml's test-backend-ops): every
// op on real BLIP shapes and on awkward ones, CPU reference against the CUDA
// backend. Under -tags cudaemu the CUDA backend runs the kernels on the CPU
// emulation; on a machine with a GPU (default tags) on the device; otherwise
// the suite skips, saying why.
//
// Each case: inputs drawn from a seeded generator (-seed, default fixed;
// -seed=0 draws one from the clock), every tensor a window of a larger
// allocation whose guard cells hold a NaN pattern that must survive, outputs
// pre-filled with the same pattern (so an unwritten element shows), NaN/Inf
// checks, NMSE against the CPU below the case's threshold, and two CUDA runs
// bitwise equal. A failure prints the seed and the command that reruns it.

var seedFlag = flag.Uint64("seed", 20260301, "seed of the differential suite's inputs (0: from the clock)")

// suiteSeed is the seed used by this run.
var suiteSeed = func() func() uint64 {
	var s uint64
	return func() uint64 {
		if s == 0 {
			s = *seedFlag
			if s == 0 {
				s = uint64(time.Now().UnixNano())
			}
		}
		return s
	}
}()

// defaultNMSE is the fp32 threshold: the kernels differ from the Go
// reference only by summation order, FMA contraction and erff/expf ulps.
const defaultNMSE = 1e-7

// guardCells is the padding on each side of every tensor; guardBits the
// pattern in it (a quiet NaN no kernel computes, whose payload survives the
// conversion to float16 and bfloat16: see guardOf).
const (
	guardCells = 64
	guardBits  = 0x7fdead00
)

// guardOf is the guard pattern as a tensor of dtype d stores it.
func guardOf(d DType) uint32 { return math.Float32bits(d.Round(math.Float32frombits(guardBits))) }

// The 16-bit thresholds. The CPU reference runs in float32 on the inputs
// rounded to the dtype, and its result is rounded to the dtype once; the
// kernels round more often: a 16-bit GEMM result before the bias/GELU
// epilogue (cuBLAS path), attention's probabilities before P·V (tensor-core
// kernel). Each rounding is a relative error uniform in ±2⁻¹¹ (float16) or
// ±2⁻⁸ (bfloat16), an NMSE of about 8e-8 or 5e-6; three of them, with
// margin, give these.
const (
	f16NMSE  = 1e-6
	bf16NMSE = 6e-5
)

// gen says how a tensor's contents are made.
type gen int

const (
	gUniform gen = iota // uniform in [-1, 1)
	gOut                // an output: pre-filled with the guard pattern
	gMask               // additive key mask: 0, or -10000 for the last keys of some rows (BERT padding)
	gPixels             // normalised pixels, uniform in [-2, 2)
	gZero               // zeros
	gWeight             // uniform in [-1, 1) / sqrt(fan-in) (keeps activations O(1))
)

// tspec is one tensor of a case.
type tspec struct {
	shape []int
	g     gen
}

// opCase is one entry of the table.
type opCase struct {
	name   string
	nmse   float64 // 0: defaultNMSE
	ts     []tspec
	offset int // extra cells before every tensor (unaligned pointers)
	ids    func(r *rand.Rand) []int32
	run    func(ctx context.Context, be Backend, t []Tensor, ids []int32) error
}

func in(shape ...int) tspec   { return tspec{shape, gUniform} }
func out(shape ...int) tspec  { return tspec{shape, gOut} }
func wt(shape ...int) tspec   { return tspec{shape, gWeight} }
func mask(shape ...int) tspec { return tspec{shape, gMask} }

func linearCase(M, K, N int, bias bool, act Activation) opCase {
	ts := []tspec{out(M, N), in(M, K), wt(N, K)}
	if bias {
		ts = append(ts, in(N))
	}
	return opCase{
		name: fmt.Sprintf("Linear/M=%d,K=%d,N=%d,bias=%v,act=%v", M, K, N, bias, act),
		ts:   ts,
		run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error {
			var b Tensor
			if bias {
				b = t[3]
			}
			return be.Linear(ctx, t[0], t[1], t[2], b, act)
		},
	}
}

func attnCase(B, Bk, Lq, Lk, H, Dh, Bm int) opCase {
	W := H * Dh
	ts := []tspec{out(B, Lq, W), in(B, Lq, W), in(Bk, Lk, W), in(Bk, Lk, W)}
	if Bm > 0 {
		ts = append(ts, mask(Bm, Lk))
	}
	return opCase{
		name: fmt.Sprintf("Attention/B=%d,Bk=%d,Lq=%d,Lk=%d,H=%d,Dh=%d,Bm=%d", B, Bk, Lq, Lk, H, Dh, Bm),
		ts:   ts,
		run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error {
			var m Tensor
			if Bm > 0 {
				m = t[4]
			}
			return be.Attention(ctx, t[0], t[1], t[2], t[3], m, AttentionParams{Heads: H, Scale: float32(1 / math.Sqrt(float64(Dh)))})
		},
	}
}

// fusedQKVCase: q, k and v are column windows of one [B, L, 3W] tensor (a
// fused QKV projection).
func fusedQKVCase(B, L, H, Dh, Bm int) opCase {
	W := H * Dh
	ts := []tspec{out(B, L, W), in(B, L, 3*W)}
	if Bm > 0 {
		ts = append(ts, mask(Bm, L))
	}
	return opCase{
		name: fmt.Sprintf("Attention/fusedQKV,B=%d,L=%d,H=%d,Dh=%d,Bm=%d", B, L, H, Dh, Bm),
		ts:   ts,
		run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error {
			var m Tensor
			if Bm > 0 {
				m = t[2]
			}
			return be.Attention(ctx, t[0], t[1], t[1], t[1], m, AttentionParams{Heads: H, Scale: float32(1 / math.Sqrt(float64(Dh))), KCol: W, VCol: 2 * W})
		},
	}
}

// windowCase: q, k and v are windows at arbitrary columns of tensors of
// different widths; k and v the same tensor when kvSame (every layer's keys
// and values side by side).
func windowCase(B, Bk, Lq, Lk, H, Dh, Wq, qCol, Wkv, kCol, vCol, Bm int, kvSame bool) opCase {
	W := H * Dh
	ts := []tspec{out(B, Lq, W), in(B, Lq, Wq), in(Bk, Lk, Wkv), in(Bk, Lk, Wkv)}
	if Bm > 0 {
		ts = append(ts, mask(Bm, Lk))
	}
	return opCase{
		name: fmt.Sprintf("Attention/windows,B=%d,Bk=%d,Lq=%d,Lk=%d,H=%d,Dh=%d,q=%d@%d,kv=%d@%d,%d,same=%v,Bm=%d", B, Bk, Lq, Lk, H, Dh, Wq, qCol, Wkv, kCol, vCol, kvSame, Bm),
		ts:   ts,
		run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error {
			var m Tensor
			if Bm > 0 {
				m = t[4]
			}
			v := t[3]
			if kvSame {
				v = t[2]
			}
			return be.Attention(ctx, t[0], t[1], t[2], v, m, AttentionParams{Heads: H, Scale: float32(1 / math.Sqrt(float64(Dh))), QCol: qCol, KCol: kCol, VCol: vCol})
		},
	}
}

func lnCase(rows, D int, eps float32) opCase {
	return opCase{
		name: fmt.Sprintf("LayerNorm/rows=%d,D=%d,eps=%g", rows, D, eps),
		ts:   []tspec{out(rows, D), in(rows, D), in(D), in(D)},
		run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error {
			return be.LayerNorm(ctx, t[0], t[1], t[2], t[3], eps)
		},
	}
}

func addLNCase(rows, D int, withSum bool, eps float32) opCase {
	return opCase{
		name: fmt.Sprintf("AddLayerNorm/rows=%d,D=%d,sum=%v,eps=%g", rows, D, withSum, eps),
		ts:   []tspec{out(rows, D), out(rows, D), in(rows, D), in(rows, D), in(D), in(D)},
		run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error {
			var sum Tensor
			if withSum {
				sum = t[0]
			} else {
				// Without sum, t[0] is an output nobody writes: keep it the
				// pattern on both backends by not passing it.
				sum = nil
			}
			return be.AddLayerNorm(ctx, sum, t[1], t[2], t[3], t[4], t[5], eps)
		},
	}
}

func patchCase(B, C, H, W, P, D int) opCase {
	T := (H / P) * (W / P)
	return opCase{
		name: fmt.Sprintf("PatchEmbed/B=%d,C=%d,H=%d,W=%d,P=%d,D=%d", B, C, H, W, P, D),
		ts:   []tspec{out(B, 1+T, D), {[]int{B, C, H, W}, gPixels}, wt(D, C*P*P), in(D), in(D)},
		run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error {
			return be.PatchEmbed(ctx, t[0], t[1], t[2], t[3], t[4], P)
		},
	}
}

// opCases is the table. Shapes: ViT-B/16 and ViT-L/16 at 384 px (577
// tokens, widths 768/1024, 12/16 heads of 64, MLP 3072/4096), the BERT text
// encoder (35 tokens with a padding mask, width 768) and its cross-attention
// (35 queries against 577 image keys shared by the batch). ViT-B's matrix
// multiplies keep 577 rows; ViT-L's use 32 (a second or more each under
// emulation, and the kernels tile rows independently).
func opCases() []opCase {
	cs := []opCase{
		// Linear: the BLIP projections.
		linearCase(577, 768, 2304, true, ActNone), // ViT-B fused qkv
		linearCase(577, 768, 3072, true, ActGELU), // ViT-B MLP fc1
		linearCase(577, 3072, 768, true, ActNone), // ViT-B MLP fc2
		linearCase(32, 1024, 4096, true, ActGELU), // ViT-L MLP fc1
		linearCase(32, 4096, 1024, true, ActNone), // ViT-L MLP fc2
		linearCase(70, 768, 768, true, ActNone),   // text: 2 captions × 35
		linearCase(70, 768, 768, false, ActNone),
		linearCase(3, 768, 2, true, ActNone), // ITM head
		// Linear: awkward.
		linearCase(1, 1, 1, true, ActGELU),
		linearCase(7, 13, 5, true, ActGELU),
		linearCase(129, 3, 130, false, ActNone),
		linearCase(5, 0, 3, true, ActNone), // K = 0: bias only

		{name: "Add/n=577x768", ts: []tspec{out(577, 768), in(577, 768), in(577, 768)},
			run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error {
				return be.Add(ctx, t[0], t[1], t[2])
			}},
		{name: "Add/n=1", ts: []tspec{out(1), in(1), in(1)},
			run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error {
				return be.Add(ctx, t[0], t[1], t[2])
			}},
		{name: "Add/n=3x5x7,offset=1", offset: 1, ts: []tspec{out(3, 5, 7), in(3, 5, 7), in(3, 5, 7)},
			run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error {
				return be.Add(ctx, t[0], t[1], t[2])
			}},
		{name: "Add/alias=out=b", ts: []tspec{out(35, 768), in(35, 768), in(35, 768)},
			run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error {
				if err := be.Add(ctx, t[2], t[1], t[2]); err != nil {
					return err
				}
				return be.CopyRows(ctx, t[0], t[2], 0)
			}},

		lnCase(577, 768, 1e-6), // ViT-B
		lnCase(577, 1024, 1e-6),
		lnCase(70, 768, 1e-12), // BERT
		lnCase(3, 1030, 1e-5),  // block variant (D > 1024)
		lnCase(5, 1, 1e-5),
		lnCase(9, 13, 1e-5),
		{name: "LayerNorm/alias=out=x,rows=577,D=768", ts: []tspec{out(577, 768), in(577, 768), in(768), in(768)},
			run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error {
				if err := be.LayerNorm(ctx, t[1], t[1], t[2], t[3], 1e-6); err != nil {
					return err
				}
				return be.CopyRows(ctx, t[0], t[1], 0)
			}},
		{name: "LayerNorm/offset=3,rows=7,D=20", offset: 3, ts: []tspec{out(7, 20), in(7, 20), in(20), in(20)},
			run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error {
				return be.LayerNorm(ctx, t[0], t[1], t[2], t[3], 1e-5)
			}},

		addLNCase(577, 768, true, 1e-6),
		addLNCase(577, 1024, true, 1e-6),
		addLNCase(70, 768, false, 1e-12),
		addLNCase(4, 2048, true, 1e-5),
		addLNCase(1, 1, true, 1e-5),
		{name: "AddLayerNorm/alias=sum=x,out=residual,rows=35,D=768", ts: []tspec{out(35, 768), in(35, 768), in(35, 768), in(768), in(768)},
			run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error {
				if err := be.AddLayerNorm(ctx, t[1], t[2], t[1], t[2], t[3], t[4], 1e-12); err != nil {
					return err
				}
				return be.Add(ctx, t[0], t[1], t[2]) // both results in one output
			}},

		{name: "GELU/n=64x3072", ts: []tspec{out(64, 3072), in(64, 3072)},
			run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error { return be.GELU(ctx, t[0], t[1]) }},
		{name: "GELU/n=1", ts: []tspec{out(1), in(1)},
			run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error { return be.GELU(ctx, t[0], t[1]) }},
		{name: "GELU/n=1001,offset=1,alias", offset: 1, ts: []tspec{out(1001), in(1001)},
			run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error {
				if err := be.GELU(ctx, t[1], t[1]); err != nil {
					return err
				}
				return be.CopyRows(ctx, t[0], t[1], 0)
			}},

		// Attention: BLIP.
		attnCase(1, 1, 577, 577, 12, 64, 0), // ViT-B self-attention
		attnCase(1, 1, 577, 577, 16, 64, 0), // ViT-L self-attention
		attnCase(2, 2, 35, 35, 12, 64, 2),   // text self-attention, padding mask
		attnCase(3, 1, 35, 577, 12, 64, 0),  // cross-attention, one image's k/v for 3 captions
		attnCase(2, 1, 35, 577, 12, 64, 1),  // cross-attention with a shared mask
		// Attention on column windows: a fused QKV projection (ViT-B, and the
		// text with its padding mask), and layer 1 of every text layer's cross
		// keys and values side by side (one image, 3 captions packed).
		fusedQKVCase(1, 577, 12, 64, 0),
		fusedQKVCase(2, 35, 12, 64, 2),
		windowCase(3, 1, 35, 577, 12, 64, 768, 0, 4*768, 2*768, 3*768, 0, true),
		windowCase(2, 2, 9, 7, 2, 4, 20, 3, 17, 5, 1, 2, false),
		windowCase(2, 1, 5, 70, 1, 64, 70, 6, 131, 67, 1, 1, true),
		// Attention: tiny head dims (every variant), odd lengths, 1×1.
		attnCase(2, 2, 17, 9, 3, 2, 2),
		attnCase(1, 1, 5, 70, 2, 4, 1),
		attnCase(2, 1, 65, 3, 4, 8, 0),
		attnCase(1, 1, 33, 33, 2, 16, 0),
		attnCase(1, 1, 9, 13, 2, 33, 1),  // d64 variant, Dh not a power of two
		attnCase(1, 1, 40, 7, 1, 100, 0), // d128 variant
		attnCase(1, 1, 1, 1, 1, 1, 0),

		patchCase(1, 3, 384, 384, 16, 768), // ViT-B stem at 384 px (576 patches)
		patchCase(2, 3, 32, 48, 16, 64),
		patchCase(2, 2, 6, 9, 3, 5),
		patchCase(1, 1, 4, 4, 1, 3),

		{name: "Gather/V=1000,D=768,n=70", ts: []tspec{out(2, 35, 768), in(1000, 768)},
			ids: func(r *rand.Rand) []int32 { return randIDs(r, 70, 1000) },
			run: func(ctx context.Context, be Backend, t []Tensor, ids []int32) error {
				return be.Gather(ctx, t[0], t[1], ids)
			}},
		{name: "Gather/V=3,D=1,n=4,offset=1", offset: 1, ts: []tspec{out(4, 1), in(3, 1)},
			ids: func(r *rand.Rand) []int32 { return []int32{0, 2, 2, 1} },
			run: func(ctx context.Context, be Backend, t []Tensor, ids []int32) error {
				return be.Gather(ctx, t[0], t[1], ids)
			}},

		{name: "AddPositions/B=2,L=35,D=768,P=512", ts: []tspec{out(2, 35, 768), in(2, 35, 768), in(512, 768)},
			run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error {
				return be.AddPositions(ctx, t[0], t[1], t[2])
			}},
		{name: "AddPositions/B=1,L=577,D=768,P=577", ts: []tspec{out(1, 577, 768), in(1, 577, 768), in(577, 768)},
			run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error {
				return be.AddPositions(ctx, t[0], t[1], t[2])
			}},
		{name: "AddPositions/B=1,L=1,D=1", ts: []tspec{out(1, 1, 1), in(1, 1, 1), in(3, 1)},
			run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error {
				return be.AddPositions(ctx, t[0], t[1], t[2])
			}},

		{name: "TakeRow/B=3,L=35,D=768,row=0", ts: []tspec{out(3, 768), in(3, 35, 768)},
			run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error {
				return be.TakeRow(ctx, t[0], t[1], 0)
			}},
		{name: "TakeRow/B=14,L=35,D=768,row=0,out=[B,1,D]", ts: []tspec{out(14, 1, 768), in(14, 35, 768)},
			run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error {
				return be.TakeRow(ctx, t[0], t[1], 0)
			}},
		{name: "TakeRow/B=2,L=5,D=3,row=4,offset=1", offset: 1, ts: []tspec{out(2, 3), in(2, 5, 3)},
			run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error {
				return be.TakeRow(ctx, t[0], t[1], 4)
			}},

		{name: "CopyRows/x=4x577x768,start=1154", ts: []tspec{out(577, 768), in(4, 577, 768)},
			run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error {
				return be.CopyRows(ctx, t[0], t[1], 2*577)
			}},
		{name: "CopyRows/x=5x3,start=2,offset=1", offset: 1, ts: []tspec{out(2, 3), in(5, 3)},
			run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error {
				return be.CopyRows(ctx, t[0], t[1], 2)
			}},

		{name: "L2Normalize/rows=8,D=256", ts: []tspec{out(8, 256), in(8, 256)},
			run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error {
				return be.L2Normalize(ctx, t[0], t[1])
			}},
		{name: "L2Normalize/rows=3,D=7,offset=1", offset: 1, ts: []tspec{out(3, 7), in(3, 7)},
			run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error {
				return be.L2Normalize(ctx, t[0], t[1])
			}},
		{name: "L2Normalize/zeros", ts: []tspec{out(2, 5), {[]int{2, 5}, gZero}},
			run: func(ctx context.Context, be Backend, t []Tensor, _ []int32) error {
				return be.L2Normalize(ctx, t[0], t[1])
			}},
	}
	return cs
}

func randIDs(r *rand.Rand, n, v int) []int32 {
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(r.IntN(v))
	}
	return ids
}

// newTestCUDA opens the CUDA backend or skips with the reason.
func newTestCUDA(t testing.TB, opts ...CUDAOption) *CUDA {
	t.Helper()
	c, err := NewCUDA(opts...)
	if err != nil {
		if errors.Is(err, cuda.ErrUnavailable) {
			t.Skipf("no CUDA backend (build with -tags cudaemu to emulate): %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

// caseData is a case's generated host contents.
type caseData struct {
	vals [][]float32
	ids  []int32
}

func genCase(c opCase, seed uint64) caseData {
	r := rand.New(rand.NewPCG(seed, 0xb11c))
	var d caseData
	for _, s := range c.ts {
		n := prod(s.shape)
		v := make([]float32, n)
		switch s.g {
		case gUniform:
			for i := range v {
				v[i] = 2*r.Float32() - 1
			}
		case gWeight:
			sc := float32(1 / math.Sqrt(float64(max(last(s.shape), 1))))
			for i := range v {
				v[i] = (2*r.Float32() - 1) * sc
			}
		case gPixels:
			for i := range v {
				v[i] = 4*r.Float32() - 2
			}
		case gMask:
			// Row b masks its last b·3 keys (row 0 none), as padding does.
			L := last(s.shape)
			for b := range s.shape[0] {
				for k := max(L-3*b, 1); k < L; k++ {
					v[b*L+k] = -10000
				}
			}
		case gOut:
			for i := range v {
				v[i] = math.Float32frombits(guardBits)
			}
		}
		d.vals = append(d.vals, v)
	}
	if c.ids != nil {
		d.ids = c.ids(r)
	}
	return d
}

// window makes a tensor that is a window [pad, pad+n) of a larger tensor
// whole (which holds the guard cells), on either backend.
func window(whole Tensor, shape []int, pad int) Tensor {
	n := prod(shape)
	switch w := whole.(type) {
	case *cpuTensor:
		return &cpuTensor{shape: append([]int(nil), shape...), n: n, data: w.data[pad : pad+n : pad+n], owner: w.owner}
	case *cudaTensor:
		return &cudaTensor{shape: append([]int(nil), shape...), n: n, dtype: w.dtype, ptr: w.ptr.Add(int64(pad) * int64(w.dtype.Size())), arena: w.arena, owner: w.owner}
	}
	panic(fmt.Sprintf("window of %T", whole))
}

// runCase runs c on be with d: every tensor inside guard cells. It returns
// the contents of every tensor after the run, or an error (a guard cell
// overwritten included).
func runCase(ctx context.Context, be Backend, c opCase, d caseData) ([][]float32, error) {
	pad := guardCells + c.offset
	guard := uint32(guardBits)
	if cb, ok := be.(*CUDA); ok {
		guard = guardOf(cb.DType())
	}
	var wholes, views []Tensor
	defer func() {
		for _, w := range wholes {
			be.Free(w)
		}
	}()
	for i, s := range c.ts {
		n := prod(s.shape)
		host := make([]float32, pad+n+guardCells)
		for j := range host {
			host[j] = math.Float32frombits(guardBits)
		}
		copy(host[pad:], d.vals[i])
		w, err := be.Upload(host, len(host))
		if err != nil {
			return nil, err
		}
		wholes = append(wholes, w)
		views = append(views, window(w, s.shape, pad))
	}
	if err := c.run(ctx, be, views, d.ids); err != nil {
		return nil, err
	}
	res := make([][]float32, len(c.ts))
	for i, w := range wholes {
		host := make([]float32, w.Len())
		if err := be.Download(ctx, host, w); err != nil {
			return nil, err
		}
		for j := range host {
			if j >= pad && j < pad+views[i].Len() {
				continue
			}
			if b := math.Float32bits(host[j]); b != guard {
				return nil, fmt.Errorf("%s: tensor %d %v: guard cell %d overwritten (%#x)", be.Name(), i, c.ts[i].shape, j-pad, b)
			}
		}
		res[i] = host[pad : pad+views[i].Len()]
	}
	return res, nil
}

// nmse returns Σ(got−want)²/Σwant² (the plain squared error when want is 0).
func nmse(got, want []float32) float64 {
	var num, den float64
	for i := range got {
		e := float64(got[i]) - float64(want[i])
		num += e * e
		den += float64(want[i]) * float64(want[i])
	}
	if den == 0 {
		return num
	}
	return num / den
}

// cudaVariants are the CUDA backends the cases run on: float32 with the
// default GEMM path (cuBLAS and cuBLASLt, or the host reference GEMM under
// emulation), without cuBLASLt's bias epilogue, and with the bk_gemm_nt
// kernels; float16 and bfloat16 likewise, plus their attention on the
// CUDA-core kernels instead of the tensor-core one. only
// limits a variant to the cases whose name starts with one of its prefixes.
var cudaVariants = []struct {
	name  string
	dtype DType
	opts  []CUDAOption
	only  []string
}{
	{"blas", F32, nil, nil},
	{"blas-noLt", F32, []CUDAOption{WithoutBiasEpilogue()}, []string{"Linear"}},
	{"kernelgemm", F32, []CUDAOption{WithKernelGEMM()}, gemmOps},
	{"f16", F16, nil, nil},
	{"f16-noLt", F16, []CUDAOption{WithoutBiasEpilogue()}, []string{"Linear"}},
	{"f16-kernelgemm", F16, []CUDAOption{WithKernelGEMM()}, gemmOps},
	{"f16-simt", F16, []CUDAOption{WithSIMTAttention()}, []string{"Attention"}},
	{"bf16", BF16, nil, nil},
	{"bf16-kernelgemm", BF16, []CUDAOption{WithKernelGEMM()}, gemmOps},
	{"bf16-simt", BF16, []CUDAOption{WithSIMTAttention()}, []string{"Attention"}},
}

// gemmOps are the ops that multiply matrices.
var gemmOps = []string{"Linear", "PatchEmbed"}

func TestBackendOps(t *testing.T) {
	seed := suiteSeed()
	cpu := NewCPU()
	for _, v := range cudaVariants {
		t.Run(v.name, func(t *testing.T) {
			be := newTestCUDA(t, append([]CUDAOption{WithDType(v.dtype)}, v.opts...)...)
			t.Logf("CUDA backend: %s, %v, GEMM %s, seed %d", be.Device().Info().Name, v.dtype, be.GEMM(), seed)
			for _, c := range opCases() {
				if v.only != nil && !hasAnyPrefix(c.name, v.only) {
					continue // identical to another variant
				}
				t.Run(c.name, func(t *testing.T) {
					t.Cleanup(func() {
						if t.Failed() {
							t.Logf("rerun: go test -tags cudaemu ./ops -run 'TestBackendOps/%s' -seed=%d", t.Name()[len("TestBackendOps/"):], seed)
						}
					})
					checkCase(t, cpu, be, c, seed)
				})
			}
			// Every bias-only Linear should have run in cuBLASLt's epilogue:
			// a fallback is correct but slower, and worth knowing on a GPU.
			if n := be.Device().LtFallbacks(); n > 0 {
				t.Errorf("cuBLASLt had no algorithm for %d bias GEMMs (they fell back to cuBLAS + bk_bias_act)", n)
			}
		})
	}
}

func hasAnyPrefix(name string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func checkCase(t *testing.T, cpu Backend, be *CUDA, c opCase, seed uint64) {
	d := genCase(c, seed)
	dt := be.DType()
	// The CPU computes on the values the CUDA tensors hold: the inputs
	// rounded to dt (its result is rounded to dt below).
	cd := caseData{ids: d.ids}
	for _, v := range d.vals {
		r := make([]float32, len(v))
		for j, x := range v {
			r[j] = dt.Round(x)
		}
		cd.vals = append(cd.vals, r)
	}
	want, err := runCase(bg, cpu, c, cd)
	if err != nil {
		t.Fatalf("cpu: %v", err)
	}
	start := time.Now()
	got, err := runCase(bg, be, c, d)
	if err != nil {
		t.Fatalf("cuda: %v", err)
	}
	el := time.Since(start)
	again, err := runCase(bg, be, c, d)
	if err != nil {
		t.Fatalf("cuda, second run: %v", err)
	}
	thr := c.nmse
	switch {
	case dt == F16:
		thr = max(thr, f16NMSE)
	case dt == BF16:
		thr = max(thr, bf16NMSE)
	case thr == 0:
		thr = defaultNMSE
	}
	guard := guardOf(dt)
	for i, s := range c.ts {
		if s.g != gOut {
			continue
		}
		g, w := got[i], want[i]
		if dt != F32 {
			rw := make([]float32, len(w))
			for j, x := range w {
				rw[j] = dt.Round(x)
				if math.Float32bits(x) == guardBits {
					rw[j] = math.Float32frombits(guard)
				}
			}
			w = rw
		}
		for j := range g {
			if math.Float32bits(g[j]) != math.Float32bits(again[i][j]) {
				t.Fatalf("tensor %d %v: not deterministic: element %d is %v, then %v", i, s.shape, j, g[j], again[i][j])
			}
			if f := float64(g[j]); math.IsNaN(f) || math.IsInf(f, 0) {
				// An output the op does not write keeps the guard pattern on
				// both backends (AddLayerNorm without sum).
				if math.Float32bits(g[j]) == guard && math.Float32bits(w[j]) == guard {
					continue
				}
				t.Fatalf("tensor %d %v: element %d is %v (cpu %v)", i, s.shape, j, g[j], w[j])
			}
		}
		if math.Float32bits(w[0]) == guard && math.Float32bits(g[0]) == guard {
			continue
		}
		e := nmse(g, w)
		if e > thr {
			worst, at := 0.0, 0
			for j := range g {
				if a := math.Abs(float64(g[j]) - float64(w[j])); a > worst {
					worst, at = a, j
				}
			}
			t.Fatalf("tensor %d %v: NMSE %.3g > %.3g; worst element %d: cuda %v, cpu %v", i, s.shape, e, thr, at, g[at], w[at])
		}
		t.Logf("tensor %d %v: NMSE %.3g (threshold %.0e), %v per run", i, s.shape, e, thr, el.Round(time.Millisecond))
	}
}
