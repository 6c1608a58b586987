package cuda

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// DevicePtr is a device address (CUdeviceptr). 0 is the null pointer.
type DevicePtr uint64

// Add returns p offset by n bytes.
func (p DevicePtr) Add(n int64) DevicePtr { return DevicePtr(int64(p) + n) }

// Info describes an opened device.
type Info struct {
	Driver        string // "cuda" or "cudaemu"
	Name          string // cuDeviceGetName
	Ordinal       int
	CC            [2]int // compute capability major, minor
	SMs           int    // multiprocessors
	DriverVersion int    // cuDriverGetVersion, e.g. 13000
	TotalMemory   uint64
	BLAS          string // the cuBLAS library opened ("" when none)
	BLAS16        bool   // cuBLAS multiplies float16/bfloat16 (cublasGemmStridedBatchedEx)
	BLASLt        bool   // cuBLASLt is open: Gemm with a Bias epilogue
}

// options of Open.
type options struct {
	ordinal  int
	noBLAS   bool
	memLimit uint64
}

// Option configures Open.
type Option func(*options)

// WithOrdinal picks the device (default 0).
func WithOrdinal(n int) Option { return func(o *options) { o.ordinal = n } }

// WithoutBLAS does not open cuBLAS (emulation: does not use the host GEMM),
// so matrix multiplies must go through the bk_gemm_nt kernels.
func WithoutBLAS() Option { return func(o *options) { o.noBLAS = true } }

// WithMemoryLimit caps the bytes this Device allocates (0: no cap beyond the
// device's own). Allocations past it fail with an *OutOfMemoryError.
func WithMemoryLimit(bytes uint64) Option { return func(o *options) { o.memLimit = bytes } }

// Device is an opened CUDA device with one stream, the kernels loaded, and
// cuBLAS when present. Safe for concurrent use (calls are serialised).
type Device struct {
	mu     sync.Mutex
	drv    driver
	info   Info
	limit  uint64
	used   uint64
	bufs   map[DevicePtr]uint64
	funcs  map[string]*kernel
	poison error
	closed bool

	ltFallbacks int              // GemmBias calls cuBLASLt could not run
	count       Counts           // work queued (Counts)
	capturing   bool             // the stream is being captured into a graph
	graphs      map[uintptr]bool // instantiated graphs, destroyed by Close
}

type kernel struct {
	fn    uintptr
	sizes []int
}

// Open opens a device. Without a usable driver the error wraps
// ErrUnavailable and says why.
func Open(opts ...Option) (*Device, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	drv := newDriver()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	info, err := drv.open(o.ordinal, o.noBLAS)
	if err != nil {
		return nil, err
	}
	return &Device{drv: drv, info: info, limit: o.memLimit, bufs: map[DevicePtr]uint64{}, funcs: map[string]*kernel{}}, nil
}

// Available reports whether a device can be opened, and if not, why.
func Available() error {
	d, err := Open()
	if err != nil {
		return err
	}
	return d.Close()
}

// Info describes the device.
func (d *Device) Info() Info { return d.info }

// HasBLAS reports whether Gemm is available.
func (d *Device) HasBLAS() bool { return d.info.BLAS != "" }

// enter locks the device and the OS thread and makes the context current.
// The returned function undoes it.
func (d *Device) enter(op string) (func(), error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, fmt.Errorf("cuda: %s: %w", op, ErrClosed)
	}
	if d.poison != nil {
		d.mu.Unlock()
		return nil, fmt.Errorf("cuda: %s: device unusable after an earlier error: %w", op, d.poison)
	}
	runtime.LockOSThread()
	if code := d.drv.makeCurrent(); code != 0 {
		err := d.errorLocked("set context", code)
		runtime.UnlockOSThread()
		d.mu.Unlock()
		return nil, err
	}
	return func() { runtime.UnlockOSThread(); d.mu.Unlock() }, nil
}

// errorLocked turns a code into an *Error and poisons the device on a sticky
// one.
func (d *Device) errorLocked(op string, code int) error {
	if code == 0 {
		return nil
	}
	e := &Error{Op: op, Code: code, Name: d.drv.errorName(code), Msg: d.drv.errorString(code), Sticky: sticky(code)}
	if e.Sticky && d.poison == nil {
		d.poison = e
	}
	return e
}

