// kernels/emu/cuda_emu.h — runs the CUDA C++ of kernels/*.cu on a CPU.
//
// Included by kernels/common.cuh when the compiler is not nvcc (no __CUDACC__),
// so the same .cu sources compile with `g++ -std=c++20 -x c++`. It provides the
// part of the CUDA device dialect the kernels use, with the GPU's semantics:
//
//   keywords     __global__ __device__ __host__ __forceinline__ __launch_bounds__
//                __align__ ; __shared__ = thread_local (below). Not __noinline__:
//                libstdc++ spells __attribute__((__noinline__)) itself.
//   built-ins    threadIdx blockIdx blockDim gridDim warpSize, dim3 uint3
//   sync         __syncthreads (+ _count/_and/_or), __syncwarp, fences
//   warp         __shfl_sync __shfl_up_sync __shfl_down_sync __shfl_xor_sync
//                (exact PTX shfl.sync lane rules, any width 1..32), __ballot_sync
//                __any_sync __all_sync __activemask __match_any_sync
//                __reduce_{add,min,max,and,or,xor}_sync
//   atomics      atomicAdd/Sub/Exch/Min/Max/Inc/Dec/And/Or/Xor/CAS (int, unsigned,
//                unsigned long long, long long, float, double as on the GPU); real
//                atomics, since blocks run concurrently
//   maths        the CUDA intrinsics (__expf, __fdividef, rsqrtf, __saturatef,
//                __float_as_int, __popc, __clz, __ldg, ...) over <cmath>
//   types        float2/3/4, int2/3/4, uint2/4, double2, ... with make_*; __half,
//                __half2, __nv_bfloat16, __nv_bfloat162 (storage + RN conversions)
//   registry     BKEMU_REGISTER_KERNEL(name) (used through BK_KERNEL in common.cuh)
//   dynamic smem BK_DYNAMIC_SHARED(T, name) in common.cuh (see "Shared memory")
//
// Execution model. A launch hands blocks to a pool of worker threads (one block
// at a time per worker). Inside a block every CUDA thread is a fiber with its
// own stack (a few instructions of hand-written context switch on x86-64,
// ucontext elsewhere). The fibers of a block run round-robin in thread order,
// each until it reaches a barrier (__syncthreads, or a warp collective, which
// is a barrier of the 32 lanes of its warp) or exits, and then switches
// straight to the next fiber whose barrier has completed. A fiber resumes only
// once its barrier has completed, so warp collectives see every lane's value
// and __syncthreads orders shared-memory accesses as on a GPU.
// Exited threads no longer count at barriers (what current GPUs do).
// Barriers that can never complete (divergent __syncthreads) are detected and
// reported as BKEMU_ERR_DEADLOCK instead of hanging.
//
// Shared memory. `__shared__` becomes `thread_local`: a block-scope thread_local
// has static storage, one instance per OS thread, and all fibers of a block run
// on the same worker thread, so each concurrently running block has its own
// copy. Dynamic shared memory (`extern __shared__ T s[]` on the GPU) cannot be
// spelled that way in standard C++, so kernels write BK_DYNAMIC_SHARED(T, s)
// (common.cuh), which is that declaration under nvcc and a pointer to the
// worker's per-block buffer here. The buffer is filled with 0xFF bytes (NaN
// floats) before each block, so reads of unwritten shared memory show up.
//
// What emulation cannot show: races the GPU's scheduling would expose (use
// compute-sanitizer racecheck on a GPU), performance, and cross-block memory
// ordering. It does show indexing, tiling, masking, reductions and boundaries.
#pragma once

#ifdef __CUDACC__
#error "kernels/emu/cuda_emu.h is for host-compiler builds; nvcc uses the real CUDA headers"
#endif

// Every standard header the emulation or the kernels need comes first: some
// CUDA intrinsic names (__expf, __logf, ...) are declared by glibc's <math.h>
// and are defined below as macros, which must not meet those declarations.
#include <algorithm>
#include <atomic>
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include "bkemu.h"

#define BKEMU 1

// ---------------------------------------------------------------------------
// Keywords
// ---------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ thread_local
// __restrict__ is a GCC keyword already. __constant__ is deliberately not
// provided: kernels here take everything as parameters.

// ---------------------------------------------------------------------------
// Vector and index types (layout and alignment as in CUDA's vector_types.h).
// may_alias: kernels read float arrays through float4* as on the GPU.
// ---------------------------------------------------------------------------
#define BKEMU_VEC1(T, N) \
  struct __attribute__((may_alias)) N##1 { T x; };
#define BKEMU_VEC2(T, N, A) \
  struct __attribute__((may_alias, aligned(A))) N##2 { T x, y; };
#define BKEMU_VEC3(T, N) \
  struct __attribute__((may_alias)) N##3 { T x, y, z; };
#define BKEMU_VEC4(T, N, A) \
  struct __attribute__((may_alias, aligned(A))) N##4 { T x, y, z, w; };
#define BKEMU_VECS(T, N, A2, A4) BKEMU_VEC1(T, N) BKEMU_VEC2(T, N, A2) BKEMU_VEC3(T, N) BKEMU_VEC4(T, N, A4)
BKEMU_VECS(signed char, char, 2, 4)
BKEMU_VECS(unsigned char, uchar, 2, 4)
BKEMU_VECS(short, short, 4, 8)
BKEMU_VECS(unsigned short, ushort, 4, 8)
BKEMU_VECS(int, int, 8, 16)
BKEMU_VECS(unsigned, uint, 8, 16)
BKEMU_VECS(long long, longlong, 16, 16)
BKEMU_VECS(unsigned long long, ulonglong, 16, 16)
BKEMU_VECS(float, float, 8, 16)
BKEMU_VECS(double, double, 16, 16)
#undef BKEMU_VECS
#undef BKEMU_VEC1
#undef BKEMU_VEC2
#undef BKEMU_VEC3
#undef BKEMU_VEC4

