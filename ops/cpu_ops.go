package ops

import (
	"context"
	"fmt"
	"math"
	"unsafe"
)

// The CPU backend's operations. Each method validates its operands with the
// shared Check function, resolves storage, and runs the computation in
// parallel over rows (or over the tasks of the matrix multiply).

// Grain sizes: the fewest elements a parallel chunk should hold, so small
// calls (the text encoder's 35-token rows) do not pay for goroutines they
// cannot use.
const (
	elemGrain = 1 << 14 // elementwise ops: elements per chunk
)

// overlap reports whether two slices share any memory.
func overlap(a, b []float32) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	pa := uintptr(unsafe.Pointer(unsafe.SliceData(a)))
	pb := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return pa < pb+uintptr(len(b))*4 && pb < pa+uintptr(len(a))*4
}

// same reports whether two slices are the same memory.
func same(a, b []float32) bool {
	return len(a) == len(b) && (len(a) == 0 || unsafe.SliceData(a) == unsafe.SliceData(b))
}

// forbidOverlap returns ErrUnsupported (wrapped) if out shares memory with in
// (storage uploaded from overlapping slices; the Check functions catch the
// same tensor passed twice).
func forbidOverlap(op, outName string, out []float32, inName string, in []float32) error {
	if overlap(out, in) {
		return fmt.Errorf("ops: cpu: %s: %s overlaps %s: %w", op, outName, inName, ErrUnsupported)
	}
	return nil
}

// allowAlias returns ErrUnsupported (wrapped) if out and in partly overlap;
// being the same memory is allowed.
func allowAlias(op, outName string, out []float32, inName string, in []float32) error {
	if overlap(out, in) && !same(out, in) {
		return fmt.Errorf("ops: cpu: %s: %s partly overlaps %s: %w", op, outName, inName, ErrUnsupported)
	}
	return nil
}

// rowsOf returns the number of rows of a [..., D] tensor and D.
func rowsOf(t Tensor) (rows, d int) {
	s := t.Shape()
	d = last(s)
	if d == 0 {
		return 0, 0
	}
	return t.Len() / d, d
}

// Linear computes out = act(x·wᵀ + b).
func (c *CPU) Linear(ctx context.Context, out, x, w, b Tensor, act Activation) error {
	const op = "linear"
	if err := c.enter(ctx, op); err != nil {
		return err
	}
	if err := CheckLinear(out, x, w, b, act); err != nil {
		return err
	}
	d, err := c.operands(op, []string{"out", "x", "w", "b"}, out, x, w, b)
	if err != nil {
		return err
	}
	od, xd, wd, bd := d[0], d[1], d[2], d[3]
	if err := forbidOverlap(op, "out", od, "x", xd); err != nil {
		return err
	}
	if err := forbidOverlap(op, "out", od, "w", wd); err != nil {
		return err
	}
	if err := forbidOverlap(op, "out", od, "b", bd); err != nil {
		return err
	}
	xs := x.Shape()
	M, K, N := prod(xs[:len(xs)-1]), last(xs), w.Shape()[0]
	g := &gemmArgs{m: M, n: N, k: K, a: xd, lda: K, b: wd, ldb: K, bT: true, c: od, ldc: N, bias: bd, act: act}
	return wrapCtx(op, gemm(ctx, c.parallel, c.workers, c.kern, g, nil))
}

// Add computes out = a + b.
func (c *CPU) Add(ctx context.Context, out, a, b Tensor) error {
	const op = "add"
	if err := c.enter(ctx, op); err != nil {
		return err
	}
	if err := CheckAdd(out, a, b); err != nil {
		return err
	}
	d, err := c.operands(op, []string{"out", "a", "b"}, out, a, b)
	if err != nil {
		return err
	}
	od, ad, bd := d[0], d[1], d[2]
	if err := allowAlias(op, "out", od, "a", ad); err != nil {
		return err
	}
	if err := allowAlias(op, "out", od, "b", bd); err != nil {
		return err
	}
	return wrapCtx(op, c.parallelRows(ctx, len(od), elemGrain, func(lo, hi int) {
		o, x, y := od[lo:hi], ad[lo:hi], bd[lo:hi]
		for i := range o {
			o[i] = x[i] + y[i]
		}
	}))
}