// Err returns the sticky error that made the device unusable, or nil.
func (d *Device) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.poison
}

// Alloc allocates bytes of device memory (not zeroed). Prefer an Arena.
func (d *Device) Alloc(op string, bytes uint64) (DevicePtr, error) {
	done, err := d.enter("alloc")
	if err != nil {
		return 0, err
	}
	defer done()
	return d.allocLocked(op, bytes)
}

func (d *Device) allocLocked(op string, bytes uint64) (DevicePtr, error) {
	if bytes == 0 {
		bytes = 1
	}
	oom := func(cause error) error {
		free, total, _ := d.drv.memGetInfo()
		if d.limit > 0 {
			total = d.limit
			free = min(free, d.limit-d.used)
		}
		return &OutOfMemoryError{Op: op, Asked: bytes, Free: free, Total: total, Err: cause}
	}
	if d.limit > 0 && bytes > d.limit-d.used {
		return 0, oom(nil)
	}
	p, code := d.drv.memAlloc(bytes)
	if code == cudaErrorOutOfMemory {
		return 0, oom(d.errorLocked("cuMemAlloc", code))
	}
	if code != 0 {
		return 0, d.errorLocked(op+": cuMemAlloc", code)
	}
	d.used += bytes
	d.bufs[DevicePtr(p)] = bytes
	return DevicePtr(p), nil
}