#define BKEMU_MAKE(N, T)                                                                                       \
  inline N##1 make_##N##1(T x) { return N##1{x}; }                                                             \
  inline N##2 make_##N##2(T x, T y) { return N##2{x, y}; }                                                     \
  inline N##3 make_##N##3(T x, T y, T z) { return N##3{x, y, z}; }                                             \
  inline N##4 make_##N##4(T x, T y, T z, T w) { return N##4{x, y, z, w}; }
BKEMU_MAKE(char, signed char)
BKEMU_MAKE(uchar, unsigned char)
BKEMU_MAKE(short, short)
BKEMU_MAKE(ushort, unsigned short)
BKEMU_MAKE(int, int)
BKEMU_MAKE(uint, unsigned)
BKEMU_MAKE(longlong, long long)
BKEMU_MAKE(ulonglong, unsigned long long)
BKEMU_MAKE(float, float)
BKEMU_MAKE(double, double)
#undef BKEMU_MAKE

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};

constexpr int warpSize = 32;

// ---------------------------------------------------------------------------
// Runtime state visible to kernels (defined in cuda_emu.cc)
// ---------------------------------------------------------------------------
namespace bkemu {

constexpr int kWarpSize = 32;
constexpr int kMaxThreads = 1024;
constexpr int kMaxWarps = kMaxThreads / kWarpSize;
constexpr unsigned kMaxDynamicShared = 232448;  // 227 KiB, sm_90's opt-in maximum

struct Warp {
  unsigned live;       // lanes that have not exited
  unsigned live_mask;  // bit l set while lane l exists and has not exited
  unsigned arrived;    // lanes waiting at the current warp barrier
  unsigned gen;        // bumped when a warp barrier completes
  unsigned long long xbuf[2][kWarpSize];  // collective exchange, double-buffered
  unsigned long long xwide[2][kWarpSize][4];  // wide exchange (mma/ldmatrix fragments), same parity as xbuf
  float mma_ab[2][16 * 8];  // A·B of the mma collective in flight (computed once per warp)
  unsigned wmask[2];   // lanes that published into xbuf[p] (for the collective in flight)
  int xreset;          // wmask slot to clear when the current barrier completes, or -1
};

struct Block {
  uint3 bid;
  dim3 bdim, gdim;
  unsigned char* dyn_smem;
  unsigned live;     // threads that have not exited
  unsigned arrived;  // threads waiting at the current __syncthreads
  unsigned gen;      // bumped when a block barrier completes
  int red[2];        // __syncthreads_count/and/or: threads with a true predicate (double-buffered)
  int redf[2];       // ... and with a false one
  int red_reset;     // slot to clear when the current barrier completes, or -1
  unsigned nwarps;
  Warp warps[kMaxWarps];
};

struct Worker;

struct Fiber {
  void* sp;  // saved context (stack pointer, or ucontext_t* in the fallback)
  uint3 tid;
  unsigned lane, warp;
  unsigned wparity;  // parity of this lane's next warp collective
  unsigned bparity;  // parity of this thread's next __syncthreads_count/and/or
  const unsigned* wait_gen;  // waiting until *wait_gen != wait_val (null: runnable)
  unsigned wait_val;
  bool done;
  unsigned idx;  // linear thread index in the block
  Block* blk;
  Worker* worker;
};

// The fiber running on this OS thread (null outside kernels). GNU __thread, not
// C++ thread_local: an extern thread_local is reached through a TLS wrapper
// call on every use (threadIdx, blockIdx, ...), __thread is one %fs load.
extern __thread Fiber* tl_fiber;

// Suspends f until *gen changes (the barrier it arrived at completes).
void suspend(Fiber* f, const unsigned* gen);

inline void release_block_barrier(Block* b) {
  b->arrived = 0;
  ++b->gen;
  if (b->red_reset >= 0) {
    b->red[b->red_reset] = b->redf[b->red_reset] = 0;
    b->red_reset = -1;
  }
}

inline void block_sync(Fiber* f) {
  Block* b = f->blk;
  if (++b->arrived == b->live) {
    release_block_barrier(b);
    return;
  }
  suspend(f, &b->gen);
}

// Completing collective k (parity p) clears wmask[p ^ 1]: every participant of
// k has finished reading collective k-1, and none has started k+1.
inline void release_warp_barrier(Warp& w) {
  w.arrived = 0;
  ++w.gen;
  if (w.xreset >= 0) {
    w.wmask[w.xreset] = 0;
    w.xreset = -1;
  }
}

inline void warp_sync(Fiber* f) {
  Warp& w = f->blk->warps[f->warp];
  if (++w.arrived == w.live) {
    release_warp_barrier(w);
    return;
  }
  suspend(f, &w.gen);
}

// op: 0 count, 1 and, 2 or
inline int block_sync_reduce(int pred, int op) {
  Fiber* f = tl_fiber;
  Block* b = f->blk;
  const unsigned p = f->bparity;
  f->bparity ^= 1u;
  if (pred)
    ++b->red[p];
  else
    ++b->redf[p];
  b->red_reset = int(p ^ 1u);
  block_sync(f);
  switch (op) {
    case 1: return b->redf[p] == 0;
    case 2: return b->red[p] != 0;
    default: return b->red[p];
  }
}

enum ShflMode { kShflIdx, kShflUp, kShflDown, kShflBfly };

// One warp collective exchange: every lane publishes `bits`, the warp meets,
// and the caller reads the slots it needs from the returned row; *present gets
// the lanes that took part (a lane that exited or does not exist did not; one
// that exited after publishing did).
inline const unsigned long long* warp_exchange(unsigned long long bits, Fiber** fout, unsigned* present) {
  Fiber* f = tl_fiber;
  Warp& w = f->blk->warps[f->warp];
  const unsigned p = f->wparity;
  f->wparity ^= 1u;
  w.xbuf[p][f->lane] = bits;
  w.wmask[p] |= 1u << f->lane;
  w.xreset = int(p ^ 1u);
  warp_sync(f);
  *fout = f;
  *present = w.wmask[p];
  return w.xbuf[p];
}

// The same with up to 4 words per lane (fragments of the warp-level matrix
// instructions below). It is one collective in the lane's sequence, like a
// shuffle: it shares the parity, the presence mask and the double buffering
// (collective k+2 cannot start before every lane has finished reading k).
inline const unsigned long long (*warp_exchange_wide(const unsigned long long* words, int n, Fiber** fout,
                                                     unsigned* present))[4] {
  Fiber* f = tl_fiber;
  Warp& w = f->blk->warps[f->warp];
  const unsigned p = f->wparity;
  f->wparity ^= 1u;
  for (int i = 0; i < 4; ++i) w.xwide[p][f->lane][i] = i < n ? words[i] : 0ull;
  w.wmask[p] |= 1u << f->lane;
  w.xreset = int(p ^ 1u);
  warp_sync(f);
  *fout = f;
  *present = w.wmask[p];
  return w.xwide[p];
}

template <class T>
inline T shfl(T var, ShflMode mode, int bval, int width) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffle of a type wider than 8 bytes");
  unsigned long long bits = 0;
  std::memcpy(&bits, &var, sizeof(T));
  Fiber* f;
  unsigned present;
  const unsigned long long* row = warp_exchange(bits, &f, &present);
  // PTX shfl.sync: c = ((32 - width) << 8) | clamp, clamp = 0 for up, 31 otherwise.
  const int lane = int(f->lane);
  const int segmask = (kWarpSize - width) & 31;
  const int cval = mode == kShflUp ? 0 : 31;
  const int minLane = lane & segmask;
  const int maxLane = minLane | (cval & ~segmask);
  int j;
  bool ok;
  switch (mode) {
    case kShflUp: j = lane - bval; ok = j >= maxLane; break;
    case kShflDown: j = lane + bval; ok = j <= maxLane; break;
    case kShflBfly: j = lane ^ bval; ok = j <= maxLane; break;
    default: j = minLane | (bval & ~segmask); ok = j <= maxLane; break;
  }
  // A source lane that does not exist or has exited: undefined on the GPU; own value here.
  if (!ok || j < 0 || j >= kWarpSize || !((present >> j) & 1u)) j = lane;
  T r;
  std::memcpy(&r, &row[j], sizeof(T));
  return r;
}

