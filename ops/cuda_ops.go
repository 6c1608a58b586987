package ops

import (
	"context"
	"fmt"

	"github.com/blipcuda/blipcuda/cuda"
)

// The CUDA backend's operations, one per Backend method, each: check the
// context, validate shapes with the shared Check function, resolve device
// pointers, launch (kernels/README.md gives every launch's signature, block
// and grid). Empty work launches nothing.

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// elemGrid is the grid of the grid-stride elementwise kernels:
// clamp(ceil(n/1024), 1, 65535).
func elemGrid(n int) cuda.Dim3 { return cuda.Dim3{uint32(min(max(ceilDiv(n, 1024), 1), 65535)), 1, 1} }

func block(n int) cuda.Dim3 { return cuda.Dim3{uint32(n), 1, 1} }

// Short names for kernel arguments.
var (
	cuP = cuda.Ptr
	cuI = cuda.Int
)

// gemmNT computes C = A·Bᵀ (+bias, act) for batched row-major operands:
// with a bias, one cuBLASLt GEMM with the bias epilogue (batch 1, where
// cuBLASLt has an algorithm); otherwise cuBLAS then bk_bias_act over rows×N
// of C when bias or act is set (biasRows rows, contiguous at C with stride
// N); or one bk_gemm_nt launch.
//
// GELU: cuBLASLt's GELU epilogue is the tanh form, 0.5x(1 + tanh(√(2/π)(x +
// 0.044715x³))), not the erf GELU of BLIP. It differs from it by less than
// 5e-4 (at |x| ≈ 2), which is below half a float16 ulp there (1e-3) and far
// below bfloat16's; so float16 and bfloat16 take it (one pass over the fc1
// output saved: its read and write are ~14% of a ViT-B layer's time at
// batch 256), and float32, which is for parity, keeps the exact GELU in
// bk_bias_act.
func (c *CUDA) gemmNT(ctx context.Context, g cuda.Gemm, bias cuda.DevicePtr, act Activation, biasRows int) error {
	if !c.kernelGEMM {
		if bias != 0 && (act == ActNone || c.dtype != F32) && g.Batch == 1 && !c.noLt {
			gb := g
			gb.Bias, gb.TanhGELU = bias, act == ActGELU
			done, err := c.dev.GemmBias(ctx, gb)
			if err != nil || done {
				return err
			}
		}
		if err := c.dev.Gemm(ctx, g); err != nil {
			return err
		}
		if bias == 0 && act == ActNone {
			return nil
		}
		return c.dev.Launch(ctx, c.kernel("bk_bias_act"), elemGrid(biasRows*g.N), block(256),
			cuP(g.C), cuP(g.C), cuP(bias), cuI(biasRows), cuI(g.N), cuI(int(act)))
	}
	name, tile := c.kernel("bk_gemm_nt"), 128
	if ceilDiv(g.M, 128)*ceilDiv(g.N, 128) < c.dev.Info().SMs {
		name, tile = c.kernel("bk_gemm_nt_small"), 64
	}
	return c.dev.Launch(ctx, name, cuda.Dim3{uint32(ceilDiv(g.N, tile)), uint32(ceilDiv(g.M, tile)), uint32(g.Batch)}, block(256),
		cuP(g.C), cuP(g.A), cuP(g.B), cuP(bias), cuI(g.M), cuI(g.N), cuI(g.K), cuI(g.Lda), cuI(g.Ldb), cuI(g.Ldc),
		cuda.Int64(g.StrideA), cuda.Int64(g.StrideB), cuda.Int64(g.StrideC), cuI(int(act)))
}