// Free releases memory from Alloc. Freeing 0 does nothing.
func (d *Device) Free(p DevicePtr) error {
	if p == 0 {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.freeLocked(p)
}

func (d *Device) freeLocked(p DevicePtr) error {
	n, ok := d.bufs[p]
	if !ok {
		return fmt.Errorf("cuda: free %#x: not allocated by this device: %w", uint64(p), ErrClosed)
	}
	delete(d.bufs, p)
	d.used -= n
	if d.closed {
		return nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if d.poison == nil {
		if code := d.drv.makeCurrent(); code != 0 {
			return d.errorLocked("free: set context", code)
		}
	}
	if code := d.drv.memFree(uint64(p)); code != 0 && d.poison == nil {
		return d.errorLocked("cuMemFree", code)
	}
	return nil
}

// MemInfo returns the free and total device memory (cuMemGetInfo), bounded
// by the memory limit when one is set.
func (d *Device) MemInfo() (free, total uint64, err error) {
	done, err := d.enter("meminfo")
	if err != nil {
		return 0, 0, err
	}
	defer done()
	free, total, code := d.drv.memGetInfo()
	if code != 0 {
		return 0, 0, d.errorLocked("cuMemGetInfo", code)
	}
	if d.limit > 0 {
		total, free = d.limit, min(free, d.limit-d.used)
	}
	return free, total, nil
}

// WriteFloat32 copies src to dst (synchronous).
func (d *Device) WriteFloat32(dst DevicePtr, src []float32) error {
	if len(src) == 0 {
		return nil
	}
	return d.htod(dst, unsafe.Pointer(unsafe.SliceData(src)), uint64(len(src))*4)
}

// WriteUint16 copies src (16-bit values, e.g. float16 bits) to dst
// (synchronous).
func (d *Device) WriteUint16(dst DevicePtr, src []uint16) error {
	if len(src) == 0 {
		return nil
	}
	return d.htod(dst, unsafe.Pointer(unsafe.SliceData(src)), uint64(len(src))*2)
}

// WriteInt32 copies src to dst (synchronous).
func (d *Device) WriteInt32(dst DevicePtr, src []int32) error {
	if len(src) == 0 {
		return nil
	}
	return d.htod(dst, unsafe.Pointer(unsafe.SliceData(src)), uint64(len(src))*4)
}

func (d *Device) htod(dst DevicePtr, src unsafe.Pointer, n uint64) error {
	done, err := d.enter("memcpy HtoD")
	if err != nil {
		return err
	}
	defer done()
	if d.capturing {
		return fmt.Errorf("cuda: memcpy HtoD: %w", ErrCapturing)
	}
	return d.errorLocked("cuMemcpyHtoD", d.drv.htod(uint64(dst), src, n))
}

// ReadFloat32 copies len(dst) floats from src, after the stream's work.
func (d *Device) ReadFloat32(ctx context.Context, dst []float32, src DevicePtr) error {
	return d.dtoh(ctx, unsafe.Pointer(unsafe.SliceData(dst)), src, uint64(len(dst))*4)
}

// ReadUint16 copies len(dst) 16-bit values from src, after the stream's
// work.
func (d *Device) ReadUint16(ctx context.Context, dst []uint16, src DevicePtr) error {
	return d.dtoh(ctx, unsafe.Pointer(unsafe.SliceData(dst)), src, uint64(len(dst))*2)
}

func (d *Device) dtoh(ctx context.Context, dst unsafe.Pointer, src DevicePtr, n uint64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cuda: memcpy DtoH: %w", err)
	}
	if n == 0 {
		return nil
	}
	done, err := d.enter("memcpy DtoH")
	if err != nil {
		return err
	}
	defer done()
	if d.capturing {
		return fmt.Errorf("cuda: memcpy DtoH: %w", ErrCapturing)
	}
	if code := d.drv.synchronize(); code != 0 {
		return d.errorLocked("cuStreamSynchronize", code)
	}
	return d.errorLocked("cuMemcpyDtoH", d.drv.dtoh(dst, uint64(src), n))
}

// Copy copies n bytes between device buffers.
func (d *Device) Copy(dst, src DevicePtr, n uint64) error {
	if n == 0 {
		return nil
	}
	done, err := d.enter("memcpy DtoD")
	if err != nil {
		return err
	}
	defer done()
	d.count.Copies++
	return d.errorLocked("cuMemcpyDtoD", d.drv.dtod(uint64(dst), uint64(src), n))
}

// Memset sets n bytes at dst to v.
func (d *Device) Memset(dst DevicePtr, v byte, n uint64) error {
	if n == 0 {
		return nil
	}
	done, err := d.enter("memset")
	if err != nil {
		return err
	}
	defer done()
	d.count.Memsets++
	return d.errorLocked("cuMemsetD8", d.drv.memsetD8(uint64(dst), v, n))
}

// Arg is one kernel parameter, built with Ptr, Int, Float or Int64.
type Arg struct {
	bits uint64
	size int
}

// Ptr is a pointer parameter (8 bytes).
func Ptr(p DevicePtr) Arg { return Arg{uint64(p), 8} }

// Int is an int parameter (4 bytes). It panics outside int32.
func Int(v int) Arg {
	if int(int32(v)) != v {
		panic(fmt.Sprintf("cuda: int kernel parameter %d out of range", v))
	}
	return Arg{uint64(uint32(int32(v))), 4}
}

// Float is a float parameter (4 bytes).
func Float(v float32) Arg { return Arg{uint64(*(*uint32)(unsafe.Pointer(&v))), 4} }

// Int64 is a long long parameter (8 bytes).
func Int64(v int64) Arg { return Arg{uint64(v), 8} }

// Dim3 is a grid or block shape.
type Dim3 [3]uint32

// Launch runs a kernel of the embedded module by name on the device's
// stream. The arguments must match the kernel's parameters (checked against
// the real signature under emulation).
func (d *Device) Launch(ctx context.Context, name string, grid, block Dim3, args ...Arg) error {
	op := "launch " + name
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cuda: %s: %w", op, err)
	}
	done, err := d.enter(op)
	if err != nil {
		return err
	}
	defer done()
	k, ok := d.funcs[name]
	if !ok {
		fn, sizes, code := d.drv.function(name)
		if code != 0 {
			return d.errorLocked(op+": cuModuleGetFunction", code)
		}
		k = &kernel{fn: fn, sizes: sizes}
		d.funcs[name] = k
	}
	if k.sizes != nil {
		if len(k.sizes) != len(args) {
			return fmt.Errorf("cuda: %s: %d arguments for %d parameters", op, len(args), len(k.sizes))
		}
		for i, a := range args {
			if a.size != k.sizes[i] {
				return fmt.Errorf("cuda: %s: argument %d has %d bytes, the parameter %d", op, i, a.size, k.sizes[i])
			}
		}
	}
	var vals [32]uint64
	if len(args) > len(vals) {
		return fmt.Errorf("cuda: %s: %d arguments, at most %d", op, len(args), len(vals))
	}
	for i, a := range args {
		vals[i] = a.bits
	}
	d.count.Kernels++
	return d.errorLocked(op, d.drv.launch(k.fn, grid, block, vals[:len(args)]))
}