inline unsigned ballot(unsigned mask, int pred) {
  Fiber* f;
  unsigned present;
  const unsigned long long* row = warp_exchange(pred != 0, &f, &present);
  const unsigned m = mask & present;
  unsigned r = 0;
  for (int l = 0; l < kWarpSize; ++l)
    if (((m >> l) & 1u) && row[l]) r |= 1u << l;
  return r;
}

inline unsigned match_any(unsigned mask, unsigned long long v) {
  Fiber* f;
  unsigned present;
  const unsigned long long* row = warp_exchange(v, &f, &present);
  const unsigned m = mask & present;
  unsigned r = 0;
  for (int l = 0; l < kWarpSize; ++l)
    if (((m >> l) & 1u) && row[l] == v) r |= 1u << l;
  return r;
}

// op: 0 add, 1 min, 2 max, 3 and, 4 or, 5 xor; over the live lanes in mask.
template <class T>
inline T warp_reduce(unsigned mask, T v, int op) {
  unsigned long long bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  Fiber* f;
  unsigned present;
  const unsigned long long* row = warp_exchange(bits, &f, &present);
  const unsigned m = mask & present;
  bool first = true;
  T r{};
  for (int l = 0; l < kWarpSize; ++l) {
    if (!((m >> l) & 1u)) continue;
    T x;
    std::memcpy(&x, &row[l], sizeof(T));
    if (first) {
      r = x;
      first = false;
      continue;
    }
    switch (op) {
      case 0: r = T(r + x); break;
      case 1: r = x < r ? x : r; break;
      case 2: r = x > r ? x : r; break;
      case 3: r = T(r & x); break;
      case 4: r = T(r | x); break;
      default: r = T(r ^ x); break;
    }
  }
  return r;
}

inline unsigned char* dynamic_shared() { return tl_fiber->blk->dyn_smem; }

// ---------------------------------------------------------------------------
// Kernel registry
// ---------------------------------------------------------------------------
using GenericFn = void (*)();
using Invoker = void (*)(GenericFn fn, void* const* args);

bool register_kernel(const char* name, GenericFn fn, Invoker inv, int nparams, const int* sizes,
                     const unsigned char* pointers);

template <class... A>
struct Invoke {
  template <std::size_t... I>
  static void call(void (*fn)(A...), void* const* args, std::index_sequence<I...>) {
    (void)args;
    fn(*static_cast<std::remove_cv_t<A>*>(args[I])...);
  }
  static void run(GenericFn g, void* const* args) {
    call(reinterpret_cast<void (*)(A...)>(g), args, std::index_sequence_for<A...>{});
  }
};

template <class... A>
bool register_kernel(const char* name, void (*fn)(A...)) {
  static_assert((std::is_trivially_copyable_v<A> && ...), "kernel parameters must be plain C types");
  const int sizes[] = {int(sizeof(A))..., 0};
  const unsigned char pointers[] = {static_cast<unsigned char>(std::is_pointer_v<A>)..., 0};
  return register_kernel(name, reinterpret_cast<GenericFn>(fn), &Invoke<A...>::run, int(sizeof...(A)), sizes,
                         pointers);
}

