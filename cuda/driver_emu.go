//go:build cgo && cudaemu

package cuda

/*
#cgo CXXFLAGS: -std=c++20 -O2 -fno-strict-aliasing -pthread
#cgo LDFLAGS: -pthread -lm
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <stdint.h>
#include <math.h>
#include "../kernels/emu/bkemu.h"

static int bk_emu_launch(const char* name, unsigned gx, unsigned gy, unsigned gz,
                         unsigned bx, unsigned by, unsigned bz, unsigned long long* vals, int n) {
	void* ptrs[32];
	for (int i = 0; i < n && i < 32; i++) ptrs[i] = &vals[i];
	return bkemu_launch(name, gx, gy, gz, bx, by, bz, 0, n ? ptrs : NULL);
}

static void* bk_emu_alloc(size_t n) {
	void* p = NULL;
	if (posix_memalign(&p, 256, n) != 0) return NULL;
	return p;
}

// The stand-in for cuBLAS and cuBLASLt: C_i = A_i·B_iᵀ (+ bias) row-major,
// float32 inputs and output, double accumulation in k order
// (deterministic), the bias (may be NULL) added in float32.
// cuBLASLt's GELU epilogue: the tanh form.
static float bk_emu_tanh_gelu(float x) {
	return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

static void bk_emu_sgemm_nt(float* C, const float* A, const float* B, const float* bias, int gelu, int M, int N, int K,
                            int lda, int ldb, int ldc, long long sa, long long sb, long long sc, int batch) {
	for (int b = 0; b < batch; b++) {
		const float* a0 = A + b * sa;
		const float* b0 = B + b * sb;
		float* c0 = C + b * sc;
		for (int m = 0; m < M; m++) {
			const float* ar = a0 + (long long)m * lda;
			for (int n = 0; n < N; n++) {
				const float* br = b0 + (long long)n * ldb;
				double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
				int k = 0;
				for (; k + 4 <= K; k += 4) {
					s0 += (double)ar[k] * br[k];
					s1 += (double)ar[k + 1] * br[k + 1];
					s2 += (double)ar[k + 2] * br[k + 2];
					s3 += (double)ar[k + 3] * br[k + 3];
				}
				for (; k < K; k++) s0 += (double)ar[k] * br[k];
				float v = (float)((s0 + s1) + (s2 + s3));
				if (bias) v += bias[n];
				if (gelu) v = bk_emu_tanh_gelu(v);
				c0[(long long)m * ldc + n] = v;
			}
		}
	}
}

// 16-bit storage (type 1 float16, 2 bfloat16): the same with operands
// widened exactly to double and C rounded once to nearest even, as cuBLAS's
// CUBLAS_COMPUTE_32F GEMM does up to the accumulation order.
static float bk_emu_h2f(unsigned short h, int type) {
	unsigned int b;
	if (type == 2) { b = (unsigned int)h << 16; float f; memcpy(&f, &b, 4); return f; }
	unsigned int sign = (unsigned int)(h >> 15) << 31, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
	if (exp == 0) {
		float v = (float)mant * (1.0f / 16777216.0f);
		return sign ? -v : v;
	}
	b = exp == 0x1f ? (sign | 0x7f800000u | mant << 13) : (sign | (exp + 112) << 23 | mant << 13);
	float f; memcpy(&f, &b, 4); return f;
}
// Round to nearest even, as __float2half_rn / __float2bfloat16_rn.
static unsigned short bk_emu_f2h(float v, int type) {
	unsigned int b;
	memcpy(&b, &v, 4);
	if (type == 2) {
		if ((b & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((b >> 16) | 0x40);
		b += 0x7fffu + ((b >> 16) & 1u);
		return (unsigned short)(b >> 16);
	}
	unsigned short sign = (unsigned short)((b >> 16) & 0x8000u);
	int exp = (int)((b >> 23) & 0xffu);
	unsigned int mant = b & 0x7fffffu;
	if (exp == 0xff) return mant ? (unsigned short)(sign | 0x7e00u | (mant >> 13)) : (unsigned short)(sign | 0x7c00u);
	int e = exp - 127 + 15;
	if (e >= 0x1f) return (unsigned short)(sign | 0x7c00u);
	if (e <= 0) {
		if (e < -10) return sign;
		mant |= 0x800000u;
		unsigned int shift = (unsigned int)(14 - e), m = mant >> shift, rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1u);
		if (rem > half || (rem == half && (m & 1u))) m++;
		return (unsigned short)(sign | m);
	}
	unsigned short h = (unsigned short)(sign | (unsigned int)e << 10 | (mant >> 13));
	unsigned int rem = mant & 0x1fffu;
	if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
	return h;
}
static void bk_emu_gemm16_nt(unsigned short* C, const unsigned short* A, const unsigned short* B, const unsigned short* bias, int gelu, int type, int M, int N, int K,
                             int lda, int ldb, int ldc, long long sa, long long sb, long long sc, int batch) {
	float* bf = (float*)malloc(sizeof(float) * (size_t)(K > 0 ? K : 1) * (size_t)N);
	float* af = (float*)malloc(sizeof(float) * (size_t)(K > 0 ? K : 1));
	if (!bf || !af) { free(bf); free(af); return; }
	for (int b = 0; b < batch; b++) {
		const unsigned short* a0 = A + b * sa;
		const unsigned short* b0 = B + b * sb;
		unsigned short* c0 = C + b * sc;
		for (int n = 0; n < N; n++)
			for (int k = 0; k < K; k++) bf[(size_t)n * K + k] = bk_emu_h2f(b0[(long long)n * ldb + k], type);
		for (int m = 0; m < M; m++) {
			for (int k = 0; k < K; k++) af[k] = bk_emu_h2f(a0[(long long)m * lda + k], type);
			for (int n = 0; n < N; n++) {
				const float* br = bf + (size_t)n * K;
				double s = 0;
				for (int k = 0; k < K; k++) s += (double)af[k] * br[k];
				float v = (float)s;
				if (bias) v += bk_emu_h2f(bias[n], type);
				if (gelu) v = bk_emu_tanh_gelu(v);
				c0[(long long)m * ldc + n] = bk_emu_f2h(v, type);
			}
		}
	}
	free(bf);
	free(af);
}

#define BKP(x) ((void*)(uintptr_t)(x))
static void bk_emu_free(unsigned long long p) { free(BKP(p)); }
static void bk_emu_htod(unsigned long long d, const void* s, size_t n) { memcpy(BKP(d), s, n); }
static void bk_emu_dtoh(void* d, unsigned long long s, size_t n) { memcpy(d, BKP(s), n); }
static void bk_emu_dtod(unsigned long long d, unsigned long long s, size_t n) { memmove(BKP(d), BKP(s), n); }
static void bk_emu_memset(unsigned long long d, int v, size_t n) { memset(BKP(d), v, n); }
static void bk_emu_gemm(unsigned long long C, unsigned long long A, unsigned long long B, unsigned long long bias, int gelu, int M, int N, int K,
                        int lda, int ldb, int ldc, long long sa, long long sb, long long sc, int batch) {
	bk_emu_sgemm_nt((float*)BKP(C), (const float*)BKP(A), (const float*)BKP(B), (const float*)BKP(bias), gelu, M, N, K, lda, ldb, ldc, sa, sb, sc, batch);
}

static void bk_emu_gemm16(int type, unsigned long long C, unsigned long long A, unsigned long long B, unsigned long long bias, int gelu, int M, int N, int K,
                          int lda, int ldb, int ldc, long long sa, long long sb, long long sc, int batch) {
	bk_emu_gemm16_nt((unsigned short*)BKP(C), (const unsigned short*)BKP(A), (const unsigned short*)BKP(B), (const unsigned short*)BKP(bias), gelu, type, M, N, K, lda, ldb, ldc, sa, sb, sc, batch);
}

static double bk_emu_now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"
)

// emuTotal is the memory an emulated device reports (WithMemoryLimit lowers
// it).
const emuTotal = 16 << 30

// emuFault, when not zero, is returned by the next launch on every emulated
// device (tests of the sticky-error path set it through InjectFault).
var emuFault struct {
	sync.Mutex
	code int
}

// InjectFault makes the next kernel launch of any emulated device fail with
// CUresult code (e.g. 700, CUDA_ERROR_ILLEGAL_ADDRESS). Only in -tags
// cudaemu builds; for tests of error handling.
func InjectFault(code int) {
	emuFault.Lock()
	emuFault.code = code
	emuFault.Unlock()
}

// Emulated reports whether this build runs kernels on the CPU emulation.
const Emulated = true

type emuDriver struct {
	allocs map[uint64]uint64
	used   uint64
	names  []*C.char
	events map[uintptr]float64
	nextEv uintptr
	noBLAS bool

	// Graph capture: while capturing, launches, GEMMs, copies and memsets
	// are recorded into rec instead of run; graphs holds the instantiated
	// recordings, replayed in order by graphLaunch.
	capturing bool
	rec       []emuOp
	graphs    map[uintptr][]emuOp
	nextGraph uintptr
}

// emuOp is one recorded stream operation.
type emuOp struct {
	kind        byte // 'k' launch, 'g' gemm, 'c' dtod, 'm' memset
	fn          uintptr
	grid, block [3]uint32
	vals        []uint64
	gemm        Gemm
	dst, src, n uint64
	v           byte
}

func newDriver() driver { return &emuDriver{} }

func (e *emuDriver) kind() string { return "cudaemu" }

func (e *emuDriver) open(ordinal int, noBLAS bool) (Info, error) {
	if ordinal != 0 {
		return Info{}, fmt.Errorf("cuda: emulation has one device, not ordinal %d: %w", ordinal, ErrUnavailable)
	}
	e.allocs, e.events, e.noBLAS = map[uint64]uint64{}, map[uintptr]float64{}, noBLAS
	info := Info{Driver: "cudaemu", Name: "CPU emulation (kernels/emu)", CC: [2]int{9, 0}, SMs: 132, DriverVersion: 13000, TotalMemory: emuTotal}
	if !noBLAS {
		info.BLAS = "host reference GEMM"
		info.BLAS16 = true
		info.BLASLt = true
	}
	return info, nil
}

func (e *emuDriver) makeCurrent() int { return 0 }

func (e *emuDriver) close() {
	for p := range e.allocs {
		C.bk_emu_free(C.ulonglong(p))
	}
	e.allocs = nil
	for _, n := range e.names {
		C.free(unsafe.Pointer(n))
	}
	e.names = nil
}

var emuNames = map[int][2]string{
	cudaErrorInvalidValue:        {"CUDA_ERROR_INVALID_VALUE", "invalid argument"},
	cudaErrorOutOfMemory:         {"CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
	cudaErrorNotFound:            {"CUDA_ERROR_NOT_FOUND", "named symbol not found"},
	cudaErrorIllegalState:        {"CUDA_ERROR_ILLEGAL_STATE", "the operation cannot be performed in the present state"},
	cudaErrorIllegalAddress:      {"CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered"},
	cudaErrorLaunchOutOfResource: {"CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", "too many resources requested for launch"},
	cudaErrorLaunchFailed:        {"CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
}

func (e *emuDriver) errorName(code int) string {
	if n, ok := emuNames[code]; ok {
		return n[0]
	}
	return fmt.Sprintf("CUDA_ERROR_%d", code)
}

func (e *emuDriver) errorString(code int) string { return emuNames[code][1] }

func (e *emuDriver) memAlloc(n uint64) (uint64, int) {
	if e.used+n > emuTotal {
		return 0, cudaErrorOutOfMemory
	}
	p := C.bk_emu_alloc(C.size_t(n))
	if p == nil {
		return 0, cudaErrorOutOfMemory
	}
	// Fresh device memory is not zeroed on a GPU either: poison it with NaN
	// bytes so a kernel reading what it never wrote shows up in tests.
	C.memset(p, 0xff, C.size_t(n))
	a := uint64(uintptr(p))
	e.allocs[a] = n
	e.used += n
	return a, 0
}

func (e *emuDriver) memFree(p uint64) int {
	n, ok := e.allocs[p]
	if !ok {
		return cudaErrorInvalidValue
	}
	delete(e.allocs, p)
	e.used -= n
	C.bk_emu_free(C.ulonglong(p))
	return 0
}

func (e *emuDriver) memGetInfo() (uint64, uint64, int) { return emuTotal - e.used, emuTotal, 0 }

func (e *emuDriver) htod(dst uint64, src unsafe.Pointer, n uint64) int {
	C.bk_emu_htod(C.ulonglong(dst), src, C.size_t(n))
	return 0
}

func (e *emuDriver) dtoh(dst unsafe.Pointer, src uint64, n uint64) int {
	C.bk_emu_dtoh(dst, C.ulonglong(src), C.size_t(n))
	return 0
}

func (e *emuDriver) dtod(dst, src uint64, n uint64) int {
	if e.capturing {
		e.rec = append(e.rec, emuOp{kind: 'c', dst: dst, src: src, n: n})
		return 0
	}
	C.bk_emu_dtod(C.ulonglong(dst), C.ulonglong(src), C.size_t(n))
	return 0
}

func (e *emuDriver) memsetD8(dst uint64, v byte, n uint64) int {
	if e.capturing {
		e.rec = append(e.rec, emuOp{kind: 'm', dst: dst, v: v, n: n})
		return 0
	}
	C.bk_emu_memset(C.ulonglong(dst), C.int(v), C.size_t(n))
	return 0
}

func (e *emuDriver) function(name string) (uintptr, []int, int) {
	cs := C.CString(name)
	var sizes [32]C.int
	n := int(C.bkemu_kernel_params(cs, &sizes[0], 32))
	if n < 0 {
		C.free(unsafe.Pointer(cs))
		return 0, nil, cudaErrorNotFound
	}
	e.names = append(e.names, cs)
	out := make([]int, n)
	for i := range out {
		out[i] = int(sizes[i])
	}
	return uintptr(len(e.names)), out, 0
}

func (e *emuDriver) launch(fn uintptr, grid, block [3]uint32, vals []uint64) int {
	if e.capturing {
		e.rec = append(e.rec, emuOp{kind: 'k', fn: fn, grid: grid, block: block, vals: append([]uint64(nil), vals...)})
		return 0
	}
	emuFault.Lock()
	fault := emuFault.code
	emuFault.code = 0
	emuFault.Unlock()
	if fault != 0 {
		return fault
	}
	var vp *C.ulonglong
	if len(vals) > 0 {
		vp = (*C.ulonglong)(unsafe.Pointer(&vals[0]))
	}
	rc := int(C.bk_emu_launch(e.names[fn-1], C.uint(grid[0]), C.uint(grid[1]), C.uint(grid[2]),
		C.uint(block[0]), C.uint(block[1]), C.uint(block[2]), vp, C.int(len(vals))))
	switch rc {
	case 0:
		return 0
	case -1:
		return cudaErrorNotFound
	case -6:
		return cudaErrorLaunchFailed // a deadlocked block would hang a GPU
	case -7:
		return cudaErrorLaunchOutOfResource
	}
	return cudaErrorInvalidValue
}

func (e *emuDriver) gemm(g *Gemm) int {
	if e.noBLAS {
		return cudaErrorNotFound
	}
	if e.capturing {
		e.rec = append(e.rec, emuOp{kind: 'g', gemm: *g})
		return 0
	}
	switch g.Type {
	case Float32:
		C.bk_emu_gemm(C.ulonglong(g.C), C.ulonglong(g.A), C.ulonglong(g.B), C.ulonglong(g.Bias), emuBool(g.TanhGELU && g.Bias != 0),
			C.int(g.M), C.int(g.N), C.int(g.K), C.int(g.Lda), C.int(g.Ldb), C.int(g.Ldc),
			C.longlong(g.StrideA), C.longlong(g.StrideB), C.longlong(g.StrideC), C.int(g.Batch))
	case Float16, BFloat16:
		C.bk_emu_gemm16(C.int(g.Type), C.ulonglong(g.C), C.ulonglong(g.A), C.ulonglong(g.B), C.ulonglong(g.Bias), emuBool(g.TanhGELU && g.Bias != 0),
			C.int(g.M), C.int(g.N), C.int(g.K), C.int(g.Lda), C.int(g.Ldb), C.int(g.Ldc),
			C.longlong(g.StrideA), C.longlong(g.StrideB), C.longlong(g.StrideC), C.int(g.Batch))
	default:
		return cudaErrorInvalidValue
	}
	return 0
}

func emuBool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func (e *emuDriver) synchronize() int { return 0 }

func (e *emuDriver) hasGraphs() bool { return true }

func (e *emuDriver) beginCapture() int {
	if e.capturing {
		return cudaErrorIllegalState
	}
	e.capturing, e.rec = true, nil
	return 0
}

func (e *emuDriver) endCapture() (uintptr, int) {
	if !e.capturing {
		return 0, cudaErrorIllegalState
	}
	e.capturing = false
	if e.graphs == nil {
		e.graphs = map[uintptr][]emuOp{}
	}
	e.nextGraph++
	e.graphs[e.nextGraph], e.rec = e.rec, nil
	return e.nextGraph, 0
}

// graphLaunch replays a recording; the first failing operation's code ends
// it, as a faulting kernel ends a graph on a GPU.
func (e *emuDriver) graphLaunch(exec uintptr) int {
	ops, ok := e.graphs[exec]
	if !ok || e.capturing {
		return cudaErrorInvalidValue
	}
	for i := range ops {
		op := &ops[i]
		var rc int
		switch op.kind {
		case 'k':
			rc = e.launch(op.fn, op.grid, op.block, op.vals)
		case 'g':
			rc = e.gemm(&op.gemm)
		case 'c':
			rc = e.dtod(op.dst, op.src, op.n)
		case 'm':
			rc = e.memsetD8(op.dst, op.v, op.n)
		}
		if rc != 0 {
			return rc
		}
	}
	return 0
}

func (e *emuDriver) graphDestroy(exec uintptr) { delete(e.graphs, exec) }

func (e *emuDriver) eventCreate() (uintptr, int) {
	e.nextEv++
	e.events[e.nextEv] = 0
	return e.nextEv, 0
}

func (e *emuDriver) eventRecord(ev uintptr) int {
	e.events[ev] = float64(C.bk_emu_now_ms())
	return 0
}

func (e *emuDriver) eventSynchronize(uintptr) int { return 0 }

func (e *emuDriver) eventElapsed(start, end uintptr) (float32, int) {
	return float32(e.events[end] - e.events[start]), 0
}

func (e *emuDriver) eventDestroy(ev uintptr) { delete(e.events, ev) }
