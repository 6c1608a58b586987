// kernels/test/test_emu.cc — checks of the emulation layer itself: warp
// shuffles and votes against the documented CUDA semantics, barriers, shared
// memory per concurrently running block, dynamic shared memory, atomics,
// 3-D indices, error codes, deadlock detection, half/bfloat16 conversions.
#include "../common.cuh"
#include "harness.h"

// ----- test kernels (written as CUDA, registered like the real ones) -----

// out[(mode*6 + wi)*n + t]: shuffles of the value 1000+lane... per width.
extern "C" __global__ void bkemu_test_shfl(int* out, int n, int arg) {
  const int t = threadIdx.x;
  const int widths[6] = {1, 2, 4, 8, 16, 32};
  for (int wi = 0; wi < 6; ++wi) {
    const int w = widths[wi];
    const int v = 1000 + t;
    out[(0 * 6 + wi) * n + t] = __shfl_sync(0xffffffffu, v, arg, w);
    out[(1 * 6 + wi) * n + t] = __shfl_up_sync(0xffffffffu, v, unsigned(arg), w);
    out[(2 * 6 + wi) * n + t] = __shfl_down_sync(0xffffffffu, v, unsigned(arg), w);
    out[(3 * 6 + wi) * n + t] = __shfl_xor_sync(0xffffffffu, v, arg, w);
  }
}
BK_KERNEL(bkemu_test_shfl);

extern "C" __global__ void bkemu_test_vote(unsigned* out, const int* pred) {
  const int t = threadIdx.x;
  const int p = pred[t];
  out[t * 4 + 0] = __ballot_sync(0xffffffffu, p);
  out[t * 4 + 1] = __any_sync(0xffffffffu, p);
  out[t * 4 + 2] = __all_sync(0xffffffffu, p);
  out[t * 4 + 3] = __reduce_add_sync(0xffffffffu, unsigned(p));
}
BK_KERNEL(bkemu_test_vote);

// Block-wide sum through static shared memory (warp sums by shuffles when
// the block is whole warps), plus syncthreads_count/and/or; one row per block.
extern "C" __global__ void bkemu_test_block(float* out, int* counts, const float* x) {
  __shared__ float part[1024];
  __shared__ float total;
  const int t = threadIdx.x, nt = blockDim.x;
  const float v = x[blockIdx.x * nt + t];
  if (nt % 32 == 0) {
    const float ws = bk::warp_sum(v);
    if (t % 32 == 0) part[t / 32] = ws;
  } else {
    part[t] = v;
  }
  __syncthreads();
  if (t == 0) {
    float s = 0;
    for (int i = 0; i < (nt % 32 == 0 ? nt / 32 : nt); ++i) s += part[i];
    total = s;
  }
  __syncthreads();
  out[blockIdx.x * nt + t] = total;
  const int c = __syncthreads_count(v > 0);
  const int a = __syncthreads_and(v > -2);
  const int o = __syncthreads_or(v > 0.999f);
  const int c2 = __syncthreads_count(t % 3 == 0);
  if (t == 0) {
    counts[blockIdx.x * 4 + 0] = c;
    counts[blockIdx.x * 4 + 1] = a;
    counts[blockIdx.x * 4 + 2] = o;
    counts[blockIdx.x * 4 + 3] = c2;
  }
}
BK_KERNEL(bkemu_test_block);

// Dynamic shared memory: reverse each block's slice through it.
extern "C" __global__ void bkemu_test_dynsmem(float* out, const float* x, int n) {
  BK_DYNAMIC_SHARED(float, s);
  const int t = threadIdx.x;
  s[t] = x[blockIdx.x * n + t];
  __syncthreads();
  out[blockIdx.x * n + t] = s[n - 1 - t];
}
BK_KERNEL(bkemu_test_dynsmem);