// C++ convenience for tests: launch by name with typed arguments, checking the
// count and byte sizes against the registered kernel first.
template <class... A>
int launch(const char* name, dim3 grid, dim3 block, unsigned shared_bytes, A... a) {
  int sizes[64];
  const int n = bkemu_kernel_params(name, sizes, 64);
  if (n < 0) return n;
  const int want[] = {int(sizeof(A))..., 0};
  if (n != int(sizeof...(A))) return BKEMU_ERR_ARG_SIZE;
  for (int i = 0; i < n && i < 64; ++i)
    if (sizes[i] != want[i]) return BKEMU_ERR_ARG_SIZE;
  void* ptrs[] = {static_cast<void*>(&a)..., nullptr};
  return bkemu_launch(name, grid.x, grid.y, grid.z, block.x, block.y, block.z, shared_bytes, ptrs);
}

}  // namespace bkemu

#define BKEMU_REGISTER_KERNEL(name) \
  [[maybe_unused]] static const bool bkemu_registered_##name = ::bkemu::register_kernel(#name, &name)

// ---------------------------------------------------------------------------
// Built-in variables
// ---------------------------------------------------------------------------
#define threadIdx (::bkemu::tl_fiber->tid)
#define blockIdx (::bkemu::tl_fiber->blk->bid)
#define blockDim (::bkemu::tl_fiber->blk->bdim)
#define gridDim (::bkemu::tl_fiber->blk->gdim)

// ---------------------------------------------------------------------------
// Synchronisation
// ---------------------------------------------------------------------------
inline void __syncthreads() { ::bkemu::block_sync(::bkemu::tl_fiber); }
inline int __syncthreads_count(int pred) { return ::bkemu::block_sync_reduce(pred, 0); }
inline int __syncthreads_and(int pred) { return ::bkemu::block_sync_reduce(pred, 1); }
inline int __syncthreads_or(int pred) { return ::bkemu::block_sync_reduce(pred, 2); }
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  (void)mask;
  ::bkemu::warp_sync(::bkemu::tl_fiber);
}
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_system() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __nanosleep(unsigned) {}

// ---------------------------------------------------------------------------
// Warp collectives
// ---------------------------------------------------------------------------
template <class T>
inline T __shfl_sync(unsigned mask, T var, int srcLane, int width = warpSize) {
  (void)mask;
  return ::bkemu::shfl(var, ::bkemu::kShflIdx, srcLane, width);
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  (void)mask;
  return ::bkemu::shfl(var, ::bkemu::kShflUp, int(delta), width);
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  (void)mask;
  return ::bkemu::shfl(var, ::bkemu::kShflDown, int(delta), width);
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = warpSize) {
  (void)mask;
  return ::bkemu::shfl(var, ::bkemu::kShflBfly, laneMask, width);
}
inline unsigned __ballot_sync(unsigned mask, int pred) { return ::bkemu::ballot(mask, pred); }
inline int __any_sync(unsigned mask, int pred) { return ::bkemu::ballot(mask, pred) != 0; }
inline int __all_sync(unsigned mask, int pred) { return ::bkemu::ballot(mask, !pred) == 0; }
inline unsigned __activemask() { return ::bkemu::tl_fiber->blk->warps[::bkemu::tl_fiber->warp].live_mask; }
template <class T>
inline unsigned __match_any_sync(unsigned mask, T v) {
  static_assert(sizeof(T) <= 8, "");
  unsigned long long b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return ::bkemu::match_any(mask, b);
}
inline unsigned __reduce_add_sync(unsigned mask, unsigned v) { return ::bkemu::warp_reduce(mask, v, 0); }
inline int __reduce_add_sync(unsigned mask, int v) {
  return int(::bkemu::warp_reduce(mask, unsigned(v), 0));  // wraps like the GPU
}
inline unsigned __reduce_min_sync(unsigned mask, unsigned v) { return ::bkemu::warp_reduce(mask, v, 1); }
inline int __reduce_min_sync(unsigned mask, int v) { return ::bkemu::warp_reduce(mask, v, 1); }
inline unsigned __reduce_max_sync(unsigned mask, unsigned v) { return ::bkemu::warp_reduce(mask, v, 2); }
inline int __reduce_max_sync(unsigned mask, int v) { return ::bkemu::warp_reduce(mask, v, 2); }
inline unsigned __reduce_and_sync(unsigned mask, unsigned v) { return ::bkemu::warp_reduce(mask, v, 3); }
inline unsigned __reduce_or_sync(unsigned mask, unsigned v) { return ::bkemu::warp_reduce(mask, v, 4); }
inline unsigned __reduce_xor_sync(unsigned mask, unsigned v) { return ::bkemu::warp_reduce(mask, v, 5); }

// ---------------------------------------------------------------------------
// Atomics (return the old value, as on the GPU)
// ---------------------------------------------------------------------------
namespace bkemu {
template <class T>
inline std::atomic_ref<T> aref(T* p) {
  return std::atomic_ref<T>(*p);
}
template <class T, class F>
inline T atomic_update(T* p, F f) {
  std::atomic_ref<T> a(*p);
  T old = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(old, f(old), std::memory_order_relaxed)) {
  }
  return old;
}
}  // namespace bkemu

#define BKEMU_ATOMIC_ARITH(T)                                                                                \
  inline T atomicAdd(T* p, T v) { return ::bkemu::aref(p).fetch_add(v, std::memory_order_relaxed); }         \
  inline T atomicExch(T* p, T v) { return ::bkemu::aref(p).exchange(v, std::memory_order_relaxed); }
