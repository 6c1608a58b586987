// kernels/standin/cublas.cc — stand-in libcublas.so.13 and (with
// -DBKSTANDIN_LT) libcublasLt.so.13: the entry points blipcuda resolves,
// with cublas_api.h's and cublasLt.h's signatures, computing what NVIDIA's
// cuBLAS documentation specifies, on the stand-in driver's streams.
//
// Written from the cuBLAS documentation, not from blipcuda's Go code (so a
// mistake cannot cancel out between the two); test_blas.cc checks it against
// textbook column-major examples.
//
//   cublasSgemmStridedBatched / cublasGemmStridedBatchedEx: for each batch
//   b < batchCount, C_b = alpha·op(A_b)·op(B_b) + beta·C_b, column-major
//   (element (i, j) of an ld-matrix at i + j·ld), op ∈ {N, T, C (= T for
//   real types)}, op(A) m×k, op(B) k×n, C m×n; A_b = A + b·strideA (elements).
//   lda ≥ max(1, rows of A as stored), ldb likewise, ldc ≥ max(1, m), m, n,
//   k, batchCount ≥ 0, else CUBLAS_STATUS_INVALID_VALUE. beta = 0: C is not
//   read (NaN in C does not propagate). Host pointer mode (alpha and beta are
//   read when the call is made).
//   Ex with CUBLAS_COMPUTE_32F: A/B/C types (16F,16F,16F), (16BF,16BF,16BF),
//   (16F,16F,32F), (16BF,16BF,32F), (32F,32F,32F); float alpha/beta; other
//   combinations or compute types CUBLAS_STATUS_NOT_SUPPORTED.
//   Math mode CUBLAS_TF32_TENSOR_OP_MATH rounds float32 inputs of Sgemm to
//   TF32 (10-bit mantissa, round to nearest even) as tensor cores would, so a
//   caller that wants float32 parity can see it has not switched TF32 on.
//
//   cuBLASLt (cublasLtMatmul): D = epilogue(alpha·op(A)·op(B) + beta·C), with
//   matrix layouts (type, rows and cols *as stored*, ld, CUBLASLT_ORDER_COL or
//   ROW, batch count, strided batch offset), the operation descriptor
//   (compute and scale type, TRANSA/TRANSB, EPILOGUE, BIAS_POINTER, bias data
//   type (default: D's type), bias batch stride), epilogues DEFAULT, RELU,
//   BIAS (bias[i] added to row i of D: length = rows of D), RELU_BIAS, GELU
//   and GELU_BIAS (bias then GELU; cuBLASLt's GELU is the tanh form
//   0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))). The heuristic returns one
//   algorithm (workspace 0, bound to the problem it was asked for); a matmul
//   with an algorithm from another problem, or C ≠ D layouts, is
//   CUBLAS_STATUS_INVALID_VALUE; unsupported combinations
//   CUBLAS_STATUS_NOT_SUPPORTED (heuristic: no result).
//
// Numerics: the dot products in double (more exact than a GPU's float32
// accumulation), rounded to float32, the compute type; alpha, beta·C, the
// bias and the activation in float32, as cuBLASLt's epilogue computes them;
// then one conversion to the output type. cuBLAS's own results differ in the
// last bits (summation order, FMA), and only a GPU shows them.
//
// Execution: each call enqueues a host function on its stream with
// cuLaunchHostFunc (so it is ordered with the kernels and recorded into
// graphs under capture; a captured call's parameters live until the handle
// is destroyed). Before that, every matrix's extent (rows, cols, ld, batch,
// stride) is checked to lie inside one device allocation
// (cuPointerGetAttribute): an overrun, which would fault on a GPU, is
// CUBLAS_STATUS_EXECUTION_FAILED with a message on stderr.
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <type_traits>
#include <vector>

#include "../../cuda/cudadecl.h"

#define BKS_API extern "C" __attribute__((visibility("default")))
#define CHECK_TYPE(fn, pfn) static_assert(std::is_same_v<decltype(&fn), pfn>, #fn " has the header's signature")

