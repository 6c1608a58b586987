/*
 * cudadecl.h — the few CUDA driver and cuBLAS declarations the cuda package
 * needs, written out so that `go build` needs no CUDA toolkit. Functions are
 * reached through pointers filled by dlsym (real, versioned symbol names),
 * as cudaTypedefs.h does. header_test.go compiles these declarations against
 * the real cuda.h (and cublas_api.h when present) to prove they match.
 *
 * With BK_USE_REAL_CUDA_TYPES defined (the test), the types come from the
 * real headers and only the function-pointer typedefs below are ours.
 */
#ifndef BK_CUDADECL_H
#define BK_CUDADECL_H

#include <stddef.h>
#include <stdint.h>

#ifndef BK_USE_REAL_CUDA_TYPES
typedef int CUresult;                  /* enum cudaError_enum */
typedef int CUdevice;                  /* CUdevice_v1 */
typedef unsigned long long CUdeviceptr; /* CUdeviceptr_v2 */
typedef void* CUcontext;
typedef void* CUmodule;
typedef void* CUfunction;
typedef void* CUstream;
typedef void* CUevent;
typedef void* CUgraph;
typedef void* CUgraphExec;
typedef int CUstreamCaptureMode;       /* enum CUstreamCaptureMode_enum */
typedef int CUdevice_attribute;
typedef int cudaDataType;              /* enum cudaDataType_t (library_types.h) */
typedef int CUstreamCaptureStatus;     /* enum CUstreamCaptureStatus_enum */
typedef int CUpointer_attribute;       /* enum CUpointer_attribute_enum */
typedef void (*CUhostFn)(void* userData);
#endif

/* With BK_USE_REAL_CUBLAS_TYPES (the test, when cuBLAS headers exist) these
 * come from cublas_api.h and cublasLt.h. */
#ifndef BK_USE_REAL_CUBLAS_TYPES
typedef int cublasStatus_t;
typedef void* cublasHandle_t;
typedef int cublasOperation_t;
typedef int cublasMath_t;
typedef int cublasComputeType_t;
typedef int cublasGemmAlgo_t;
typedef void* cublasLtHandle_t;
typedef void* cublasLtMatmulDesc_t;
typedef void* cublasLtMatrixLayout_t;
typedef void* cublasLtMatmulPreference_t;
typedef int cublasLtMatmulDescAttributes_t;
typedef int cublasLtMatrixLayoutAttribute_t;
typedef int cublasLtMatmulPreferenceAttributes_t;
typedef struct { uint64_t data[8]; } cublasLtMatmulAlgo_t;
typedef struct {
  cublasLtMatmulAlgo_t algo;
  size_t workspaceSize;
  cublasStatus_t state;
  float wavesCount;
  int reserved[4];
} cublasLtMatmulHeuristicResult_t;
#endif

/* ABI values (cuda.h, cublas_api.h). */
#define BK_CUDA_SUCCESS 0
#define BK_CUDA_ERROR_INVALID_VALUE 1
#define BK_CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT 16
#define BK_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR 75
#define BK_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR 76
#define BK_CU_STREAM_DEFAULT 0
#define BK_CU_EVENT_DEFAULT 0
#define BK_CU_STREAM_CAPTURE_MODE_RELAXED 2
#define BK_CUBLAS_STATUS_SUCCESS 0
#define BK_CUBLAS_OP_N 0
#define BK_CUBLAS_OP_T 1
#define BK_CUBLAS_DEFAULT_MATH 0
#define BK_CUBLAS_TF32_TENSOR_OP_MATH 3
#define BK_CUDA_R_32F 0
#define BK_CUDA_R_16F 2
#define BK_CUDA_R_16BF 14
#define BK_CUBLAS_COMPUTE_32F 68
#define BK_CUBLAS_GEMM_DEFAULT (-1)
#define BK_CUBLAS_STATUS_NOT_SUPPORTED 15
#define BK_CUBLASLT_MATMUL_DESC_TRANSA 3
#define BK_CUBLASLT_MATMUL_DESC_TRANSB 4
#define BK_CUBLASLT_MATMUL_DESC_EPILOGUE 7
#define BK_CUBLASLT_MATMUL_DESC_BIAS_POINTER 8
#define BK_CUBLASLT_EPILOGUE_DEFAULT 1
#define BK_CUBLASLT_EPILOGUE_BIAS 4
#define BK_CUBLASLT_EPILOGUE_GELU_BIAS 36
#define BK_CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES 1

