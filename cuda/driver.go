package cuda

import "unsafe"

// driver is what the three builds (real driver, emulation, no cgo) provide.
// Methods return a CUresult-style code (0 = success); the Device turns codes
// into errors with errorName/errorString. Methods are only called with the
// device's mutex held and the goroutine locked to its thread, after
// makeCurrent.
type driver interface {
	// kind names the implementation: "cuda" or "cudaemu".
	kind() string
	// open initialises the driver, picks device ordinal and creates the
	// stream, loads the kernels and (unless noBLAS) cuBLAS.
	open(ordinal int, noBLAS bool) (Info, error)
	makeCurrent() int
	close()

	errorName(code int) string
	errorString(code int) string

	memAlloc(n uint64) (uint64, int)
	memFree(p uint64) int
	memGetInfo() (free, total uint64, code int)
	htod(dst uint64, src unsafe.Pointer, n uint64) int
	dtoh(dst unsafe.Pointer, src uint64, n uint64) int
	dtod(dst, src uint64, n uint64) int
	memsetD8(dst uint64, v byte, n uint64) int

	// function resolves a kernel by name; sizes are its parameters' byte
	// sizes when the driver knows them (emulation), else nil.
	function(name string) (fn uintptr, sizes []int, code int)
	// launch runs fn; vals[i] holds parameter i in its low size bytes.
	launch(fn uintptr, grid, block [3]uint32, vals []uint64) int
	// gemm runs C = A·Bᵀ (row-major, batched by strides) through cuBLAS or
	// its stand-in.
	gemm(g *Gemm) int
	synchronize() int

	// CUDA graphs: hasGraphs reports support; beginCapture starts
	// recording the stream's work (relaxed mode), endCapture stops and
	// instantiates it, graphLaunch replays an instance on the stream.
	hasGraphs() bool
	beginCapture() int
	endCapture() (exec uintptr, code int)
	graphLaunch(exec uintptr) int
	graphDestroy(exec uintptr)

	eventCreate() (uintptr, int)
	eventRecord(e uintptr) int
	eventSynchronize(e uintptr) int
	eventElapsed(start, end uintptr) (float32, int)
	eventDestroy(e uintptr)
}