// Reads dynamic shared memory without writing it (must see the NaN poison).
extern "C" __global__ void bkemu_test_poison(float* out) {
  BK_DYNAMIC_SHARED(float, s);
  out[threadIdx.x] = s[threadIdx.x];
}
BK_KERNEL(bkemu_test_poison);

extern "C" __global__ void bkemu_test_atomic(int* counter, float* fsum, int* mx, unsigned* cas) {
  atomicAdd(counter, 1);
  atomicAdd(fsum, 0.5f);
  atomicMax(mx, int(blockIdx.x * blockDim.x + threadIdx.x));
  atomicCAS(cas, 0u, 7u);
}
BK_KERNEL(bkemu_test_atomic);

extern "C" __global__ void bkemu_test_index(int* out) {
  const int bx = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const int tx = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const int nt = blockDim.x * blockDim.y * blockDim.z;
  const int i = bx * nt + tx;
  out[i * 6 + 0] = threadIdx.x;
  out[i * 6 + 1] = threadIdx.y;
  out[i * 6 + 2] = threadIdx.z;
  out[i * 6 + 3] = blockIdx.x;
  out[i * 6 + 4] = blockIdx.y;
  out[i * 6 + 5] = blockIdx.z;
}
BK_KERNEL(bkemu_test_index);

// Divergent barriers: half the warp at __syncthreads, half at __syncwarp.
extern "C" __global__ void bkemu_test_deadlock(int* out) {
  if (threadIdx.x < 16)
    __syncthreads();
  else
    __syncwarp();
  out[threadIdx.x] = 1;
}
BK_KERNEL(bkemu_test_deadlock);

// Early exit of some threads, then barriers among the rest (allowed: exited
// threads do not count), then warp reductions over the remaining lanes.
extern "C" __global__ void bkemu_test_exit(float* out) {
  const int t = threadIdx.x;
  if (t >= 40) return;
  const int all = __syncthreads_and(1);
  if (t == 39) return;  // the last arriver exits right after releasing the barrier
  const int n = __syncthreads_count(1);
  const unsigned lanes = __reduce_add_sync(0xffffffffu, 1u);
  out[t] = float(n * 100 + int(lanes) + (all ? 10000 : 0));
}
BK_KERNEL(bkemu_test_exit);

extern "C" __global__ void bkemu_test_args(double* out, char c, short s, int i, long long ll, float f, double d,
                                           const float* p) {
  out[0] = c;
  out[1] = s;
  out[2] = i;
  out[3] = double(ll);
  out[4] = f;
  out[5] = d;
  out[6] = p[0];
}
BK_KERNEL(bkemu_test_args);

// ----- tests -----

static int doc_shfl(int mode, int lane, int arg, int w) {
  // CUDA programming guide semantics, written independently of the PTX formula.
  const int base = (lane / w) * w;
  switch (mode) {
    case 0: return base + ((arg % w) + w) % w;
    case 1: return (lane - base) >= arg ? lane - arg : lane;
    case 2: return (lane - base) + arg < w ? lane + arg : lane;
    default: {
      const int j = lane ^ arg;
      return (j / w) > (lane / w) ? lane : j;  // later groups: own value
    }
  }
}

TEST(emu_shuffles) {
  const int n = 64;  // two warps
  for (int arg : {0, 1, 3, 5, 16, 31}) {
    bkt::Buf<int> out(4 * 6 * n);
    LAUNCH("bkemu_test_shfl", dim3(1), dim3(n), 0, out.p(), n, arg);
    const int widths[6] = {1, 2, 4, 8, 16, 32};
    for (int mode = 0; mode < 4; ++mode)
      for (int wi = 0; wi < 6; ++wi)
        for (int t = 0; t < n; ++t) {
          const int lane = t % 32, w = widths[wi];
          const int want = 1000 + (t - lane) + doc_shfl(mode, lane, arg, w);
          const int got = out[(mode * 6 + wi) * n + t];
          EXPECT(got == want, "mode %d width %d arg %d thread %d: got %d want %d", mode, w, arg, t, got, want);
        }
    CHECK_GUARDS(out);
  }
}