namespace {

enum : int {
  ST_SUCCESS = 0,
  ST_NOT_INITIALIZED = 1,
  ST_ALLOC_FAILED = 3,
  ST_INVALID_VALUE = 7,
  ST_EXECUTION_FAILED = 13,
  ST_NOT_SUPPORTED = 15,
};
enum : int { OP_N = 0, OP_T = 1, OP_C = 2 };
enum : int { R_32F = 0, R_16F = 2, R_16BF = 14 };
enum : int { COMPUTE_32F = 68 };

// The stand-in driver's entry points, resolved from the libcuda.so.1 already
// loaded (blipcuda opens it first; so does test_blas).
struct Driver {
  bk_pfn_cuLaunchHostFunc launch_host = nullptr;
  bk_pfn_cuStreamIsCapturing is_capturing = nullptr;
  bk_pfn_cuPointerGetAttribute pointer_attr = nullptr;
  bool ok = false;
};
const Driver& driver() {
  static Driver d = [] {
    Driver r;
    void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (!lib) lib = dlopen("libcuda.so.1", RTLD_NOW);
    if (!lib) return r;
    r.launch_host = reinterpret_cast<bk_pfn_cuLaunchHostFunc>(dlsym(lib, "cuLaunchHostFunc"));
    r.is_capturing = reinterpret_cast<bk_pfn_cuStreamIsCapturing>(dlsym(lib, "cuStreamIsCapturing"));
    r.pointer_attr = reinterpret_cast<bk_pfn_cuPointerGetAttribute>(dlsym(lib, "cuPointerGetAttribute"));
    r.ok = r.launch_host && r.is_capturing && r.pointer_attr;
    return r;
  }();
  return d;
}

int type_size(int t) { return t == R_32F ? 4 : (t == R_16F || t == R_16BF) ? 2 : 0; }

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h >> 15) << 31, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0) return (sign ? -1.0f : 1.0f) * std::ldexp(float(mant), -24);
  uint32_t b = exp == 0x1f ? (sign | 0x7f800000u | mant << 13) : (sign | (exp + 112) << 23 | mant << 13);
  float f;
  memcpy(&f, &b, 4);
  return f;
}

// Round to nearest even (IEEE 754 binary16), from double so one rounding.
uint16_t double_to_half(double v) {
  const uint16_t sign = std::signbit(v) ? 0x8000 : 0;
  double a = std::fabs(v);
  if (std::isnan(v)) return 0x7e00;
  if (a >= 65520.0) return sign | 0x7c00;  // rounds to infinity
  if (a < std::ldexp(1.0, -14)) {          // subnormal: multiples of 2^-24
    const double q = std::nearbyint(a * std::ldexp(1.0, 24));
    return sign | uint16_t(q);
  }
  int e;
  const double m = std::frexp(a, &e);                          // a = m·2^e, m in [0.5, 1)
  double q = std::nearbyint(m * 2048.0);                       // 11 significant bits
  if (q == 2048.0) q = 1024.0, ++e;
  return sign | uint16_t((e + 14) << 10) | uint16_t(uint32_t(q) & 0x3ff);
}

float bf16_to_float(uint16_t h) {
  uint32_t b = uint32_t(h) << 16;
  float f;
  memcpy(&f, &b, 4);
  return f;
}

// double → bfloat16 with one rounding: through float would round twice, so
// round the double to 8 significant bits directly.
uint16_t double_to_bf16(double v) {
  if (std::isnan(v)) return 0x7fc0;
  const uint16_t sign = std::signbit(v) ? 0x8000 : 0;
  double a = std::fabs(v);
  if (a == 0) return sign;
  int e;
  std::frexp(a, &e);
  const int emin = -125;  // normal float exponents (frexp convention)
  const int bits = e >= emin ? 8 : 8 - (emin - e);
  if (bits <= 0 && a < std::ldexp(1.0, -134)) return sign;
  const double scale = std::ldexp(1.0, (e >= emin ? e : emin) - 8);
  double r = std::nearbyint(a / scale) * scale;
  float f = float(r);  // exact: r has ≤ 8 significant bits in float's range, or overflows
  if (std::isinf(f) || r > 3.3895313892515355e38) return sign | 0x7f80;
  uint32_t b;
  memcpy(&b, &f, 4);
  return sign | uint16_t(b >> 16);
}

float load(const void* p, int type, int64_t i) {
  switch (type) {
    case R_32F: return static_cast<const float*>(p)[i];
    case R_16F: return half_to_float(static_cast<const uint16_t*>(p)[i]);
    default: return bf16_to_float(static_cast<const uint16_t*>(p)[i]);
  }
}

void store(void* p, int type, int64_t i, double v) {
  switch (type) {
    case R_32F: static_cast<float*>(p)[i] = float(v); return;
    case R_16F: static_cast<uint16_t*>(p)[i] = double_to_half(v); return;
    default: static_cast<uint16_t*>(p)[i] = double_to_bf16(v); return;
  }
}

float tf32(float x) {
  if (!std::isfinite(x)) return x;
  uint32_t b;
  memcpy(&b, &x, 4);
  b += 0xfffu + ((b >> 13) & 1u);
  b &= ~0x1fffu;
  memcpy(&x, &b, 4);
  return x;
}

// A matrix as stored: element (r, c) at r·rs + c·cs (col-major: rs = 1,
// cs = ld; row-major: rs = ld, cs = 1), batch b at b·stride.
struct Mat {
  const void* p;
  int type;
  int64_t rows, cols, rs, cs, stride;
};

enum Epi { EPI_NONE = 0, EPI_RELU = 1, EPI_GELU = 2 };