// ElemType is the element type of a Gemm's A, B and C.
type ElemType int

// Element types: Float32 (the zero value), and the 16-bit storage types,
// multiplied with float32 accumulation.
const (
	Float32 ElemType = iota
	Float16
	BFloat16
)

// Gemm is a batched row-major C = A·Bᵀ: for every batch i,
// C_i[M, N] = A_i[M, K]·B_i[N, K]ᵀ, rows of A, B and C Lda, Ldb, Ldc elements
// apart, batch i at element offsets i·StrideA, i·StrideB, i·StrideC (stride
// 0 broadcasts). C is overwritten (β = 0). For Float32 no TF32: float32 FMA
// throughout. For Float16 and BFloat16, A, B and C all have that type; the
// products are accumulated in float32 (tensor cores) and C rounded once.
//
// Bias, when not 0, points to N values of the element type added to every
// row of C inside the GEMM (the cuBLASLt bias epilogue, before C is rounded):
// only with Batch 1, and only where Info.BLASLt (GemmBias). TanhGELU then
// applies cuBLASLt's GELU after the bias, the tanh form
// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), not the erf GELU.
type Gemm struct {
	Type                      ElemType
	Bias                      DevicePtr
	TanhGELU                  bool
	C, A, B                   DevicePtr
	M, N, K                   int
	Lda, Ldb, Ldc             int
	StrideA, StrideB, StrideC int64
	Batch                     int
}

// Gemm runs g through cuBLAS (emulation: a host reference GEMM). It fails
// with ErrNoBLAS when the device has none.
func (d *Device) Gemm(ctx context.Context, g Gemm) error {
	const op = "gemm"
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cuda: %s: %w", op, err)
	}
	if !d.HasBLAS() {
		return fmt.Errorf("cuda: %s: %w", op, ErrNoBLAS)
	}
	if g.M <= 0 || g.N <= 0 || g.K < 0 || g.Batch <= 0 || g.Lda < max(g.K, 1) || g.Ldb < max(g.K, 1) || g.Ldc < g.N {
		return fmt.Errorf("cuda: %s: bad shape M=%d N=%d K=%d lda=%d ldb=%d ldc=%d batch=%d", op, g.M, g.N, g.K, g.Lda, g.Ldb, g.Ldc, g.Batch)
	}
	done, err := d.enter(op)
	if err != nil {
		return err
	}
	defer done()
	if g.Bias != 0 {
		return fmt.Errorf("cuda: %s: a bias needs GemmBias", op)
	}
	call := "cublasSgemmStridedBatched"
	if g.Type != Float32 {
		if !d.info.BLAS16 {
			return fmt.Errorf("cuda: %s: 16-bit operands: %w", op, ErrNoBLAS)
		}
		call = "cublasGemmStridedBatchedEx"
	}
	d.count.GEMMs++
	return d.errorLocked(call, d.drv.gemm(&g))
}

