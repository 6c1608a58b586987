package ops

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/blipcuda/blipcuda/cuda"
)

// CUDA is the GPU backend: every operation is one or a few launches of the
// kernels of kernels/ (see kernels/README.md, "How each ops.Backend method
// maps onto the kernels") on a cuda.Device, matrix multiplies through cuBLAS
// (or the bk_gemm_nt kernels without it).
//
// Memory: tensors from Upload (weights, and the per-call inputs the model
// uploads) live in the weights arena, tensors from New (activations) in the
// activation arena. Both are first-fit sub-allocators over a few large
// cuMemAlloc chunks; after the first forward pass the activation arena has
// grown to its high-water mark and later passes of the same shapes call the
// driver no more (ArenaStats shows it). Scratch space of an operation
// (PatchEmbed's im2col matrix, Gather's ids) comes from the activation arena
// too.
//
// Precision: every tensor of a backend has its dtype (WithDType): F32 (the
// default, for parity with transformers' float32), F16 or BF16. Upload and
// Download convert from and to float32 on the host (round to nearest even),
// so weights are converted once, at load; every kernel then reads and writes
// the 16-bit type and computes in float32 (matrix multiplies accumulate in
// float32 on tensor cores; LayerNorm and softmax statistics are float32).
//
// Like every Backend, a CUDA is meant for one goroutine at a time; the
// underlying Device serialises its own calls.
type CUDA struct {
	dev        *cuda.Device
	weights    *cuda.Arena
	acts       *cuda.Arena
	dtype      DType
	kernelGEMM bool
	// simtAttention keeps 16-bit attention off the tensor-core kernel.
	simtAttention bool
	// noLt keeps biases out of cuBLASLt's epilogue.
	noLt bool
	// capturing is set while Capture records; acts is then the graph's
	// private arena.
	capturing bool
	// prof collects per-operation GPU times (cuda_profile.go); nil when off.
	prof   *profiler
	closed atomic.Bool
}

// CUDAOption configures NewCUDA.
type CUDAOption func(*cudaConfig)

type cudaConfig struct {
	devOpts       []cuda.Option
	dtype         DType
	kernelGEMM    bool
	simtAttention bool
	noLt          bool
}

// WithoutBiasEpilogue adds Linear biases in a separate kernel after cuBLAS
// instead of in cuBLASLt's bias epilogue; for tests and comparisons.
func WithoutBiasEpilogue() CUDAOption {
	return func(c *cudaConfig) { c.noLt = true }
}

// WithSIMTAttention runs 16-bit attention on the CUDA-core kernels
// (bk_attention_dXX) instead of the tensor-core one; for tests and
// comparisons.
func WithSIMTAttention() CUDAOption {
	return func(c *cudaConfig) { c.simtAttention = true }
}

// WithDType sets the element type of every tensor of the backend: F32 (the
// default), F16 or BF16.
func WithDType(d DType) CUDAOption {
	return func(c *cudaConfig) { c.dtype = d }
}

// WithKernelGEMM routes every matrix multiply through the bk_gemm_nt
// kernels instead of cuBLAS (or, under emulation, the host reference GEMM).
func WithKernelGEMM() CUDAOption {
	return func(c *cudaConfig) { c.kernelGEMM = true }
}

// WithDeviceOptions passes options to cuda.Open (ordinal, memory limit, ...).
func WithDeviceOptions(opts ...cuda.Option) CUDAOption {
	return func(c *cudaConfig) { c.devOpts = append(c.devOpts, opts...) }
}