// The whole computation, run on the stream.
struct Job {
  int opa, opb;
  int64_t m, n, k, batch;
  float alpha, beta;
  bool tf32_inputs;
  Mat a, b, c, d;          // c read (beta ≠ 0), d written
  const void* bias;        // nullptr: none
  int bias_type;
  int64_t bias_stride;
  int act;                 // Epi
  bool owned;              // freed by run (not captured)
};

double gelu_tanh(double x) { return 0.5 * x * (1.0 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }

// dot sums x[l]·y[l] in double with four partial sums (the order is fixed:
// results do not depend on anything but the inputs).
double dot(const float* x, const float* y, int64_t k) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t l = 0;
  for (; l + 4 <= k; l += 4) {
    s0 += double(x[l]) * y[l];
    s1 += double(x[l + 1]) * y[l + 1];
    s2 += double(x[l + 2]) * y[l + 2];
    s3 += double(x[l + 3]) * y[l + 3];
  }
  for (; l < k; ++l) s0 += double(x[l]) * y[l];
  return (s0 + s1) + (s2 + s3);
}

void run(void* arg) {
  Job* j = static_cast<Job*>(arg);
  const size_t kk = size_t(j->k > 0 ? j->k : 1);
  // op(A) as m rows of k floats and op(B) as n columns of k floats, widened
  // exactly (TF32-rounded in that math mode), then dot products.
  std::vector<float> a(size_t(j->m) * kk), b(size_t(j->n) * kk);
  for (int64_t bt = 0; bt < j->batch; ++bt) {
    for (int64_t i = 0; i < j->m; ++i)
      for (int64_t l = 0; l < j->k; ++l) {
        const int64_t r = j->opa == OP_N ? i : l, c = j->opa == OP_N ? l : i;
        const float v = load(j->a.p, j->a.type, bt * j->a.stride + r * j->a.rs + c * j->a.cs);
        a[size_t(i) * kk + size_t(l)] = j->tf32_inputs ? tf32(v) : v;
      }
    for (int64_t jj = 0; jj < j->n; ++jj)
      for (int64_t l = 0; l < j->k; ++l) {
        const int64_t r = j->opb == OP_N ? l : jj, c = j->opb == OP_N ? jj : l;
        const float v = load(j->b.p, j->b.type, bt * j->b.stride + r * j->b.rs + c * j->b.cs);
        b[size_t(jj) * kk + size_t(l)] = j->tf32_inputs ? tf32(v) : v;
      }
    for (int64_t jj = 0; jj < j->n; ++jj) {
      for (int64_t i = 0; i < j->m; ++i) {
        // The accumulator rounded to float32 (the compute type), then the
        // scaling and the epilogue in float32 as the GPU's epilogue does,
        // then one conversion to the output type.
        const float acc = float(dot(&a[size_t(i) * kk], &b[size_t(jj) * kk], j->k));
        float out = j->alpha * acc;
        if (j->beta != 0.0f)
          out += j->beta * load(j->c.p, j->c.type, bt * j->c.stride + i * j->c.rs + jj * j->c.cs);
        if (j->bias) out += load(j->bias, j->bias_type, bt * j->bias_stride + i);
        if (j->act == EPI_RELU) out = out > 0 ? out : 0;
        if (j->act == EPI_GELU) out = float(gelu_tanh(double(out)));
        store(const_cast<void*>(j->d.p), j->d.type, bt * j->d.stride + i * j->d.rs + jj * j->d.cs, double(out));
      }
    }
  }
  if (j->owned) delete j;
}

// inside reports whether the elements a matrix's batches touch lie in one
// device allocation (an empty matrix touches none).
bool inside(const Mat& mt, int64_t batch, const char* what) {
  if (mt.rows == 0 || mt.cols == 0 || batch == 0) return true;
  int64_t lo = 0, hi = (mt.rows - 1) * mt.rs + (mt.cols - 1) * mt.cs;
  if (mt.stride >= 0) hi += (batch - 1) * mt.stride;
  else lo += (batch - 1) * mt.stride;
  const int64_t es = type_size(mt.type);
  const uint64_t first = uint64_t(reinterpret_cast<uintptr_t>(mt.p)) + uint64_t(lo * es);
  const uint64_t last = uint64_t(reinterpret_cast<uintptr_t>(mt.p)) + uint64_t(hi * es + es);  // one past
  CUdeviceptr base = 0;
  size_t size = 0;
  const Driver& d = driver();
  if (mt.p == nullptr || d.pointer_attr(&base, 11 /* RANGE_START_ADDR */, first) != 0 ||
      d.pointer_attr(&size, 12 /* RANGE_SIZE */, first) != 0 || last > base + size) {
    fprintf(stderr,
            "cuBLAS stand-in: %s (%lld×%lld, strides %lld/%lld, batch %lld × %lld) is not inside one device allocation\n",
            what, (long long)mt.rows, (long long)mt.cols, (long long)mt.rs, (long long)mt.cs, (long long)batch,
            (long long)mt.stride);
    return false;
  }
  return true;
}

