package ops

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// CPU is the pure-Go float32 backend. It is the reference every other
// backend is checked against, and runs the whole model where there is no
// GPU.
//
// Operations run in parallel over a fixed number of worker goroutines (see
// WithWorkers), started per call. Every reduction has a fixed order, so a call
// gives bitwise-identical results when repeated, whatever the number of
// workers. The matrix multiply uses an AVX2/FMA assembly micro-kernel where
// the CPU has one (unless built with the purego tag) and a portable Go kernel
// otherwise; the two can differ in the last bits (fused multiply-add).
//
// Like every Backend, a CPU is meant for one goroutine at a time.
type CPU struct {
	workers  int
	kern     kernelFunc
	kernName string
	vec      bool // use the AVX2 softmax (bitwise equal to the Go code)
	closed   atomic.Bool
}

// CPUOption configures NewCPU.
type CPUOption func(*CPU)

// WithWorkers sets the number of goroutines an operation runs on; n < 1
// means runtime.GOMAXPROCS(0), the default.
func WithWorkers(n int) CPUOption {
	return func(c *CPU) {
		if n < 1 {
			n = runtime.GOMAXPROCS(0)
		}
		c.workers = n
	}
}

// withPureGo makes the backend use the portable micro-kernel even where an
// assembly one is available (tests compare the two).
func withPureGo() CPUOption {
	return func(c *CPU) { c.kern, c.kernName, c.vec = kernelGo, "go", false }
}