BKEMU_ATOMIC_ARITH(int)
BKEMU_ATOMIC_ARITH(unsigned)
BKEMU_ATOMIC_ARITH(unsigned long long)
BKEMU_ATOMIC_ARITH(float)
BKEMU_ATOMIC_ARITH(double)
#undef BKEMU_ATOMIC_ARITH
inline long long atomicAdd(long long* p, long long v) { return ::bkemu::aref(p).fetch_add(v, std::memory_order_relaxed); }
inline int atomicSub(int* p, int v) { return ::bkemu::aref(p).fetch_sub(v, std::memory_order_relaxed); }
inline unsigned atomicSub(unsigned* p, unsigned v) { return ::bkemu::aref(p).fetch_sub(v, std::memory_order_relaxed); }
#define BKEMU_ATOMIC_BITS(T)                                                                                 \
  inline T atomicAnd(T* p, T v) { return ::bkemu::aref(p).fetch_and(v, std::memory_order_relaxed); }         \
  inline T atomicOr(T* p, T v) { return ::bkemu::aref(p).fetch_or(v, std::memory_order_relaxed); }           \
  inline T atomicXor(T* p, T v) { return ::bkemu::aref(p).fetch_xor(v, std::memory_order_relaxed); }         \
  inline T atomicMin(T* p, T v) { return ::bkemu::atomic_update(p, [v](T o) { return v < o ? v : o; }); }    \
  inline T atomicMax(T* p, T v) { return ::bkemu::atomic_update(p, [v](T o) { return v > o ? v : o; }); }    \
  inline T atomicCAS(T* p, T cmp, T v) {                                                                     \
    ::bkemu::aref(p).compare_exchange_strong(cmp, v, std::memory_order_relaxed);                             \
    return cmp;                                                                                              \
  }
BKEMU_ATOMIC_BITS(int)
BKEMU_ATOMIC_BITS(unsigned)
BKEMU_ATOMIC_BITS(unsigned long long)
#undef BKEMU_ATOMIC_BITS
inline long long atomicMin(long long* p, long long v) {
  return ::bkemu::atomic_update(p, [v](long long o) { return v < o ? v : o; });
}
inline long long atomicMax(long long* p, long long v) {
  return ::bkemu::atomic_update(p, [v](long long o) { return v > o ? v : o; });
}
inline unsigned short atomicCAS(unsigned short* p, unsigned short cmp, unsigned short v) {
  ::bkemu::aref(p).compare_exchange_strong(cmp, v, std::memory_order_relaxed);
  return cmp;
}
inline unsigned atomicInc(unsigned* p, unsigned limit) {
  return ::bkemu::atomic_update(p, [limit](unsigned o) { return o >= limit ? 0u : o + 1u; });
}
inline unsigned atomicDec(unsigned* p, unsigned limit) {
  return ::bkemu::atomic_update(p, [limit](unsigned o) { return (o == 0u || o > limit) ? limit : o - 1u; });
}

// ---------------------------------------------------------------------------
// Maths and bit intrinsics. The accurate functions (expf, erff, sqrtf, ...) are
// <cmath>'s. Intrinsics that glibc's <math.h> also declares are macros.
// ---------------------------------------------------------------------------
namespace bkemu {
inline float f_expf(float x) { return ::expf(x); }
inline float f_exp10f(float x) { return ::powf(10.0f, x); }
inline float f_logf(float x) { return ::logf(x); }
inline float f_log2f(float x) { return ::log2f(x); }
inline float f_log10f(float x) { return ::log10f(x); }
inline float f_powf(float x, float y) { return ::powf(x, y); }
inline float f_sinf(float x) { return ::sinf(x); }
inline float f_cosf(float x) { return ::cosf(x); }
inline float f_tanf(float x) { return ::tanf(x); }
inline void f_sincosf(float x, float* s, float* c) {
  *s = ::sinf(x);
  *c = ::cosf(x);
}
}  // namespace bkemu
#define __expf(x) ::bkemu::f_expf(x)
#define __exp10f(x) ::bkemu::f_exp10f(x)
#define __logf(x) ::bkemu::f_logf(x)
#define __log2f(x) ::bkemu::f_log2f(x)
#define __log10f(x) ::bkemu::f_log10f(x)
#define __powf(x, y) ::bkemu::f_powf(x, y)
#define __sinf(x) ::bkemu::f_sinf(x)
#define __cosf(x) ::bkemu::f_cosf(x)
#define __tanf(x) ::bkemu::f_tanf(x)
#define __sincosf(x, s, c) ::bkemu::f_sincosf(x, s, c)

// fmaf: a hardware FMA where the target has one (-mfma, x86-64-v3, AArch64);
// otherwise a·b + c with two roundings, because glibc's software fmaf is ~50×
// slower and the tiled kernels are FMA loops. The difference from the GPU's
// fused result is ≤ 1 ulp per step, far inside every test tolerance. Define
// BKEMU_EXACT_FMA to always get the correctly rounded fused operation.
namespace bkemu {
inline float emu_fmaf(float a, float b, float c) {
#if defined(__FMA__) || defined(__aarch64__) || defined(BKEMU_EXACT_FMA)
  return __builtin_fmaf(a, b, c);
#else
  return a * b + c;
#endif
}
}  // namespace bkemu
#define fmaf(a, b, c) ::bkemu::emu_fmaf(a, b, c)

inline float rsqrtf(float x) { return 1.0f / ::sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float rcbrtf(float x) { return 1.0f / ::cbrtf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return ::sqrtf(x); }
inline float __frsqrt_rn(float x) { return 1.0f / ::sqrtf(x); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }
inline float __saturatef(float x) { return x != x ? 0.0f : (x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x)); }
inline float normcdff(float x) { return 0.5f * ::erfcf(-x * 0.70710678118654752f); }

