// Package ops defines the operations the BLIP graph is built from and the
// backends that run them.
//
// A Backend owns memory (Tensors) and runs operations on it. The model
// package composes a forward pass from these operations only, so the same
// model code runs on every backend. The CPU backend in this package is
// float32, parallel over cores, and doubles as the reference every other
// backend is checked against, op by op.
//
// Conventions shared by every operation:
//
//   - Tensors are dense and row-major. Shapes are written [outer, ..., inner].
//     A "row" is the innermost dimension; a matrix [M, K] has M rows of K.
//   - Every operation writes into a caller-provided output tensor; none
//     allocates its result. The output must not alias an input unless the
//     operation says so.
//   - Shapes are checked by the package-level functions in check.go before a
//     backend is called, so every backend rejects bad input with the same
//     error (wrapping ErrShape).
//   - Linear weights use PyTorch's layout: w is [N, K] (out features × in
//     features), and y = x·wᵀ + b.
package ops

import (
	"context"
	"errors"
	"fmt"
)

// DType is the element type of a Tensor.
type DType int

// Element types. Only F32 is computed on by the CPU backend; F16 and BF16 are
// reserved for device backends (weights converted once at load).
const (
	F32 DType = iota
	F16
	BF16
)

// String returns the safetensors spelling of the dtype.
func (d DType) String() string {
	switch d {
	case F32:
		return "F32"
	case F16:
		return "F16"
	case BF16:
		return "BF16"
	}
	return fmt.Sprintf("DType(%d)", int(d))
}

// Size returns the size in bytes of one element.
func (d DType) Size() int {
	if d == F32 {
		return 4
	}
	return 2
}

// Activation selects an elementwise function fused into the epilogue of
// Linear.
type Activation int

const (
	// ActNone applies nothing: y = x·wᵀ + b.
	ActNone Activation = iota
	// ActGELU applies the exact erf GELU, 0.5·y·(1 + erf(y/√2)), which is what
	// PyTorch's nn.functional.gelu and transformers' "gelu" compute.
	ActGELU
)

// String names the activation.
func (a Activation) String() string {
	switch a {
	case ActNone:
		return "none"
	case ActGELU:
		return "gelu"
	}
	return fmt.Sprintf("Activation(%d)", int(a))
}

// Errors shared by every backend.
var (
	// ErrShape reports operands whose shapes do not fit the operation.
	ErrShape = errors.New("ops: shape mismatch")
	// ErrBackend reports a tensor that belongs to another backend.
	ErrBackend = errors.New("ops: tensor from another backend")
	// ErrClosed reports use of a closed backend.
	ErrClosed = errors.New("ops: backend closed")
	// ErrUnsupported reports an operation or dtype a backend does not support.
	ErrUnsupported = errors.New("ops: unsupported")
)

// Tensor is a dense row-major array owned by one Backend. Its contents are
// only reachable through that backend (Upload, Download, and for the CPU
// backend, CPUData).
type Tensor interface {
	// Shape returns the dimensions, outermost first. Callers must not modify
	// the returned slice.
	Shape() []int
	// DType returns the element type.
	DType() DType
	// Len returns the number of elements (the product of Shape).
	Len() int
}

// AttentionParams describes a multi-head attention call.
type AttentionParams struct {
	// Heads is the number of heads; the output width W is Heads·HeadDim.
	Heads int
	// Scale multiplies QKᵀ before the mask is added; normally HeadDim^-0.5.
	Scale float32
	// QCol, KCol and VCol are the first columns of the q, k and v operands
	// inside their tensors: q's heads are columns [QCol, QCol+W) of each
	// row of q, and likewise for k and v. They let q, k and v be windows of
	// one fused projection (a [B, L, 3W] QKV output with columns 0, W, 2W)
	// or of every layer's keys and values in one tensor. Zero for separate
	// [B, L, W] tensors.
	QCol, KCol, VCol int
}