// Linear computes out = act(x·wᵀ + b).
func (c *CUDA) Linear(ctx context.Context, out, x, w, b Tensor, act Activation) error {
	const op = "linear"
	if err := c.enter(ctx, op); err != nil {
		return err
	}
	if err := CheckLinear(out, x, w, b, act); err != nil {
		return err
	}
	d, err := c.ptrs(op, []string{"out", "x", "w", "b"}, out, x, w, b)
	if err != nil {
		return err
	}
	xs := x.Shape()
	M, K, N := prod(xs[:len(xs)-1]), last(xs), w.Shape()[0]
	if M == 0 || N == 0 {
		return nil
	}
	if c.prof != nil {
		bias := "+bias"
		if isNil(b) {
			bias = ""
		}
		defer c.mark(fmt.Sprintf("%s %dx%d->%d%s %v", op, M, K, N, bias, act))()
	}
	ld := max(K, 1)
	g := cuda.Gemm{Type: c.gemmType(), C: d[0], A: d[1], B: d[2], M: M, N: N, K: K, Lda: ld, Ldb: ld, Ldc: N, Batch: 1}
	return c.wrap(op, c.gemmNT(ctx, g, d[3], act, M))
}

// Add computes out = a + b.
func (c *CUDA) Add(ctx context.Context, out, a, b Tensor) error {
	const op = "add"
	if err := c.enter(ctx, op); err != nil {
		return err
	}
	if err := CheckAdd(out, a, b); err != nil {
		return err
	}
	d, err := c.ptrs(op, []string{"out", "a", "b"}, out, a, b)
	if err != nil {
		return err
	}
	n := out.Len()
	if n == 0 {
		return nil
	}
	if c.prof != nil {
		defer c.mark(fmt.Sprintf("%s %d", op, n))()
	}
	return c.wrap(op, c.dev.Launch(ctx, c.kernel("bk_add"), elemGrid(n), block(256), cuP(d[0]), cuP(d[1]), cuP(d[2]), cuI(n)))
}

// layerNorm launches the warp (D ≤ 1024) or block variant.
func (c *CUDA) layerNorm(ctx context.Context, out, sum, x, res, gamma, beta cuda.DevicePtr, rows, D int, eps float32) error {
	args := []cuda.Arg{cuP(out), cuP(sum), cuP(x), cuP(res), cuP(gamma), cuP(beta), cuI(rows), cuI(D), cuda.Float(eps)}
	if D <= 1024 {
		return c.dev.Launch(ctx, c.kernel("bk_layernorm_warp"), cuda.Dim3{uint32(ceilDiv(rows, 4)), 1, 1}, block(128), args...)
	}
	return c.dev.Launch(ctx, c.kernel("bk_layernorm_block"), cuda.Dim3{uint32(rows), 1, 1}, block(256), args...)
}

// LayerNorm normalises each row of x.
func (c *CUDA) LayerNorm(ctx context.Context, out, x, gamma, beta Tensor, eps float32) error {
	const op = "layernorm"
	if err := c.enter(ctx, op); err != nil {
		return err
	}
	if err := CheckLayerNorm(out, x, gamma, beta); err != nil {
		return err
	}
	d, err := c.ptrs(op, []string{"out", "x", "gamma", "beta"}, out, x, gamma, beta)
	if err != nil {
		return err
	}
	rows, D := rowsOf(x)
	if rows == 0 {
		return nil
	}
	if c.prof != nil {
		defer c.mark(fmt.Sprintf("%s %dx%d", op, rows, D))()
	}
	return c.wrap(op, c.layerNorm(ctx, d[0], 0, d[1], 0, d[2], d[3], rows, D, eps))
}

// AddLayerNorm computes sum = x + residual and out = LayerNorm(sum).
func (c *CUDA) AddLayerNorm(ctx context.Context, sum, out, x, residual, gamma, beta Tensor, eps float32) error {
	const op = "addlayernorm"
	if err := c.enter(ctx, op); err != nil {
		return err
	}
	if err := CheckAddLayerNorm(sum, out, x, residual, gamma, beta); err != nil {
		return err
	}
	d, err := c.ptrs(op, []string{"sum", "out", "x", "residual", "gamma", "beta"}, sum, out, x, residual, gamma, beta)
	if err != nil {
		return err
	}
	rows, D := rowsOf(x)
	if rows == 0 {
		return nil
	}
	if c.prof != nil {
		defer c.mark(fmt.Sprintf("%s %dx%d", op, rows, D))()
	}
	return c.wrap(op, c.layerNorm(ctx, d[1], d[0], d[2], d[3], d[4], d[5], rows, D, eps))
}