inline int __float_as_int(float x) { int r; std::memcpy(&r, &x, 4); return r; }
inline unsigned __float_as_uint(float x) { unsigned r; std::memcpy(&r, &x, 4); return r; }
inline float __int_as_float(int x) { float r; std::memcpy(&r, &x, 4); return r; }
inline float __uint_as_float(unsigned x) { float r; std::memcpy(&r, &x, 4); return r; }
inline long long __double_as_longlong(double x) { long long r; std::memcpy(&r, &x, 8); return r; }
inline double __longlong_as_double(long long x) { double r; std::memcpy(&r, &x, 8); return r; }
inline int __float2int_rn(float x) { return int(::nearbyintf(x)); }
inline int __float2int_rz(float x) { return int(x); }
inline int __float2int_rd(float x) { return int(::floorf(x)); }
inline int __float2int_ru(float x) { return int(::ceilf(x)); }
inline unsigned __float2uint_rn(float x) { return unsigned(::nearbyintf(x)); }
inline float __int2float_rn(int x) { return float(x); }
inline float __uint2float_rn(unsigned x) { return float(x); }

inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(unsigned(x)); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
  x = ((x >> 8) & 0x00ff00ffu) | ((x & 0x00ff00ffu) << 8);
  return (x >> 16) | (x << 16);
}
inline int __mul24(int a, int b) { return int((long long)((a << 8) >> 8) * ((b << 8) >> 8)); }
inline unsigned __umul24(unsigned a, unsigned b) { return (a & 0xffffffu) * (b & 0xffffffu); }
inline int __mulhi(int a, int b) { return int(((long long)a * b) >> 32); }
inline unsigned __umulhi(unsigned a, unsigned b) { return unsigned(((unsigned long long)a * b) >> 32); }
inline long long __mul64hi(long long a, long long b) { return (long long)(((__int128)a * b) >> 64); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}

// CUDA's device-side min/max overloads.
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return ::fminf(a, b); }
inline float max(float a, float b) { return ::fmaxf(a, b); }
inline double min(double a, double b) { return ::fmin(a, b); }
inline double max(double a, double b) { return ::fmax(a, b); }

// Cache-hinted loads and stores are plain accesses here.
template <class T> inline T __ldg(const T* p) { return *p; }
template <class T> inline T __ldca(const T* p) { return *p; }
template <class T> inline T __ldcg(const T* p) { return *p; }
template <class T> inline T __ldcs(const T* p) { return *p; }
template <class T> inline T __ldlu(const T* p) { return *p; }
template <class T> inline T __ldcv(const T* p) { return *p; }
template <class T> inline void __stwb(T* p, T v) { *p = v; }
template <class T> inline void __stcg(T* p, T v) { *p = v; }
template <class T> inline void __stcs(T* p, T v) { *p = v; }
template <class T> inline void __stwt(T* p, T v) { *p = v; }

long long bkemu_clock64();
inline long long clock64() { return bkemu_clock64(); }

// ---------------------------------------------------------------------------
// float16 and bfloat16: storage types with round-to-nearest-even conversions.
// Enough for kernels that load/store 16-bit data and compute in float32.
// ---------------------------------------------------------------------------
namespace bkemu {
inline unsigned short f32_to_f16_bits(float f) {
  unsigned x;
  std::memcpy(&x, &f, 4);
  const unsigned sign = (x >> 16) & 0x8000u;
  const unsigned ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return (unsigned short)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0u));
  if (ax >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (ax < 0x38800000u) {                                           // subnormal half (or zero)
    if (ax < 0x33000000u) return (unsigned short)sign;              // < 2^-25: rounds to 0
    const unsigned e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
    const unsigned shift = 126u - e;  // 14 + (113 - e) - ... value = m * 2^(e-150); half sub unit 2^-24
    const unsigned r = m >> (shift - 1u);
    const unsigned rest = m & ((1u << (shift - 1u)) - 1u);
    unsigned h = r >> 1;
    if ((r & 1u) && (rest || (h & 1u))) ++h;
    return (unsigned short)(sign | h);
  }
  unsigned h = ((ax - 0x38000000u) >> 13);  // rebias exponent 127 -> 15
  const unsigned rest = ax & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return (unsigned short)(sign | h);
}
inline float f16_bits_to_f32(unsigned short h) {
  const unsigned sign = unsigned(h & 0x8000u) << 16;
  const unsigned e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  unsigned x;
  if (e == 0) {
    if (m == 0) {
      x = sign;
    } else {  // subnormal: normalise
      float v = float(m) * 5.9604644775390625e-08f;  // m * 2^-24
      std::memcpy(&x, &v, 4);
      x |= sign;
    }
  } else if (e == 31) {
    x = sign | 0x7f800000u | (m << 13);
  } else {
    x = sign | ((e + 112u) << 23) | (m << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}
inline unsigned short f32_to_bf16_bits(float f) {
  unsigned x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((x >> 16) | 0x40u);  // quiet NaN
  x += 0x7fffu + ((x >> 16) & 1u);
  return (unsigned short)(x >> 16);
}
inline float bf16_bits_to_f32(unsigned short b) {
  const unsigned x = unsigned(b) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}
}  // namespace bkemu

struct __half_raw { unsigned short x; };
struct __nv_bfloat16_raw { unsigned short x; };

struct alignas(2) __half {
  unsigned short __x;
  __half() = default;
  __half(__half_raw r) : __x(r.x) {}
  __half(float f) : __x(::bkemu::f32_to_f16_bits(f)) {}
  __half(double f) : __x(::bkemu::f32_to_f16_bits(float(f))) {}
  __half(int i) : __x(::bkemu::f32_to_f16_bits(float(i))) {}
  operator float() const { return ::bkemu::f16_bits_to_f32(__x); }
  operator __half_raw() const { return __half_raw{__x}; }
};
struct alignas(2) __nv_bfloat16 {
  unsigned short __x;
  __nv_bfloat16() = default;
  __nv_bfloat16(__nv_bfloat16_raw r) : __x(r.x) {}
  __nv_bfloat16(float f) : __x(::bkemu::f32_to_bf16_bits(f)) {}
  __nv_bfloat16(double f) : __x(::bkemu::f32_to_bf16_bits(float(f))) {}
  __nv_bfloat16(int i) : __x(::bkemu::f32_to_bf16_bits(float(i))) {}
  operator float() const { return ::bkemu::bf16_bits_to_f32(__x); }
  operator __nv_bfloat16_raw() const { return __nv_bfloat16_raw{__x}; }
};
struct alignas(4) __half2 { __half x, y; };
struct alignas(4) __nv_bfloat162 { __nv_bfloat16 x, y; };
using half = __half;
using half2 = __half2;

inline __half __float2half(float f) { return __half(f); }
inline __half __float2half_rn(float f) { return __half(f); }
inline float __half2float(__half h) { return float(h); }
inline unsigned short __half_as_ushort(__half h) { return h.__x; }
inline __half __ushort_as_half(unsigned short u) { return __half(__half_raw{u}); }
inline __half2 __floats2half2_rn(float a, float b) { return __half2{__half(a), __half(b)}; }
inline __half2 __float2half2_rn(float a) { return __half2{__half(a), __half(a)}; }
inline float2 __half22float2(__half2 h) { return float2{float(h.x), float(h.y)}; }
inline float __low2float(__half2 h) { return float(h.x); }
inline float __high2float(__half2 h) { return float(h.y); }
inline __nv_bfloat16 __float2bfloat16(float f) { return __nv_bfloat16(f); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16(f); }
inline float __bfloat162float(__nv_bfloat16 b) { return float(b); }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 b) { return b.__x; }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) { return __nv_bfloat16(__nv_bfloat16_raw{u}); }
inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) {
  return __nv_bfloat162{__nv_bfloat16(a), __nv_bfloat16(b)};
}
inline float2 __bfloat1622float2(__nv_bfloat162 h) { return float2{float(h.x), float(h.y)}; }

