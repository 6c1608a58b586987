// kernels/embed.cu — row movement and small row-wise ops around the encoders.
//
//   bk_gather_rows_f32    out[i, :] = table[ids[i], :]                 (ops.Gather)
//   bk_add_positions_f32  out[r, :] = x[r, :] + pos[r mod L, :]        (ops.AddPositions)
//   bk_take_rows_f32      out[i, :] = x[first + i·stride, :]           (ops.TakeRow: first = row,
//                                                                        stride = L; ops.CopyRows:
//                                                                        first = start, stride = 1)
//   bk_l2_normalize_f32   out[r, :] = x[r, :] / max(‖x[r, :]‖₂, 1e-12) (ops.L2Normalize, F.normalize)
//   bk_vit_tokens_f32     out[b, 0, :] = cls; out[b, 1+t, :] = patches[b·T + t, :]
//                         (ViT stem assembly; patches NULL: only the class rows are written,
//                         for when the patch GEMM wrote rows 1..T of out directly)
//
// Numerics: copies are exact; add_positions is one float32 add; l2_normalize
// sums squares in float32 (lane-strided, then a shuffle tree) and divides by the
// float32 norm, against the reference's float64 norm: relative error ~1e-7.
//
// Variants: float4 paths when the pointers are 16-byte aligned and D % 4 == 0,
// chosen inside each kernel; scalar otherwise. Identical results.
//
// Element types: every kernel here exists as _f32, _f16 and _bf16 (one
// templated body, same parameters; tensors are float* / __half* /
// __nv_bfloat16*, ids stay const int*, err int*). Copies (gather_rows,
// take_rows, vit_tokens) move bits, 16 bytes at a time when both rows are
// 16-byte aligned and D·sizeof(T) % 16 == 0 (4 floats, 8 halves). add_positions
// is exactly RNE(float32 x + pos); l2_normalize sums squares and divides in
// float32 and rounds once. Their vector paths access 4 elements (8 bytes for
// 16-bit types) with pointers 4·sizeof(T)-aligned. (The int parameter T of
// vit_tokens is spelled Tn in the code.)
//
// Aliasing: add_positions and l2_normalize allow out == x; the others need
// out disjoint from their inputs.
//
// Launch rules (host). All shared = 0. "rows-per-block" kernels use
// block = (128,1,1) and one block per output row unless stated.
//   bk_gather_rows_f32(float* out, const float* table, const int* ids, int n, int D, int V, int* err)
//     block = (128,1,1); grid = (n,1,1). ids: [n] int32 in device memory.
//     An id outside [0, V) writes a zero row and, when err != NULL, stores 1 to
//     *err (the host zeroes *err before and reads it after; ops.CheckGather
//     already rejects such ids on the host, so this is a second line).
//     Preconditions: n ≥ 1, D ≥ 1.
//   bk_add_positions_f32(float* out, const float* x, const float* pos, int rows, int L, int D)
//     x, out: [rows = B·L, D]; pos: [≥L, D].
//     block = (256,1,1); grid = (clamp(ceil(rows·D / 1024), 1, 65535),1,1), grid-stride.
//     Preconditions: rows, L, D ≥ 1, rows·D ≤ 2^31−1.
//   bk_take_rows_f32(float* out, const float* x, int n, int D, int first, int stride)
//     block = (128,1,1); grid = (n,1,1). Reads rows first + i·stride (64-bit index).
//     Preconditions: n ≥ 1, D ≥ 1, every row read inside x (host checks).
//   bk_l2_normalize_f32(float* out, const float* x, int rows, int D)
//     block = (128,1,1) = 4 warps, one warp per row; grid = (ceil(rows/4),1,1).
//     Preconditions: rows, D ≥ 1 (any D).
//   bk_vit_tokens_f32(float* out, const float* patches, const float* cls, int B, int T, int D)
//     out: [B, 1+T, D]; patches: [B·T, D] or NULL; cls: [D].
//     block = (128,1,1); grid = (min(B·(1+T), 65535),1,1) — one block per output
//     row, grid-stride over rows. Preconditions: B, D ≥ 1, T ≥ 0, B·(1+T) ≤ 2^31−1.
//
// Resources (nvcc 13.0 -O3, sm_90; no shared memory, no spills): gather_rows 20
// registers, add_positions 31, take_rows 20, l2_normalize 31, vit_tokens 22;
// f16 and bf16: 20, 27, 20, 28, 22.
#include "common.cuh"