// GELU computes out = gelu(x) elementwise.
func (c *CUDA) GELU(ctx context.Context, out, x Tensor) error {
	const op = "gelu"
	if err := c.enter(ctx, op); err != nil {
		return err
	}
	if err := CheckGELU(out, x); err != nil {
		return err
	}
	d, err := c.ptrs(op, []string{"out", "x"}, out, x)
	if err != nil {
		return err
	}
	n := out.Len()
	if n == 0 {
		return nil
	}
	if c.prof != nil {
		defer c.mark(fmt.Sprintf("%s %d", op, n))()
	}
	return c.wrap(op, c.dev.Launch(ctx, c.kernel("bk_bias_act"), elemGrid(n), block(256), cuP(d[0]), cuP(d[1]), cuP(0), cuI(1), cuI(n), cuI(int(ActGELU))))
}

// Attention computes fused multi-head attention in one launch.
func (c *CUDA) Attention(ctx context.Context, out, q, k, v, mask Tensor, ap AttentionParams) error {
	const op = "attention"
	if err := c.enter(ctx, op); err != nil {
		return err
	}
	if err := CheckAttention(out, q, k, v, mask, ap); err != nil {
		return err
	}
	d, err := c.ptrs(op, []string{"out", "q", "k", "v", "mask"}, out, q, k, v, mask)
	if err != nil {
		return err
	}
	qs, ks, os := q.Shape(), k.Shape(), out.Shape()
	B, Lq, W := os[0], os[1], os[2]
	Wq, Wk, Wv := qs[2], ks[2], v.Shape()[2]
	Bk, Lk := ks[0], ks[1]
	H := ap.Heads
	Dh := W / H
	Bm := 1
	if !isNil(mask) {
		Bm = mask.Shape()[0]
	}
	if B == 0 || Lq == 0 {
		return nil
	}
	if Bk == 1 && Bm == 1 && B > 1 {
		// One key/value set and one mask for the whole batch (an image's
		// cross-attention keys for many captions): the batch's queries are
		// consecutive rows of q and out, so they pack into one sequence of
		// B·Lq queries and every tile is full. Each query row's result is
		// unchanged: a row only ever meets the keys.
		B, Lq = 1, B*Lq
	}
	if B > 65535 || H > 65535 {
		return fmt.Errorf("ops: cuda: %s: batch %d or heads %d above 65535: %w", op, B, H, ErrUnsupported)
	}
	if c.prof != nil {
		defer c.mark(fmt.Sprintf("%s B=%d H=%d Lq=%d Lk=%d Dh=%d kvB=%d", op, B, H, Lq, Lk, Dh, Bk))()
	}
	var name string
	bq, threads := 64, 256
	switch {
	case Dh == 64 && c.dtype != F32 && !c.simtAttention && c.dev.Info().CC[0] >= 8:
		// Tensor cores: mma.sync m16n8k16, 4 warps × 16 query rows.
		name, threads = c.kernel("bk_attention_mma_d64"), 128
	case Dh <= 16:
		name = c.kernel("bk_attention_d16")
	case Dh <= 32:
		name = c.kernel("bk_attention_d32")
	case Dh <= 64:
		name = c.kernel("bk_attention_d64")
	case Dh <= 128:
		name, bq = c.kernel("bk_attention_d128"), 32
	default:
		return fmt.Errorf("ops: cuda: %s: head dim %d above 128: %w", op, Dh, ErrUnsupported)
	}
	return c.wrap(op, c.dev.Launch(ctx, name, cuda.Dim3{uint32(ceilDiv(Lq, bq)), uint32(H), uint32(B)}, block(threads),
		cuP(d[0]), cuP(d[1].Add(int64(c.bytes(ap.QCol)))), cuP(d[2].Add(int64(c.bytes(ap.KCol)))), cuP(d[3].Add(int64(c.bytes(ap.VCol)))),
		cuP(d[4]), cuI(B), cuI(H), cuI(Lq), cuI(Lk), cuI(Dh), cuI(Wq), cuI(Wk), cuI(Wv), cuI(W), cuI(Bk), cuI(Bm), cuda.Float(ap.Scale)))
}