/* Driver API (libcuda.so.1). The _v2 names are the exported symbols. */
typedef CUresult (*bk_pfn_cuInit)(unsigned int flags);
typedef CUresult (*bk_pfn_cuDriverGetVersion)(int* version);
typedef CUresult (*bk_pfn_cuDeviceGet)(CUdevice* dev, int ordinal);
typedef CUresult (*bk_pfn_cuDeviceGetCount)(int* count);
typedef CUresult (*bk_pfn_cuDeviceGetName)(char* name, int len, CUdevice dev);
typedef CUresult (*bk_pfn_cuDeviceGetAttribute)(int* pi, CUdevice_attribute attrib, CUdevice dev);
typedef CUresult (*bk_pfn_cuDevicePrimaryCtxRetain)(CUcontext* pctx, CUdevice dev);
typedef CUresult (*bk_pfn_cuDevicePrimaryCtxRelease_v2)(CUdevice dev);
typedef CUresult (*bk_pfn_cuCtxSetCurrent)(CUcontext ctx);
typedef CUresult (*bk_pfn_cuMemAlloc_v2)(CUdeviceptr* dptr, size_t bytesize);
typedef CUresult (*bk_pfn_cuMemFree_v2)(CUdeviceptr dptr);
typedef CUresult (*bk_pfn_cuMemGetInfo_v2)(size_t* free, size_t* total);
typedef CUresult (*bk_pfn_cuMemcpyHtoD_v2)(CUdeviceptr dst, const void* src, size_t n);
typedef CUresult (*bk_pfn_cuMemcpyDtoH_v2)(void* dst, CUdeviceptr src, size_t n);
typedef CUresult (*bk_pfn_cuMemcpyDtoD_v2)(CUdeviceptr dst, CUdeviceptr src, size_t n);
typedef CUresult (*bk_pfn_cuMemsetD8_v2)(CUdeviceptr dst, unsigned char uc, size_t n);
typedef CUresult (*bk_pfn_cuMemcpyDtoDAsync_v2)(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream hStream);
typedef CUresult (*bk_pfn_cuMemsetD8Async)(CUdeviceptr dst, unsigned char uc, size_t n, CUstream hStream);
typedef CUresult (*bk_pfn_cuStreamBeginCapture_v2)(CUstream hStream, CUstreamCaptureMode mode);
typedef CUresult (*bk_pfn_cuStreamEndCapture)(CUstream hStream, CUgraph* phGraph);
typedef CUresult (*bk_pfn_cuGraphInstantiateWithFlags)(CUgraphExec* phGraphExec, CUgraph hGraph, unsigned long long flags);
typedef CUresult (*bk_pfn_cuGraphLaunch)(CUgraphExec hGraphExec, CUstream hStream);
typedef CUresult (*bk_pfn_cuGraphExecDestroy)(CUgraphExec hGraphExec);
typedef CUresult (*bk_pfn_cuGraphDestroy)(CUgraph hGraph);
typedef CUresult (*bk_pfn_cuModuleLoadData)(CUmodule* module, const void* image);
typedef CUresult (*bk_pfn_cuModuleUnload)(CUmodule hmod);
typedef CUresult (*bk_pfn_cuModuleGetFunction)(CUfunction* hfunc, CUmodule hmod, const char* name);
typedef CUresult (*bk_pfn_cuLaunchKernel)(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                          unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                                          unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
                                          void** kernelParams, void** extra);
typedef CUresult (*bk_pfn_cuStreamCreate)(CUstream* phStream, unsigned int flags);
typedef CUresult (*bk_pfn_cuStreamSynchronize)(CUstream hStream);
typedef CUresult (*bk_pfn_cuStreamDestroy_v2)(CUstream hStream);
typedef CUresult (*bk_pfn_cuEventCreate)(CUevent* phEvent, unsigned int flags);
typedef CUresult (*bk_pfn_cuEventRecord)(CUevent hEvent, CUstream hStream);
typedef CUresult (*bk_pfn_cuEventSynchronize)(CUevent hEvent);
typedef CUresult (*bk_pfn_cuEventElapsedTime)(float* pMilliseconds, CUevent hStart, CUevent hEnd);
typedef CUresult (*bk_pfn_cuEventDestroy_v2)(CUevent hEvent);
typedef CUresult (*bk_pfn_cuGetErrorName)(CUresult error, const char** pStr);
typedef CUresult (*bk_pfn_cuGetErrorString)(CUresult error, const char** pStr);
/* CUDA 12.4+: a kernel parameter's offset and size (NULL on older drivers:
 * launches are then not checked against the kernel's signature). */
typedef CUresult (*bk_pfn_cuFuncGetParamInfo)(CUfunction func, size_t paramIndex, size_t* paramOffset,
                                              size_t* paramSize);
/* Not called by the cuda package; what the stand-in cuBLAS of
 * kernels/standin/ uses to run on the stand-in driver's streams. */
