//go:build cgo && !cudaemu

package cuda

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include "cudadecl.h"

// Every entry point, filled by dlsym from libcuda.so.1 (and libcublas).
static struct {
	void* lib;
	bk_pfn_cuInit cuInit;
	bk_pfn_cuDriverGetVersion cuDriverGetVersion;
	bk_pfn_cuDeviceGet cuDeviceGet;
	bk_pfn_cuDeviceGetCount cuDeviceGetCount;
	bk_pfn_cuDeviceGetName cuDeviceGetName;
	bk_pfn_cuDeviceGetAttribute cuDeviceGetAttribute;
	bk_pfn_cuDevicePrimaryCtxRetain cuDevicePrimaryCtxRetain;
	bk_pfn_cuDevicePrimaryCtxRelease_v2 cuDevicePrimaryCtxRelease;
	bk_pfn_cuCtxSetCurrent cuCtxSetCurrent;
	bk_pfn_cuMemAlloc_v2 cuMemAlloc;
	bk_pfn_cuMemFree_v2 cuMemFree;
	bk_pfn_cuMemGetInfo_v2 cuMemGetInfo;
	bk_pfn_cuMemcpyHtoD_v2 cuMemcpyHtoD;
	bk_pfn_cuMemcpyDtoH_v2 cuMemcpyDtoH;
	bk_pfn_cuMemcpyDtoD_v2 cuMemcpyDtoD;
	bk_pfn_cuMemsetD8_v2 cuMemsetD8;
	bk_pfn_cuMemcpyDtoDAsync_v2 cuMemcpyDtoDAsync;
	bk_pfn_cuMemsetD8Async cuMemsetD8Async;
	// CUDA graphs (NULL when the driver lacks one: no graphs).
	bk_pfn_cuStreamBeginCapture_v2 cuStreamBeginCapture;
	bk_pfn_cuStreamEndCapture cuStreamEndCapture;
	bk_pfn_cuGraphInstantiateWithFlags cuGraphInstantiateWithFlags;
	bk_pfn_cuGraphLaunch cuGraphLaunch;
	bk_pfn_cuGraphExecDestroy cuGraphExecDestroy;
	bk_pfn_cuGraphDestroy cuGraphDestroy;
	bk_pfn_cuModuleLoadData cuModuleLoadData;
	bk_pfn_cuModuleUnload cuModuleUnload;
	bk_pfn_cuModuleGetFunction cuModuleGetFunction;
	bk_pfn_cuLaunchKernel cuLaunchKernel;
	bk_pfn_cuStreamCreate cuStreamCreate;
	bk_pfn_cuStreamSynchronize cuStreamSynchronize;
	bk_pfn_cuStreamDestroy_v2 cuStreamDestroy;
	bk_pfn_cuEventCreate cuEventCreate;
	bk_pfn_cuEventRecord cuEventRecord;
	bk_pfn_cuEventSynchronize cuEventSynchronize;
	bk_pfn_cuEventElapsedTime cuEventElapsedTime;
	bk_pfn_cuEventDestroy_v2 cuEventDestroy;
	bk_pfn_cuGetErrorName cuGetErrorName;
	bk_pfn_cuGetErrorString cuGetErrorString;
	bk_pfn_cuFuncGetParamInfo cuFuncGetParamInfo; // NULL before CUDA 12.4: launches unchecked
} bk_cu;

static struct {
	void* lib;
	const char* soname;
	bk_pfn_cublasCreate_v2 create;
	bk_pfn_cublasDestroy_v2 destroy;
	bk_pfn_cublasSetStream_v2 setStream;
	bk_pfn_cublasSetMathMode setMathMode;
	bk_pfn_cublasSgemmStridedBatched sgemm;
	bk_pfn_cublasGemmStridedBatchedEx gemmEx; // NULL: no 16-bit GEMM through cuBLAS
	bk_pfn_cublasSetWorkspace_v2 setWorkspace; // NULL: cuBLAS's own workspace pool
} bk_blas;

#define BK_SYM(lib, dst, name) \
	if (!((dst) = (void*)dlsym((lib), (name)))) { snprintf(err, errlen, "libcuda.so.1 has no symbol %s", (name)); return -1; }

// bk_libdir is $BLIPCUDA_CUDA_LIBS: when set (CI's stand-in libraries of
// kernels/standin), every CUDA library is opened from that directory only;
// unset, the loader's search path and the toolkit's directories are used.
static const char* bk_libdir(void) {
	const char* d = getenv("BLIPCUDA_CUDA_LIBS");
	return d && d[0] ? d : NULL;
}