// NewCUDA opens a CUDA device and returns a backend on it. Without a usable
// device the error wraps cuda.ErrUnavailable and says why.
func NewCUDA(opts ...CUDAOption) (*CUDA, error) {
	var cfg cudaConfig
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.dtype != F32 && cfg.dtype != F16 && cfg.dtype != BF16 {
		return nil, fmt.Errorf("ops: cuda: dtype %v: %w", cfg.dtype, ErrUnsupported)
	}
	dev, err := cuda.Open(cfg.devOpts...)
	if err != nil {
		return nil, fmt.Errorf("ops: %w", err)
	}
	return &CUDA{
		dev:           dev,
		weights:       dev.NewArena("weights", 64<<20),
		acts:          dev.NewArena("activations", 64<<20),
		dtype:         cfg.dtype,
		simtAttention: cfg.simtAttention,
		noLt:          cfg.noLt,
		kernelGEMM:    cfg.kernelGEMM || !dev.HasBLAS() || (cfg.dtype != F32 && !dev.Info().BLAS16),
	}, nil
}

// Name returns "cuda".
func (c *CUDA) Name() string { return "cuda" }

// DType returns the element type of the backend's tensors.
func (c *CUDA) DType() DType { return c.dtype }

// kernel returns the name of op's kernel for the backend's dtype:
// kernel("bk_add") is "bk_add_f32", "bk_add_f16" or "bk_add_bf16".
func (c *CUDA) kernel(op string) string {
	switch c.dtype {
	case F16:
		return op + "_f16"
	case BF16:
		return op + "_bf16"
	}
	return op + "_f32"
}

// gemmType is the cuda.Gemm element type of the backend's dtype.
func (c *CUDA) gemmType() cuda.ElemType {
	switch c.dtype {
	case F16:
		return cuda.Float16
	case BF16:
		return cuda.BFloat16
	}
	return cuda.Float32
}

// bytes is the size in bytes of n elements.
func (c *CUDA) bytes(n int) uint64 { return uint64(n) * uint64(c.dtype.Size()) }

// Device returns the underlying device.
func (c *CUDA) Device() *cuda.Device { return c.dev }

// GEMM names the matrix-multiply path: the cuBLAS library (with "+ Lt
// bias epilogue" when cuBLASLt adds the biases), or "bk_gemm_nt".
func (c *CUDA) GEMM() string {
	if c.kernelGEMM {
		return "bk_gemm_nt"
	}
	if c.dev.Info().BLASLt && !c.noLt {
		return c.dev.Info().BLAS + " + Lt bias epilogue"
	}
	return c.dev.Info().BLAS
}

// ArenaStats returns the counters of the weights and activation arenas.
func (c *CUDA) ArenaStats() (weights, activations cuda.ArenaStats) {
	return c.weights.Stats(), c.acts.Stats()
}

// cudaTensor is a tensor in device memory.
type cudaTensor struct {
	shape []int
	n     int
	dtype DType
	ptr   cuda.DevicePtr // 0 for an empty tensor
	arena *cuda.Arena
	owner *CUDA
	freed bool
}

// Shape, DType and Len implement Tensor.
func (t *cudaTensor) Shape() []int { return t.shape }
func (t *cudaTensor) DType() DType { return t.dtype }
func (t *cudaTensor) Len() int     { return t.n }

func (c *CUDA) alive(op string) error {
	if c.closed.Load() {
		return fmt.Errorf("ops: cuda: %s: %w", op, ErrClosed)
	}
	return nil
}

func (c *CUDA) enter(ctx context.Context, op string) error {
	if err := c.alive(op); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ops: cuda: %s: %w", op, err)
	}
	return nil
}

// ptr returns the device address of one of c's live tensors (0 for nil).
func (c *CUDA) ptr(op, name string, t Tensor) (cuda.DevicePtr, error) {
	if isNil(t) {
		return 0, nil
	}
	ct, ok := t.(*cudaTensor)
	if !ok || ct.owner != c {
		return 0, fmt.Errorf("ops: cuda: %s: %s is a %T not made by this backend: %w", op, name, t, ErrBackend)
	}
	if ct.freed {
		return 0, fmt.Errorf("ops: cuda: %s: %s was freed: %w", op, name, ErrClosed)
	}
	return ct.ptr, nil
}