// GemmBias runs g, whose Bias is set and Batch is 1, through cuBLASLt with
// the bias epilogue. It reports false, having done nothing, when cuBLASLt is
// not open or has no algorithm for the shape (the caller then adds the bias
// itself).
func (d *Device) GemmBias(ctx context.Context, g Gemm) (bool, error) {
	const op = "gemm+bias"
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("cuda: %s: %w", op, err)
	}
	if !d.info.BLASLt {
		return false, nil
	}
	if g.Bias == 0 || g.Batch != 1 || g.M <= 0 || g.N <= 0 || g.K < 0 || g.Lda < max(g.K, 1) || g.Ldb < max(g.K, 1) || g.Ldc < g.N {
		return false, fmt.Errorf("cuda: %s: bad shape M=%d N=%d K=%d lda=%d ldb=%d ldc=%d batch=%d bias=%#x", op, g.M, g.N, g.K, g.Lda, g.Ldb, g.Ldc, g.Batch, g.Bias)
	}
	done, err := d.enter(op)
	if err != nil {
		return false, err
	}
	defer done()
	code := d.drv.gemm(&g)
	if code != errNoEpilogue {
		d.count.GEMMs++
	}
	if code == errNoEpilogue {
		d.ltFallbacks++
		return false, nil
	}
	return true, d.errorLocked("cublasLtMatmul", code)
}

// Counts are the work a Device has queued on its stream (captured work
// included: a capture queues it once, each replay is one graph launch).
type Counts struct {
	Kernels, GEMMs, Copies, Memsets, Graphs int
}

// Calls is the number of driver and cuBLAS calls that queued work: what a
// launch-bound workload pays for.
func (c Counts) Calls() int { return c.Kernels + c.GEMMs + c.Copies + c.Memsets + c.Graphs }

// Counts returns the work queued so far.
func (d *Device) Counts() Counts {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.count
}

// LtFallbacks counts the GemmBias calls cuBLASLt had no algorithm for.
func (d *Device) LtFallbacks() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ltFallbacks
}

// Synchronize waits for the stream's work.
func (d *Device) Synchronize(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cuda: synchronize: %w", err)
	}
	done, err := d.enter("synchronize")
	if err != nil {
		return err
	}
	defer done()
	if d.capturing {
		return fmt.Errorf("cuda: synchronize: %w", ErrCapturing)
	}
	return d.errorLocked("cuStreamSynchronize", d.drv.synchronize())
}

// Event is a CUDA event on the device's stream, for timing.
type Event struct {
	d *Device
	e uintptr
}

// NewEvent creates an event. Close it when done.
func (d *Device) NewEvent() (*Event, error) {
	done, err := d.enter("event create")
	if err != nil {
		return nil, err
	}
	defer done()
	e, code := d.drv.eventCreate()
	if code != 0 {
		return nil, d.errorLocked("cuEventCreate", code)
	}
	return &Event{d: d, e: e}, nil
}

// Record records the event on the stream.
func (e *Event) Record() error {
	done, err := e.d.enter("event record")
	if err != nil {
		return err
	}
	defer done()
	return e.d.errorLocked("cuEventRecord", e.d.drv.eventRecord(e.e))
}

// Synchronize waits for the event.
func (e *Event) Synchronize() error {
	done, err := e.d.enter("event synchronize")
	if err != nil {
		return err
	}
	defer done()
	return e.d.errorLocked("cuEventSynchronize", e.d.drv.eventSynchronize(e.e))
}

// Elapsed returns the milliseconds between start and e (both recorded and
// completed).
func (e *Event) Elapsed(start *Event) (float32, error) {
	done, err := e.d.enter("event elapsed")
	if err != nil {
		return 0, err
	}
	defer done()
	ms, code := e.d.drv.eventElapsed(start.e, e.e)
	return ms, e.d.errorLocked("cuEventElapsedTime", code)
}

// Close destroys the event.
func (e *Event) Close() error {
	if e.e == 0 {
		return nil
	}
	e.d.mu.Lock()
	defer e.d.mu.Unlock()
	if !e.d.closed {
		e.d.drv.eventDestroy(e.e)
	}
	e.e = 0
	return nil
}

// Close frees every buffer still allocated, unloads the kernels, destroys
// the stream and cuBLAS handle and releases the primary context. Closing
// twice does nothing.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var errs []error
	if d.poison == nil {
		d.drv.makeCurrent()
		if d.capturing {
			if exec, code := d.drv.endCapture(); code == 0 {
				d.drv.graphDestroy(exec)
			}
			d.capturing = false
		}
		for g := range d.graphs {
			d.drv.graphDestroy(g)
		}
		for p := range d.bufs {
			if code := d.drv.memFree(uint64(p)); code != 0 {
				errs = append(errs, d.errorLocked("close: cuMemFree", code))
			}
		}
	}
	d.bufs = nil
	d.graphs = nil
	d.used = 0
	d.closed = true
	d.drv.close()
	return errors.Join(errs...)
}

