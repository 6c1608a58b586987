package ops

import (
	"fmt"
	"math"
	"reflect"
	"slices"
)

// Shape validation shared by every backend.
//
// Each Check function validates the operands of one Backend method and
// returns nil or an error that wraps ErrShape (ErrUnsupported for an unknown
// Activation or a forbidden alias) and names the operation, the operand and
// the disagreeing dimensions, for example
//
//	ops: linear: x [577 768] and w [3072 512] disagree on K (768 vs 512): ops: shape mismatch
//
// Backends call the Check function first, before they look at storage, so
// every backend rejects bad input with the identical error. The checks only
// look at shapes (and at tensor identity for aliasing rules); ownership,
// dtype and context are each backend's business.

// shapeErr formats an error wrapping ErrShape, prefixed with "ops: <op>: ".
func shapeErr(op, format string, args ...any) error {
	return fmt.Errorf("ops: %s: %s: %w", op, fmt.Sprintf(format, args...), ErrShape)
}

// isNil reports whether t is nil, including a typed nil pointer in the
// interface.
func isNil(t Tensor) bool {
	if t == nil {
		return true
	}
	v := reflect.ValueOf(t)
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
		return v.IsNil()
	}
	return false
}

// sameTensor reports whether a and b are the same tensor value (and so share
// storage). Tensors whose dynamic type is not comparable are never the same.
func sameTensor(a, b Tensor) bool {
	if a == nil || b == nil {
		return false
	}
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	if ta != tb || !ta.Comparable() {
		return false
	}
	return a == b
}

// need returns an error if t is nil.
func need(op, name string, t Tensor) error {
	if isNil(t) {
		return shapeErr(op, "%s is nil", name)
	}
	return nil
}

// needRank returns an error if t is nil or its rank is not r.
func needRank(op, name string, t Tensor, r int) error {
	if err := need(op, name, t); err != nil {
		return err
	}
	if s := t.Shape(); len(s) != r {
		return shapeErr(op, "%s %v has rank %d, want %d", name, s, len(s), r)
	}
	return nil
}

// needMinRank returns an error if t is nil or its rank is below r.
func needMinRank(op, name string, t Tensor, r int) error {
	if err := need(op, name, t); err != nil {
		return err
	}
	if s := t.Shape(); len(s) < r {
		return shapeErr(op, "%s %v has rank %d, want at least %d", name, s, len(s), r)
	}
	return nil
}

// sameShape returns an error unless a and b have identical shapes.
func sameShape(op, an string, a Tensor, bn string, b Tensor) error {
	sa, sb := a.Shape(), b.Shape()
	if !slices.Equal(sa, sb) {
		return shapeErr(op, "%s %v and %s %v differ", an, sa, bn, sb)
	}
	return nil
}

// noAlias returns an error wrapping ErrUnsupported if a and b are the same
// tensor.
func noAlias(op, an string, a Tensor, bn string, b Tensor) error {
	if sameTensor(a, b) {
		return fmt.Errorf("ops: %s: %s must not alias %s: %w", op, an, bn, ErrUnsupported)
	}
	return nil
}

// last returns the innermost dimension of s.
func last(s []int) int { return s[len(s)-1] }