struct Handle {
  CUstream stream = nullptr;
  int math = 0;
  void* workspace = nullptr;
  size_t workspace_size = 0;
  std::mutex mu;
  std::vector<Job*> kept;  // captured jobs: replayed by graphs, freed with the handle
};

// enqueue validates the job's matrices and runs it on the stream.
int enqueue(Handle* h, CUstream stream, Job* j) {
  const Driver& d = driver();
  if (!d.ok) return ST_NOT_INITIALIZED;
  if (j->m > 0 && j->n > 0) {
    if ((j->k > 0 && (!inside(j->a, j->batch, "A") || !inside(j->b, j->batch, "B"))) ||
        !inside(j->d, j->batch, "C/D") || (j->beta != 0.0f && !inside(j->c, j->batch, "C"))) {
      delete j;
      return ST_EXECUTION_FAILED;
    }
  }
  CUstreamCaptureStatus st = 0;
  if (d.is_capturing(stream, &st) != 0) {
    delete j;
    return ST_EXECUTION_FAILED;
  }
  j->owned = st == 0;
  if (!j->owned) {
    std::lock_guard<std::mutex> g(h->mu);
    h->kept.push_back(j);
  }
  if (d.launch_host(stream, run, j) != 0) {
    if (j->owned) delete j;
    return ST_EXECUTION_FAILED;
  }
  return ST_SUCCESS;
}

[[maybe_unused]] Mat colmajor(const void* p, int type, int64_t rows, int64_t cols, int64_t ld, int64_t stride) {
  return Mat{p, type, rows, cols, 1, ld, stride};
}

}  // namespace

#ifndef BKSTANDIN_LT
// ---------------------------------------------------------------------------
// cuBLAS
// ---------------------------------------------------------------------------
BKS_API cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
  if (!handle) return ST_INVALID_VALUE;
  if (!driver().ok) return ST_NOT_INITIALIZED;
  *handle = new Handle;
  return ST_SUCCESS;
}
CHECK_TYPE(cublasCreate_v2, bk_pfn_cublasCreate_v2);

BKS_API cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
  Handle* h = static_cast<Handle*>(handle);
  if (!h) return ST_NOT_INITIALIZED;
  for (Job* j : h->kept) delete j;
  delete h;
  return ST_SUCCESS;
}
CHECK_TYPE(cublasDestroy_v2, bk_pfn_cublasDestroy_v2);

BKS_API cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, CUstream streamId) {
  Handle* h = static_cast<Handle*>(handle);
  if (!h) return ST_NOT_INITIALIZED;
  h->stream = streamId;
  h->workspace = nullptr;  // documented: setting the stream resets the user workspace
  h->workspace_size = 0;
  return ST_SUCCESS;
}
CHECK_TYPE(cublasSetStream_v2, bk_pfn_cublasSetStream_v2);

BKS_API cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  Handle* h = static_cast<Handle*>(handle);
  if (!h) return ST_NOT_INITIALIZED;
  const int base = mode & 0xf;
  if ((mode & ~0x1f) || (base != 0 && base != 1 && base != 2 && base != 3)) return ST_INVALID_VALUE;
  h->math = mode;
  return ST_SUCCESS;
}
CHECK_TYPE(cublasSetMathMode, bk_pfn_cublasSetMathMode);

BKS_API cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void* workspace, size_t workspaceSizeInBytes) {
  Handle* h = static_cast<Handle*>(handle);
  if (!h) return ST_NOT_INITIALIZED;
  if (workspaceSizeInBytes > 0 && (!workspace || reinterpret_cast<uintptr_t>(workspace) % 256 != 0))
    return ST_INVALID_VALUE;  // documented: at least 256-byte aligned
  h->workspace = workspace;
  h->workspace_size = workspaceSizeInBytes;
  return ST_SUCCESS;
}
CHECK_TYPE(cublasSetWorkspace_v2, bk_pfn_cublasSetWorkspace_v2);

static int gemm_args(int transa, int transb, int m, int n, int k, int lda, int ldb, int ldc, int batch) {
  auto op_ok = [](int t) { return t == OP_N || t == OP_T || t == OP_C; };
  if (!op_ok(transa) || !op_ok(transb) || m < 0 || n < 0 || k < 0 || batch < 0) return ST_INVALID_VALUE;
  const int arows = transa == OP_N ? m : k, brows = transb == OP_N ? k : n;
  if (lda < std::max(1, arows) || ldb < std::max(1, brows) || ldc < std::max(1, m)) return ST_INVALID_VALUE;
  return ST_SUCCESS;
}