// NewCPU returns a CPU backend.
func NewCPU(opts ...CPUOption) *CPU {
	c := &CPU{workers: runtime.GOMAXPROCS(0)}
	if k := asmKernel(); k != nil {
		c.kern, c.kernName, c.vec = k, "avx2", true
	} else {
		c.kern, c.kernName = kernelGo, "go"
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Workers returns the number of goroutines an operation runs on.
func (c *CPU) Workers() int { return c.workers }

// Kernel names the matrix-multiply micro-kernel in use: "avx2" or "go".
func (c *CPU) Kernel() string { return c.kernName }

// cpuTensor is a CPU tensor: a shape and float32 storage.
type cpuTensor struct {
	shape []int
	n     int
	data  []float32
	owner *CPU
	freed bool
}

// Shape, DType and Len implement Tensor.
func (t *cpuTensor) Shape() []int { return t.shape }
func (t *cpuTensor) DType() DType { return F32 }
func (t *cpuTensor) Len() int     { return t.n }

// CPUData returns the storage of a tensor of a CPU backend (any CPU
// instance), row-major, len t.Len(). Writes through it change the tensor. It
// fails with ErrBackend for another backend's tensor and ErrClosed for a
// freed one.
func CPUData(t Tensor) ([]float32, error) {
	ct, ok := t.(*cpuTensor)
	if !ok || ct == nil {
		return nil, fmt.Errorf("ops: cpu: data of %T: %w", t, ErrBackend)
	}
	if ct.freed {
		return nil, fmt.Errorf("ops: cpu: data of a freed tensor: %w", ErrClosed)
	}
	return ct.data[:ct.n:ct.n], nil
}

// Name returns "cpu".
func (c *CPU) Name() string { return "cpu" }

// alive returns ErrClosed (wrapped) once Close has been called.
func (c *CPU) alive(op string) error {
	if c.closed.Load() {
		return fmt.Errorf("ops: cpu: %s: %w", op, ErrClosed)
	}
	return nil
}

// data returns the storage of t, which must be one of c's live tensors. A nil
// t gives nil.
func (c *CPU) data(op, name string, t Tensor) ([]float32, error) {
	if isNil(t) {
		return nil, nil
	}
	ct, ok := t.(*cpuTensor)
	if !ok || ct.owner != c {
		return nil, fmt.Errorf("ops: cpu: %s: %s is a %T not made by this backend: %w", op, name, t, ErrBackend)
	}
	if ct.freed {
		return nil, fmt.Errorf("ops: cpu: %s: %s was freed: %w", op, name, ErrClosed)
	}
	return ct.data[:ct.n:ct.n], nil
}

// enter is called at the start of every computing method: it checks that the
// backend is open and the context is not done.
func (c *CPU) enter(ctx context.Context, op string) error {
	if err := c.alive(op); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ops: cpu: %s: %w", op, err)
	}
	return nil
}

// operands resolves the storage of several tensors for op, in order.
func (c *CPU) operands(op string, names []string, ts ...Tensor) ([][]float32, error) {
	out := make([][]float32, len(ts))
	for i, t := range ts {
		d, err := c.data(op, names[i], t)
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

// New allocates a zeroed tensor.
func (c *CPU) New(shape ...int) (Tensor, error) {
	if err := c.alive("new"); err != nil {
		return nil, err
	}
	if err := CheckShape(shape); err != nil {
		return nil, err
	}
	n := prod(shape)
	return &cpuTensor{shape: append([]int(nil), shape...), n: n, data: make([]float32, n), owner: c}, nil
}

// Upload wraps data as a tensor without copying it: the tensor and the caller
// share storage, so data must not change while the tensor is in use.
func (c *CPU) Upload(data []float32, shape ...int) (Tensor, error) {
	if err := c.alive("upload"); err != nil {
		return nil, err
	}
	if err := CheckUpload(data, shape); err != nil {
		return nil, err
	}
	return &cpuTensor{shape: append([]int(nil), shape...), n: len(data), data: data, owner: c}, nil
}

// Download copies t into dst.
func (c *CPU) Download(ctx context.Context, dst []float32, t Tensor) error {
	const op = "download"
	if err := c.enter(ctx, op); err != nil {
		return err
	}
	if err := CheckDownload(dst, t); err != nil {
		return err
	}
	src, err := c.data(op, "t", t)
	if err != nil {
		return err
	}
	copy(dst, src)
	return nil
}

// Free drops the tensor's storage (for an uploaded tensor, the reference to
// the caller's slice). Freeing nil, a freed tensor or another backend's
// tensor does nothing.
func (c *CPU) Free(t Tensor) {
	if ct, ok := t.(*cpuTensor); ok && ct != nil && ct.owner == c {
		ct.data, ct.freed = nil, true
	}
}

// Close marks the backend closed: every later call fails with ErrClosed.
// Tensors keep their storage until they are garbage; CPUData still reads
// them. Closing twice is a no-op.
func (c *CPU) Close() error {
	c.closed.Store(true)
	return nil
}

// parallel runs fn(0), …, fn(n-1) on up to c.workers goroutines, handing out
// task indices in order. It stops handing out tasks once ctx is done and
// returns ctx.Err() in that case. Each task must write only its own outputs.
func (c *CPU) parallel(ctx context.Context, n int, fn func(i int)) error {
	w := min(c.workers, n)
	if w <= 1 {
		return serial(ctx, n, fn)
	}
	var (
		next    atomic.Int64
		stopped atomic.Bool
		wg      sync.WaitGroup
	)
	done := ctx.Done()
	for range w {
		wg.Go(func() {
			for {
				if done != nil {
					select {
					case <-done:
						stopped.Store(true)
						return
					default:
					}
				}
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
	if stopped.Load() {
		return ctx.Err()
	}
	return nil
}

// parallelRows runs fn over [0, rows) cut into contiguous chunks of at least
// grain rows (at most one chunk per worker and a few more for balance).
func (c *CPU) parallelRows(ctx context.Context, rows, grain int, fn func(lo, hi int)) error {
	if rows == 0 {
		return nil
	}
	chunks := min(4*c.workers, (rows+grain-1)/grain)
	if c.workers == 1 || chunks < 1 {
		chunks = 1
	}
	size := (rows + chunks - 1) / chunks
	return c.parallel(ctx, (rows+size-1)/size, func(i int) {
		fn(i*size, min((i+1)*size, rows))
	})
}

// wrapCtx prefixes a context error with the operation.
func wrapCtx(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("ops: cpu: %s: %w", op, err)
}

var _ Backend = (*CPU)(nil)