// layerNormRow writes the layer norm of x into dst (which may be x):
// statistics in float64, biased variance, as PyTorch.
func layerNormRow(dst, x, gamma, beta []float32, eps float32) {
	n := float64(len(x))
	var s float64
	for _, v := range x {
		s += float64(v)
	}
	mean := s / n
	var q float64
	for _, v := range x {
		d := float64(v) - mean
		q += d * d
	}
	rstd := 1 / math.Sqrt(q/n+float64(eps))
	gamma, beta = gamma[:len(x)], beta[:len(x)]
	for j, v := range x {
		dst[j] = float32((float64(v)-mean)*rstd*float64(gamma[j]) + float64(beta[j]))
	}
}

// lnGrain returns how many rows of width d make a worthwhile parallel chunk.
func lnGrain(d int) int { return max(1, elemGrain/(4*max(d, 1))) }

// LayerNorm normalises each row of x.
func (c *CPU) LayerNorm(ctx context.Context, out, x, gamma, beta Tensor, eps float32) error {
	const op = "layernorm"
	if err := c.enter(ctx, op); err != nil {
		return err
	}
	if err := CheckLayerNorm(out, x, gamma, beta); err != nil {
		return err
	}
	d, err := c.operands(op, []string{"out", "x", "gamma", "beta"}, out, x, gamma, beta)
	if err != nil {
		return err
	}
	od, xd, gd, bd := d[0], d[1], d[2], d[3]
	if err := allowAlias(op, "out", od, "x", xd); err != nil {
		return err
	}
	rows, D := rowsOf(x)
	return wrapCtx(op, c.parallelRows(ctx, rows, lnGrain(D), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			layerNormRow(od[r*D:(r+1)*D], xd[r*D:(r+1)*D], gd, bd, eps)
		}
	}))
}

// AddLayerNorm computes sum = x + residual and out = LayerNorm(sum).
func (c *CPU) AddLayerNorm(ctx context.Context, sum, out, x, residual, gamma, beta Tensor, eps float32) error {
	const op = "addlayernorm"
	if err := c.enter(ctx, op); err != nil {
		return err
	}
	if err := CheckAddLayerNorm(sum, out, x, residual, gamma, beta); err != nil {
		return err
	}
	d, err := c.operands(op, []string{"sum", "out", "x", "residual", "gamma", "beta"}, sum, out, x, residual, gamma, beta)
	if err != nil {
		return err
	}
	sd, od, xd, rd, gd, bd := d[0], d[1], d[2], d[3], d[4], d[5]
	for _, e := range []error{
		allowAlias(op, "out", od, "x", xd),
		allowAlias(op, "out", od, "residual", rd),
		allowAlias(op, "sum", sd, "x", xd),
		allowAlias(op, "sum", sd, "residual", rd),
		forbidOverlap(op, "out", od, "sum", sd),
	} {
		if e != nil {
			return e
		}
	}
	rows, D := rowsOf(x)
	return wrapCtx(op, c.parallelRows(ctx, rows, lnGrain(D), func(lo, hi int) {
		s := make([]float32, D)
		for r := lo; r < hi; r++ {
			xr, rr := xd[r*D:(r+1)*D], rd[r*D:(r+1)*D]
			for j := range s {
				s[j] = xr[j] + rr[j]
			}
			if sd != nil {
				copy(sd[r*D:(r+1)*D], s)
			}
			layerNormRow(od[r*D:(r+1)*D], s, gd, bd, eps)
		}
	}))
}