static cublasStatus_t gemm(Handle* h, int transa, int transb, int m, int n, int k, float alpha, const void* A,
                           int at, int lda, long long sa, const void* B, int bt, int ldb, long long sb, float beta,
                           void* C, int ct, int ldc, long long sc, int batch, bool tf32_inputs) {
  if (int rc = gemm_args(transa, transb, m, n, k, lda, ldb, ldc, batch)) return rc;
  if (m == 0 || n == 0 || batch == 0) return ST_SUCCESS;
  const int oa = transa == OP_N ? OP_N : OP_T, ob = transb == OP_N ? OP_N : OP_T;
  Job* j = new Job{};
  j->opa = oa, j->opb = ob, j->m = m, j->n = n, j->k = k, j->batch = batch;
  j->alpha = alpha, j->beta = beta, j->tf32_inputs = tf32_inputs;
  j->a = colmajor(A, at, oa == OP_N ? m : k, oa == OP_N ? k : m, lda, sa);
  j->b = colmajor(B, bt, ob == OP_N ? k : n, ob == OP_N ? n : k, ldb, sb);
  j->c = colmajor(C, ct, m, n, ldc, sc);
  j->d = j->c;
  return enqueue(h, h->stream, j);
}

BKS_API cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa,
                                                 cublasOperation_t transb, int m, int n, int k, const float* alpha,
                                                 const float* A, int lda, long long int strideA, const float* B,
                                                 int ldb, long long int strideB, const float* beta, float* C, int ldc,
                                                 long long int strideC, int batchCount) {
  Handle* h = static_cast<Handle*>(handle);
  if (!h) return ST_NOT_INITIALIZED;
  if (!alpha || !beta) return ST_INVALID_VALUE;
  const bool tf32_inputs = (h->math & 0xf) == 3;  // CUBLAS_TF32_TENSOR_OP_MATH
  return gemm(h, transa, transb, m, n, k, *alpha, A, R_32F, lda, strideA, B, R_32F, ldb, strideB, *beta, C, R_32F,
              ldc, strideC, batchCount, tf32_inputs);
}
CHECK_TYPE(cublasSgemmStridedBatched, bk_pfn_cublasSgemmStridedBatched);

BKS_API cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa,
                                                  cublasOperation_t transb, int m, int n, int k, const void* alpha,
                                                  const void* A, cudaDataType Atype, int lda, long long int strideA,
                                                  const void* B, cudaDataType Btype, int ldb, long long int strideB,
                                                  const void* beta, void* C, cudaDataType Ctype, int ldc,
                                                  long long int strideC, int batchCount,
                                                  cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
  Handle* h = static_cast<Handle*>(handle);
  if (!h) return ST_NOT_INITIALIZED;
  if (!alpha || !beta) return ST_INVALID_VALUE;
  if (!((algo >= -1 && algo <= 23) || (algo >= 99 && algo <= 115))) return ST_INVALID_VALUE;
  if (computeType != COMPUTE_32F) return ST_NOT_SUPPORTED;
  const bool half_in = Atype == Btype && (Atype == R_16F || Atype == R_16BF);
  const bool ok = (half_in && (Ctype == Atype || Ctype == R_32F)) || (Atype == R_32F && Btype == R_32F && Ctype == R_32F);
  if (!ok) return ST_NOT_SUPPORTED;
  return gemm(h, transa, transb, m, n, k, *static_cast<const float*>(alpha), A, Atype, lda, strideA, B, Btype, ldb,
              strideB, *static_cast<const float*>(beta), C, Ctype, ldc, strideC, batchCount, false);
}
CHECK_TYPE(cublasGemmStridedBatchedEx, bk_pfn_cublasGemmStridedBatchedEx);