TEST(emu_votes) {
  const int n = 96;
  bkt::Rng r(3);
  for (int trial = 0; trial < 4; ++trial) {
    bkt::Buf<int> pred(n);
    for (int t = 0; t < n; ++t) pred[t] = trial == 0 ? 1 : (trial == 1 ? 0 : r.below(2));
    bkt::Buf<unsigned> out(n * 4);
    LAUNCH("bkemu_test_vote", dim3(1), dim3(n), 0, out.p(), (const int*)pred.p());
    for (int t = 0; t < n; ++t) {
      const int w0 = t / 32 * 32;
      unsigned b = 0, cnt = 0;
      for (int l = 0; l < 32; ++l)
        if (pred[w0 + l]) b |= 1u << l, ++cnt;
      EXPECT(out[t * 4 + 0] == b, "ballot t %d", t);
      EXPECT(out[t * 4 + 1] == unsigned(b != 0), "any t %d", t);
      EXPECT(out[t * 4 + 2] == unsigned(b == 0xffffffffu), "all t %d", t);
      EXPECT(out[t * 4 + 3] == cnt, "reduce_add t %d", t);
    }
  }
}

TEST(emu_block_shared_concurrent_blocks) {
  // Many blocks over all workers: static __shared__ must be private per block.
  for (int threads : {1, 31, 40, 256, 1024}) {
    const int blocks = 37;
    bkt::Rng r(threads);
    bkt::Buf<float> x(blocks * threads), out(blocks * threads);
    bkt::Buf<int> counts(blocks * 4);
    x.fill(bkt::random_vec(r, blocks * threads));
    LAUNCH("bkemu_test_block", dim3(blocks), dim3(threads), 0, out.p(), counts.p(), (const float*)x.p());
    for (int b = 0; b < blocks; ++b) {
      double s = 0;
      int c = 0, o = 0, c2 = 0;
      for (int t = 0; t < threads; ++t) {
        s += x[b * threads + t];
        c += x[b * threads + t] > 0;
        o |= x[b * threads + t] > 0.999f;
        c2 += t % 3 == 0;
      }
      for (int t = 0; t < threads; ++t)
        EXPECT(std::fabs(out[b * threads + t] - s) < 1e-4, "block %d thread %d sum %g want %g", b, t,
               out[b * threads + t], s);
      EXPECT(counts[b * 4 + 0] == c, "count block %d: %d want %d", b, counts[b * 4 + 0], c);
      EXPECT(counts[b * 4 + 1] == 1, "and block %d", b);
      EXPECT(counts[b * 4 + 2] == o, "or block %d", b);
      EXPECT(counts[b * 4 + 3] == c2, "count2 block %d", b);
    }
    CHECK_GUARDS(out);
  }
}

TEST(emu_dynamic_shared) {
  const int n = 200, blocks = 9;
  bkt::Rng r(5);
  bkt::Buf<float> x(n * blocks), out(n * blocks);
  x.fill(bkt::random_vec(r, n * blocks));
  LAUNCH("bkemu_test_dynsmem", dim3(blocks), dim3(n), n * 4, out.p(), (const float*)x.p(), n);
  for (int b = 0; b < blocks; ++b)
    for (int t = 0; t < n; ++t) EXPECT(out[b * n + t] == x[b * n + n - 1 - t], "b %d t %d", b, t);
  bkt::Buf<float> p(32);
  LAUNCH("bkemu_test_poison", dim3(1), dim3(32), 128, p.p());
  for (int t = 0; t < 32; ++t) EXPECT(std::isnan(p[t]), "dynamic shared memory not poisoned at %d", t);
}