// GELU computes out = gelu(x) elementwise.
func (c *CPU) GELU(ctx context.Context, out, x Tensor) error {
	const op = "gelu"
	if err := c.enter(ctx, op); err != nil {
		return err
	}
	if err := CheckGELU(out, x); err != nil {
		return err
	}
	d, err := c.operands(op, []string{"out", "x"}, out, x)
	if err != nil {
		return err
	}
	od, xd := d[0], d[1]
	if err := allowAlias(op, "out", od, "x", xd); err != nil {
		return err
	}
	return wrapCtx(op, c.parallelRows(ctx, len(od), elemGrain/8, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			od[i] = gelu(xd[i])
		}
	}))
}

// PatchEmbed is the ViT stem: im2col of every P×P patch, one matrix multiply
// per image with the conv bias fused, and the class token in row 0.
func (c *CPU) PatchEmbed(ctx context.Context, out, pixels, w, b, cls Tensor, patch int) error {
	const op = "patchembed"
	if err := c.enter(ctx, op); err != nil {
		return err
	}
	if err := CheckPatchEmbed(out, pixels, w, b, cls, patch); err != nil {
		return err
	}
	d, err := c.operands(op, []string{"out", "pixels", "w", "b", "cls"}, out, pixels, w, b, cls)
	if err != nil {
		return err
	}
	od, pd, wd, bd, cd := d[0], d[1], d[2], d[3], d[4]
	for i, in := range [][]float32{pd, wd, bd, cd} {
		if err := forbidOverlap(op, "out", od, []string{"pixels", "w", "b", "cls"}[i], in); err != nil {
			return err
		}
	}
	ps := pixels.Shape()
	B, C, H, W := ps[0], ps[1], ps[2], ps[3]
	P := patch
	gh, gw := H/P, W/P
	T := gh * gw      // patches per image
	KP := C * P * P   // values per patch
	D := w.Shape()[0] // embedding width
	if B == 0 || D == 0 {
		return nil
	}

	// im2col: cols[b·T + r·gw + q, ci·P·P + y·P + x] = pixels[b, ci, r·P+y, q·P+x],
	// the order of the conv weight [D, C, P, P] flattened.
	cols := make([]float32, B*T*KP)
	err = c.parallelRows(ctx, B*T, max(1, elemGrain/max(KP, 1)), func(lo, hi int) {
		for t := lo; t < hi; t++ {
			bi, r, q := t/T, (t%T)/gw, t%gw
			row := cols[t*KP : (t+1)*KP]
			for ci := range C {
				for y := range P {
					src := pd[((bi*C+ci)*H+r*P+y)*W+q*P:]
					copy(row[(ci*P+y)*P:(ci*P+y+1)*P], src[:P])
				}
			}
		}
	})
	if err != nil {
		return wrapCtx(op, err)
	}
	for bi := range B {
		img := od[bi*(T+1)*D : (bi+1)*(T+1)*D]
		copy(img[:D], cd)
		g := &gemmArgs{m: T, n: D, k: KP, a: cols[bi*T*KP:], lda: KP, b: wd, ldb: KP, bT: true, c: img[D:], ldc: D, bias: bd}
		if err := gemm(ctx, c.parallel, c.workers, c.kern, g, nil); err != nil {
			return wrapCtx(op, err)
		}
	}
	return nil
}

// Gather copies rows of table: out[i] = table[ids[i]].
func (c *CPU) Gather(ctx context.Context, out, table Tensor, ids []int32) error {
	const op = "gather"
	if err := c.enter(ctx, op); err != nil {
		return err
	}
	if err := CheckGather(out, table, ids); err != nil {
		return err
	}
	d, err := c.operands(op, []string{"out", "table"}, out, table)
	if err != nil {
		return err
	}
	od, td := d[0], d[1]
	if err := forbidOverlap(op, "out", od, "table", td); err != nil {
		return err
	}
	D := table.Shape()[1]
	for i, id := range ids {
		copy(od[i*D:(i+1)*D], td[int(id)*D:(int(id)+1)*D])
	}
	return nil
}

