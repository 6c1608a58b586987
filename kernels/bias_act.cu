// kernels/bias_act.cu — GEMM epilogue (bias + activation) and elementwise add.
//
//   bk_bias_act_f32: out[r, c] = act(x[r, c] + bias[c])   (bias NULL: act(x))
//     act 0 = identity, 1 = exact erf GELU 0.5·y·(1 + erf(y/√2)) (ops.ActGELU).
//     Serves ops.Linear after a GEMM without a fused epilogue (cuBLAS without
//     Lt epilogues, or the host GEMM in emulation) and ops.GELU (bias NULL,
//     rows = 1, cols = n).
//   bk_add_f32: out[i] = a[i] + b[i] (ops.Add).
//
// Numerics: one float32 add, then erff-based GELU (common.cuh: bk::gelu_erf);
// the Go reference computes GELU in float64 and rounds once, so outputs differ
// by a few ulp (NMSE ~1e-14 on uniform inputs).
//
// Variants (chosen inside the kernel, uniformly per launch):
//   vector: float4 loads/stores when every pointer is 16-byte aligned and, with
//           a bias, cols % 4 == 0 (a float4 never straddles two rows). Without
//           a bias the data is one flat array: float4 body plus a scalar tail.
//   scalar: otherwise.
// Both are grid-stride loops, so any grid size is correct.
//
// Element types: bk_bias_act_{f32,f16,bf16} and bk_add_{f32,f16,bf16}, one
// templated body each. In _f16/_bf16 out, x, bias, a, b are __half* /
// __nv_bfloat16*; the arithmetic is float32 as in _f32 (x + bias, GELU) and
// the result is rounded once (RNE): without GELU, and for add, the output is
// exactly RNE(float32 sum of the inputs). Vector path: 4 elements per access
// (8 bytes for 16-bit types), pointers 4·sizeof(T)-aligned.
//
// Aliasing: out may alias x (bias_act) or a or b (add) exactly; no partial
// overlap.
//
// Launch rules (host):
//   bk_bias_act_f32(float* out, const float* x, const float* bias, int rows, int cols, int act)
//     block = (256,1,1); grid = (clamp(ceil(rows·cols / 1024), 1, 65535),1,1); shared = 0.
//     Preconditions: rows, cols ≥ 1 and rows·cols ≤ 2^31−1; act ∈ {0,1}
//     (other values behave as 0; the host checks).
//   bk_add_f32(float* out, const float* a, const float* b, int n)
//     block = (256,1,1); grid = (clamp(ceil(n / 1024), 1, 65535),1,1); shared = 0.
//     Preconditions: n ≥ 1.
//   Any block size that is a multiple of 32 up to 1024 also works.
//
// Resources (nvcc 13.0 -O3, sm_90): bk_bias_act_f32 32 registers, bk_add_f32 32
// registers; f16/bf16: 28 and 26 each; no shared memory, no spills (sm_80..sm_90).
#include "common.cuh"

namespace bk_ew {

using namespace bk;

__device__ __forceinline__ float4 act4(float4 v, int act) {
  v.x = apply_act(v.x, act);
  v.y = apply_act(v.y, act);
  v.z = apply_act(v.z, act);
  v.w = apply_act(v.w, act);
  return v;
}

// out, x: [rows, cols]; bias: [cols] or NULL.
template <class T>
__device__ __forceinline__ void bias_act(T* out, const T* x, const T* bias, int rows, int cols, int act) {
  const long long n = (long long)rows * cols;
  const long long start = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  const long long step = (long long)gridDim.x * blockDim.x;
  const bool vec =
      vec_aligned<T>(out) && vec_aligned<T>(x) && vec_aligned<T>(bias) && (bias == nullptr || cols % 4 == 0);
  if (vec) {
    const long long n4 = n / 4;
    const int c4 = cols / 4;
    for (long long i = start; i < n4; i += step) {
      float4 v = load4(x + 4 * i);
      if (bias) {
        const float4 b = load4(bias + 4 * (int(i) % c4));  // i < n4 <= INT_MAX: 32-bit modulo
        v.x += b.x;
        v.y += b.y;
        v.z += b.z;
        v.w += b.w;
      }
      store4(out + 4 * i, act4(v, act));
    }
    // Scalar tail (only without a bias: with one, n % 4 == 0).
    for (long long i = 4 * n4 + start; i < n; i += step) out[i] = from_f32<T>(apply_act(to_f32(x[i]), act));
    return;
  }
  for (long long i = start; i < n; i += step) {
    float v = to_f32(x[i]);
    if (bias) v += to_f32(bias[int(i) % cols]);
    out[i] = from_f32<T>(apply_act(v, act));
  }
}

// out, a, b: [n].
template <class T>
__device__ __forceinline__ void add(T* out, const T* a, const T* b, int n) {
  const long long start = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  const long long step = (long long)gridDim.x * blockDim.x;
  long long done = 0;
  if (vec_aligned<T>(out) && vec_aligned<T>(a) && vec_aligned<T>(b)) {
    const long long n4 = n / 4;
    for (long long i = start; i < n4; i += step) {
      const float4 x = load4(a + 4 * i), y = load4(b + 4 * i);
      store4(out + 4 * i, make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w));
    }
    done = 4 * n4;
  }
  for (long long i = done + start; i < n; i += step) out[i] = from_f32<T>(to_f32(a[i]) + to_f32(b[i]));
}

}  // namespace bk_ew

#define BK_BIAS_ACT(NAME, T)                                                                      \
  extern "C" __global__ void __launch_bounds__(256)                                              \
      NAME(T* out, const T* x, const T* bias, int rows, int cols, int act) {                     \
    bk_ew::bias_act<T>(out, x, bias, rows, cols, act);                                           \
  }                                                                                               \
  BK_KERNEL(NAME)
#define BK_ADD(NAME, T)                                                                           \
  extern "C" __global__ void __launch_bounds__(256) NAME(T* out, const T* a, const T* b, int n) { \
    bk_ew::add<T>(out, a, b, n);                                                                  \
  }                                                                                               \
  BK_KERNEL(NAME)

BK_BIAS_ACT(bk_bias_act_f32, float);
BK_BIAS_ACT(bk_bias_act_f16, __half);
BK_BIAS_ACT(bk_bias_act_bf16, __nv_bfloat16);
BK_ADD(bk_add_f32, float);
BK_ADD(bk_add_f16, __half);
BK_ADD(bk_add_bf16, __nv_bfloat16);