// HasGraphs reports whether the driver supports CUDA graphs (stream
// capture and replay).
func (d *Device) HasGraphs() bool { return d.drv.hasGraphs() }

// BeginCapture starts recording the stream's work into a graph instead of
// running it (cuStreamBeginCapture, relaxed mode): kernel launches, GEMMs,
// device-to-device copies and memsets. Copies from or to the host and
// synchronisation fail with ErrCapturing until EndCapture or AbortCapture.
func (d *Device) BeginCapture() error {
	done, err := d.enter("begin capture")
	if err != nil {
		return err
	}
	defer done()
	if !d.drv.hasGraphs() {
		return fmt.Errorf("cuda: begin capture: the driver has no CUDA graph API: %w", ErrUnavailable)
	}
	if d.capturing {
		return fmt.Errorf("cuda: begin capture: %w", ErrCapturing)
	}
	if err := d.errorLocked("cuStreamBeginCapture", d.drv.beginCapture()); err != nil {
		return err
	}
	d.capturing = true
	return nil
}

// EndCapture stops recording and instantiates the graph. Nothing recorded
// has run yet: Launch runs it.
func (d *Device) EndCapture() (*Graph, error) {
	done, err := d.enter("end capture")
	if err != nil {
		return nil, err
	}
	defer done()
	if !d.capturing {
		return nil, fmt.Errorf("cuda: end capture: not capturing")
	}
	d.capturing = false
	exec, code := d.drv.endCapture()
	if err := d.errorLocked("cuStreamEndCapture/cuGraphInstantiate", code); err != nil {
		return nil, err
	}
	if d.graphs == nil {
		d.graphs = map[uintptr]bool{}
	}
	d.graphs[exec] = true
	return &Graph{d: d, exec: exec}, nil
}

// AbortCapture ends a capture and discards what was recorded (after an
// error half-way through). It does nothing when not capturing.
func (d *Device) AbortCapture() {
	done, err := d.enter("abort capture")
	if err != nil {
		d.mu.Lock()
		d.capturing = false
		d.mu.Unlock()
		return
	}
	defer done()
	if !d.capturing {
		return
	}
	d.capturing = false
	if exec, code := d.drv.endCapture(); code == 0 && exec != 0 {
		d.drv.graphDestroy(exec)
	}
}

// Graph is an instantiated CUDA graph of the device's work, replayed by
// Launch on the device's stream. It reads and writes the same device
// addresses every time, so whoever captured it keeps those buffers alive
// (and puts fresh inputs in them) until Close.
type Graph struct {
	d    *Device
	exec uintptr
}

// Launch queues one replay of the graph on the stream.
func (g *Graph) Launch(ctx context.Context) error {
	const op = "graph launch"
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cuda: %s: %w", op, err)
	}
	done, err := g.d.enter(op)
	if err != nil {
		return err
	}
	defer done()
	if g.exec == 0 || !g.d.graphs[g.exec] {
		return fmt.Errorf("cuda: %s: %w", op, ErrClosed)
	}
	if g.d.capturing {
		return fmt.Errorf("cuda: %s: %w", op, ErrCapturing)
	}
	g.d.count.Graphs++
	return g.d.errorLocked("cuGraphLaunch", g.d.drv.graphLaunch(g.exec))
}

// Close destroys the graph. Closing twice, or after the device closed, does
// nothing.
func (g *Graph) Close() error {
	g.d.mu.Lock()
	defer g.d.mu.Unlock()
	if g.exec != 0 && !g.d.closed && g.d.graphs[g.exec] {
		runtime.LockOSThread()
		g.d.drv.makeCurrent()
		g.d.drv.graphDestroy(g.exec)
		runtime.UnlockOSThread()
		delete(g.d.graphs, g.exec)
	}
	g.exec = 0
	return nil
}