namespace bk_emb {

using namespace bk;

// Copies one row of D elements with the calling block, bit for bit: 16 bytes
// at a time (4 floats, 8 halves) when both rows are 16-byte aligned and the
// row is a whole number of 16-byte chunks, else element by element.
template <class T>
__device__ __forceinline__ void copy_row(T* dst, const T* src, int D) {
  constexpr int CV = kCopyVec<T>;
  if (D % CV == 0 && aligned16(dst) && aligned16(src)) {
    for (int c = threadIdx.x; c < D / CV; c += blockDim.x) copy16(dst + CV * c, src + CV * c);
  } else {
    for (int c = threadIdx.x; c < D; c += blockDim.x) dst[c] = src[c];
  }
}

// out: [n, D]; table: [V, D]; ids: [n]; err: NULL or one int.
template <class T>
__device__ __forceinline__ void gather_rows(T* out, const T* table, const int* ids, int n, int D, int V, int* err) {
  const int i = blockIdx.x;
  if (i >= n) return;
  const int id = ids[i];
  T* dst = out + (long long)i * D;
  if (id < 0 || id >= V) {
    for (int c = threadIdx.x; c < D; c += blockDim.x) dst[c] = from_f32<T>(0.0f);
    if (err != nullptr && threadIdx.x == 0) *err = 1;
    return;
  }
  copy_row(dst, table + (long long)id * D, D);
}

// out, x: [rows, D]; pos: [>= L, D].
template <class T>
__device__ __forceinline__ void add_positions(T* out, const T* x, const T* pos, int rows, int L, int D) {
  const long long start = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  const long long step = (long long)gridDim.x * blockDim.x;
  const int LD = L * D;  // <= rows * D <= INT_MAX: 32-bit modulo below
  if (D % 4 == 0 && vec_aligned<T>(out) && vec_aligned<T>(x) && vec_aligned<T>(pos)) {
    const long long n4 = (long long)rows * D / 4;
    for (long long i = start; i < n4; i += step) {
      const float4 a = load4(x + 4 * i), p = load4(pos + int(4 * i) % LD);
      store4(out + 4 * i, make_float4(a.x + p.x, a.y + p.y, a.z + p.z, a.w + p.w));
    }
    return;
  }
  const long long n = (long long)rows * D;
  for (long long i = start; i < n; i += step) out[i] = from_f32<T>(to_f32(x[i]) + to_f32(pos[int(i) % LD]));
}

// out: [n, D]; x: rows of D, row first + i*stride copied to out row i.
template <class T>
__device__ __forceinline__ void take_rows(T* out, const T* x, int n, int D, int first, int stride) {
  const int i = blockIdx.x;
  if (i >= n) return;
  const long long src = (long long)first + (long long)i * stride;
  copy_row(out + (long long)i * D, x + src * D, D);
}

// out, x: [rows, D].
template <class T>
__device__ __forceinline__ void l2_normalize(T* out, const T* x, int rows, int D) {
  const int lane = threadIdx.x % kWarp;
  const long long row = (long long)blockIdx.x * (blockDim.x / kWarp) + threadIdx.x / kWarp;
  if (row >= rows) return;
  const T* xr = x + row * D;
  T* orow = out + row * D;
  const bool vec = D % 4 == 0 && vec_aligned<T>(x) && vec_aligned<T>(out);
  float ss = 0.0f;
  if (vec) {
    for (int c = lane; c < D / 4; c += kWarp) {
      const float4 v = load4(xr + 4 * c);
      ss += (v.x * v.x + v.y * v.y) + (v.z * v.z + v.w * v.w);
    }
  } else {
    for (int c = lane; c < D; c += kWarp) {
      const float v = to_f32(xr[c]);
      ss += v * v;
    }
  }
  // Every lane has read all its elements before this reduction completes, so
  // out may alias x.
  const float norm = fmaxf(sqrtf(warp_sum(ss)), 1e-12f);
  if (vec) {
    for (int c = lane; c < D / 4; c += kWarp) {
      const float4 v = load4(xr + 4 * c);
      store4(orow + 4 * c, make_float4(v.x / norm, v.y / norm, v.z / norm, v.w / norm));
    }
  } else {
    for (int c = lane; c < D; c += kWarp) orow[c] = from_f32<T>(to_f32(xr[c]) / norm);
  }
}

// out: [B, 1+T, D]; patches: [B*T, D] or NULL; cls: [D].
template <class T>
__device__ __forceinline__ void vit_tokens(T* out, const T* patches, const T* cls, int B, int Tn, int D) {
  const int L = Tn + 1, rows = B * L;
  for (int r = blockIdx.x; r < rows; r += gridDim.x) {
    const int b = r / L, l = r - b * L;
    T* dst = out + (long long)r * D;
    if (l == 0)
      copy_row(dst, cls, D);
    else if (patches)
      copy_row(dst, patches + ((long long)b * Tn + l - 1) * D, D);
  }
}

}  // namespace bk_emb