#else
// ---------------------------------------------------------------------------
// cuBLASLt
// ---------------------------------------------------------------------------
namespace {
struct LtDesc {
  int32_t compute, scale, transa = OP_N, transb = OP_N, transc = OP_N, pointer_mode = 0;
  uint32_t epilogue = 1;  // CUBLASLT_EPILOGUE_DEFAULT
  const void* bias = nullptr;
  int32_t bias_type = -1;
  int64_t bias_stride = 0;
};
struct LtLayout {
  uint32_t type;
  int32_t order = 0;  // CUBLASLT_ORDER_COL
  uint64_t rows, cols;
  int64_t ld;
  int32_t batch = 1;
  int64_t stride = 0;
};
struct LtPref {
  uint32_t search = 0;
  uint64_t max_workspace = 0;
};
// What cublasLtMatmulAlgo_t carries here: a tag and the problem it was made for.
struct AlgoData {
  uint64_t tag, m, n, k, types, epilogue, reserved[2];
};
static_assert(sizeof(AlgoData) == sizeof(cublasLtMatmulAlgo_t));
constexpr uint64_t kAlgoTag = 0x626b7374616e6431ull;  // "bkstand1"

template <class T>
int set_attr(T* dst, const void* buf, size_t size) {
  if (!buf || size != sizeof(T)) return ST_INVALID_VALUE;
  memcpy(dst, buf, sizeof(T));
  return ST_SUCCESS;
}

Mat lt_mat(const void* p, const LtLayout* l) {
  const int64_t ld = l->ld;
  return l->order == 1 ? Mat{p, int(l->type), int64_t(l->rows), int64_t(l->cols), ld, 1, l->stride}
                       : Mat{p, int(l->type), int64_t(l->rows), int64_t(l->cols), 1, ld, l->stride};
}

// problem checks the operation and layouts; fills m, n, k. Returns a status.
int problem(const LtDesc* d, const LtLayout* a, const LtLayout* b, const LtLayout* c, const LtLayout* dd, uint64_t* m,
            uint64_t* n, uint64_t* k) {
  if (!d || !a || !b || !c || !dd) return ST_INVALID_VALUE;
  for (const LtLayout* l : {a, b, c, dd}) {
    if (l->order != 0 && l->order != 1) return ST_NOT_SUPPORTED;
    const uint64_t inner = l->order == 0 ? l->rows : l->cols;
    if (l->ld < 1 || uint64_t(l->ld) < inner) return ST_INVALID_VALUE;
    if (l->batch < 1) return ST_INVALID_VALUE;
  }
  *m = d->transa == OP_N ? a->rows : a->cols;
  *k = d->transa == OP_N ? a->cols : a->rows;
  const uint64_t kb = d->transb == OP_N ? b->rows : b->cols;
  *n = d->transb == OP_N ? b->cols : b->rows;
  if (kb != *k || c->rows != *m || c->cols != *n || dd->rows != *m || dd->cols != *n) return ST_INVALID_VALUE;
  if (a->batch != b->batch || a->batch != dd->batch || c->batch != dd->batch) return ST_INVALID_VALUE;
  if (d->compute != COMPUTE_32F || d->scale != R_32F || d->pointer_mode != 0 || d->transc != OP_N)
    return ST_NOT_SUPPORTED;
  if ((d->transa != OP_N && d->transa != OP_T) || (d->transb != OP_N && d->transb != OP_T)) return ST_NOT_SUPPORTED;
  const bool half_in = a->type == b->type && (a->type == R_16F || a->type == R_16BF);
  const bool types_ok = (half_in && (c->type == a->type || c->type == R_32F)) ||
                        (a->type == R_32F && b->type == R_32F && c->type == R_32F);
  if (!types_ok || c->type != dd->type) return ST_NOT_SUPPORTED;
  switch (d->epilogue) {
    case 1: case 2: case 4: case 6: case 32: case 36: break;  // DEFAULT RELU BIAS RELU_BIAS GELU GELU_BIAS
    default: return ST_NOT_SUPPORTED;
  }
  const int bt = d->bias_type == -1 ? int(dd->type) : d->bias_type;
  if ((d->epilogue & 4) && bt != int(dd->type)) return ST_NOT_SUPPORTED;
  return ST_SUCCESS;
}
}  // namespace

BKS_API cublasStatus_t cublasLtCreate(cublasLtHandle_t* lightHandle) {
  if (!lightHandle) return ST_INVALID_VALUE;
  if (!driver().ok) return ST_NOT_INITIALIZED;
  *lightHandle = new Handle;
  return ST_SUCCESS;
}
CHECK_TYPE(cublasLtCreate, bk_pfn_cublasLtCreate);

BKS_API cublasStatus_t cublasLtDestroy(cublasLtHandle_t lightHandle) {
  Handle* h = static_cast<Handle*>(lightHandle);
  if (!h) return ST_NOT_INITIALIZED;
  for (Job* j : h->kept) delete j;
  delete h;
  return ST_SUCCESS;
}
CHECK_TYPE(cublasLtDestroy, bk_pfn_cublasLtDestroy);

BKS_API cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* matmulDesc, cublasComputeType_t computeType,
                                                cudaDataType scaleType) {
  if (!matmulDesc) return ST_INVALID_VALUE;
  LtDesc* d = new LtDesc;
  d->compute = computeType;
  d->scale = scaleType;
  *matmulDesc = d;
  return ST_SUCCESS;
}
CHECK_TYPE(cublasLtMatmulDescCreate, bk_pfn_cublasLtMatmulDescCreate);

BKS_API cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t matmulDesc) {
  delete static_cast<LtDesc*>(matmulDesc);
  return ST_SUCCESS;
}
CHECK_TYPE(cublasLtMatmulDescDestroy, bk_pfn_cublasLtMatmulDescDestroy);