// ---------------------------------------------------------------------------
// Warp-level matrix instructions (tensor cores), as warp collectives. The
// kernels reach them through kernels/mma.cuh (bk::mma_m16n8k16_*,
// bk::ldmatrix_x*), which is inline PTX under nvcc (sm_80+) and these
// functions here, so the kernel source is the same for both.
//
// Each is ONE warp collective (warp_exchange_wide): every lane publishes its
// source fragment (mma: a0..a3, b0, b1 as 32-bit registers; ldmatrix: the 16
// bytes of the row its address points to), the warp meets, and each lane then
// assembles its own destination registers from the published words with the
// PTX ISA layouts. All lanes of the warp must execute it (".sync.aligned");
// the data of a lane that has exited reads as 0 (undefined on the GPU).
//
// Layouts (PTX ISA 9.7.14.5.8 "Matrix Fragments for mma.m16n8k16 with floating
// point type", .f16/.bf16 multiplicands, .f32 accumulators; groupID g =
// lane >> 2, threadID_in_group t = lane % 4; element i of a register pair is
// the low 16 bits for the even element):
//   A (16×16, row): a_i, i = 0..7 in registers a0..a3 (two per register, low first):
//                   row = g for i ∈ {0,1,4,5}, g + 8 otherwise;
//                   col = 2t + (i & 1) for i < 4, 2t + (i & 1) + 8 for i ≥ 4.
//   B (16×8, col):  b_i, i = 0..3 in registers b0, b1:
//                   row (k) = 2t + (i & 1) for i < 2, 2t + (i & 1) + 8 for i ≥ 2; col (n) = g.
//   C, D (16×8 f32): c_i, i = 0..3: row = g for i < 2, g + 8 otherwise; col = 2t + (i & 1).
//
// Arithmetic: every f16×f16 and bf16×bf16 product is exact in float32 (11+11
// and 8+8 significant bits); the emulation sums the 16 products of each
// element in float32 from 0 for k = 0, 1, ..., 15 in order, each sum rounded
// to nearest even, then adds C: D = C + (Σ_k A·B) (computed once per warp by
// the lane completing the collective). The tensor cores add the products
// in another order with their own internal precision and truncation, so GPU
// results may differ in the last bits of each mma (typically ≤ 1–2 ulp of the
// float32 accumulator); kernels must not depend on bit-exact mma sums.
//
// ldmatrix.sync.aligned.m8n8.{x1,x2,x4}{.trans}.shared.b16 (PTX ISA 9.7.14.5.15):
// lanes 8j..8j+7 give the addresses of rows 0..7 of matrix j (j < 1, 2, 4; the
// other lanes' addresses are ignored); each row is 16 contiguous bytes (8 b16
// elements), 16-byte aligned. Destination register r_j of lane l holds row l/4,
// elements 2(l % 4) and 2(l % 4) + 1 of matrix j (low half first); with .trans,
// the transpose: elements (row 2(l % 4), col l/4) and (row 2(l % 4) + 1, col l/4).
// Every lane reads its row before the warp meets, so the values are those in
// shared memory when the whole warp executes the instruction, as on the GPU.
// ---------------------------------------------------------------------------
namespace bkemu {

enum MmaElem { kMmaF16, kMmaBF16 };

// f16/bf16 bit pattern → float (exact). Normal f16 values take the branch-free
// rebias; zero, subnormals, inf and NaN go through f16_bits_to_f32.
inline float mma_elem_to_f32(unsigned h, MmaElem t) {
  unsigned x;
  if (t == kMmaBF16) {
    x = h << 16;
  } else {
    const unsigned e = h & 0x7c00u;
    if (e == 0u || e == 0x7c00u) return f16_bits_to_f32((unsigned short)h);
    x = ((h & 0x8000u) << 16) | (((h & 0x7fffu) + 0x1c000u) << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

// The 16×8 product A·B of one warp's mma from the published fragments
// (row[l] = {a0 | a1 << 32, a2 | a3 << 32, b0 | b1 << 32} of lane l; lanes not
// in `present` count as zeros), with the PTX layouts inverted: element (r, k)
// of A is half k & 1 of register (r >= 8) + 2·(k >= 8) of lane (r % 8)·4 +
// (k % 8)/2; element (k, n) of B is half k & 1 of register b(k >= 8) of lane
// 4n + (k % 8)/2. Products exact in float32, summed from 0 for k = 0..15.
inline void mma_m16n8k16_ab(const unsigned long long (*row)[4], unsigned present, MmaElem t, float* ab) {
  float A[16][16], Bt[8][16];  // Bt[n][k]
  for (int l = 0; l < kWarpSize; ++l) {
    const bool in = (present >> l) & 1u;
    const int g = l >> 2, kq = l & 3;
    for (int r = 0; r < 6; ++r) {
      const unsigned v = in ? unsigned(row[l][r >> 1] >> (32 * (r & 1))) : 0u;
      const float lo = mma_elem_to_f32(v & 0xffffu, t), hi = mma_elem_to_f32(v >> 16, t);
      if (r < 4) {  // a_r: row g + 8·(r & 1), cols 2kq + 8·(r >> 1) + {0, 1}
        const int rr = g + 8 * (r & 1), k = 2 * kq + 8 * (r >> 1);
        A[rr][k] = lo;
        A[rr][k + 1] = hi;
      } else {  // b_(r-4): rows 2kq + 8·(r − 4) + {0, 1}, col g
        const int k = 2 * kq + 8 * (r - 4);
        Bt[g][k] = lo;
        Bt[g][k + 1] = hi;
      }
    }
  }
  for (int r = 0; r < 16; ++r)
    for (int n = 0; n < 8; ++n) {
      float acc = 0.0f;
      for (int k = 0; k < 16; ++k) acc = acc + A[r][k] * Bt[n][k];
      ab[r * 8 + n] = acc;
    }
}

// mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}.{f16,bf16}.f32 d, a, b, c.
// d may alias c. One warp collective; the lane that completes it computes
// A·B for the whole warp (before releasing the others), and every lane then
// adds its own C: D = C + (A·B), one more float32 rounding.
inline void mma_m16n8k16_f32(float d[4], const unsigned a[4], const unsigned b[2], const float c[4], MmaElem t) {
  Fiber* f = tl_fiber;
  Warp& w = f->blk->warps[f->warp];
  const unsigned p = f->wparity;
  f->wparity ^= 1u;
  unsigned long long* mine = w.xwide[p][f->lane];
  mine[0] = a[0] | (unsigned long long)a[1] << 32;
  mine[1] = a[2] | (unsigned long long)a[3] << 32;
  mine[2] = b[0] | (unsigned long long)b[1] << 32;
  mine[3] = 0;
  w.wmask[p] |= 1u << f->lane;
  w.xreset = int(p ^ 1u);
  // The last lane to arrive completes the barrier without suspending; every
  // fragment is published by then. mma_ab[p] is next written by collective
  // k + 2, which no lane reaches before all have read this one.
  if (w.arrived + 1 == w.live) mma_m16n8k16_ab(w.xwide[p], w.wmask[p], t, w.mma_ab[p]);
  warp_sync(f);
  const float* ab = w.mma_ab[p];
  const int g = int(f->lane) >> 2, tg = int(f->lane) & 3;
  float out[4];
  for (int i = 0; i < 4; ++i) out[i] = c[i] + ab[(g + 8 * (i >> 1)) * 8 + 2 * tg + (i & 1)];
  for (int i = 0; i < 4; ++i) d[i] = out[i];
}

// ldmatrix.sync.aligned.m8n8.xN{.trans}.shared.b16 r, [addr].
template <int N, bool Trans>
inline void ldmatrix_m8n8(unsigned r[N], const void* addr) {
  static_assert(N == 1 || N == 2 || N == 4, "ldmatrix: .x1, .x2 or .x4");
  const int my = int(tl_fiber->lane);
  unsigned long long w[2] = {0ull, 0ull};
  if (my < 8 * N) std::memcpy(w, addr, 16);
  Fiber* f;
  unsigned present;
  const unsigned long long(*row)[4] = warp_exchange_wide(w, 2, &f, &present);
  // Element e (0..7, b16) of the row published by lane src.
  auto elem = [&](int src, int e) -> unsigned {
    if (!((present >> src) & 1u)) return 0u;
    return unsigned(row[src][e >> 2] >> (16 * (e & 3))) & 0xffffu;
  };
  const int lane = int(f->lane);
  for (int j = 0; j < N; ++j) {
    if (!Trans) {
      const int src = 8 * j + lane / 4, e = 2 * (lane % 4);
      r[j] = elem(src, e) | (elem(src, e + 1) << 16);
    } else {
      const int src = 8 * j + 2 * (lane % 4), e = lane / 4;
      r[j] = elem(src, e) | (elem(src + 1, e) << 16);
    }
  }
}

}  // namespace bkemu
