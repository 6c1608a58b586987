// kernels/patch.cu — im2col for the ViT patch embedding (P×P conv, stride P).
//
//   cols[b·gh·gw + r·gw + q, (ci·P + y)·P + x] = pixels[b, ci, r·P + y, q·P + x]
//   gh = H / P, gw = W / P, row width K = C·P·P
//
// The column order is the conv weight [D, C, P, P] flattened, so ops.PatchEmbed
// is then one GEMM cols[B·gh·gw, K] · w[D, K]ᵀ + bias whose row r·gw + q of
// image b is token 1 + r·gw + q (bk_gemm_nt_f32 can write it straight into rows
// 1..T of the [B, 1+T, D] output with ldc = D and a batch stride of (1+T)·D;
// bk_vit_tokens_f32 fills the class rows).
//
// Pure data movement (exact). Variants, chosen inside: float4 when P % 4 == 0,
// W % 4 == 0 and both pointers are 16-byte aligned (each float4 is 4
// consecutive x of one patch row: contiguous in pixels and in cols); scalar
// otherwise. Writes are coalesced; reads come in runs of P floats.
//
// Element types: bk_im2col_patch_{f32,f16,bf16}, same parameters with
// float* / __half* / __nv_bfloat16* cols and pixels; a bit copy in every type
// (vector path: 4 elements per access, 8 bytes for 16-bit types, when P % 4 ==
// 0, W % 4 == 0 and both pointers are 4·sizeof(T)-aligned).
//
// Launch rule (host):
//   bk_im2col_patch_f32(float* cols, const float* pixels, int B, int C, int H, int W, int P)
//     cols: [B·(H/P)·(W/P), C·P·P]; pixels: [B, C, H, W].
//     block = (256,1,1); grid = (clamp(ceil(B·C·H·W / 1024), 1, 65535),1,1), grid-stride; shared = 0.
//     Preconditions (host checks, as ops.CheckPatchEmbed): B, C, P ≥ 1; H and W
//     positive multiples of P; B·C·H·W ≤ 2^31−1. cols must not overlap pixels.
//
// Resources (nvcc 13.0 -O3, sm_90): 40 registers (f16, bf16: 40), no shared
// memory, no spills.
#include "common.cuh"

namespace bk_patch {

using namespace bk;

// cols: [B*gh*gw, C*P*P]; pixels: [B, C, H, W].
template <class T>
__device__ __forceinline__ void im2col_patch(T* cols, const T* pixels, int B, int C, int H, int W, int P) {
  const int gh = H / P, gw = W / P;
  const int K = C * P * P;
  const long long n = (long long)B * gh * gw * K;
  const long long start = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  const long long step = (long long)gridDim.x * blockDim.x;
  if (P % 4 == 0 && W % 4 == 0 && vec_aligned<T>(cols) && vec_aligned<T>(pixels)) {
    for (long long i = start; i < n / 4; i += step) {
      const int o = int(4 * i);  // n <= INT_MAX: 32-bit index arithmetic
      const int t = o / K;       // patch index b*gh*gw + r*gw + q
      const int k = o - t * K;
      const int ci = k / (P * P), y = (k / P) % P, x = k % P;
      const int b = t / (gh * gw), rq = t - b * gh * gw, r = rq / gw, q = rq % gw;
      const long long src = (((long long)b * C + ci) * H + r * P + y) * W + q * P + x;
      copy4(cols + o, pixels + src);
    }
    return;
  }
  for (long long i = start; i < n; i += step) {
    const int o = int(i);
    const int t = o / K;
    const int k = o - t * K;
    const int ci = k / (P * P), y = (k / P) % P, x = k % P;
    const int b = t / (gh * gw), rq = t - b * gh * gw, r = rq / gw, q = rq % gw;
    cols[o] = pixels[(((long long)b * C + ci) * H + r * P + y) * W + q * P + x];
  }
}

}  // namespace bk_patch

#define BK_IM2COL_PATCH(NAME, T)                                                                 \
  extern "C" __global__ void __launch_bounds__(256)                                             \
      NAME(T* cols, const T* pixels, int B, int C, int H, int W, int P) {                       \
    bk_patch::im2col_patch<T>(cols, pixels, B, C, H, W, P);                                     \
  }                                                                                              \
  BK_KERNEL(NAME)

BK_IM2COL_PATCH(bk_im2col_patch_f32, float);
BK_IM2COL_PATCH(bk_im2col_patch_f16, __half);
BK_IM2COL_PATCH(bk_im2col_patch_bf16, __nv_bfloat16);