BKS_API cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t matmulDesc,
                                                      cublasLtMatmulDescAttributes_t attr, const void* buf,
                                                      size_t sizeInBytes) {
  LtDesc* d = static_cast<LtDesc*>(matmulDesc);
  if (!d) return ST_INVALID_VALUE;
  switch (attr) {
    case 0: return set_attr(&d->compute, buf, sizeInBytes);       // COMPUTE_TYPE
    case 1: return set_attr(&d->scale, buf, sizeInBytes);         // SCALE_TYPE
    case 2: return set_attr(&d->pointer_mode, buf, sizeInBytes);  // POINTER_MODE
    case 3: return set_attr(&d->transa, buf, sizeInBytes);        // TRANSA
    case 4: return set_attr(&d->transb, buf, sizeInBytes);        // TRANSB
    case 5: return set_attr(&d->transc, buf, sizeInBytes);        // TRANSC
    case 7: return set_attr(&d->epilogue, buf, sizeInBytes);      // EPILOGUE
    case 8: return set_attr(&d->bias, buf, sizeInBytes);          // BIAS_POINTER
    case 10: return set_attr(&d->bias_stride, buf, sizeInBytes);  // BIAS_BATCH_STRIDE
    case 26: return set_attr(&d->bias_type, buf, sizeInBytes);    // BIAS_DATA_TYPE
  }
  return ST_INVALID_VALUE;
}
CHECK_TYPE(cublasLtMatmulDescSetAttribute, bk_pfn_cublasLtMatmulDescSetAttribute);

BKS_API cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* matLayout, cudaDataType type, uint64_t rows,
                                                  uint64_t cols, int64_t ld) {
  if (!matLayout || type_size(type) == 0) return ST_INVALID_VALUE;
  LtLayout* l = new LtLayout;
  l->type = uint32_t(type);
  l->rows = rows, l->cols = cols, l->ld = ld;
  *matLayout = l;
  return ST_SUCCESS;
}
CHECK_TYPE(cublasLtMatrixLayoutCreate, bk_pfn_cublasLtMatrixLayoutCreate);

BKS_API cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t matLayout) {
  delete static_cast<LtLayout*>(matLayout);
  return ST_SUCCESS;
}
CHECK_TYPE(cublasLtMatrixLayoutDestroy, bk_pfn_cublasLtMatrixLayoutDestroy);

// Not resolved by blipcuda (it keeps the default column order and batch 1),
// but part of the documented layout model this stand-in implements; test_blas
// uses it.
BKS_API cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t matLayout,
                                                        cublasLtMatrixLayoutAttribute_t attr, const void* buf,
                                                        size_t sizeInBytes) {
  LtLayout* l = static_cast<LtLayout*>(matLayout);
  if (!l) return ST_INVALID_VALUE;
  switch (attr) {
    case 0: return set_attr(&l->type, buf, sizeInBytes);    // TYPE
    case 1: return set_attr(&l->order, buf, sizeInBytes);   // ORDER
    case 2: return set_attr(&l->rows, buf, sizeInBytes);    // ROWS
    case 3: return set_attr(&l->cols, buf, sizeInBytes);    // COLS
    case 4: return set_attr(&l->ld, buf, sizeInBytes);      // LD
    case 5: return set_attr(&l->batch, buf, sizeInBytes);   // BATCH_COUNT
    case 6: return set_attr(&l->stride, buf, sizeInBytes);  // STRIDED_BATCH_OFFSET
  }
  return ST_INVALID_VALUE;
}

BKS_API cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* pref) {
  if (!pref) return ST_INVALID_VALUE;
  *pref = new LtPref;
  return ST_SUCCESS;
}
CHECK_TYPE(cublasLtMatmulPreferenceCreate, bk_pfn_cublasLtMatmulPreferenceCreate);

BKS_API cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
  delete static_cast<LtPref*>(pref);
  return ST_SUCCESS;
}
CHECK_TYPE(cublasLtMatmulPreferenceDestroy, bk_pfn_cublasLtMatmulPreferenceDestroy);

BKS_API cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                            cublasLtMatmulPreferenceAttributes_t attr,
                                                            const void* buf, size_t sizeInBytes) {
  LtPref* p = static_cast<LtPref*>(pref);
  if (!p) return ST_INVALID_VALUE;
  switch (attr) {
    case 0: return set_attr(&p->search, buf, sizeInBytes);         // SEARCH_MODE
    case 1: return set_attr(&p->max_workspace, buf, sizeInBytes);  // MAX_WORKSPACE_BYTES
  }
  return ST_INVALID_VALUE;
}
CHECK_TYPE(cublasLtMatmulPreferenceSetAttribute, bk_pfn_cublasLtMatmulPreferenceSetAttribute);