// PatchEmbed is im2col into a scratch matrix, one GEMM batched over images
// writing rows 1..T of each image (bias fused), and the class rows.
func (c *CUDA) PatchEmbed(ctx context.Context, out, pixels, w, b, cls Tensor, patch int) error {
	const op = "patchembed"
	if err := c.enter(ctx, op); err != nil {
		return err
	}
	if err := CheckPatchEmbed(out, pixels, w, b, cls, patch); err != nil {
		return err
	}
	d, err := c.ptrs(op, []string{"out", "pixels", "w", "b", "cls"}, out, pixels, w, b, cls)
	if err != nil {
		return err
	}
	ps := pixels.Shape()
	B, C, H, W := ps[0], ps[1], ps[2], ps[3]
	P := patch
	T := (H / P) * (W / P)
	KP := C * P * P
	D := w.Shape()[0]
	if B == 0 || D == 0 {
		return nil
	}
	if c.prof != nil {
		defer c.mark(fmt.Sprintf("%s B=%d T=%d D=%d", op, B, T, D))()
	}
	cols, err := c.acts.Alloc(c.bytes(B * T * KP))
	if err != nil {
		return c.wrap(op, err)
	}
	defer c.acts.Free(cols)
	if err := c.dev.Launch(ctx, c.kernel("bk_im2col_patch"), elemGrid(B*C*H*W), block(256),
		cuP(cols), cuP(d[1]), cuI(B), cuI(C), cuI(H), cuI(W), cuI(P)); err != nil {
		return c.wrap(op, err)
	}
	g := cuda.Gemm{Type: c.gemmType(), C: d[0].Add(int64(c.bytes(D))), A: cols, B: d[2], M: T, N: D, K: KP, Lda: KP, Ldb: KP, Ldc: D,
		StrideA: int64(T * KP), StrideB: 0, StrideC: int64((1 + T) * D), Batch: B}
	// With cuBLAS the bias epilogue runs over all B·(1+T) rows; the class
	// rows it touches are overwritten next.
	if err := c.gemmNT(ctx, g, d[3], ActNone, B*(1+T)-1); err != nil {
		return c.wrap(op, err)
	}
	return c.wrap(op, c.dev.Launch(ctx, c.kernel("bk_vit_tokens"), cuda.Dim3{uint32(min(B*(1+T), 65535)), 1, 1}, block(128),
		cuP(d[0]), cuP(0), cuP(d[4]), cuI(B), cuI(T), cuI(D)))
}

// Gather copies rows of table: the ids are uploaded to scratch memory first.
func (c *CUDA) Gather(ctx context.Context, out, table Tensor, ids []int32) error {
	const op = "gather"
	if err := c.enter(ctx, op); err != nil {
		return err
	}
	if err := CheckGather(out, table, ids); err != nil {
		return err
	}
	d, err := c.ptrs(op, []string{"out", "table"}, out, table)
	if err != nil {
		return err
	}
	ts := table.Shape()
	V, D := ts[0], ts[1]
	n := len(ids)
	if n == 0 || D == 0 {
		return nil
	}
	if c.prof != nil {
		defer c.mark(fmt.Sprintf("%s %dx%d", op, n, D))()
	}
	idp, err := c.acts.Alloc(uint64(n) * 4)
	if err != nil {
		return c.wrap(op, err)
	}
	defer c.acts.Free(idp)
	if err := c.dev.WriteInt32(idp, ids); err != nil {
		return c.wrap(op, err)
	}
	// err = NULL: CheckGather has validated every id already.
	return c.wrap(op, c.dev.Launch(ctx, c.kernel("bk_gather_rows"), cuda.Dim3{uint32(n), 1, 1}, block(128),
		cuP(d[0]), cuP(d[1]), cuP(idp), cuI(n), cuI(D), cuI(V), cuP(0)))
}

