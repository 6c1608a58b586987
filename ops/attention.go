package ops

import (
	"context"
	"sync"
)

// Attention on the CPU: for every (batch, head) pair, as one task,
//
//	S = Q_h·K_hᵀ                (gemm, K given as [Lk, Dh]: the weight layout)
//	P = softmax(S·scale + mask) (row by row, max subtracted)
//	O_h = P·V_h                 (gemm, V given as [Lk, Dh]: the [K, N] layout)
//
// Q_h, K_h, V_h and O_h are column slices of the tensors (at QCol, KCol,
// VCol), read and written in place with the tensors' widths as leading
// dimensions.

// attnScratch is one task's working memory: the score matrix and the packing
// buffers of its two matrix multiplies.
type attnScratch struct {
	s []float32
	g gemmScratch
}

var attnScratchPool = sync.Pool{New: func() any { return new(attnScratch) }}

// Attention computes multi-head scaled dot-product attention.
func (c *CPU) Attention(ctx context.Context, out, q, k, v, mask Tensor, p AttentionParams) error {
	const op = "attention"
	if err := c.enter(ctx, op); err != nil {
		return err
	}
	if err := CheckAttention(out, q, k, v, mask, p); err != nil {
		return err
	}
	d, err := c.operands(op, []string{"out", "q", "k", "v", "mask"}, out, q, k, v, mask)
	if err != nil {
		return err
	}
	od, qd, kd, vd, md := d[0], d[1], d[2], d[3], d[4]
	for i, in := range [][]float32{qd, kd, vd, md} {
		if err := forbidOverlap(op, "out", od, []string{"q", "k", "v", "mask"}[i], in); err != nil {
			return err
		}
	}
	qs, ks, os := q.Shape(), k.Shape(), out.Shape()
	B, Lq, W := os[0], os[1], os[2]
	Wq, Wk, Wv := qs[2], ks[2], v.Shape()[2]
	Bk, Lk := ks[0], ks[1]
	H := p.Heads
	Dh := W / H
	Bm := 0
	if !isNil(mask) {
		Bm = mask.Shape()[0]
	}
	if B == 0 || Lq == 0 {
		return nil
	}

	// With enough (batch, head) tasks for every worker, run them in parallel
	// with serial matrix multiplies inside; otherwise run them one by one
	// with parallel matrix multiplies.
	tasks := B * H
	outer, inner, innerWorkers := c.parallel, runner(serial), 1
	if tasks < c.workers {
		outer, inner, innerWorkers = serial, c.parallel, c.workers
	}
	err = outer(ctx, tasks, func(t int) {
		b, h := t/H, t%H
		bk := b
		if Bk == 1 {
			bk = 0
		}
		var mrow []float32
		if Bm > 0 {
			bm := b
			if Bm == 1 {
				bm = 0
			}
			mrow = md[bm*Lk : (bm+1)*Lk]
		}
		sc := attnScratchPool.Get().(*attnScratch)
		defer attnScratchPool.Put(sc)
		sc.s = grow(sc.s, Lq*Lk)
		s := sc.s

		qOff := b*Lq*Wq + p.QCol + h*Dh
		kOff := bk*Lk*Wk + p.KCol + h*Dh
		vOff := bk*Lk*Wv + p.VCol + h*Dh
		oOff := b*Lq*W + h*Dh
		scores := &gemmArgs{m: Lq, n: Lk, k: Dh,
			a: qd[qOff:], lda: Wq,
			b: kd[kOff:], ldb: Wk, bT: true,
			c: s, ldc: Lk}
		if gemm(ctx, inner, innerWorkers, c.kern, scores, &sc.g) != nil {
			return // cancelled; the outer runner reports it
		}
		for i := range Lq {
			softmaxRow(s[i*Lk:(i+1)*Lk], p.Scale, mrow, c.vec)
		}
		mix := &gemmArgs{m: Lq, n: Dh, k: Lk,
			a: s, lda: Lk,
			b: vd[vOff:], ldb: Wv,
			c: od[oOff:], ldc: W}
		_ = gemm(ctx, inner, innerWorkers, c.kern, mix, &sc.g)
	})
	if err == nil {
		// A cancellation seen only inside a task (by its matrix multiply)
		// does not reach the outer runner's result.
		err = ctx.Err()
	}
	return wrapCtx(op, err)
}