// Backend runs the operations of the BLIP graph. Implementations must be safe
// for use by one goroutine at a time; the model package serialises calls.
//
// Every method that computes takes a context; a backend checks it at least
// once per call and returns ctx.Err() (wrapped) when it is done.
type Backend interface {
	// Name identifies the backend ("cpu", "cuda", ...).
	Name() string

	// New allocates a zeroed F32 tensor of the given shape.
	New(shape ...int) (Tensor, error)
	// Upload returns a tensor holding data with the given shape. The CPU
	// backend may keep a reference to data instead of copying (so weights
	// mapped from a file are not copied): the caller must not modify data
	// while the tensor is alive.
	Upload(data []float32, shape ...int) (Tensor, error)
	// Download copies t into dst, which must have t.Len() elements.
	Download(ctx context.Context, dst []float32, t Tensor) error
	// Free releases a tensor. Freeing nil or a freed tensor does nothing.
	Free(t Tensor)
	// Close releases every resource of the backend.
	Close() error

	// Linear computes out = act(x·wᵀ + b).
	//   x: [M, K] (any leading dims flattened into M), w: [N, K],
	//   b: [N] or nil, out: [M, N].
	Linear(ctx context.Context, out, x, w, b Tensor, act Activation) error

	// Add computes out = a + b elementwise. out may alias a or b.
	Add(ctx context.Context, out, a, b Tensor) error

	// LayerNorm normalises each row of x over its last dimension:
	//   out = (x − mean)/sqrt(var + eps)·gamma + beta, var biased.
	//   x, out: [..., D]; gamma, beta: [D]. out may alias x.
	LayerNorm(ctx context.Context, out, x, gamma, beta Tensor, eps float32) error

	// AddLayerNorm computes s = x + residual and out = LayerNorm(s). When sum
	// is not nil, s is stored in it (the pre-LN residual stream of the vision
	// encoder needs both). x, residual, sum, out: [..., D]; gamma, beta: [D].
	// sum may alias x or residual; out may alias x or residual (not sum).
	AddLayerNorm(ctx context.Context, sum, out, x, residual, gamma, beta Tensor, eps float32) error

	// GELU computes out = 0.5·x·(1 + erf(x/√2)) elementwise. out may alias x.
	GELU(ctx context.Context, out, x Tensor) error

	// Attention computes, for every batch b and head h,
	//   out[b, :, h] = softmax(q[b, :, h]·k[b', :, h]ᵀ·scale + mask[b'', :])·v[b', :, h]
	// where out: [B, Lq, W] with W = H·Dh, q: [B, Lq, Wq], k: [Bk, Lk, Wk],
	// v: [Bk, Lk, Wv] with Bk ∈ {1, B} (Bk = 1 shares one key/value set, e.g.
	// one image's features, across the batch), mask: nil or [Bm, Lk] additive
	// key mask with Bm ∈ {1, B}. Head h of out owns columns [h·Dh, (h+1)·Dh);
	// head h of q columns QCol + [h·Dh, (h+1)·Dh) (Wq ≥ QCol + W), and so on
	// for k and v (which may be the same tensor, or q's).
	Attention(ctx context.Context, out, q, k, v, mask Tensor, p AttentionParams) error

	// PatchEmbed is the ViT stem: a P×P stride-P convolution with bias, as a
	// matrix multiply over patches, with the class token prepended.
	//   pixels: [B, C, H, W] (H, W multiples of P), w: [D, C·P·P] (the conv
	//   weight [D, C, P, P] flattened), b: [D], cls: [D],
	//   out: [B, 1 + (H/P)·(W/P), D]; token 1 + r·(W/P) + c is patch row r,
	//   column c; token 0 is cls.
	PatchEmbed(ctx context.Context, out, pixels, w, b, cls Tensor, patch int) error

	// Gather copies rows of table: out[i] = table[ids[i]], out seen as
	// [len(ids), D] (leading dimensions flattened, so [B, L, D] works).
	//   table: [V, D]. Every id must be in [0, V).
	Gather(ctx context.Context, out, table Tensor, ids []int32) error

	// AddPositions adds position rows: out[b, l] = x[b, l] + pos[l].
	//   x, out: [B, L, D]; pos: [P, D] with P ≥ L. out may alias x.
	AddPositions(ctx context.Context, out, x, pos Tensor) error

	// TakeRow copies one row of every sequence: out[b] = x[b, row].
	//   x: [B, L, D], out: [B, D] or [B, 1, D].
	TakeRow(ctx context.Context, out, x Tensor, row int) error

	// CopyRows copies consecutive rows: out = x[start : start+R'], with x
	// seen as [R, D] and out as [R', D] (leading dimensions flattened; D is
	// the last dimension of both). Used to pick one image's features out of
	// a batch.
	CopyRows(ctx context.Context, out, x Tensor, start int) error

	// L2Normalize scales each row to unit length: out = x / max(‖x‖₂, 1e-12),
	// as PyTorch's F.normalize. x, out: [..., D]. out may alias x.
	L2Normalize(ctx context.Context, out, x Tensor) error
}

// Capturer is implemented by backends that can record a sequence of
// operations once and replay it for the cost of one call (the CUDA backend:
// CUDA graphs). A replay reads and writes exactly the tensors the captured
// operations used, so the caller allocates its inputs and outputs before
// capturing, keeps them alive while the Replay is, and refreshes the inputs
// with Write before each Launch. Tensors allocated inside the capture live
// in memory owned by the Replay.
type Capturer interface {
	// Capture records the backend operations fn issues without running
	// them. Operations that move data from or to the host (Upload,
	// Download, Write, Gather's ids) fail inside fn.
	Capture(ctx context.Context, fn func() error) (Replay, error)
	// Write copies data (converted to t's dtype) into the existing tensor t,
	// in order with the operations queued before it.
	Write(ctx context.Context, t Tensor, data []float32) error
}

// Replay is a captured sequence of operations.
type Replay interface {
	// Launch runs the sequence once more, on the captured tensors.
	Launch(ctx context.Context) error
	// Close releases the recording and the memory of the tensors allocated
	// while capturing.
	Close() error
}