BKS_API cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t operationDesc,
                                                      cublasLtMatrixLayout_t Adesc, cublasLtMatrixLayout_t Bdesc,
                                                      cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc,
                                                      cublasLtMatmulPreference_t preference, int requestedAlgoCount,
                                                      cublasLtMatmulHeuristicResult_t heuristicResultsArray[],
                                                      int* returnAlgoCount) {
  if (!lightHandle) return ST_NOT_INITIALIZED;
  if (requestedAlgoCount <= 0 || !heuristicResultsArray || !returnAlgoCount || !preference) return ST_INVALID_VALUE;
  const LtDesc* d = static_cast<const LtDesc*>(operationDesc);
  uint64_t m, n, k;
  *returnAlgoCount = 0;
  const int rc = problem(d, static_cast<const LtLayout*>(Adesc), static_cast<const LtLayout*>(Bdesc),
                         static_cast<const LtLayout*>(Cdesc), static_cast<const LtLayout*>(Ddesc), &m, &n, &k);
  if (rc) return rc;  // documented: NOT_SUPPORTED when no algorithm fits
  const auto* a = static_cast<const LtLayout*>(Adesc);
  const auto* dd = static_cast<const LtLayout*>(Ddesc);
  cublasLtMatmulHeuristicResult_t& r = heuristicResultsArray[0];
  memset(&r, 0, sizeof r);
  AlgoData ad{kAlgoTag, m, n, k, uint64_t(a->type) << 32 | dd->type, d->epilogue, {0, 0}};
  memcpy(&r.algo, &ad, sizeof ad);
  r.workspaceSize = 0;
  r.state = ST_SUCCESS;
  r.wavesCount = 1.0f;
  *returnAlgoCount = 1;
  return ST_SUCCESS;
}
CHECK_TYPE(cublasLtMatmulAlgoGetHeuristic, bk_pfn_cublasLtMatmulAlgoGetHeuristic);

BKS_API cublasStatus_t cublasLtMatmul(cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t computeDesc,
                                      const void* alpha, const void* A, cublasLtMatrixLayout_t Adesc, const void* B,
                                      cublasLtMatrixLayout_t Bdesc, const void* beta, const void* C,
                                      cublasLtMatrixLayout_t Cdesc, void* D, cublasLtMatrixLayout_t Ddesc,
                                      const cublasLtMatmulAlgo_t* algo, void* workspace, size_t workspaceSizeInBytes,
                                      CUstream stream) {
  Handle* h = static_cast<Handle*>(lightHandle);
  if (!h) return ST_NOT_INITIALIZED;
  if (!alpha || !beta) return ST_INVALID_VALUE;
  const LtDesc* d = static_cast<const LtDesc*>(computeDesc);
  const auto* la = static_cast<const LtLayout*>(Adesc);
  const auto* lb = static_cast<const LtLayout*>(Bdesc);
  const auto* lc = static_cast<const LtLayout*>(Cdesc);
  const auto* ld = static_cast<const LtLayout*>(Ddesc);
  uint64_t m, n, k;
  if (int rc = problem(d, la, lb, lc, ld, &m, &n, &k)) return rc;
  if (algo) {
    AlgoData ad;
    memcpy(&ad, algo, sizeof ad);
    if (ad.tag != kAlgoTag || ad.m != m || ad.n != n || ad.k != k || ad.types != (uint64_t(la->type) << 32 | ld->type) ||
        ad.epilogue != d->epilogue)
      return ST_INVALID_VALUE;  // an algorithm from another problem
  }
  (void)workspace, (void)workspaceSizeInBytes;  // the algorithm needs none
  if ((d->epilogue & 4) && !d->bias) return ST_INVALID_VALUE;
  const float fa = *static_cast<const float*>(alpha), fb = *static_cast<const float*>(beta);
  if (fb != 0.0f && C != D && (lc->order != ld->order || lc->ld != ld->ld)) return ST_NOT_SUPPORTED;
  if (m == 0 || n == 0) return ST_SUCCESS;
  Job* j = new Job{};
  j->opa = d->transa, j->opb = d->transb, j->m = int64_t(m), j->n = int64_t(n), j->k = int64_t(k);
  j->batch = ld->batch;
  j->alpha = fa, j->beta = fb, j->tf32_inputs = false;
  j->a = lt_mat(A, la), j->b = lt_mat(B, lb), j->c = lt_mat(C, lc), j->d = lt_mat(D, ld);
  j->bias = (d->epilogue & 4) ? d->bias : nullptr;
  j->bias_type = int(ld->type);
  j->bias_stride = d->bias_stride;
  j->act = (d->epilogue & 2) ? EPI_RELU : (d->epilogue & 32) ? EPI_GELU : EPI_NONE;
  if (j->bias) {
    const Mat bm{j->bias, j->bias_type, int64_t(m), 1, 1, int64_t(m), j->bias_stride};
    if (!inside(bm, j->batch, "bias")) {
      delete j;
      return ST_EXECUTION_FAILED;
    }
  }
  return enqueue(h, stream, j);
}
CHECK_TYPE(cublasLtMatmul, bk_pfn_cublasLtMatmul);
#endif