// bk_cu_load opens the driver once. Returns 0, or -1 with err set.
static int bk_cu_load(char* err, int errlen) {
	if (bk_cu.lib) return 0;
	void* lib;
	if (bk_libdir()) {
		char path[4096];
		snprintf(path, sizeof path, "%s/libcuda.so.1", bk_libdir());
		lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	} else {
		lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	}
	if (!lib) {
		const char* e = dlerror();
		snprintf(err, errlen, "dlopen libcuda.so.1: %s", e ? e : "unknown error");
		return -1;
	}
	void** p;
#define L(field, name) p = (void**)&bk_cu.field; BK_SYM(lib, *p, name)
	L(cuInit, "cuInit");
	L(cuDriverGetVersion, "cuDriverGetVersion");
	L(cuDeviceGet, "cuDeviceGet");
	L(cuDeviceGetCount, "cuDeviceGetCount");
	L(cuDeviceGetName, "cuDeviceGetName");
	L(cuDeviceGetAttribute, "cuDeviceGetAttribute");
	L(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
	L(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
	L(cuCtxSetCurrent, "cuCtxSetCurrent");
	L(cuMemAlloc, "cuMemAlloc_v2");
	L(cuMemFree, "cuMemFree_v2");
	L(cuMemGetInfo, "cuMemGetInfo_v2");
	L(cuMemcpyHtoD, "cuMemcpyHtoD_v2");
	L(cuMemcpyDtoH, "cuMemcpyDtoH_v2");
	L(cuMemcpyDtoD, "cuMemcpyDtoD_v2");
	L(cuMemsetD8, "cuMemsetD8_v2");
	L(cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2");
	L(cuMemsetD8Async, "cuMemsetD8Async");
	L(cuModuleLoadData, "cuModuleLoadData");
	L(cuModuleUnload, "cuModuleUnload");
	L(cuModuleGetFunction, "cuModuleGetFunction");
	L(cuLaunchKernel, "cuLaunchKernel");
	L(cuStreamCreate, "cuStreamCreate");
	L(cuStreamSynchronize, "cuStreamSynchronize");
	L(cuStreamDestroy, "cuStreamDestroy_v2");
	L(cuEventCreate, "cuEventCreate");
	L(cuEventRecord, "cuEventRecord");
	L(cuEventSynchronize, "cuEventSynchronize");
	L(cuEventDestroy, "cuEventDestroy_v2");
	L(cuGetErrorName, "cuGetErrorName");
	L(cuGetErrorString, "cuGetErrorString");
	// CUDA 12.8+ exports cuEventElapsedTime_v2 (what cuda.h 13 maps the name to).
	bk_cu.cuEventElapsedTime = (bk_pfn_cuEventElapsedTime)dlsym(lib, "cuEventElapsedTime_v2");
	if (!bk_cu.cuEventElapsedTime) { L(cuEventElapsedTime, "cuEventElapsedTime"); }
#undef L
	bk_cu.cuStreamBeginCapture = (bk_pfn_cuStreamBeginCapture_v2)dlsym(lib, "cuStreamBeginCapture_v2");
	bk_cu.cuStreamEndCapture = (bk_pfn_cuStreamEndCapture)dlsym(lib, "cuStreamEndCapture");
	bk_cu.cuGraphInstantiateWithFlags = (bk_pfn_cuGraphInstantiateWithFlags)dlsym(lib, "cuGraphInstantiateWithFlags");
	bk_cu.cuGraphLaunch = (bk_pfn_cuGraphLaunch)dlsym(lib, "cuGraphLaunch");
	bk_cu.cuGraphExecDestroy = (bk_pfn_cuGraphExecDestroy)dlsym(lib, "cuGraphExecDestroy");
	bk_cu.cuGraphDestroy = (bk_pfn_cuGraphDestroy)dlsym(lib, "cuGraphDestroy");
	bk_cu.cuFuncGetParamInfo = (bk_pfn_cuFuncGetParamInfo)dlsym(lib, "cuFuncGetParamInfo");
	bk_cu.lib = lib;
	return 0;
}

static struct {
	void* lib;
	bk_pfn_cublasLtCreate create;
	bk_pfn_cublasLtDestroy destroy;
	bk_pfn_cublasLtMatmulDescCreate descCreate;
	bk_pfn_cublasLtMatmulDescDestroy descDestroy;
	bk_pfn_cublasLtMatmulDescSetAttribute descSet;
	bk_pfn_cublasLtMatrixLayoutCreate layoutCreate;
	bk_pfn_cublasLtMatrixLayoutDestroy layoutDestroy;
	bk_pfn_cublasLtMatmulPreferenceCreate prefCreate;
	bk_pfn_cublasLtMatmulPreferenceDestroy prefDestroy;
	bk_pfn_cublasLtMatmulPreferenceSetAttribute prefSet;
	bk_pfn_cublasLtMatmulAlgoGetHeuristic heuristic;
	bk_pfn_cublasLtMatmul matmul;
} bk_lt;

// bk_dlopen_cuda opens a CUDA library by soname, then in the toolkit's
// usual directories ($CUDA_HOME/lib64, /usr/local/cuda/lib64) when the
// loader's search path lacks it.
static void* bk_dlopen_cuda(const char* soname) {
	char path[4096];
	if (bk_libdir()) {
		snprintf(path, sizeof path, "%s/%s", bk_libdir(), soname);
		return dlopen(path, RTLD_NOW | RTLD_LOCAL);
	}
	void* lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (lib) return lib;
	const char* dirs[] = {getenv("CUDA_HOME"), "/usr/local/cuda", "/usr/local/cuda/targets/x86_64-linux"};
	for (int i = 0; i < 3 && !lib; i++) {
		if (!dirs[i] || !dirs[i][0]) continue;
		snprintf(path, sizeof path, "%s/lib64/%s", dirs[i], soname);
		lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		if (!lib) {
			snprintf(path, sizeof path, "%s/lib/%s", dirs[i], soname);
			lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		}
	}
	return lib;
}

// bk_lt_load opens cuBLASLt of the same major version as cuBLAS. Returns 0
// or -1 (none: GEMMs then add their bias in a separate kernel).
static int bk_lt_load(const char* soname) {
	if (bk_lt.lib) return 0;
	void* lib = bk_dlopen_cuda(soname);
	if (!lib) return -1;
#define LT(field, name) bk_lt.field = (void*)dlsym(lib, name); if (!bk_lt.field) { dlclose(lib); memset(&bk_lt, 0, sizeof bk_lt); return -1; }
	LT(create, "cublasLtCreate");
	LT(destroy, "cublasLtDestroy");
	LT(descCreate, "cublasLtMatmulDescCreate");
	LT(descDestroy, "cublasLtMatmulDescDestroy");
	LT(descSet, "cublasLtMatmulDescSetAttribute");
	LT(layoutCreate, "cublasLtMatrixLayoutCreate");
	LT(layoutDestroy, "cublasLtMatrixLayoutDestroy");
	LT(prefCreate, "cublasLtMatmulPreferenceCreate");
	LT(prefDestroy, "cublasLtMatmulPreferenceDestroy");
	LT(prefSet, "cublasLtMatmulPreferenceSetAttribute");
	LT(heuristic, "cublasLtMatmulAlgoGetHeuristic");
	LT(matmul, "cublasLtMatmul");
#undef LT
	bk_lt.lib = lib;
	return 0;
}

static int bk_lt_create(uintptr_t* h) { cublasLtHandle_t l = 0; int r = bk_lt.create(&l); *h = (uintptr_t)l; return r; }
static void bk_lt_destroy(uintptr_t h) { bk_lt.destroy((cublasLtHandle_t)h); }

// A cuBLASLt plan for one GEMM shape: row-major C[M,N] = A[M,K]·B[N,K]ᵀ (+
// bias[N]) as column-major Cᵀ = op(B)·A with op = T, exactly as
// bk_blas_sgemm_nt maps it; float32 compute (no TF32), the bias epilogue.
typedef struct {
	cublasLtMatmulDesc_t desc;
	cublasLtMatrixLayout_t a, b, c;
	cublasLtMatmulAlgo_t algo;
} bk_lt_plan;

static void bk_lt_plan_free(bk_lt_plan* p) {
	if (!p) return;
	if (p->a) bk_lt.layoutDestroy(p->a);
	if (p->b) bk_lt.layoutDestroy(p->b);
	if (p->c) bk_lt.layoutDestroy(p->c);
	if (p->desc) bk_lt.descDestroy(p->desc);
	free(p);
}

// Returns 0 with *out set, BK_CUBLAS_STATUS_NOT_SUPPORTED when no algorithm
// fits, or another cuBLAS status.
// epilogue: 0 none, 1 bias, 2 bias then GELU (cuBLASLt's GELU: the tanh form).
static int bk_lt_plan_make(uintptr_t h, int type, int M, int N, int K, int lda, int ldb, int ldc, int epilogue,
                           size_t workspace, bk_lt_plan** out) {
	*out = NULL;
	bk_lt_plan* p = (bk_lt_plan*)calloc(1, sizeof *p);
	if (!p) return 3; // CUBLAS_STATUS_ALLOC_FAILED
	int r = bk_lt.descCreate(&p->desc, BK_CUBLAS_COMPUTE_32F, BK_CUDA_R_32F);
	int32_t opT = BK_CUBLAS_OP_T, opN = BK_CUBLAS_OP_N;
	uint32_t epi = epilogue == 2 ? BK_CUBLASLT_EPILOGUE_GELU_BIAS
	             : epilogue == 1 ? BK_CUBLASLT_EPILOGUE_BIAS : BK_CUBLASLT_EPILOGUE_DEFAULT;
	if (!r) r = bk_lt.descSet(p->desc, BK_CUBLASLT_MATMUL_DESC_TRANSA, &opT, sizeof opT);
	if (!r) r = bk_lt.descSet(p->desc, BK_CUBLASLT_MATMUL_DESC_TRANSB, &opN, sizeof opN);
	if (!r) r = bk_lt.descSet(p->desc, BK_CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
	if (!r) r = bk_lt.layoutCreate(&p->a, type, (uint64_t)K, (uint64_t)N, ldb);
	if (!r) r = bk_lt.layoutCreate(&p->b, type, (uint64_t)K, (uint64_t)M, lda);
	if (!r) r = bk_lt.layoutCreate(&p->c, type, (uint64_t)N, (uint64_t)M, ldc);
	cublasLtMatmulPreference_t pref = 0;
	if (!r) r = bk_lt.prefCreate(&pref);
	uint64_t ws = workspace;
	if (!r) r = bk_lt.prefSet(pref, BK_CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
	cublasLtMatmulHeuristicResult_t res;
	memset(&res, 0, sizeof res);
	int n = 0;
	if (!r) r = bk_lt.heuristic((cublasLtHandle_t)h, p->desc, p->a, p->b, p->c, p->c, pref, 1, &res, &n);
	if (pref) bk_lt.prefDestroy(pref);
	if (!r && (n < 1 || res.state != 0)) r = BK_CUBLAS_STATUS_NOT_SUPPORTED;
	if (r) { bk_lt_plan_free(p); return r; }
	p->algo = res.algo;
	*out = p;
	return 0;
}

static int bk_lt_matmul(uintptr_t h, bk_lt_plan* p, unsigned long long C, unsigned long long A, unsigned long long B,
                        unsigned long long bias, unsigned long long ws, size_t wsSize, uintptr_t stream) {
	if (bias) {
		const void* bp = (const void*)(uintptr_t)bias;
		int r = bk_lt.descSet(p->desc, BK_CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof bp);
		if (r) return r;
	}
	const float alpha = 1.0f, beta = 0.0f;
	return bk_lt.matmul((cublasLtHandle_t)h, p->desc, &alpha, (const void*)(uintptr_t)B, p->a, (const void*)(uintptr_t)A, p->b,
	                    &beta, (const void*)(uintptr_t)C, p->c, (void*)(uintptr_t)C, p->c, &p->algo,
	                    (void*)(uintptr_t)ws, wsSize, (CUstream)stream);
}

// bk_blas_load opens cuBLAS (13, 12, 11). Returns 0 or -1 (none usable).
static int bk_blas_load(void) {
	if (bk_blas.lib) return 0;
	static const char* names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so.11"};
	for (int i = 0; i < 3; i++) {
		void* lib = bk_dlopen_cuda(names[i]);
		if (!lib) continue;
		bk_blas.create = (bk_pfn_cublasCreate_v2)dlsym(lib, "cublasCreate_v2");
		bk_blas.destroy = (bk_pfn_cublasDestroy_v2)dlsym(lib, "cublasDestroy_v2");
		bk_blas.setStream = (bk_pfn_cublasSetStream_v2)dlsym(lib, "cublasSetStream_v2");
		bk_blas.setMathMode = (bk_pfn_cublasSetMathMode)dlsym(lib, "cublasSetMathMode");
		bk_blas.sgemm = (bk_pfn_cublasSgemmStridedBatched)dlsym(lib, "cublasSgemmStridedBatched");
		bk_blas.gemmEx = (bk_pfn_cublasGemmStridedBatchedEx)dlsym(lib, "cublasGemmStridedBatchedEx");
		bk_blas.setWorkspace = (bk_pfn_cublasSetWorkspace_v2)dlsym(lib, "cublasSetWorkspace_v2");
		if (bk_blas.create && bk_blas.destroy && bk_blas.setStream && bk_blas.setMathMode && bk_blas.sgemm) {
			bk_blas.lib = lib;
			bk_blas.soname = names[i];
			return 0;
		}
		dlclose(lib);
	}
	return -1;
}

static const char* bk_blas_soname(void) { return bk_blas.soname; }
static int bk_blas_has_gemm16(void) { return bk_blas.gemmEx != NULL; }

static int bk_cuInit(void) { return bk_cu.cuInit(0); }
static int bk_driver_version(int* v) { return bk_cu.cuDriverGetVersion(v); }
static int bk_device_count(int* n) { return bk_cu.cuDeviceGetCount(n); }
static int bk_device_get(int ord, int* dev) { CUdevice d; int r = bk_cu.cuDeviceGet(&d, ord); *dev = d; return r; }
static int bk_device_name(int dev, char* name, int len) { return bk_cu.cuDeviceGetName(name, len, dev); }
static int bk_device_attr(int dev, int attr, int* v) { return bk_cu.cuDeviceGetAttribute(v, attr, dev); }
static int bk_ctx_retain(int dev, uintptr_t* ctx) { CUcontext c = 0; int r = bk_cu.cuDevicePrimaryCtxRetain(&c, dev); *ctx = (uintptr_t)c; return r; }
static int bk_ctx_release(int dev) { return bk_cu.cuDevicePrimaryCtxRelease(dev); }
static int bk_ctx_set(uintptr_t ctx) { return bk_cu.cuCtxSetCurrent((CUcontext)ctx); }
static int bk_mem_alloc(unsigned long long* p, size_t n) { CUdeviceptr d = 0; int r = bk_cu.cuMemAlloc(&d, n); *p = d; return r; }
static int bk_mem_free(unsigned long long p) { return bk_cu.cuMemFree(p); }
static int bk_mem_info(size_t* f, size_t* t) { return bk_cu.cuMemGetInfo(f, t); }
static int bk_htod(unsigned long long d, const void* s, size_t n) { return bk_cu.cuMemcpyHtoD(d, s, n); }
static int bk_dtoh(void* d, unsigned long long s, size_t n) { return bk_cu.cuMemcpyDtoH(d, s, n); }
// Device-to-device copies and memsets are queued on the stream (ordered with
// the kernels, and capturable into a graph).
static int bk_dtod(unsigned long long d, unsigned long long s, size_t n, uintptr_t st) { return bk_cu.cuMemcpyDtoDAsync(d, s, n, (CUstream)st); }
static int bk_memset(unsigned long long d, unsigned char v, size_t n, uintptr_t st) { return bk_cu.cuMemsetD8Async(d, v, n, (CUstream)st); }
static int bk_has_graphs(void) {
	return bk_cu.cuStreamBeginCapture && bk_cu.cuStreamEndCapture && bk_cu.cuGraphInstantiateWithFlags &&
	       bk_cu.cuGraphLaunch && bk_cu.cuGraphExecDestroy && bk_cu.cuGraphDestroy;
}
static int bk_begin_capture(uintptr_t st) { return bk_cu.cuStreamBeginCapture((CUstream)st, BK_CU_STREAM_CAPTURE_MODE_RELAXED); }
// Ends the capture and instantiates the graph (the CUgraph itself is not
// kept). On failure *exec stays 0.
static int bk_end_capture(uintptr_t st, uintptr_t* exec) {
	CUgraph g = 0;
	*exec = 0;
	int r = bk_cu.cuStreamEndCapture((CUstream)st, &g);
	if (r != 0) { if (g) bk_cu.cuGraphDestroy(g); return r; }
	CUgraphExec e = 0;
	r = bk_cu.cuGraphInstantiateWithFlags(&e, g, 0);
	bk_cu.cuGraphDestroy(g);
	if (r == 0) *exec = (uintptr_t)e;
	return r;
}
static int bk_graph_launch(uintptr_t e, uintptr_t st) { return bk_cu.cuGraphLaunch((CUgraphExec)e, (CUstream)st); }
static void bk_graph_destroy(uintptr_t e) { bk_cu.cuGraphExecDestroy((CUgraphExec)e); }
static int bk_module_load(const void* image, uintptr_t* mod) { CUmodule m = 0; int r = bk_cu.cuModuleLoadData(&m, image); *mod = (uintptr_t)m; return r; }
static int bk_module_unload(uintptr_t mod) { return bk_cu.cuModuleUnload((CUmodule)mod); }
static int bk_module_function(uintptr_t mod, const char* name, uintptr_t* fn) { CUfunction f = 0; int r = bk_cu.cuModuleGetFunction(&f, (CUmodule)mod, name); *fn = (uintptr_t)f; return r; }
// bk_func_params stores the byte size of each of fn's parameters (at most
// max) and returns their count: -1 when the driver cannot say (no
// cuFuncGetParamInfo, before CUDA 12.4, or it fails on the first parameter:
// launches are then unchecked; every blipcuda kernel has parameters), -2
// with more than max. The count ends at the first index the driver calls
// CUDA_ERROR_INVALID_VALUE (documented: paramIndex out of range).
static int bk_func_params(uintptr_t fn, int* sizes, int max) {
	if (!bk_cu.cuFuncGetParamInfo) return -1;
	for (int i = 0;; i++) {
		size_t off = 0, size = 0;
		int r = bk_cu.cuFuncGetParamInfo((CUfunction)fn, (size_t)i, &off, &size);
		if (r != 0) return (i > 0 && r == BK_CUDA_ERROR_INVALID_VALUE) ? i : -1;
		if (i >= max) return -2;
		sizes[i] = (int)size;
	}
}
static int bk_stream_create(uintptr_t* s) { CUstream st = 0; int r = bk_cu.cuStreamCreate(&st, BK_CU_STREAM_DEFAULT); *s = (uintptr_t)st; return r; }
static int bk_stream_sync(uintptr_t s) { return bk_cu.cuStreamSynchronize((CUstream)s); }
static int bk_stream_destroy(uintptr_t s) { return bk_cu.cuStreamDestroy((CUstream)s); }
static int bk_event_create(uintptr_t* e) { CUevent ev = 0; int r = bk_cu.cuEventCreate(&ev, BK_CU_EVENT_DEFAULT); *e = (uintptr_t)ev; return r; }
static int bk_event_record(uintptr_t e, uintptr_t s) { return bk_cu.cuEventRecord((CUevent)e, (CUstream)s); }
static int bk_event_sync(uintptr_t e) { return bk_cu.cuEventSynchronize((CUevent)e); }
static int bk_event_elapsed(uintptr_t a, uintptr_t b, float* ms) { return bk_cu.cuEventElapsedTime(ms, (CUevent)a, (CUevent)b); }
static int bk_event_destroy(uintptr_t e) { return bk_cu.cuEventDestroy((CUevent)e); }
static const char* bk_error_name(int code) { const char* s = NULL; if (!bk_cu.lib || bk_cu.cuGetErrorName(code, &s) != 0 || !s) return ""; return s; }
static const char* bk_error_string(int code) { const char* s = NULL; if (!bk_cu.lib || bk_cu.cuGetErrorString(code, &s) != 0 || !s) return ""; return s; }

// Launch and its result in one C call (no thread-local error state).
static int bk_launch(uintptr_t fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                     uintptr_t stream, unsigned long long* vals, int n) {
	void* ptrs[32];
	for (int i = 0; i < n && i < 32; i++) ptrs[i] = &vals[i];
	return bk_cu.cuLaunchKernel((CUfunction)fn, gx, gy, gz, bx, by, bz, 0, (CUstream)stream, n ? ptrs : NULL, NULL);
}

static int bk_blas_create(uintptr_t stream, uintptr_t* h) {
	cublasHandle_t hd = 0;
	int r = bk_blas.create(&hd);
	if (r != BK_CUBLAS_STATUS_SUCCESS) return r;
	r = bk_blas.setStream(hd, (CUstream)stream);
	// float32 parity: TF32 tensor-op math off (DEFAULT_MATH; NVIDIA_TF32_OVERRIDE=0 must not be overridden to 1).
	if (r == 0) r = bk_blas.setMathMode(hd, BK_CUBLAS_DEFAULT_MATH);
	if (r != 0) { bk_blas.destroy(hd); return r; }
	*h = (uintptr_t)hd;
	return 0;
}
static void bk_blas_destroy(uintptr_t h) { bk_blas.destroy((cublasHandle_t)h); }
// A workspace the handle owns for its life (after cublasSetStream, which
// resets it): what NVIDIA asks for before capturing cuBLAS into CUDA graphs,
// so that no call allocates while the stream is being captured. Returns -1
// when this cuBLAS has no cublasSetWorkspace_v2.
static int bk_blas_set_workspace(uintptr_t h, unsigned long long ws, size_t n) {
	if (!bk_blas.setWorkspace) return -1;
	return bk_blas.setWorkspace((cublasHandle_t)h, (void*)(uintptr_t)ws, n);
}

// Row-major C = A·Bᵀ as column-major Cᵀ = (Bᵀ)ᵀ... : op(B)=T, op(A)=N, m=N, n=M.
static int bk_blas_sgemm_nt(uintptr_t h, unsigned long long C, unsigned long long A, unsigned long long B,
                            int M, int N, int K, int lda, int ldb, int ldc, long long sa, long long sb, long long sc, int batch) {
	const float alpha = 1.0f, beta = 0.0f;
	return bk_blas.sgemm((cublasHandle_t)h, BK_CUBLAS_OP_T, BK_CUBLAS_OP_N, N, M, K, &alpha,
	                     (const float*)B, ldb, sb, (const float*)A, lda, sa, &beta, (float*)C, ldc, sc, batch);
}

// The same for 16-bit operands (type: BK_CUDA_R_16F or BK_CUDA_R_16BF) with
// float32 accumulation (CUBLAS_COMPUTE_32F; tensor cores) and 16-bit C.
static int bk_blas_gemm16_nt(uintptr_t h, int type, unsigned long long C, unsigned long long A, unsigned long long B,
                             int M, int N, int K, int lda, int ldb, int ldc, long long sa, long long sb, long long sc, int batch) {
	if (!bk_blas.gemmEx) return -1;
	const float alpha = 1.0f, beta = 0.0f;
	return bk_blas.gemmEx((cublasHandle_t)h, BK_CUBLAS_OP_T, BK_CUBLAS_OP_N, N, M, K, &alpha,
	                      (const void*)B, type, ldb, sb, (const void*)A, type, lda, sa, &beta, (void*)C, type, ldc, sc, batch,
	                      BK_CUBLAS_COMPUTE_32F, BK_CUBLAS_GEMM_DEFAULT);
}
*/
import "C"

import (
	"fmt"
	"strings"
	"unsafe"
)

// Emulated reports whether this build runs kernels on the CPU emulation.
const Emulated = false

// blasBase offsets cuBLAS status codes so they do not collide with CUresult.
const blasBase = 10000

type realDriver struct {
	dev    C.int
	ctx    C.uintptr_t
	stream C.uintptr_t
	module C.uintptr_t
	blas   C.uintptr_t
	names  map[string]*C.char

	// cuBLASLt: the handle, its workspace, and a plan per GEMM shape (nil:
	// no algorithm for that shape).
	blasWS  uint64 // the cuBLAS handle's workspace (0: cuBLAS's own pool)
	lt      C.uintptr_t
	ltWS    uint64
	ltPlans map[ltKey]*C.bk_lt_plan
}

// ltWorkspace and blasWorkspace are the cuBLASLt and cuBLAS workspaces (what
// NVIDIA recommends for Hopper).
const (
	ltWorkspace   = 32 << 20
	blasWorkspace = 32 << 20
)

// ltKey is the shape of a cuBLASLt plan.
type ltKey struct {
	typ                    ElemType
	m, n, k, lda, ldb, ldc int
	bias, gelu             bool
}

func newDriver() driver { return &realDriver{names: map[string]*C.char{}} }

func (r *realDriver) kind() string { return "cuda" }

func (r *realDriver) open(ordinal int, noBLAS bool) (Info, error) {
	var ebuf [512]C.char
	if C.bk_cu_load(&ebuf[0], C.int(len(ebuf))) != 0 {
		return Info{}, fmt.Errorf("cuda: no CUDA driver: %s: %w", C.GoString(&ebuf[0]), ErrUnavailable)
	}
	fail := func(what string, code C.int) (Info, error) {
		return Info{}, fmt.Errorf("cuda: %s: %s (%d): %s: %w", what, r.errorName(int(code)), int(code), r.errorString(int(code)), ErrUnavailable)
	}
	if rc := C.bk_cuInit(); rc != 0 {
		return fail("cuInit", rc)
	}
	info := Info{Driver: "cuda", Ordinal: ordinal}
	var v, n C.int
	C.bk_driver_version(&v)
	info.DriverVersion = int(v)
	if rc := C.bk_device_count(&n); rc != 0 {
		return fail("cuDeviceGetCount", rc)
	}
	if ordinal < 0 || ordinal >= int(n) {
		return Info{}, fmt.Errorf("cuda: device %d asked, %d present: %w", ordinal, int(n), ErrUnavailable)
	}
	if rc := C.bk_device_get(C.int(ordinal), &r.dev); rc != 0 {
		return fail("cuDeviceGet", rc)
	}
	var name [256]C.char
	C.bk_device_name(r.dev, &name[0], C.int(len(name)))
	info.Name = C.GoString(&name[0])
	var a C.int
	C.bk_device_attr(r.dev, C.BK_CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, &a)
	info.SMs = int(a)
	C.bk_device_attr(r.dev, C.BK_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, &a)
	info.CC[0] = int(a)
	C.bk_device_attr(r.dev, C.BK_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, &a)
	info.CC[1] = int(a)
	if info.CC[0] < 8 {
		return Info{}, fmt.Errorf("cuda: %s has compute capability %d.%d; the kernels need 8.0 or newer: %w", info.Name, info.CC[0], info.CC[1], ErrUnavailable)
	}
	if rc := C.bk_ctx_retain(r.dev, &r.ctx); rc != 0 {
		return fail("cuDevicePrimaryCtxRetain", rc)
	}
	if rc := C.bk_ctx_set(r.ctx); rc != 0 {
		r.close()
		return fail("cuCtxSetCurrent", rc)
	}
	var free, total C.size_t
	C.bk_mem_info(&free, &total)
	info.TotalMemory = uint64(total)
	if rc := C.bk_stream_create(&r.stream); rc != 0 {
		r.close()
		return fail("cuStreamCreate", rc)
	}
	img := C.CBytes(fatbin)
	rc := C.bk_module_load(img, &r.module)
	C.free(img)
	if rc != 0 {
		r.close()
		return fail(fmt.Sprintf("cuModuleLoadData (embedded fatbin, %d bytes, SASS sm_80, sm_90 + PTX 9.0; driver %d)", len(fatbin), info.DriverVersion), rc)
	}
	if !noBLAS && C.bk_blas_load() == 0 {
		if C.bk_blas_create(r.stream, &r.blas) == 0 {
			var ws C.ulonglong
			if C.bk_mem_alloc(&ws, blasWorkspace) == 0 {
				if C.bk_blas_set_workspace(r.blas, ws, blasWorkspace) == 0 {
					r.blasWS = uint64(ws)
				} else {
					C.bk_mem_free(ws)
				}
			}
			info.BLAS = C.GoString(C.bk_blas_soname())
			info.BLAS16 = C.bk_blas_has_gemm16() != 0
			lt := C.CString(strings.Replace(info.BLAS, "libcublas.", "libcublasLt.", 1))
			if C.bk_lt_load(lt) == 0 && C.bk_lt_create(&r.lt) == 0 {
				var ws C.ulonglong
				if C.bk_mem_alloc(&ws, ltWorkspace) == 0 {
					r.ltWS, r.ltPlans = uint64(ws), map[ltKey]*C.bk_lt_plan{}
					info.BLASLt = true
				} else {
					C.bk_lt_destroy(r.lt)
					r.lt = 0
				}
			}
			C.free(unsafe.Pointer(lt))
		}
	}
	return info, nil
}

func (r *realDriver) makeCurrent() int { return int(C.bk_ctx_set(r.ctx)) }

func (r *realDriver) close() {
	if r.ctx == 0 {
		return
	}
	C.bk_ctx_set(r.ctx)
	for k, p := range r.ltPlans {
		C.bk_lt_plan_free(p)
		delete(r.ltPlans, k)
	}
	if r.lt != 0 {
		C.bk_lt_destroy(r.lt)
		C.bk_mem_free(C.ulonglong(r.ltWS))
		r.lt, r.ltWS = 0, 0
	}
	if r.blas != 0 {
		C.bk_blas_destroy(r.blas)
		r.blas = 0
	}
	if r.blasWS != 0 {
		C.bk_mem_free(C.ulonglong(r.blasWS))
		r.blasWS = 0
	}
	if r.module != 0 {
		C.bk_module_unload(r.module)
		r.module = 0
	}
	if r.stream != 0 {
		C.bk_stream_destroy(r.stream)
		r.stream = 0
	}
	C.bk_ctx_release(r.dev)
	r.ctx = 0
	for _, n := range r.names {
		C.free(unsafe.Pointer(n))
	}
	r.names = nil
}

func (r *realDriver) errorName(code int) string {
	if code >= blasBase {
		if n, ok := blasStatusNames[code-blasBase]; ok {
			return n
		}
		return fmt.Sprintf("CUBLAS_STATUS_%d", code-blasBase)
	}
	if s := C.GoString(C.bk_error_name(C.int(code))); s != "" {
		return s
	}
	return fmt.Sprintf("CUresult(%d)", code)
}

// blasStatusNames are cublasStatus_t's names (cublas_api.h).
var blasStatusNames = map[int]string{
	1: "CUBLAS_STATUS_NOT_INITIALIZED", 3: "CUBLAS_STATUS_ALLOC_FAILED", 7: "CUBLAS_STATUS_INVALID_VALUE",
	8: "CUBLAS_STATUS_ARCH_MISMATCH", 11: "CUBLAS_STATUS_MAPPING_ERROR", 13: "CUBLAS_STATUS_EXECUTION_FAILED",
	14: "CUBLAS_STATUS_INTERNAL_ERROR", 15: "CUBLAS_STATUS_NOT_SUPPORTED", 16: "CUBLAS_STATUS_LICENSE_ERROR",
}

func (r *realDriver) errorString(code int) string {
	if code >= blasBase {
		return "cuBLAS error"
	}
	return C.GoString(C.bk_error_string(C.int(code)))
}

func (r *realDriver) memAlloc(n uint64) (uint64, int) {
	var p C.ulonglong
	rc := C.bk_mem_alloc(&p, C.size_t(n))
	return uint64(p), int(rc)
}

func (r *realDriver) memFree(p uint64) int { return int(C.bk_mem_free(C.ulonglong(p))) }

func (r *realDriver) memGetInfo() (uint64, uint64, int) {
	var f, t C.size_t
	rc := C.bk_mem_info(&f, &t)
	return uint64(f), uint64(t), int(rc)
}

func (r *realDriver) htod(dst uint64, src unsafe.Pointer, n uint64) int {
	return int(C.bk_htod(C.ulonglong(dst), src, C.size_t(n)))
}

func (r *realDriver) dtoh(dst unsafe.Pointer, src uint64, n uint64) int {
	return int(C.bk_dtoh(dst, C.ulonglong(src), C.size_t(n)))
}

func (r *realDriver) dtod(dst, src uint64, n uint64) int {
	return int(C.bk_dtod(C.ulonglong(dst), C.ulonglong(src), C.size_t(n), r.stream))
}

func (r *realDriver) memsetD8(dst uint64, v byte, n uint64) int {
	return int(C.bk_memset(C.ulonglong(dst), C.uchar(v), C.size_t(n), r.stream))
}

func (r *realDriver) function(name string) (uintptr, []int, int) {
	cs, ok := r.names[name]
	if !ok {
		cs = C.CString(name)
		r.names[name] = cs
	}
	var fn C.uintptr_t
	rc := C.bk_module_function(r.module, cs, &fn)
	if rc != 0 {
		return 0, nil, int(rc)
	}
	// The kernel's parameter sizes from the driver (CUDA 12.4+), so that
	// Launch checks its arguments against the loaded kernel's signature.
	var sizes [32]C.int
	n := int(C.bk_func_params(fn, &sizes[0], C.int(len(sizes))))
	if n < 0 {
		return uintptr(fn), nil, 0
	}
	out := make([]int, n)
	for i := range out {
		out[i] = int(sizes[i])
	}
	return uintptr(fn), out, 0
}

func (r *realDriver) launch(fn uintptr, grid, block [3]uint32, vals []uint64) int {
	var vp *C.ulonglong
	if len(vals) > 0 {
		vp = (*C.ulonglong)(unsafe.Pointer(&vals[0]))
	}
	return int(C.bk_launch(C.uintptr_t(fn), C.uint(grid[0]), C.uint(grid[1]), C.uint(grid[2]),
		C.uint(block[0]), C.uint(block[1]), C.uint(block[2]), r.stream, vp, C.int(len(vals))))
}

// gemmBias runs a batch-1 GEMM with the bias epilogue through cuBLASLt;
// errNoEpilogue when cuBLASLt has no algorithm for the shape.
func (r *realDriver) gemmBias(g *Gemm) int {
	if r.lt == 0 {
		return errNoEpilogue
	}
	k := ltKey{typ: g.Type, m: g.M, n: g.N, k: g.K, lda: g.Lda, ldb: g.Ldb, ldc: g.Ldc, bias: g.Bias != 0, gelu: g.TanhGELU}
	p, ok := r.ltPlans[k]
	if !ok {
		t := C.int(C.BK_CUDA_R_32F)
		switch g.Type {
		case Float16:
			t = C.BK_CUDA_R_16F
		case BFloat16:
			t = C.BK_CUDA_R_16BF
		}
		epilogue := C.int(0)
		switch {
		case k.bias && k.gelu:
			epilogue = 2
		case k.bias:
			epilogue = 1
		}
		rc := C.bk_lt_plan_make(r.lt, t, C.int(g.M), C.int(g.N), C.int(g.K), C.int(g.Lda), C.int(g.Ldb), C.int(g.Ldc),
			epilogue, C.size_t(ltWorkspace), &p)
		if rc != 0 && rc != C.BK_CUBLAS_STATUS_NOT_SUPPORTED {
			return blasBase + int(rc)
		}
		r.ltPlans[k] = p // nil when not supported: remembered
	}
	if p == nil {
		return errNoEpilogue
	}
	rc := int(C.bk_lt_matmul(r.lt, p, C.ulonglong(g.C), C.ulonglong(g.A), C.ulonglong(g.B), C.ulonglong(g.Bias),
		C.ulonglong(r.ltWS), C.size_t(ltWorkspace), r.stream))
	if rc != 0 {
		return blasBase + rc
	}
	return 0
}

func (r *realDriver) gemm(g *Gemm) int {
	if r.blas == 0 {
		return cudaErrorNotFound
	}
	if g.Bias != 0 {
		return r.gemmBias(g)
	}
	var rc int
	switch g.Type {
	case Float32:
		rc = int(C.bk_blas_sgemm_nt(r.blas, C.ulonglong(g.C), C.ulonglong(g.A), C.ulonglong(g.B),
			C.int(g.M), C.int(g.N), C.int(g.K), C.int(g.Lda), C.int(g.Ldb), C.int(g.Ldc),
			C.longlong(g.StrideA), C.longlong(g.StrideB), C.longlong(g.StrideC), C.int(g.Batch)))
	case Float16, BFloat16:
		t := C.int(C.BK_CUDA_R_16F)
		if g.Type == BFloat16 {
			t = C.BK_CUDA_R_16BF
		}
		rc = int(C.bk_blas_gemm16_nt(r.blas, t, C.ulonglong(g.C), C.ulonglong(g.A), C.ulonglong(g.B),
			C.int(g.M), C.int(g.N), C.int(g.K), C.int(g.Lda), C.int(g.Ldb), C.int(g.Ldc),
			C.longlong(g.StrideA), C.longlong(g.StrideB), C.longlong(g.StrideC), C.int(g.Batch)))
		if rc == -1 {
			return cudaErrorNotFound
		}
	default:
		return cudaErrorInvalidValue
	}
	if rc != 0 {
		return blasBase + rc
	}
	return 0
}

func (r *realDriver) synchronize() int { return int(C.bk_stream_sync(r.stream)) }

func (r *realDriver) hasGraphs() bool { return C.bk_has_graphs() != 0 }

func (r *realDriver) beginCapture() int { return int(C.bk_begin_capture(r.stream)) }

func (r *realDriver) endCapture() (uintptr, int) {
	var e C.uintptr_t
	rc := C.bk_end_capture(r.stream, &e)
	return uintptr(e), int(rc)
}

func (r *realDriver) graphLaunch(exec uintptr) int {
	return int(C.bk_graph_launch(C.uintptr_t(exec), r.stream))
}

func (r *realDriver) graphDestroy(exec uintptr) { C.bk_graph_destroy(C.uintptr_t(exec)) }

func (r *realDriver) eventCreate() (uintptr, int) {
	var e C.uintptr_t
	rc := C.bk_event_create(&e)
	return uintptr(e), int(rc)
}

func (r *realDriver) eventRecord(e uintptr) int {
	return int(C.bk_event_record(C.uintptr_t(e), r.stream))
}

func (r *realDriver) eventSynchronize(e uintptr) int { return int(C.bk_event_sync(C.uintptr_t(e))) }

func (r *realDriver) eventElapsed(a, b uintptr) (float32, int) {
	var ms C.float
	rc := C.bk_event_elapsed(C.uintptr_t(a), C.uintptr_t(b), &ms)
	return float32(ms), int(rc)
}

func (r *realDriver) eventDestroy(e uintptr) { C.bk_event_destroy(C.uintptr_t(e)) }