TEST(emu_atomics) {
  bkt::Buf<int> counter(1), mx(1);
  bkt::Buf<float> fsum(1);
  bkt::Buf<unsigned> cas(1);
  counter[0] = 0;
  mx[0] = -1;
  fsum[0] = 0;
  cas[0] = 0;
  LAUNCH("bkemu_test_atomic", dim3(300), dim3(64), 0, counter.p(), fsum.p(), mx.p(), cas.p());
  EXPECT(counter[0] == 300 * 64, "counter %d", counter[0]);
  EXPECT(fsum[0] == 300 * 64 * 0.5f, "fsum %g", fsum[0]);
  EXPECT(mx[0] == 300 * 64 - 1, "max %d", mx[0]);
  EXPECT(cas[0] == 7u, "cas %u", cas[0]);
}

TEST(emu_indices_3d) {
  const dim3 g(3, 2, 2), b(4, 3, 2);
  const int nb = 12, nt = 24;
  bkt::Buf<int> out(nb * nt * 6);
  LAUNCH("bkemu_test_index", g, b, 0, out.p());
  for (int i = 0; i < nb * nt; ++i) {
    const int blk = i / nt, th = i % nt;
    const int want[6] = {th % 4, (th / 4) % 3, th / 12, blk % 3, (blk / 3) % 2, blk / 6};
    for (int k = 0; k < 6; ++k) EXPECT(out[i * 6 + k] == want[k], "i %d k %d", i, k);
  }
}

TEST(emu_errors) {
  bkt::Buf<int> out(64);
  void* args[] = {nullptr};
  int* p = out.p();
  args[0] = &p;
  EXPECT(bkemu_launch("no_such_kernel", 1, 1, 1, 1, 1, 1, 0, args) == BKEMU_ERR_UNKNOWN_KERNEL, "unknown");
  EXPECT(bkemu_launch("bkemu_test_index", 1, 1, 1, 1025, 1, 1, 0, args) == BKEMU_ERR_INVALID_BLOCK, "block");
  EXPECT(bkemu_launch("bkemu_test_index", 1, 1, 1, 32, 32, 2, 0, args) == BKEMU_ERR_INVALID_BLOCK, "block 2048");
  EXPECT(bkemu_launch("bkemu_test_index", 1, 1, 1, 0, 1, 1, 0, args) == BKEMU_ERR_INVALID_BLOCK, "block 0");
  EXPECT(bkemu_launch("bkemu_test_index", 0, 1, 1, 1, 1, 1, 0, args) == BKEMU_ERR_INVALID_GRID, "grid 0");
  EXPECT(bkemu_launch("bkemu_test_index", 1, 65536, 1, 1, 1, 1, 0, args) == BKEMU_ERR_INVALID_GRID, "grid y");
  EXPECT(bkemu_launch("bkemu_test_index", 1, 1, 1, 1, 1, 1, 232449, args) == BKEMU_ERR_SHARED_TOO_LARGE, "smem");
  EXPECT(bkemu_launch("bkemu_test_index", 1, 1, 1, 1, 1, 1, 0, nullptr) == BKEMU_ERR_NULL_ARGS, "null args");
  EXPECT(bkemu::launch("bkemu_test_index", dim3(1), dim3(1), 0, 5) == BKEMU_ERR_ARG_SIZE, "arg size");
  EXPECT(bkemu_launch("bkemu_test_deadlock", 2, 1, 1, 32, 1, 1, 0, args) == BKEMU_ERR_DEADLOCK, "deadlock");
  // The pool keeps working after a deadlocked launch.
  LAUNCH("bkemu_test_index", dim3(1), dim3(1), 0, out.p());
  int sizes[8];
  EXPECT(bkemu_kernel_params("bkemu_test_args", sizes, 8) == 8, "params");
  EXPECT(sizes[0] == 8 && sizes[1] == 1 && sizes[2] == 2 && sizes[4] == 8 && sizes[5] == 4, "param sizes");
  EXPECT(std::string(bkemu_error(BKEMU_ERR_DEADLOCK)).find("deadlock") != std::string::npos, "error text");
}