#define BK_EMBED_KERNELS(T, SUFFIX)                                                                           \
  extern "C" __global__ void __launch_bounds__(128)                                                          \
      bk_gather_rows_##SUFFIX(T* out, const T* table, const int* ids, int n, int D, int V, int* err) {       \
    bk_emb::gather_rows<T>(out, table, ids, n, D, V, err);                                                   \
  }                                                                                                           \
  BK_KERNEL(bk_gather_rows_##SUFFIX);                                                                         \
  extern "C" __global__ void __launch_bounds__(256)                                                          \
      bk_add_positions_##SUFFIX(T* out, const T* x, const T* pos, int rows, int L, int D) {                  \
    bk_emb::add_positions<T>(out, x, pos, rows, L, D);                                                       \
  }                                                                                                           \
  BK_KERNEL(bk_add_positions_##SUFFIX);                                                                       \
  extern "C" __global__ void __launch_bounds__(128)                                                          \
      bk_take_rows_##SUFFIX(T* out, const T* x, int n, int D, int first, int stride) {                       \
    bk_emb::take_rows<T>(out, x, n, D, first, stride);                                                       \
  }                                                                                                           \
  BK_KERNEL(bk_take_rows_##SUFFIX);                                                                           \
  extern "C" __global__ void __launch_bounds__(128) bk_l2_normalize_##SUFFIX(T* out, const T* x, int rows,   \
                                                                             int D) {                        \
    bk_emb::l2_normalize<T>(out, x, rows, D);                                                                \
  }                                                                                                           \
  BK_KERNEL(bk_l2_normalize_##SUFFIX);                                                                        \
  extern "C" __global__ void __launch_bounds__(128)                                                          \
      bk_vit_tokens_##SUFFIX(T* out, const T* patches, const T* cls, int B, int Tn, int D) {                 \
    bk_emb::vit_tokens<T>(out, patches, cls, B, Tn, D);                                                      \
  }                                                                                                           \
  BK_KERNEL(bk_vit_tokens_##SUFFIX)

// bk_gather_rows_f32, bk_add_positions_f32, bk_take_rows_f32, bk_l2_normalize_f32, bk_vit_tokens_f32
BK_EMBED_KERNELS(float, f32);
// bk_gather_rows_f16, bk_add_positions_f16, bk_take_rows_f16, bk_l2_normalize_f16, bk_vit_tokens_f16
BK_EMBED_KERNELS(__half, f16);
// bk_gather_rows_bf16, bk_add_positions_bf16, bk_take_rows_bf16, bk_l2_normalize_bf16, bk_vit_tokens_bf16
BK_EMBED_KERNELS(__nv_bfloat16, bf16);