// prod returns the product of s (1 for an empty s).
func prod(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// CheckShape validates a shape for New or Upload: at least one dimension and
// no negative dimension. Zero-sized dimensions are allowed (empty tensors).
func CheckShape(shape []int) error {
	if len(shape) == 0 {
		return shapeErr("new", "shape has no dimensions")
	}
	n := 1
	for i, d := range shape {
		if d < 0 {
			return shapeErr("new", "shape %v has negative dimension %d", shape, i)
		}
		if d != 0 && n > math.MaxInt/2/d {
			return shapeErr("new", "shape %v is too large", shape)
		}
		n *= d
	}
	return nil
}

// CheckUpload validates the arguments of Backend.Upload: a valid shape whose
// element count equals len(data).
func CheckUpload(data []float32, shape []int) error {
	if err := CheckShape(shape); err != nil {
		return err
	}
	if n := prod(shape); n != len(data) {
		return shapeErr("upload", "data has %d elements, shape %v needs %d", len(data), shape, n)
	}
	return nil
}

// CheckDownload validates the arguments of Backend.Download: dst must have
// exactly t.Len() elements.
func CheckDownload(dst []float32, t Tensor) error {
	if err := need("download", "t", t); err != nil {
		return err
	}
	if len(dst) != t.Len() {
		return shapeErr("download", "dst has %d elements, t %v has %d", len(dst), t.Shape(), t.Len())
	}
	return nil
}

// CheckLinear validates out = act(x·wᵀ + b): x [..., K] (leading dims
// flattened into M), w [N, K], b nil or [N], out [..., N] with M rows (its
// leading dims must multiply to M). out must not be x. act must be a known
// Activation (ErrUnsupported otherwise).
func CheckLinear(out, x, w, b Tensor, act Activation) error {
	const op = "linear"
	if err := needMinRank(op, "out", out, 1); err != nil {
		return err
	}
	if err := needMinRank(op, "x", x, 1); err != nil {
		return err
	}
	if err := needRank(op, "w", w, 2); err != nil {
		return err
	}
	xs, ws, os := x.Shape(), w.Shape(), out.Shape()
	K, N := last(xs), ws[0]
	if ws[1] != K {
		return shapeErr(op, "x %v and w %v disagree on K (%d vs %d)", xs, ws, K, ws[1])
	}
	if !isNil(b) {
		if bs := b.Shape(); len(bs) != 1 || bs[0] != N {
			return shapeErr(op, "b %v does not match w %v: want [%d]", bs, ws, N)
		}
	}
	M := prod(xs[:len(xs)-1])
	if last(os) != N {
		return shapeErr(op, "out %v and w %v disagree on N (%d vs %d)", os, ws, last(os), N)
	}
	if m := prod(os[:len(os)-1]); m != M {
		return shapeErr(op, "out %v and x %v disagree on M (%d vs %d rows)", os, xs, m, M)
	}
	if act != ActNone && act != ActGELU {
		return fmt.Errorf("ops: %s: activation %v: %w", op, act, ErrUnsupported)
	}
	if err := noAlias(op, "out", out, "x", x); err != nil {
		return err
	}
	return noAlias(op, "out", out, "w", w)
}

// CheckAdd validates out = a + b: all three the same shape. out may alias a
// or b.
func CheckAdd(out, a, b Tensor) error {
	const op = "add"
	for _, p := range []struct {
		n string
		t Tensor
	}{{"out", out}, {"a", a}, {"b", b}} {
		if err := needMinRank(op, p.n, p.t, 1); err != nil {
			return err
		}
	}
	if err := sameShape(op, "a", a, "b", b); err != nil {
		return err
	}
	return sameShape(op, "out", out, "a", a)
}

// checkNormParams validates gamma and beta [D] against x [..., D].
func checkNormParams(op string, x, gamma, beta Tensor) error {
	if err := needRank(op, "gamma", gamma, 1); err != nil {
		return err
	}
	if err := needRank(op, "beta", beta, 1); err != nil {
		return err
	}
	xs := x.Shape()
	D := last(xs)
	if D < 1 {
		return shapeErr(op, "x %v has an empty last dimension", xs)
	}
	if g := gamma.Shape()[0]; g != D {
		return shapeErr(op, "gamma %v and x %v disagree on D (%d vs %d)", gamma.Shape(), xs, g, D)
	}
	if be := beta.Shape()[0]; be != D {
		return shapeErr(op, "beta %v and x %v disagree on D (%d vs %d)", beta.Shape(), xs, be, D)
	}
	return nil
}

// CheckLayerNorm validates LayerNorm: x, out [..., D] of the same shape with
// D ≥ 1; gamma, beta [D]. out may alias x.
func CheckLayerNorm(out, x, gamma, beta Tensor) error {
	const op = "layernorm"
	if err := needMinRank(op, "out", out, 1); err != nil {
		return err
	}
	if err := needMinRank(op, "x", x, 1); err != nil {
		return err
	}
	if err := sameShape(op, "out", out, "x", x); err != nil {
		return err
	}
	return checkNormParams(op, x, gamma, beta)
}

// CheckAddLayerNorm validates AddLayerNorm: x, residual, out and (when not
// nil) sum [..., D] of the same shape with D ≥ 1; gamma, beta [D]. out must
// not be sum (ErrUnsupported).
func CheckAddLayerNorm(sum, out, x, residual, gamma, beta Tensor) error {
	const op = "addlayernorm"
	if err := needMinRank(op, "out", out, 1); err != nil {
		return err
	}
	if err := needMinRank(op, "x", x, 1); err != nil {
		return err
	}
	if err := needMinRank(op, "residual", residual, 1); err != nil {
		return err
	}
	if err := sameShape(op, "x", x, "residual", residual); err != nil {
		return err
	}
	if err := sameShape(op, "out", out, "x", x); err != nil {
		return err
	}
	if !isNil(sum) {
		if err := sameShape(op, "sum", sum, "x", x); err != nil {
			return err
		}
		if err := noAlias(op, "out", out, "sum", sum); err != nil {
			return err
		}
	}
	return checkNormParams(op, x, gamma, beta)
}

// CheckGELU validates GELU: out and x of the same shape. out may alias x.
func CheckGELU(out, x Tensor) error {
	const op = "gelu"
	if err := needMinRank(op, "out", out, 1); err != nil {
		return err
	}
	if err := needMinRank(op, "x", x, 1); err != nil {
		return err
	}
	return sameShape(op, "out", out, "x", x)
}

// CheckAttention validates Attention: q [B, Lq, W], k and v [Bk, Lk, W] with
// Bk ∈ {1, B} and Lk ≥ 1, mask nil or [Bm, Lk] with Bm ∈ {1, B}, out
// [B, Lq, W], p.Heads ≥ 1 dividing W with W ≥ p.Heads. out must not be q, k,
// v or mask (ErrUnsupported).
func CheckAttention(out, q, k, v, mask Tensor, p AttentionParams) error {
	const op = "attention"
	for _, a := range []struct {
		n string
		t Tensor
	}{{"out", out}, {"q", q}, {"k", k}, {"v", v}} {
		if err := needRank(op, a.n, a.t, 3); err != nil {
			return err
		}
	}
	qs, ks, vs, os := q.Shape(), k.Shape(), v.Shape(), out.Shape()
	B, W := os[0], os[2]
	if qs[0] != B || qs[1] != os[1] {
		return shapeErr(op, "out %v and q %v disagree on batch or length", os, qs)
	}
	if ks[0] != vs[0] || ks[1] != vs[1] {
		return shapeErr(op, "k %v and v %v disagree on batch or length", ks, vs)
	}
	if ks[0] != 1 && ks[0] != B {
		return shapeErr(op, "k %v and q %v disagree on batch (%d vs %d; k batch must be 1 or %d)", ks, qs, ks[0], B, B)
	}
	if ks[1] < 1 {
		return shapeErr(op, "k %v has no keys", ks)
	}
	if p.Heads < 1 {
		return shapeErr(op, "heads %d, want at least 1", p.Heads)
	}
	if W < p.Heads || W%p.Heads != 0 {
		return shapeErr(op, "heads %d do not divide width %d of out %v", p.Heads, W, os)
	}
	for _, w := range []struct {
		n     string
		col   int
		shape []int
	}{{"q", p.QCol, qs}, {"k", p.KCol, ks}, {"v", p.VCol, vs}} {
		if w.col < 0 || w.col+W > w.shape[2] {
			return shapeErr(op, "%s %v: columns [%d, %d) of a width-%d attention are outside it", w.n, w.shape, w.col, w.col+W, W)
		}
	}
	if !isNil(mask) {
		if err := needRank(op, "mask", mask, 2); err != nil {
			return err
		}
		ms := mask.Shape()
		if ms[0] != 1 && ms[0] != B {
			return shapeErr(op, "mask %v and q %v disagree on batch (%d vs %d; mask batch must be 1 or %d)", ms, qs, ms[0], B, B)
		}
		if ms[1] != ks[1] {
			return shapeErr(op, "mask %v and k %v disagree on Lk (%d vs %d)", ms, ks, ms[1], ks[1])
		}
		if err := noAlias(op, "out", out, "mask", mask); err != nil {
			return err
		}
	}
	if err := noAlias(op, "out", out, "q", q); err != nil {
		return err
	}
	if err := noAlias(op, "out", out, "k", k); err != nil {
		return err
	}
	return noAlias(op, "out", out, "v", v)
}

// CheckPatchEmbed validates PatchEmbed: pixels [B, C, H, W] with H and W
// positive multiples of patch ≥ 1, w [D, C·patch·patch], b [D], cls [D], out
// [B, 1 + (H/patch)·(W/patch), D].
func CheckPatchEmbed(out, pixels, w, b, cls Tensor, patch int) error {
	const op = "patchembed"
	if err := needRank(op, "out", out, 3); err != nil {
		return err
	}
	if err := needRank(op, "pixels", pixels, 4); err != nil {
		return err
	}
	if err := needRank(op, "w", w, 2); err != nil {
		return err
	}
	if err := needRank(op, "b", b, 1); err != nil {
		return err
	}
	if err := needRank(op, "cls", cls, 1); err != nil {
		return err
	}
	if patch < 1 {
		return shapeErr(op, "patch %d, want at least 1", patch)
	}
	ps, ws := pixels.Shape(), w.Shape()
	B, C, H, W := ps[0], ps[1], ps[2], ps[3]
	if H < patch || W < patch || H%patch != 0 || W%patch != 0 {
		return shapeErr(op, "pixels %v: H %d and W %d must be positive multiples of patch %d", ps, H, W, patch)
	}
	D := ws[0]
	if want := C * patch * patch; ws[1] != want {
		return shapeErr(op, "w %v and pixels %v disagree on C·P·P (%d vs %d = %d·%d·%d)", ws, ps, ws[1], want, C, patch, patch)
	}
	if bs := b.Shape(); bs[0] != D {
		return shapeErr(op, "b %v and w %v disagree on D (%d vs %d)", bs, ws, bs[0], D)
	}
	if cs := cls.Shape(); cs[0] != D {
		return shapeErr(op, "cls %v and w %v disagree on D (%d vs %d)", cs, ws, cs[0], D)
	}
	want := []int{B, 1 + (H/patch)*(W/patch), D}
	if os := out.Shape(); !slices.Equal(os, want) {
		return shapeErr(op, "out %v, want %v for pixels %v, patch %d and w %v", os, want, ps, patch, ws)
	}
	return nil
}

// CheckGather validates Gather: table [V, D], out [len(ids), D] or any
// shape [..., D] whose leading dimensions multiply to len(ids) (so a batch
// of sequences [B, L, D] can be gathered in one call), every id in [0, V).
// out must not be table (ErrUnsupported).
func CheckGather(out, table Tensor, ids []int32) error {
	const op = "gather"
	if err := needMinRank(op, "out", out, 2); err != nil {
		return err
	}
	if err := needRank(op, "table", table, 2); err != nil {
		return err
	}
	ts, os := table.Shape(), out.Shape()
	if rows := prod(os[:len(os)-1]); rows != len(ids) {
		return shapeErr(op, "out %v has %d rows for %d ids", os, rows, len(ids))
	}
	if last(os) != ts[1] {
		return shapeErr(op, "out %v and table %v disagree on D (%d vs %d)", os, ts, last(os), ts[1])
	}
	for i, id := range ids {
		if id < 0 || int(id) >= ts[0] {
			return shapeErr(op, "ids[%d] = %d out of range [0, %d) of table %v", i, id, ts[0], ts)
		}
	}
	return noAlias(op, "out", out, "table", table)
}

// CheckAddPositions validates AddPositions: x, out [B, L, D] of the same
// shape, pos [P, D] with P ≥ L. out may alias x.
func CheckAddPositions(out, x, pos Tensor) error {
	const op = "addpositions"
	if err := needRank(op, "out", out, 3); err != nil {
		return err
	}
	if err := needRank(op, "x", x, 3); err != nil {
		return err
	}
	if err := needRank(op, "pos", pos, 2); err != nil {
		return err
	}
	if err := sameShape(op, "out", out, "x", x); err != nil {
		return err
	}
	xs, ps := x.Shape(), pos.Shape()
	if ps[1] != xs[2] {
		return shapeErr(op, "pos %v and x %v disagree on D (%d vs %d)", ps, xs, ps[1], xs[2])
	}
	if ps[0] < xs[1] {
		return shapeErr(op, "pos %v has %d positions, x %v needs %d", ps, ps[0], xs, xs[1])
	}
	return noAlias(op, "out", out, "pos", pos)
}

// CheckTakeRow validates TakeRow: x [B, L, D], out [B, D], 0 ≤ row < L. out
// must not be x (ErrUnsupported).
func CheckTakeRow(out, x Tensor, row int) error {
	const op = "takerow"
	if err := needRank(op, "x", x, 3); err != nil {
		return err
	}
	if err := need(op, "out", out); err != nil {
		return err
	}
	xs, os := x.Shape(), out.Shape()
	if !((len(os) == 2 && os[0] == xs[0] && os[1] == xs[2]) || (len(os) == 3 && os[0] == xs[0] && os[1] == 1 && os[2] == xs[2])) {
		return shapeErr(op, "out %v, want [%d %d] or [%d 1 %d] for x %v", os, xs[0], xs[2], xs[0], xs[2], xs)
	}
	if row < 0 || row >= xs[1] {
		return shapeErr(op, "row %d out of range [0, %d) of x %v", row, xs[1], xs)
	}
	return noAlias(op, "out", out, "x", x)
}

// CheckCopyRows validates CopyRows: x seen as [R, D] and out as [R', D]
// (leading dimensions flattened, the same last dimension D), with
// 0 ≤ start and start + R' ≤ R. out must not be x (ErrUnsupported).
func CheckCopyRows(out, x Tensor, start int) error {
	const op = "copyrows"
	if err := needMinRank(op, "out", out, 1); err != nil {
		return err
	}
	if err := needMinRank(op, "x", x, 1); err != nil {
		return err
	}
	xs, os := x.Shape(), out.Shape()
	D := last(xs)
	if last(os) != D {
		return shapeErr(op, "out %v and x %v disagree on D (%d vs %d)", os, xs, last(os), D)
	}
	R, Ro := prod(xs[:len(xs)-1]), prod(os[:len(os)-1])
	if start < 0 || start+Ro > R {
		return shapeErr(op, "rows [%d, %d) of out %v out of range [0, %d) of x %v", start, start+Ro, os, R, xs)
	}
	return noAlias(op, "out", out, "x", x)
}

// CheckL2Normalize validates L2Normalize: out and x [..., D] of the same
// shape. out may alias x.
func CheckL2Normalize(out, x Tensor) error {
	const op = "l2normalize"
	if err := needMinRank(op, "out", out, 1); err != nil {
		return err
	}
	if err := needMinRank(op, "x", x, 1); err != nil {
		return err
	}
	return sameShape(op, "out", out, "x", x)
}