TEST(emu_exited_threads_and_partial_warps) {
  bkt::Buf<float> out(64);
  for (int i = 0; i < 64; ++i) out[i] = -1;
  LAUNCH("bkemu_test_exit", dim3(1), dim3(64), 0, out.p());
  for (int t = 0; t < 39; ++t) EXPECT(out[t] == (t < 32 ? 13932.0f : 13907.0f), "t %d got %g", t, out[t]);
  for (int t = 39; t < 64; ++t) EXPECT(out[t] == -1.0f, "t %d written", t);
}

TEST(emu_argument_passing) {
  bkt::Buf<double> out(7);
  bkt::Buf<float> p(1);
  p[0] = 2.5f;
  LAUNCH("bkemu_test_args", dim3(1), dim3(1), 0, out.p(), (char)-3, (short)-300, 123456, (long long)1 << 40, 1.5f,
         -2.25, (const float*)p.p());
  const double want[7] = {-3, -300, 123456, double(1LL << 40), 1.5, -2.25, 2.5};
  for (int i = 0; i < 7; ++i) EXPECT(out[i] == want[i], "arg %d: %g", i, out[i]);
}

TEST(emu_thread_counts_deterministic) {
  // Same results with 1 and 3 workers.
  const int threads = 128, blocks = 50;
  bkt::Rng r(9);
  bkt::Buf<float> x(blocks * threads), o1(blocks * threads), o3(blocks * threads);
  bkt::Buf<int> c(blocks * 4);
  x.fill(bkt::random_vec(r, blocks * threads));
  const int prev = bkemu_set_threads(1);
  LAUNCH("bkemu_test_block", dim3(blocks), dim3(threads), 0, o1.p(), c.p(), (const float*)x.p());
  bkemu_set_threads(3);
  LAUNCH("bkemu_test_block", dim3(blocks), dim3(threads), 0, o3.p(), c.p(), (const float*)x.p());
  bkemu_set_threads(prev);
  EXPECT(std::memcmp(o1.p(), o3.p(), sizeof(float) * blocks * threads) == 0, "results differ across worker counts");
}

TEST(emu_half_bfloat16) {
  struct Case {
    float f;
    unsigned short h, b;
  } cases[] = {
      {0.0f, 0x0000, 0x0000},        {-0.0f, 0x8000, 0x8000},       {1.0f, 0x3c00, 0x3f80},
      {-2.0f, 0xc000, 0xc000},       {65504.0f, 0x7bff, 0x4780},    {65520.0f, 0x7c00, 0x4780},
      {5.9604645e-08f, 0x0001, 0x3380}, {0.333333343f, 0x3555, 0x3eab}, {1.00048828125f, 0x3c00, 0x3f80},
      {1.00146484375f, 0x3c02, 0x3f80}, {INFINITY, 0x7c00, 0x7f80},
  };
  for (const Case& c : cases) {
    EXPECT(__half_as_ushort(__float2half(c.f)) == c.h, "half(%g) = %04x want %04x", c.f,
           __half_as_ushort(__float2half(c.f)), c.h);
    EXPECT(__bfloat16_as_ushort(__float2bfloat16(c.f)) == c.b, "bf16(%g) = %04x want %04x", c.f,
           __bfloat16_as_ushort(__float2bfloat16(c.f)), c.b);
  }
  // Every finite half round-trips through float.
  for (unsigned u = 0; u < 0x10000u; ++u) {
    if (((u >> 10) & 0x1f) == 0x1f) continue;
    const float f = __half2float(__ushort_as_half((unsigned short)u));
    EXPECT(__half_as_ushort(__float2half(f)) == u, "half round trip %04x", u);
  }
  EXPECT(std::isnan(__half2float(__float2half(NAN))), "half NaN");
  EXPECT(std::isnan(__bfloat162float(__float2bfloat16(NAN))), "bf16 NaN");
}