// AddPositions computes out[b, l] = x[b, l] + pos[l].
func (c *CUDA) AddPositions(ctx context.Context, out, x, pos Tensor) error {
	const op = "addpositions"
	if err := c.enter(ctx, op); err != nil {
		return err
	}
	if err := CheckAddPositions(out, x, pos); err != nil {
		return err
	}
	d, err := c.ptrs(op, []string{"out", "x", "pos"}, out, x, pos)
	if err != nil {
		return err
	}
	xs := x.Shape()
	rows, L, D := xs[0]*xs[1], xs[1], xs[2]
	if rows == 0 || D == 0 {
		return nil
	}
	if c.prof != nil {
		defer c.mark(fmt.Sprintf("%s %dx%d", op, rows, D))()
	}
	return c.wrap(op, c.dev.Launch(ctx, c.kernel("bk_add_positions"), elemGrid(rows*D), block(256),
		cuP(d[0]), cuP(d[1]), cuP(d[2]), cuI(rows), cuI(L), cuI(D)))
}

// TakeRow copies out[b] = x[b, row].
func (c *CUDA) TakeRow(ctx context.Context, out, x Tensor, row int) error {
	const op = "takerow"
	if err := c.enter(ctx, op); err != nil {
		return err
	}
	if err := CheckTakeRow(out, x, row); err != nil {
		return err
	}
	d, err := c.ptrs(op, []string{"out", "x"}, out, x)
	if err != nil {
		return err
	}
	xs := x.Shape()
	B, L, D := xs[0], xs[1], xs[2]
	if B == 0 || D == 0 {
		return nil
	}
	if c.prof != nil {
		defer c.mark(fmt.Sprintf("%s %dx%d", op, B, D))()
	}
	return c.wrap(op, c.dev.Launch(ctx, c.kernel("bk_take_rows"), cuda.Dim3{uint32(B), 1, 1}, block(128),
		cuP(d[0]), cuP(d[1]), cuI(B), cuI(D), cuI(row), cuI(L)))
}

// CopyRows copies rows [start, start+R') of x into out (cuMemcpyDtoD).
func (c *CUDA) CopyRows(ctx context.Context, out, x Tensor, start int) error {
	const op = "copyrows"
	if err := c.enter(ctx, op); err != nil {
		return err
	}
	if err := CheckCopyRows(out, x, start); err != nil {
		return err
	}
	d, err := c.ptrs(op, []string{"out", "x"}, out, x)
	if err != nil {
		return err
	}
	D := last(x.Shape())
	if out.Len() == 0 {
		return nil
	}
	if c.prof != nil {
		defer c.mark(fmt.Sprintf("%s %d", op, out.Len()))()
	}
	return c.wrap(op, c.dev.Copy(d[0], d[1].Add(int64(c.bytes(start*D))), c.bytes(out.Len())))
}

// L2Normalize scales each row of x to unit length.
func (c *CUDA) L2Normalize(ctx context.Context, out, x Tensor) error {
	const op = "l2normalize"
	if err := c.enter(ctx, op); err != nil {
		return err
	}
	if err := CheckL2Normalize(out, x); err != nil {
		return err
	}
	d, err := c.ptrs(op, []string{"out", "x"}, out, x)
	if err != nil {
		return err
	}
	rows, D := rowsOf(x)
	if rows == 0 {
		return nil
	}
	if c.prof != nil {
		defer c.mark(fmt.Sprintf("%s %dx%d", op, rows, D))()
	}
	return c.wrap(op, c.dev.Launch(ctx, c.kernel("bk_l2_normalize"), cuda.Dim3{uint32(ceilDiv(rows, 4)), 1, 1}, block(128),
		cuP(d[0]), cuP(d[1]), cuI(rows), cuI(D)))
}
