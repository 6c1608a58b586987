package cuda

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestHeaderMatchesCUDA compiles cudadecl.h's function-pointer typedefs and
// ABI values, and this package's CUresult constants, against the real
// cuda.h (and cublas_api.h when present): every typedef must be the exact
// type of the real function it is dlsym'd from. Skipped when no CUDA
// headers are found ($BLIPCUDA_CUDA_INCLUDE, the nvcc wheels of
// kernels/install-nvcc.sh, $CUDA_HOME/include, /usr/local/cuda/include).
func TestHeaderMatchesCUDA(t *testing.T) {
	home := os.Getenv("HOME")
	// The nvcc venv of kernels/install-nvcc.sh, whatever Python made it.
	wheels, _ := filepath.Glob(filepath.Join(home, ".cache/blipcuda-nvcc/lib/python3*/site-packages/nvidia/cu13/include"))
	var inc []string
	for _, d := range append([]string{os.Getenv("BLIPCUDA_CUDA_INCLUDE")}, append(wheels,
		filepath.Join(os.Getenv("CUDA_HOME"), "include"), "/usr/local/cuda/include")...) {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "cuda.h")); err == nil {
			inc = append(inc, d)
			break
		}
	}
	if len(inc) == 0 {
		t.Skip("no cuda.h found (install with kernels/install-nvcc.sh or set BLIPCUDA_CUDA_INCLUDE)")
	}
	// cuBLAS headers: kernels/install-cublas-headers.sh, a toolkit, or the
	// nvidia-cublas wheel beside the nvcc ones.
	haveBLAS := false
	for _, d := range []string{os.Getenv("BLIPCUDA_CUBLAS_INCLUDE"), inc[0], filepath.Join(home, ".cache/blipcuda-cublas-headers"),
		filepath.Join(inc[0], "../../cublas/include")} {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "cublas_api.h")); err == nil {
			haveBLAS = true
			inc = append(inc, d)
			break
		}
	}
	if !haveBLAS && os.Getenv("BLIPCUDA_REQUIRE_CUBLAS_HEADERS") != "" {
		t.Fatal("BLIPCUDA_REQUIRE_CUBLAS_HEADERS is set but no cublas_api.h was found (kernels/install-cublas-headers.sh)")
	}
	cxx, err := exec.LookPath("g++")
	if err != nil {
		if cxx, err = exec.LookPath("c++"); err != nil {
			t.Skip("no C++ compiler")
		}
	}
	var src strings.Builder
	src.WriteString("#include <cuda.h>\n#include <library_types.h>\n#include <type_traits>\n")
	if haveBLAS {
		src.WriteString("#include <cublas_v2.h>\n#include <cublasLt.h>\n#define BK_USE_REAL_CUBLAS_TYPES\n")
	}
	src.WriteString("#include <cstddef>\n#define BK_USE_REAL_CUDA_TYPES\n#include \"cudadecl.h\"\n")
	// Initialising our pointer type from &sym compiles only when one
	// declaration of sym (cuBLAS's C++ header overloads some) has exactly
	// that type.
	src.WriteString("#define SAME(fn, sym) [[maybe_unused]] static bk_pfn_##fn bk_check_##fn = &sym;\n")
	// The stand-in's extra entry point (kernels/standin/test_blas.cc's type).
	src.WriteString("typedef cublasStatus_t (*bk_pfn_cublasLtMatrixLayoutSetAttribute_check)(cublasLtMatrixLayout_t, cublasLtMatrixLayoutAttribute_t, const void*, size_t);\n")
	for _, f := range []struct{ typ, sym string }{
		{"cuInit", "cuInit"}, {"cuDriverGetVersion", "cuDriverGetVersion"}, {"cuDeviceGet", "cuDeviceGet"},
		{"cuDeviceGetCount", "cuDeviceGetCount"}, {"cuDeviceGetName", "cuDeviceGetName"},
		{"cuDeviceGetAttribute", "cuDeviceGetAttribute"}, {"cuDevicePrimaryCtxRetain", "cuDevicePrimaryCtxRetain"},
		{"cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease_v2"}, {"cuCtxSetCurrent", "cuCtxSetCurrent"},
		{"cuMemAlloc_v2", "cuMemAlloc_v2"}, {"cuMemFree_v2", "cuMemFree_v2"}, {"cuMemGetInfo_v2", "cuMemGetInfo_v2"},
		{"cuMemcpyHtoD_v2", "cuMemcpyHtoD_v2"}, {"cuMemcpyDtoH_v2", "cuMemcpyDtoH_v2"}, {"cuMemcpyDtoD_v2", "cuMemcpyDtoD_v2"},
		{"cuMemsetD8_v2", "cuMemsetD8_v2"}, {"cuModuleLoadData", "cuModuleLoadData"}, {"cuModuleUnload", "cuModuleUnload"},
		{"cuModuleGetFunction", "cuModuleGetFunction"}, {"cuLaunchKernel", "cuLaunchKernel"},
		{"cuStreamCreate", "cuStreamCreate"}, {"cuStreamSynchronize", "cuStreamSynchronize"},
		{"cuStreamDestroy_v2", "cuStreamDestroy_v2"}, {"cuEventCreate", "cuEventCreate"}, {"cuEventRecord", "cuEventRecord"},
		{"cuEventSynchronize", "cuEventSynchronize"}, {"cuEventElapsedTime", "cuEventElapsedTime_v2"},
		{"cuEventDestroy_v2", "cuEventDestroy_v2"}, {"cuGetErrorName", "cuGetErrorName"}, {"cuGetErrorString", "cuGetErrorString"},
		{"cuMemcpyDtoDAsync_v2", "cuMemcpyDtoDAsync_v2"}, {"cuMemsetD8Async", "cuMemsetD8Async"},
		{"cuStreamBeginCapture_v2", "cuStreamBeginCapture_v2"}, {"cuStreamEndCapture", "cuStreamEndCapture"},
		{"cuGraphInstantiateWithFlags", "cuGraphInstantiateWithFlags"}, {"cuGraphLaunch", "cuGraphLaunch"},
		{"cuGraphExecDestroy", "cuGraphExecDestroy"}, {"cuGraphDestroy", "cuGraphDestroy"},
		{"cuFuncGetParamInfo", "cuFuncGetParamInfo"}, {"cuLaunchHostFunc", "cuLaunchHostFunc"},
		{"cuStreamIsCapturing", "cuStreamIsCapturing"}, {"cuPointerGetAttribute", "cuPointerGetAttribute"},
	} {
		fmt.Fprintf(&src, "SAME(%s, %s)\n", f.typ, f.sym)
	}
	if haveBLAS {
		for _, f := range []string{"cublasCreate_v2", "cublasDestroy_v2", "cublasSetStream_v2", "cublasSetMathMode", "cublasSetWorkspace_v2", "cublasSgemmStridedBatched", "cublasGemmStridedBatchedEx",
			"cublasLtCreate", "cublasLtDestroy", "cublasLtMatmulDescCreate", "cublasLtMatmulDescDestroy", "cublasLtMatmulDescSetAttribute",
			"cublasLtMatrixLayoutCreate", "cublasLtMatrixLayoutDestroy", "cublasLtMatmulPreferenceCreate", "cublasLtMatmulPreferenceDestroy",
			"cublasLtMatmulPreferenceSetAttribute", "cublasLtMatmulAlgoGetHeuristic", "cublasLtMatmul"} {
			fmt.Fprintf(&src, "SAME(%s, %s)\n", f, f)
		}
		src.WriteString(`static_assert(BK_CUBLAS_OP_N == CUBLAS_OP_N && BK_CUBLAS_OP_T == CUBLAS_OP_T, "cublasOperation_t");
static_assert(BK_CUBLAS_DEFAULT_MATH == CUBLAS_DEFAULT_MATH && BK_CUBLAS_TF32_TENSOR_OP_MATH == CUBLAS_TF32_TENSOR_OP_MATH, "cublasMath_t");
static_assert(BK_CUBLAS_STATUS_SUCCESS == CUBLAS_STATUS_SUCCESS, "cublasStatus_t");
static_assert(BK_CUBLAS_COMPUTE_32F == CUBLAS_COMPUTE_32F && BK_CUBLAS_GEMM_DEFAULT == CUBLAS_GEMM_DEFAULT, "cublasComputeType_t, cublasGemmAlgo_t");
static_assert(BK_CUBLAS_STATUS_NOT_SUPPORTED == CUBLAS_STATUS_NOT_SUPPORTED, "not supported");
static_assert(BK_CUBLASLT_MATMUL_DESC_TRANSA == CUBLASLT_MATMUL_DESC_TRANSA && BK_CUBLASLT_MATMUL_DESC_TRANSB == CUBLASLT_MATMUL_DESC_TRANSB, "Lt trans");
static_assert(BK_CUBLASLT_MATMUL_DESC_EPILOGUE == CUBLASLT_MATMUL_DESC_EPILOGUE && BK_CUBLASLT_MATMUL_DESC_BIAS_POINTER == CUBLASLT_MATMUL_DESC_BIAS_POINTER, "Lt epilogue attributes");
static_assert(BK_CUBLASLT_EPILOGUE_DEFAULT == CUBLASLT_EPILOGUE_DEFAULT && BK_CUBLASLT_EPILOGUE_BIAS == CUBLASLT_EPILOGUE_BIAS &&
              BK_CUBLASLT_EPILOGUE_GELU_BIAS == CUBLASLT_EPILOGUE_GELU_BIAS, "Lt epilogues");
static_assert(BK_CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, "Lt workspace preference");
// The values the stand-in cuBLAS (kernels/standin/cublas.cc) hard-codes.
static_assert(CUBLAS_STATUS_NOT_INITIALIZED == 1 && CUBLAS_STATUS_ALLOC_FAILED == 3 && CUBLAS_STATUS_INVALID_VALUE == 7 &&
              CUBLAS_STATUS_EXECUTION_FAILED == 13 && CUBLAS_STATUS_NOT_SUPPORTED == 15, "stand-in statuses");
static_assert(CUBLAS_OP_C == 2 && CUBLAS_DEFAULT_MATH == 0 && CUBLAS_PEDANTIC_MATH == 2 &&
              CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION == 16 && CUBLAS_GEMM_DEFAULT_TENSOR_OP == 99, "stand-in cuBLAS enums");
static_assert(CUBLASLT_MATMUL_DESC_COMPUTE_TYPE == 0 && CUBLASLT_MATMUL_DESC_SCALE_TYPE == 1 && CUBLASLT_MATMUL_DESC_POINTER_MODE == 2 &&
              CUBLASLT_MATMUL_DESC_TRANSC == 5 && CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE == 10 && CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE == 26, "Lt desc attributes");
static_assert(CUBLASLT_MATRIX_LAYOUT_TYPE == 0 && CUBLASLT_MATRIX_LAYOUT_ORDER == 1 && CUBLASLT_MATRIX_LAYOUT_ROWS == 2 &&
              CUBLASLT_MATRIX_LAYOUT_COLS == 3 && CUBLASLT_MATRIX_LAYOUT_LD == 4 && CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT == 5 &&
              CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET == 6 && CUBLASLT_ORDER_COL == 0 && CUBLASLT_ORDER_ROW == 1, "Lt layout attributes");
static_assert(CUBLASLT_EPILOGUE_RELU == 2 && CUBLASLT_EPILOGUE_RELU_BIAS == 6 && CUBLASLT_EPILOGUE_GELU == 32 &&
              CUBLASLT_MATMUL_PREF_SEARCH_MODE == 0, "Lt epilogues and preferences");
SAME(cublasLtMatrixLayoutSetAttribute_check, cublasLtMatrixLayoutSetAttribute)
static_assert(sizeof(cublasLtMatmulHeuristicResult_t) == 96 && offsetof(cublasLtMatmulHeuristicResult_t, workspaceSize) == 64 &&
              offsetof(cublasLtMatmulHeuristicResult_t, state) == 72 && sizeof(cublasLtMatmulAlgo_t) == 64, "heuristic result layout (cudadecl.h's stand-in)");
`)
	}
	// The stand-in types of cudadecl.h have the real types' size.
	src.WriteString(`static_assert(sizeof(CUresult) == sizeof(int) && sizeof(CUdevice) == sizeof(int) && sizeof(CUdevice_attribute) == sizeof(int), "int-sized types");
static_assert(std::is_same_v<CUdeviceptr, unsigned long long>, "CUdeviceptr");
static_assert(sizeof(CUcontext) == sizeof(void*) && sizeof(CUmodule) == sizeof(void*) && sizeof(CUfunction) == sizeof(void*) && sizeof(CUstream) == sizeof(void*) && sizeof(CUevent) == sizeof(void*), "handles");
static_assert(BK_CUDA_SUCCESS == CUDA_SUCCESS && BK_CUDA_ERROR_INVALID_VALUE == CUDA_ERROR_INVALID_VALUE, "CUDA_SUCCESS");
// The stand-in driver's error codes (kernels/standin/cuerrors.def) and the
// enum values it hard-codes.
#define X(name, value, text) static_assert(name == value, #name);
#include "../kernels/standin/cuerrors.def"
#undef X
static_assert(CU_POINTER_ATTRIBUTE_RANGE_START_ADDR == 11 && CU_POINTER_ATTRIBUTE_RANGE_SIZE == 12, "pointer attributes");
static_assert(CU_STREAM_CAPTURE_STATUS_NONE == 0 && CU_STREAM_CAPTURE_STATUS_ACTIVE == 1 && CU_STREAM_CAPTURE_STATUS_INVALIDATED == 2, "capture status");
static_assert(CU_STREAM_NON_BLOCKING == 1 && CU_EVENT_DISABLE_TIMING == 2, "stream and event flags");
static_assert(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK == 1 && CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK == 8 &&
              CU_DEVICE_ATTRIBUTE_WARP_SIZE == 10 && CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN == 97, "device attributes");
static_assert(sizeof(CUstreamCaptureStatus) == sizeof(int) && sizeof(CUpointer_attribute) == sizeof(int), "enum sizes");
static_assert(BK_CUDA_R_32F == CUDA_R_32F && BK_CUDA_R_16F == CUDA_R_16F && BK_CUDA_R_16BF == CUDA_R_16BF, "cudaDataType");
static_assert(sizeof(cudaDataType) == sizeof(int), "cudaDataType is int-sized");
static_assert(BK_CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT == CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, "SM count attribute");
static_assert(BK_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, "cc major");
static_assert(BK_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, "cc minor");
static_assert(BK_CU_STREAM_DEFAULT == CU_STREAM_DEFAULT && BK_CU_EVENT_DEFAULT == CU_EVENT_DEFAULT, "flags");
static_assert(BK_CU_STREAM_CAPTURE_MODE_RELAXED == CU_STREAM_CAPTURE_MODE_RELAXED, "capture mode");
static_assert(sizeof(CUstreamCaptureMode) == sizeof(int) && sizeof(CUgraph) == sizeof(void*) && sizeof(CUgraphExec) == sizeof(void*), "graph types");
`)
	// errors.go's CUresult values.
	for _, c := range []struct {
		name string
		v    int
	}{
		{"CUDA_ERROR_INVALID_VALUE", cudaErrorInvalidValue}, {"CUDA_ERROR_OUT_OF_MEMORY", cudaErrorOutOfMemory},
		{"CUDA_ERROR_NOT_FOUND", cudaErrorNotFound}, {"CUDA_ERROR_ILLEGAL_STATE", cudaErrorIllegalState}, {"CUDA_ERROR_ILLEGAL_ADDRESS", cudaErrorIllegalAddress},
		{"CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", cudaErrorLaunchOutOfResource}, {"CUDA_ERROR_LAUNCH_TIMEOUT", cudaErrorLaunchTimeout},
		{"CUDA_ERROR_HARDWARE_STACK_ERROR", cudaErrorHardwareStack}, {"CUDA_ERROR_ILLEGAL_INSTRUCTION", cudaErrorIllegalInstruction},
		{"CUDA_ERROR_MISALIGNED_ADDRESS", cudaErrorMisalignedAddress}, {"CUDA_ERROR_INVALID_ADDRESS_SPACE", cudaErrorInvalidAddressSpace},
		{"CUDA_ERROR_INVALID_PC", cudaErrorInvalidPC}, {"CUDA_ERROR_LAUNCH_FAILED", cudaErrorLaunchFailed},
	} {
		fmt.Fprintf(&src, "static_assert(%s == %d, \"%s\");\n", c.name, c.v, c.name)
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "check.cc")
	if err := os.WriteFile(f, []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	args := []string{"-std=c++17", "-fsyntax-only", "-I", wd}
	for _, d := range inc {
		args = append(args, "-I", d)
	}
	out, err := exec.Command(cxx, append(args, f)...).CombinedOutput()
	if err != nil {
		t.Fatalf("cudadecl.h does not match %v: %v\n%s", inc, err, out)
	}
	if !haveBLAS {
		t.Logf("checked against %s; no cublas_api.h there, so the cuBLAS typedefs were not checked", inc[0])
	}
}