// AddPositions computes out[b, l] = x[b, l] + pos[l].
func (c *CPU) AddPositions(ctx context.Context, out, x, pos Tensor) error {
	const op = "addpositions"
	if err := c.enter(ctx, op); err != nil {
		return err
	}
	if err := CheckAddPositions(out, x, pos); err != nil {
		return err
	}
	d, err := c.operands(op, []string{"out", "x", "pos"}, out, x, pos)
	if err != nil {
		return err
	}
	od, xd, pd := d[0], d[1], d[2]
	if err := allowAlias(op, "out", od, "x", xd); err != nil {
		return err
	}
	if err := forbidOverlap(op, "out", od, "pos", pd); err != nil {
		return err
	}
	xs := x.Shape()
	L, D := xs[1], xs[2]
	rows := xs[0] * L
	return wrapCtx(op, c.parallelRows(ctx, rows, lnGrain(D), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			o, xr, pr := od[r*D:(r+1)*D], xd[r*D:(r+1)*D], pd[(r%L)*D:(r%L+1)*D]
			for j := range o {
				o[j] = xr[j] + pr[j]
			}
		}
	}))
}

// TakeRow copies out[b] = x[b, row].
func (c *CPU) TakeRow(ctx context.Context, out, x Tensor, row int) error {
	const op = "takerow"
	if err := c.enter(ctx, op); err != nil {
		return err
	}
	if err := CheckTakeRow(out, x, row); err != nil {
		return err
	}
	d, err := c.operands(op, []string{"out", "x"}, out, x)
	if err != nil {
		return err
	}
	od, xd := d[0], d[1]
	if err := forbidOverlap(op, "out", od, "x", xd); err != nil {
		return err
	}
	xs := x.Shape()
	L, D := xs[1], xs[2]
	for b := range xs[0] {
		copy(od[b*D:(b+1)*D], xd[(b*L+row)*D:(b*L+row+1)*D])
	}
	return nil
}

// CopyRows copies rows [start, start+R') of x, seen as [R, D], into out.
func (c *CPU) CopyRows(ctx context.Context, out, x Tensor, start int) error {
	const op = "copyrows"
	if err := c.enter(ctx, op); err != nil {
		return err
	}
	if err := CheckCopyRows(out, x, start); err != nil {
		return err
	}
	d, err := c.operands(op, []string{"out", "x"}, out, x)
	if err != nil {
		return err
	}
	od, xd := d[0], d[1]
	if err := forbidOverlap(op, "out", od, "x", xd); err != nil {
		return err
	}
	D := last(x.Shape())
	copy(od, xd[start*D:start*D+len(od)])
	return nil
}

// L2Normalize computes out = x / max(‖x‖₂, 1e-12) per row, the norm in
// float64.
func (c *CPU) L2Normalize(ctx context.Context, out, x Tensor) error {
	const op = "l2normalize"
	if err := c.enter(ctx, op); err != nil {
		return err
	}
	if err := CheckL2Normalize(out, x); err != nil {
		return err
	}
	d, err := c.operands(op, []string{"out", "x"}, out, x)
	if err != nil {
		return err
	}
	od, xd := d[0], d[1]
	if err := allowAlias(op, "out", od, "x", xd); err != nil {
		return err
	}
	rows, D := rowsOf(x)
	return wrapCtx(op, c.parallelRows(ctx, rows, lnGrain(D), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr, o := xd[r*D:(r+1)*D], od[r*D:(r+1)*D]
			var s float64
			for _, v := range xr {
				s += float64(v) * float64(v)
			}
			n := max(math.Sqrt(s), 1e-12)
			for j, v := range xr {
				o[j] = float32(float64(v) / n)
			}
		}
	}))
}