// ptrs resolves several tensors in order.
func (c *CUDA) ptrs(op string, names []string, ts ...Tensor) ([]cuda.DevicePtr, error) {
	out := make([]cuda.DevicePtr, len(ts))
	for i, t := range ts {
		p, err := c.ptr(op, names[i], t)
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

// alloc makes a tensor in arena a.
func (c *CUDA) alloc(op string, a *cuda.Arena, shape []int) (*cudaTensor, error) {
	n := prod(shape)
	t := &cudaTensor{shape: append([]int(nil), shape...), n: n, dtype: c.dtype, arena: a, owner: c}
	if n == 0 {
		return t, nil
	}
	p, err := a.Alloc(c.bytes(n))
	if err != nil {
		return nil, fmt.Errorf("ops: cuda: %s %v: %w", op, shape, err)
	}
	t.ptr = p
	return t, nil
}

// New allocates a zeroed tensor (of the backend's dtype) in the activation
// arena.
func (c *CUDA) New(shape ...int) (Tensor, error) {
	const op = "new"
	if err := c.alive(op); err != nil {
		return nil, err
	}
	if err := CheckShape(shape); err != nil {
		return nil, err
	}
	t, err := c.alloc(op, c.acts, shape)
	if err != nil {
		return nil, err
	}
	if err := c.dev.Memset(t.ptr, 0, c.bytes(t.n)); err != nil {
		c.Free(t)
		return nil, fmt.Errorf("ops: cuda: %s: %w", op, err)
	}
	return t, nil
}

// Upload copies data into a new tensor in the weights arena, rounded to the
// backend's dtype.
func (c *CUDA) Upload(data []float32, shape ...int) (Tensor, error) {
	const op = "upload"
	if err := c.alive(op); err != nil {
		return nil, err
	}
	if err := CheckUpload(data, shape); err != nil {
		return nil, err
	}
	t, err := c.alloc(op, c.weights, shape)
	if err != nil {
		return nil, err
	}
	if err := c.write(t.ptr, data); err != nil {
		c.Free(t)
		return nil, fmt.Errorf("ops: cuda: %s: %w", op, err)
	}
	return t, nil
}

// write copies data to p, converted to the backend's dtype.
func (c *CUDA) write(p cuda.DevicePtr, data []float32) error {
	if c.dtype == F32 {
		return c.dev.WriteFloat32(p, data)
	}
	bits := make([]uint16, len(data))
	encode16(bits, data, c.dtype)
	return c.dev.WriteUint16(p, bits)
}

// Download copies t into dst (as float32) after the work queued before it.
func (c *CUDA) Download(ctx context.Context, dst []float32, t Tensor) error {
	const op = "download"
	if err := c.enter(ctx, op); err != nil {
		return err
	}
	if err := CheckDownload(dst, t); err != nil {
		return err
	}
	p, err := c.ptr(op, "t", t)
	if err != nil {
		return err
	}
	if c.dtype == F32 {
		return c.wrap(op, c.dev.ReadFloat32(ctx, dst, p))
	}
	bits := make([]uint16, len(dst))
	if err := c.dev.ReadUint16(ctx, bits, p); err != nil {
		return c.wrap(op, err)
	}
	decode16(dst, bits, c.dtype)
	return nil
}

// Free returns a tensor's memory to its arena. Freeing nil, a freed tensor
// or another backend's tensor does nothing.
func (c *CUDA) Free(t Tensor) {
	ct, ok := t.(*cudaTensor)
	if !ok || ct == nil || ct.owner != c || ct.freed {
		return
	}
	ct.freed = true
	if ct.ptr != 0 {
		ct.arena.Free(ct.ptr)
	}
	ct.ptr = 0
}

// Close frees both arenas and closes the device. Later calls fail with
// ErrClosed. Closing twice does nothing.
func (c *CUDA) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	if c.prof != nil {
		c.StopProfile(context.Background()) //nolint:errcheck // closing anyway
	}
	return errors.Join(c.weights.Close(), c.acts.Close(), c.dev.Close())
}

// wrap prefixes a device error with the operation.
func (c *CUDA) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("ops: cuda: %s: %w", op, err)
}

var _ Backend = (*CUDA)(nil)