typedef CUresult (*bk_pfn_cuLaunchHostFunc)(CUstream hStream, CUhostFn fn, void* userData);
typedef CUresult (*bk_pfn_cuStreamIsCapturing)(CUstream hStream, CUstreamCaptureStatus* captureStatus);
typedef CUresult (*bk_pfn_cuPointerGetAttribute)(void* data, CUpointer_attribute attribute, CUdeviceptr ptr);

/* cuBLAS (libcublas.so.13 / .12 / .11). */
typedef cublasStatus_t (*bk_pfn_cublasCreate_v2)(cublasHandle_t* handle);
typedef cublasStatus_t (*bk_pfn_cublasDestroy_v2)(cublasHandle_t handle);
typedef cublasStatus_t (*bk_pfn_cublasSetStream_v2)(cublasHandle_t handle, CUstream streamId);
typedef cublasStatus_t (*bk_pfn_cublasSetMathMode)(cublasHandle_t handle, cublasMath_t mode);
typedef cublasStatus_t (*bk_pfn_cublasSetWorkspace_v2)(cublasHandle_t handle, void* workspace, size_t workspaceSizeInBytes);
typedef cublasStatus_t (*bk_pfn_cublasSgemmStridedBatched)(
    cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
    const float* alpha, const float* A, int lda, long long int strideA, const float* B, int ldb,
    long long int strideB, const float* beta, float* C, int ldc, long long int strideC, int batchCount);
typedef cublasStatus_t (*bk_pfn_cublasGemmStridedBatchedEx)(
    cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
    const void* alpha, const void* A, cudaDataType Atype, int lda, long long int strideA, const void* B,
    cudaDataType Btype, int ldb, long long int strideB, const void* beta, void* C, cudaDataType Ctype, int ldc,
    long long int strideC, int batchCount, cublasComputeType_t computeType, cublasGemmAlgo_t algo);

/* cuBLASLt (libcublasLt.so.13 / .12 / .11): GEMMs with a bias epilogue. */
typedef cublasStatus_t (*bk_pfn_cublasLtCreate)(cublasLtHandle_t* lightHandle);
typedef cublasStatus_t (*bk_pfn_cublasLtDestroy)(cublasLtHandle_t lightHandle);
typedef cublasStatus_t (*bk_pfn_cublasLtMatmulDescCreate)(cublasLtMatmulDesc_t* matmulDesc, cublasComputeType_t computeType,
                                                           cudaDataType scaleType);
typedef cublasStatus_t (*bk_pfn_cublasLtMatmulDescDestroy)(cublasLtMatmulDesc_t matmulDesc);
typedef cublasStatus_t (*bk_pfn_cublasLtMatmulDescSetAttribute)(cublasLtMatmulDesc_t matmulDesc,
                                                                 cublasLtMatmulDescAttributes_t attr, const void* buf,
                                                                 size_t sizeInBytes);
typedef cublasStatus_t (*bk_pfn_cublasLtMatrixLayoutCreate)(cublasLtMatrixLayout_t* matLayout, cudaDataType type,
                                                             uint64_t rows, uint64_t cols, int64_t ld);
typedef cublasStatus_t (*bk_pfn_cublasLtMatrixLayoutDestroy)(cublasLtMatrixLayout_t matLayout);
typedef cublasStatus_t (*bk_pfn_cublasLtMatmulPreferenceCreate)(cublasLtMatmulPreference_t* pref);
typedef cublasStatus_t (*bk_pfn_cublasLtMatmulPreferenceDestroy)(cublasLtMatmulPreference_t pref);
typedef cublasStatus_t (*bk_pfn_cublasLtMatmulPreferenceSetAttribute)(cublasLtMatmulPreference_t pref,
                                                                       cublasLtMatmulPreferenceAttributes_t attr,
                                                                       const void* buf, size_t sizeInBytes);
typedef cublasStatus_t (*bk_pfn_cublasLtMatmulAlgoGetHeuristic)(
    cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t operationDesc, cublasLtMatrixLayout_t Adesc,
    cublasLtMatrixLayout_t Bdesc, cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc,
    cublasLtMatmulPreference_t preference, int requestedAlgoCount,
    cublasLtMatmulHeuristicResult_t heuristicResultsArray[], int* returnAlgoCount);
typedef cublasStatus_t (*bk_pfn_cublasLtMatmul)(cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t computeDesc,
                                                 const void* alpha, const void* A, cublasLtMatrixLayout_t Adesc,
                                                 const void* B, cublasLtMatrixLayout_t Bdesc, const void* beta,
                                                 const void* C, cublasLtMatrixLayout_t Cdesc, void* D,
                                                 cublasLtMatrixLayout_t Ddesc, const cublasLtMatmulAlgo_t* algo,
                                                 void* workspace, size_t workspaceSizeInBytes, CUstream stream);

#endif /* BK_CUDADECL_H */
