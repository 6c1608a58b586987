// kernels/standin/libcuda.cc — a stand-in libcuda.so.1: the CUDA driver API
// entry points blipcuda resolves, with cuda.h's exact signatures, running the
// kernels of kernels/*.cu on the CPU through the emulation of kernels/emu/.
//
// What it is for: CI has no GPU. With this library (and the stand-in cuBLAS
// of cublas.cc) on blipcuda's library path, the real cgo driver binding
// (cuda/driver_real.go: dlopen, dlsym, cuModuleLoadData of the embedded
// fatbin, cuLaunchKernel's parameter array, streams, events, graphs, error
// mapping) runs end to end. Only the silicon is left out.
//
// Semantics, written from NVIDIA's driver API documentation (cuda.h):
//   * cuInit before anything else (else CUDA_ERROR_NOT_INITIALIZED); one
//     device, ordinal 0; its primary context is created by the first
//     cuDevicePrimaryCtxRetain and destroyed (with every allocation, stream,
//     module, event and graph in it) by the last cuDevicePrimaryCtxRelease.
//     Calls that need a context fail with CUDA_ERROR_INVALID_CONTEXT unless
//     one is current on the calling thread (cuCtxSetCurrent).
//   * Module images: only the fatbin blipcuda embeds is accepted, recognised
//     by its SHA-256 (BKSTANDIN_FATBIN_SHA256, taken from
//     cuda/blipkernels.fatbin when this library is built; that fatbin is
//     checked against the kernels' sources by cuda's TestFatbinFresh, and the
//     host-compiled kernels here come from the same sources). Anything that
//     is no fatbin is CUDA_ERROR_INVALID_IMAGE, another fatbin
//     CUDA_ERROR_NO_BINARY_FOR_GPU. Kernel names resolve to the emulation's
//     registry (else CUDA_ERROR_NOT_FOUND).
//   * cuLaunchKernel reads kernelParams[i] as a driver does: exactly the byte
//     size of parameter i (from the kernel's C++ signature), copied at launch
//     (a captured launch keeps the copied values). cuFuncGetParamInfo gives
//     the offsets and sizes, so the caller can check its marshalling. The
//     launch configuration is checked as on sm_80..sm_90 (block ≤ 1024
//     threads, grid limits, 48 KiB dynamic shared memory without opt-in).
//   * Streams are in order; work runs when it is issued (the host sees the
//     same results a GPU would give at the next synchronisation). Events
//     record the host clock at their place in the stream: the ordering is
//     real, the durations are those of the CPU.
//   * Every kernel pointer argument must be NULL or inside a live
//     allocation (one past the end allowed), every memcpy/memset range
//     inside one: a kernel that breaks this faults as on a GPU
//     (CUDA_ERROR_ILLEGAL_ADDRESS, asynchronously), a copy fails with
//     CUDA_ERROR_INVALID_VALUE.
//   * Errors a kernel raises are sticky, as documented for
//     CUDA_ERROR_ILLEGAL_ADDRESS and CUDA_ERROR_LAUNCH_FAILED: the launch
//     itself returns success (it is asynchronous), and every later call that
//     touches the device returns the error, for the rest of the process ("to
//     continue using CUDA, the process must be terminated and relaunched").
//   * Graph capture (cuStreamBeginCapture_v2 .. cuStreamEndCapture,
//     cuGraphInstantiateWithFlags, cuGraphLaunch): kernels, device copies,
//     memsets and host functions are recorded; synchronising a capturing
//     stream is CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, a legacy-stream copy
//     while a blocking stream captures CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
//     both invalidate the capture (cuStreamEndCapture then returns
//     CUDA_ERROR_STREAM_CAPTURE_INVALIDATED).
//
// Fault injection (tests of blipcuda's error paths), read when the primary
// context is created, from BLIPCUDA_STANDIN_FAULTS, a comma-separated list:
//   oom=N     the N-th cuMemAlloc_v2 of the context fails with CUDA_ERROR_OUT_OF_MEMORY
//   launch=N  the N-th kernel executed faults: CUDA_ERROR_LAUNCH_FAILED (sticky)
//   graph=N   the N-th kernel executed inside cuGraphLaunch faults:
//             CUDA_ERROR_ILLEGAL_ADDRESS (sticky)
// BLIPCUDA_STANDIN_MEMORY sets the device memory in bytes (default 16 GiB).
//
// Build variants (kernels/standin/build.sh): -DBKSTANDIN_DRIVER_VERSION=11030
// builds an "old driver" without the entry points CUDA 11.3 lacks
// (cuGraphInstantiateWithFlags, cuEventElapsedTime_v2, cuFuncGetParamInfo);
// -DBKSTANDIN_OMIT_MEMSET_ASYNC one without cuMemsetD8Async (a broken driver).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "../../cuda/cudadecl.h"
#include "../emu/bkemu.h"

#ifndef BKSTANDIN_DRIVER_VERSION
#define BKSTANDIN_DRIVER_VERSION 13000
#endif
#ifndef BKSTANDIN_FATBIN_SHA256
#error "build with -DBKSTANDIN_FATBIN_SHA256=\"<sha256 of cuda/blipkernels.fatbin>\" (kernels/standin/build.sh)"
#endif

#define BKS_API extern "C" __attribute__((visibility("default")))

namespace {

enum : int {
#define X(name, value, text) name = value,
#include "cuerrors.def"
#undef X
};

struct ErrorText {
  int code;
  const char* name;
  const char* text;
};
const ErrorText kErrors[] = {
#define X(name, value, text) {value, #name, text},
#include "cuerrors.def"
#undef X
};

bool is_sticky(int code) {
  switch (code) {
    case CUDA_ERROR_ILLEGAL_ADDRESS:
    case CUDA_ERROR_LAUNCH_TIMEOUT:
    case CUDA_ERROR_HARDWARE_STACK_ERROR:
    case CUDA_ERROR_ILLEGAL_INSTRUCTION:
    case CUDA_ERROR_MISALIGNED_ADDRESS:
    case CUDA_ERROR_INVALID_ADDRESS_SPACE:
    case CUDA_ERROR_INVALID_PC:
    case CUDA_ERROR_LAUNCH_FAILED:
      return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// SHA-256 (FIPS 180-4), to recognise the module image.
// ---------------------------------------------------------------------------
std::string sha256_hex(const unsigned char* data, size_t n) {
  static const uint32_t k[64] = {
      0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
      0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
      0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
      0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
      0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
      0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
      0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
      0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  auto rotr = [](uint32_t x, int r) { return (x >> r) | (x << (32 - r)); };
  std::vector<unsigned char> msg(data, data + n);
  msg.push_back(0x80);
  while (msg.size() % 64 != 56) msg.push_back(0);
  const uint64_t bits = uint64_t(n) * 8;
  for (int i = 7; i >= 0; --i) msg.push_back((unsigned char)(bits >> (8 * i)));
  for (size_t off = 0; off < msg.size(); off += 64) {
    uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = uint32_t(msg[off + 4 * i]) << 24 | uint32_t(msg[off + 4 * i + 1]) << 16 |
             uint32_t(msg[off + 4 * i + 2]) << 8 | uint32_t(msg[off + 4 * i + 3]);
    for (int i = 16; i < 64; ++i) {
      const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; ++i) {
      const uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
  }
  char out[65];
  for (int i = 0; i < 8; ++i) snprintf(out + 8 * i, 9, "%08x", h[i]);
  return std::string(out, 64);
}

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------
struct Function {
  std::string name;
  std::vector<int> sizes;
  std::vector<unsigned char> pointers;
  std::vector<size_t> offsets;  // natural alignment, as the CUDA ABI lays out parameters
  size_t total = 0;
};

struct Module {
  std::map<std::string, std::unique_ptr<Function>> funcs;
};

struct Event;

// One stream operation, run now or recorded into a graph.
struct Op {
  enum Kind { Kernel, Copy, Memset, Host, Record } kind;
  const Function* fn = nullptr;
  unsigned grid[3] = {}, block[3] = {}, shared = 0;
  std::vector<unsigned char> args;  // parameter values at fn->offsets
  uint64_t dst = 0, src = 0, n = 0;
  unsigned char value = 0;
  CUhostFn host = nullptr;
  void* user = nullptr;
  Event* event = nullptr;
};

struct Stream {
  unsigned flags = 0;
  bool capturing = false, invalidated = false;
  std::vector<Op> rec;
};

struct Event {
  unsigned flags = 0;
  bool recorded = false;
  double ms = 0;
};

struct Graph {
  std::vector<Op> ops;
};

struct Faults {
  long oom = 0, launch = 0, graph = 0;
};

struct Context {
  std::map<uint64_t, uint64_t> allocs;  // base → size
  uint64_t used = 0, total = 16ull << 30;
  std::set<Module*> modules;
  std::set<Stream*> streams;
  std::set<Event*> events;
  std::set<Graph*> graphs, execs;
  Faults faults;
  long n_alloc = 0, n_kernel = 0, n_graph_kernel = 0;
  int graph_depth = 0;  // > 0 while cuGraphLaunch runs its nodes
};

std::recursive_mutex g_mu;
bool g_init = false;
int g_sticky = 0;  // the process's sticky error (never cleared)
Context* g_ctx = nullptr;
int g_ctx_refs = 0;
unsigned long g_ctx_gen = 0;  // bumped per primary context: a destroyed one stays invalid
thread_local Context* t_current = nullptr;
thread_local unsigned long t_current_gen = 0;

double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

Faults parse_faults() {
  Faults f;
  const char* s = getenv("BLIPCUDA_STANDIN_FAULTS");
  if (!s) return f;
  std::string all(s);
  size_t pos = 0;
  while (pos <= all.size()) {
    size_t end = all.find(',', pos);
    if (end == std::string::npos) end = all.size();
    std::string item = all.substr(pos, end - pos);
    size_t eq = item.find('=');
    if (eq != std::string::npos) {
      const long v = atol(item.c_str() + eq + 1);
      const std::string key = item.substr(0, eq);
      if (key == "oom") f.oom = v;
      if (key == "launch") f.launch = v;
      if (key == "graph") f.graph = v;
    }
    pos = end + 1;
  }
  return f;
}

// need_ctx: the checks at the top of every call that uses the current context.
int need_ctx() {
  if (!g_init) return CUDA_ERROR_NOT_INITIALIZED;
  if (g_sticky) return g_sticky;
  if (!t_current || t_current != g_ctx || t_current_gen != g_ctx_gen) return CUDA_ERROR_INVALID_CONTEXT;
  return CUDA_SUCCESS;
}

// in_alloc reports whether [p, p+n) lies inside one live allocation; with
// n == 0, whether p is inside one or one past its end.
bool in_alloc(const Context* c, uint64_t p, uint64_t n) {
  auto it = c->allocs.upper_bound(p);
  if (it == c->allocs.begin()) return false;
  --it;
  const uint64_t base = it->first, size = it->second;
  if (n == 0) return p <= base + size;
  return p >= base && p - base <= size && n <= size - (p - base);
}

bool valid_stream(Context* c, CUstream s) { return s == nullptr || c->streams.count(static_cast<Stream*>(s)) != 0; }

// execute runs one operation now. A kernel fault makes the error sticky.
int execute(Context* c, const Op& op) {
  switch (op.kind) {
    case Op::Kernel: {
      const Function* f = op.fn;
      void* ptrs[64];
      for (size_t i = 0; i < f->sizes.size(); ++i) {
        ptrs[i] = const_cast<unsigned char*>(op.args.data() + f->offsets[i]);
        if (f->pointers[i]) {
          uint64_t p;
          memcpy(&p, ptrs[i], 8);
          if (p != 0 && !in_alloc(c, p, 0)) {
            fprintf(stderr, "libcuda stand-in: %s: parameter %zu (0x%llx) is not device memory\n", f->name.c_str(), i,
                    (unsigned long long)p);
            return g_sticky = CUDA_ERROR_ILLEGAL_ADDRESS;
          }
        }
      }
      ++c->n_kernel;
      if (c->faults.launch && c->n_kernel == c->faults.launch) return g_sticky = CUDA_ERROR_LAUNCH_FAILED;
      if (c->graph_depth > 0) {
        ++c->n_graph_kernel;
        if (c->faults.graph && c->n_graph_kernel == c->faults.graph) return g_sticky = CUDA_ERROR_ILLEGAL_ADDRESS;
      }
      const int rc = bkemu_launch(f->name.c_str(), op.grid[0], op.grid[1], op.grid[2], op.block[0], op.block[1],
                                  op.block[2], op.shared, f->sizes.empty() ? nullptr : ptrs);
      switch (rc) {
        case BKEMU_OK:
          return CUDA_SUCCESS;
        case BKEMU_ERR_DEADLOCK:  // a deadlocked block hangs a GPU until the watchdog
          return g_sticky = CUDA_ERROR_LAUNCH_FAILED;
        case BKEMU_ERR_RESOURCES:
          return CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES;
      }
      return CUDA_ERROR_INVALID_VALUE;  // the configuration was checked at launch
    }
    case Op::Copy:
      memmove(reinterpret_cast<void*>(op.dst), reinterpret_cast<const void*>(op.src), op.n);
      return CUDA_SUCCESS;
    case Op::Memset:
      memset(reinterpret_cast<void*>(op.dst), op.value, op.n);
      return CUDA_SUCCESS;
    case Op::Host:
      op.host(op.user);
      return CUDA_SUCCESS;
    case Op::Record:
      if (c->events.count(op.event)) {
        op.event->recorded = true;
        op.event->ms = now_ms();
      }
      return CUDA_SUCCESS;
  }
  return CUDA_ERROR_UNKNOWN;
}

bool any_blocking_capture(Context* c) {
  for (Stream* s : c->streams)
    if (s->capturing && !(s->flags & 1 /* CU_STREAM_NON_BLOCKING */)) return true;
  return false;
}

void invalidate_captures(Context* c) {
  for (Stream* s : c->streams)
    if (s->capturing && !(s->flags & 1)) s->invalidated = true;
}

// issue queues op on stream s: records it while s captures, else runs it.
// Asynchronous work reports a kernel's fault at later calls (sticky), as a
// GPU does, so issue returns success for it.
int issue(Context* c, CUstream hs, Op op) {
  if (!valid_stream(c, hs)) return CUDA_ERROR_INVALID_HANDLE;
  Stream* s = static_cast<Stream*>(hs);
  if (s && s->capturing) {
    if (s->invalidated) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    s->rec.push_back(std::move(op));
    return CUDA_SUCCESS;
  }
  if (!s && any_blocking_capture(c)) {
    invalidate_captures(c);
    return CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
  }
  const int rc = execute(c, op);
  return is_sticky(rc) ? CUDA_SUCCESS : rc;
}

// A synchronous copy on the legacy stream: refused while a blocking stream
// captures (and that capture is invalidated).
int sync_legacy(Context* c) {
  if (any_blocking_capture(c)) {
    invalidate_captures(c);
    return CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
  }
  return CUDA_SUCCESS;
}

void destroy_context(Context* c) {
  for (auto& a : c->allocs) free(reinterpret_cast<void*>(a.first));
  for (Module* m : c->modules) delete m;
  for (Stream* s : c->streams) delete s;
  for (Event* e : c->events) delete e;
  for (Graph* g : c->graphs) delete g;
  for (Graph* g : c->execs) delete g;
  delete c;
}

}  // namespace

#define LOCK std::lock_guard<std::recursive_mutex> lock_(g_mu)
#define NEED_CTX                       \
  do {                                 \
    if (int rc_ = need_ctx()) return rc_; \
  } while (0)

// Each entry point's type is checked against cudadecl.h's pointer type (which
// TestHeaderMatchesCUDA checks against the real cuda.h).
#define CHECK_TYPE(fn, pfn) static_assert(std::is_same_v<decltype(&fn), pfn>, #fn " has cuda.h's signature")

// ---------------------------------------------------------------------------
// Initialisation, device, context
// ---------------------------------------------------------------------------
BKS_API CUresult cuInit(unsigned int flags) {
  LOCK;
  if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
  g_init = true;
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuInit, bk_pfn_cuInit);

BKS_API CUresult cuDriverGetVersion(int* version) {
  if (!version) return CUDA_ERROR_INVALID_VALUE;
  *version = BKSTANDIN_DRIVER_VERSION;
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuDriverGetVersion, bk_pfn_cuDriverGetVersion);

BKS_API CUresult cuDeviceGetCount(int* count) {
  LOCK;
  if (!g_init) return CUDA_ERROR_NOT_INITIALIZED;
  if (!count) return CUDA_ERROR_INVALID_VALUE;
  *count = 1;
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuDeviceGetCount, bk_pfn_cuDeviceGetCount);

BKS_API CUresult cuDeviceGet(CUdevice* dev, int ordinal) {
  LOCK;
  if (!g_init) return CUDA_ERROR_NOT_INITIALIZED;
  if (!dev) return CUDA_ERROR_INVALID_VALUE;
  if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE;
  *dev = 0;
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuDeviceGet, bk_pfn_cuDeviceGet);

BKS_API CUresult cuDeviceGetName(char* name, int len, CUdevice dev) {
  LOCK;
  if (!g_init) return CUDA_ERROR_NOT_INITIALIZED;
  if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
  if (!name || len <= 0) return CUDA_ERROR_INVALID_VALUE;
  snprintf(name, size_t(len), "%s", "blipcuda stand-in driver (CPU emulation of kernels/)");
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuDeviceGetName, bk_pfn_cuDeviceGetName);

BKS_API CUresult cuDeviceGetAttribute(int* pi, CUdevice_attribute attrib, CUdevice dev) {
  LOCK;
  if (!g_init) return CUDA_ERROR_NOT_INITIALIZED;
  if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
  if (!pi) return CUDA_ERROR_INVALID_VALUE;
  switch (attrib) {  // an H100's values (cuda.h's attribute numbers)
    case 1: *pi = 1024; return CUDA_SUCCESS;    // MAX_THREADS_PER_BLOCK
    case 8: *pi = 49152; return CUDA_SUCCESS;   // MAX_SHARED_MEMORY_PER_BLOCK
    case 10: *pi = 32; return CUDA_SUCCESS;     // WARP_SIZE
    case 16: *pi = 132; return CUDA_SUCCESS;    // MULTIPROCESSOR_COUNT
    case 75: *pi = 9; return CUDA_SUCCESS;      // COMPUTE_CAPABILITY_MAJOR
    case 76: *pi = 0; return CUDA_SUCCESS;      // COMPUTE_CAPABILITY_MINOR
    case 97: *pi = 232448; return CUDA_SUCCESS; // MAX_SHARED_MEMORY_PER_BLOCK_OPTIN
  }
  return CUDA_ERROR_INVALID_VALUE;
}
CHECK_TYPE(cuDeviceGetAttribute, bk_pfn_cuDeviceGetAttribute);

BKS_API CUresult cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev) {
  LOCK;
  if (!g_init) return CUDA_ERROR_NOT_INITIALIZED;
  if (g_sticky) return g_sticky;
  if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
  if (!pctx) return CUDA_ERROR_INVALID_VALUE;
  if (!g_ctx) {
    g_ctx = new Context;
    ++g_ctx_gen;
    g_ctx->faults = parse_faults();
    if (const char* m = getenv("BLIPCUDA_STANDIN_MEMORY")) g_ctx->total = strtoull(m, nullptr, 10);
  }
  ++g_ctx_refs;
  *pctx = g_ctx;
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuDevicePrimaryCtxRetain, bk_pfn_cuDevicePrimaryCtxRetain);

BKS_API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
  LOCK;
  if (!g_init) return CUDA_ERROR_NOT_INITIALIZED;
  if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
  if (!g_ctx || g_ctx_refs == 0) return CUDA_ERROR_INVALID_CONTEXT;
  if (--g_ctx_refs == 0) {
    if (t_current == g_ctx) t_current = nullptr;
    destroy_context(g_ctx);
    g_ctx = nullptr;
  }
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuDevicePrimaryCtxRelease_v2, bk_pfn_cuDevicePrimaryCtxRelease_v2);

BKS_API CUresult cuCtxSetCurrent(CUcontext ctx) {
  LOCK;
  if (!g_init) return CUDA_ERROR_NOT_INITIALIZED;
  if (ctx != nullptr && ctx != g_ctx) return CUDA_ERROR_INVALID_CONTEXT;
  t_current = static_cast<Context*>(ctx);
  t_current_gen = g_ctx_gen;
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuCtxSetCurrent, bk_pfn_cuCtxSetCurrent);

// ---------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------
BKS_API CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize) {
  LOCK;
  NEED_CTX;
  Context* c = t_current;
  if (!dptr || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  ++c->n_alloc;
  if ((c->faults.oom && c->n_alloc == c->faults.oom) || bytesize > c->total - c->used) return CUDA_ERROR_OUT_OF_MEMORY;
  void* p = nullptr;
  if (posix_memalign(&p, 256, bytesize) != 0) return CUDA_ERROR_OUT_OF_MEMORY;
  memset(p, 0xff, bytesize);  // fresh device memory is garbage: NaN bytes show reads of unwritten memory
  *dptr = reinterpret_cast<uint64_t>(p);
  c->allocs[*dptr] = bytesize;
  c->used += bytesize;
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuMemAlloc_v2, bk_pfn_cuMemAlloc_v2);

BKS_API CUresult cuMemFree_v2(CUdeviceptr dptr) {
  LOCK;
  NEED_CTX;
  Context* c = t_current;
  auto it = c->allocs.find(dptr);
  if (it == c->allocs.end()) return CUDA_ERROR_INVALID_VALUE;
  c->used -= it->second;
  c->allocs.erase(it);
  free(reinterpret_cast<void*>(dptr));
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuMemFree_v2, bk_pfn_cuMemFree_v2);

BKS_API CUresult cuMemGetInfo_v2(size_t* free_, size_t* total) {
  LOCK;
  NEED_CTX;
  if (!free_ || !total) return CUDA_ERROR_INVALID_VALUE;
  *free_ = t_current->total - t_current->used;
  *total = t_current->total;
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuMemGetInfo_v2, bk_pfn_cuMemGetInfo_v2);

BKS_API CUresult cuPointerGetAttribute(void* data, CUpointer_attribute attribute, CUdeviceptr ptr) {
  LOCK;
  NEED_CTX;
  Context* c = t_current;
  if (!data) return CUDA_ERROR_INVALID_VALUE;
  auto it = c->allocs.upper_bound(ptr);
  if (it == c->allocs.begin()) return CUDA_ERROR_INVALID_VALUE;
  --it;
  if (ptr - it->first >= it->second) return CUDA_ERROR_INVALID_VALUE;
  switch (attribute) {
    case 11:  // CU_POINTER_ATTRIBUTE_RANGE_START_ADDR
      *static_cast<CUdeviceptr*>(data) = it->first;
      return CUDA_SUCCESS;
    case 12:  // CU_POINTER_ATTRIBUTE_RANGE_SIZE
      *static_cast<size_t*>(data) = it->second;
      return CUDA_SUCCESS;
  }
  return CUDA_ERROR_NOT_SUPPORTED;
}
CHECK_TYPE(cuPointerGetAttribute, bk_pfn_cuPointerGetAttribute);

BKS_API CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t n) {
  LOCK;
  NEED_CTX;
  if (int rc = sync_legacy(t_current)) return rc;
  if (n == 0) return CUDA_SUCCESS;
  if (!src || !in_alloc(t_current, dst, n)) return CUDA_ERROR_INVALID_VALUE;
  memcpy(reinterpret_cast<void*>(dst), src, n);
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuMemcpyHtoD_v2, bk_pfn_cuMemcpyHtoD_v2);

BKS_API CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t n) {
  LOCK;
  NEED_CTX;
  if (int rc = sync_legacy(t_current)) return rc;
  if (n == 0) return CUDA_SUCCESS;
  if (!dst || !in_alloc(t_current, src, n)) return CUDA_ERROR_INVALID_VALUE;
  memcpy(dst, reinterpret_cast<const void*>(src), n);
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuMemcpyDtoH_v2, bk_pfn_cuMemcpyDtoH_v2);

static int copy_op(Context* c, CUdeviceptr dst, CUdeviceptr src, size_t n, Op* op) {
  if (!in_alloc(c, dst, n) || !in_alloc(c, src, n)) return CUDA_ERROR_INVALID_VALUE;
  op->kind = Op::Copy;
  op->dst = dst, op->src = src, op->n = n;
  return CUDA_SUCCESS;
}

BKS_API CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n) {
  LOCK;
  NEED_CTX;
  if (n == 0) return CUDA_SUCCESS;
  Op op;
  if (int rc = copy_op(t_current, dst, src, n, &op)) return rc;
  return issue(t_current, nullptr, std::move(op));
}
CHECK_TYPE(cuMemcpyDtoD_v2, bk_pfn_cuMemcpyDtoD_v2);

BKS_API CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream hStream) {
  LOCK;
  NEED_CTX;
  if (n == 0) return CUDA_SUCCESS;
  Op op;
  if (int rc = copy_op(t_current, dst, src, n, &op)) return rc;
  return issue(t_current, hStream, std::move(op));
}
CHECK_TYPE(cuMemcpyDtoDAsync_v2, bk_pfn_cuMemcpyDtoDAsync_v2);

static int memset_op(Context* c, CUdeviceptr dst, unsigned char v, size_t n, Op* op) {
  if (!in_alloc(c, dst, n)) return CUDA_ERROR_INVALID_VALUE;
  op->kind = Op::Memset;
  op->dst = dst, op->value = v, op->n = n;
  return CUDA_SUCCESS;
}

BKS_API CUresult cuMemsetD8_v2(CUdeviceptr dst, unsigned char uc, size_t n) {
  LOCK;
  NEED_CTX;
  if (n == 0) return CUDA_SUCCESS;
  Op op;
  if (int rc = memset_op(t_current, dst, uc, n, &op)) return rc;
  return issue(t_current, nullptr, std::move(op));
}
CHECK_TYPE(cuMemsetD8_v2, bk_pfn_cuMemsetD8_v2);

#ifndef BKSTANDIN_OMIT_MEMSET_ASYNC
BKS_API CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char uc, size_t n, CUstream hStream) {
  LOCK;
  NEED_CTX;
  if (n == 0) return CUDA_SUCCESS;
  Op op;
  if (int rc = memset_op(t_current, dst, uc, n, &op)) return rc;
  return issue(t_current, hStream, std::move(op));
}
CHECK_TYPE(cuMemsetD8Async, bk_pfn_cuMemsetD8Async);
#endif

// ---------------------------------------------------------------------------
// Modules and launches
// ---------------------------------------------------------------------------
BKS_API CUresult cuModuleLoadData(CUmodule* module, const void* image) {
  LOCK;
  NEED_CTX;
  if (!module || !image) return CUDA_ERROR_INVALID_VALUE;
  // A fatbin: magic 0xBA55ED50, u16 version, u16 header size, u64 payload size.
  const unsigned char* p = static_cast<const unsigned char*>(image);
  uint32_t magic;
  uint16_t hsize;
  uint64_t fsize;
  memcpy(&magic, p, 4);
  memcpy(&hsize, p + 6, 2);
  memcpy(&fsize, p + 8, 8);
  if (magic != 0xBA55ED50u || hsize < 16 || fsize > (1ull << 32)) return CUDA_ERROR_INVALID_IMAGE;
  if (sha256_hex(p, size_t(hsize) + size_t(fsize)) != BKSTANDIN_FATBIN_SHA256) {
    fprintf(stderr, "libcuda stand-in: this fatbin is not the one the stand-in was built for (%s)\n",
            BKSTANDIN_FATBIN_SHA256);
    return CUDA_ERROR_NO_BINARY_FOR_GPU;
  }
  Module* m = new Module;
  t_current->modules.insert(m);
  *module = m;
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuModuleLoadData, bk_pfn_cuModuleLoadData);

BKS_API CUresult cuModuleUnload(CUmodule hmod) {
  LOCK;
  NEED_CTX;
  Module* m = static_cast<Module*>(hmod);
  if (!t_current->modules.erase(m)) return CUDA_ERROR_INVALID_HANDLE;
  delete m;
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuModuleUnload, bk_pfn_cuModuleUnload);

BKS_API CUresult cuModuleGetFunction(CUfunction* hfunc, CUmodule hmod, const char* name) {
  LOCK;
  NEED_CTX;
  Module* m = static_cast<Module*>(hmod);
  if (!hfunc || !name) return CUDA_ERROR_INVALID_VALUE;
  if (!t_current->modules.count(m)) return CUDA_ERROR_INVALID_HANDLE;
  auto it = m->funcs.find(name);
  if (it == m->funcs.end()) {
    const int n = bkemu_kernel_params(name, nullptr, 0);
    if (n < 0 || n > 64) return CUDA_ERROR_NOT_FOUND;
    auto f = std::make_unique<Function>();
    f->name = name;
    f->sizes.resize(size_t(n));
    f->pointers.resize(size_t(n));
    bkemu_kernel_params(name, f->sizes.data(), n);
    bkemu_kernel_param_pointers(name, f->pointers.data(), n);
    for (int i = 0; i < n; ++i) {
      const size_t a = size_t(f->sizes[size_t(i)]);
      f->total = (f->total + a - 1) / a * a;
      f->offsets.push_back(f->total);
      f->total += a;
    }
    it = m->funcs.emplace(name, std::move(f)).first;
  }
  *hfunc = it->second.get();
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuModuleGetFunction, bk_pfn_cuModuleGetFunction);

static const Function* find_function(Context* c, CUfunction f) {
  for (Module* m : c->modules)
    for (auto& kv : m->funcs)
      if (kv.second.get() == f) return kv.second.get();
  return nullptr;
}

#if BKSTANDIN_DRIVER_VERSION >= 12040
BKS_API CUresult cuFuncGetParamInfo(CUfunction func, size_t paramIndex, size_t* paramOffset, size_t* paramSize) {
  LOCK;
  NEED_CTX;
  const Function* f = find_function(t_current, func);
  if (!f) return CUDA_ERROR_INVALID_HANDLE;
  if (paramIndex >= f->sizes.size()) return CUDA_ERROR_INVALID_VALUE;
  if (paramOffset) *paramOffset = f->offsets[paramIndex];
  if (paramSize) *paramSize = size_t(f->sizes[paramIndex]);
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuFuncGetParamInfo, bk_pfn_cuFuncGetParamInfo);
#endif

BKS_API CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ,
                                unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,
                                unsigned int sharedMemBytes, CUstream hStream, void** kernelParams, void** extra) {
  LOCK;
  NEED_CTX;
  const Function* fn = find_function(t_current, f);
  if (!fn) return CUDA_ERROR_INVALID_HANDLE;
  if (gridDimX == 0 || gridDimY == 0 || gridDimZ == 0 || gridDimX > 2147483647u || gridDimY > 65535 ||
      gridDimZ > 65535)
    return CUDA_ERROR_INVALID_VALUE;
  if (blockDimX == 0 || blockDimY == 0 || blockDimZ == 0 || blockDimX > 1024 || blockDimY > 1024 ||
      blockDimZ > 64 || uint64_t(blockDimX) * blockDimY * blockDimZ > 1024)
    return CUDA_ERROR_INVALID_VALUE;
  if (sharedMemBytes > 49152) return CUDA_ERROR_INVALID_VALUE;  // no cuFuncSetAttribute opt-in here
  if (kernelParams && extra) return CUDA_ERROR_INVALID_VALUE;
  if (extra) return CUDA_ERROR_NOT_SUPPORTED;  // CU_LAUNCH_PARAM_BUFFER_*: not used by blipcuda
  if (!kernelParams && !fn->sizes.empty()) return CUDA_ERROR_INVALID_VALUE;
  Op op;
  op.kind = Op::Kernel;
  op.fn = fn;
  op.grid[0] = gridDimX, op.grid[1] = gridDimY, op.grid[2] = gridDimZ;
  op.block[0] = blockDimX, op.block[1] = blockDimY, op.block[2] = blockDimZ;
  op.shared = sharedMemBytes;
  op.args.resize(fn->total);
  for (size_t i = 0; i < fn->sizes.size(); ++i) {
    if (!kernelParams[i]) return CUDA_ERROR_INVALID_VALUE;
    memcpy(op.args.data() + fn->offsets[i], kernelParams[i], size_t(fn->sizes[i]));
  }
  return issue(t_current, hStream, std::move(op));
}
CHECK_TYPE(cuLaunchKernel, bk_pfn_cuLaunchKernel);

BKS_API CUresult cuLaunchHostFunc(CUstream hStream, CUhostFn fn, void* userData) {
  LOCK;
  NEED_CTX;
  if (!fn) return CUDA_ERROR_INVALID_VALUE;
  Op op;
  op.kind = Op::Host;
  op.host = fn;
  op.user = userData;
  return issue(t_current, hStream, std::move(op));
}
CHECK_TYPE(cuLaunchHostFunc, bk_pfn_cuLaunchHostFunc);

// ---------------------------------------------------------------------------
// Streams and events
// ---------------------------------------------------------------------------
BKS_API CUresult cuStreamCreate(CUstream* phStream, unsigned int flags) {
  LOCK;
  NEED_CTX;
  if (!phStream || (flags & ~1u)) return CUDA_ERROR_INVALID_VALUE;
  Stream* s = new Stream;
  s->flags = flags;
  t_current->streams.insert(s);
  *phStream = s;
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuStreamCreate, bk_pfn_cuStreamCreate);

BKS_API CUresult cuStreamSynchronize(CUstream hStream) {
  LOCK;
  NEED_CTX;
  if (!valid_stream(t_current, hStream)) return CUDA_ERROR_INVALID_HANDLE;
  Stream* s = static_cast<Stream*>(hStream);
  if (s && s->capturing) {
    s->invalidated = true;
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  }
  if (!s && any_blocking_capture(t_current)) {
    invalidate_captures(t_current);
    return CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
  }
  return CUDA_SUCCESS;  // work ran when it was issued
}
CHECK_TYPE(cuStreamSynchronize, bk_pfn_cuStreamSynchronize);

BKS_API CUresult cuStreamDestroy_v2(CUstream hStream) {
  LOCK;
  NEED_CTX;
  Stream* s = static_cast<Stream*>(hStream);
  if (!s || !t_current->streams.erase(s)) return CUDA_ERROR_INVALID_HANDLE;
  delete s;
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuStreamDestroy_v2, bk_pfn_cuStreamDestroy_v2);

BKS_API CUresult cuStreamIsCapturing(CUstream hStream, CUstreamCaptureStatus* captureStatus) {
  LOCK;
  NEED_CTX;
  if (!captureStatus) return CUDA_ERROR_INVALID_VALUE;
  if (!valid_stream(t_current, hStream)) return CUDA_ERROR_INVALID_HANDLE;
  Stream* s = static_cast<Stream*>(hStream);
  if (!s) {
    if (any_blocking_capture(t_current)) return CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
    *captureStatus = 0;
    return CUDA_SUCCESS;
  }
  *captureStatus = !s->capturing ? 0 : s->invalidated ? 2 : 1;
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuStreamIsCapturing, bk_pfn_cuStreamIsCapturing);

BKS_API CUresult cuEventCreate(CUevent* phEvent, unsigned int flags) {
  LOCK;
  NEED_CTX;
  if (!phEvent || (flags & ~0x7u)) return CUDA_ERROR_INVALID_VALUE;
  Event* e = new Event;
  e->flags = flags;
  t_current->events.insert(e);
  *phEvent = e;
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuEventCreate, bk_pfn_cuEventCreate);

BKS_API CUresult cuEventRecord(CUevent hEvent, CUstream hStream) {
  LOCK;
  NEED_CTX;
  Event* e = static_cast<Event*>(hEvent);
  if (!t_current->events.count(e)) return CUDA_ERROR_INVALID_HANDLE;
  Op op;
  op.kind = Op::Record;
  op.event = e;
  return issue(t_current, hStream, std::move(op));
}
CHECK_TYPE(cuEventRecord, bk_pfn_cuEventRecord);

BKS_API CUresult cuEventSynchronize(CUevent hEvent) {
  LOCK;
  NEED_CTX;
  if (!t_current->events.count(static_cast<Event*>(hEvent))) return CUDA_ERROR_INVALID_HANDLE;
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuEventSynchronize, bk_pfn_cuEventSynchronize);

static CUresult elapsed(float* ms, CUevent hStart, CUevent hEnd) {
  LOCK;
  NEED_CTX;
  Event* a = static_cast<Event*>(hStart);
  Event* b = static_cast<Event*>(hEnd);
  if (!ms) return CUDA_ERROR_INVALID_VALUE;
  if (!t_current->events.count(a) || !t_current->events.count(b)) return CUDA_ERROR_INVALID_HANDLE;
  if ((a->flags | b->flags) & 2 /* CU_EVENT_DISABLE_TIMING */) return CUDA_ERROR_INVALID_HANDLE;
  if (!a->recorded || !b->recorded) return CUDA_ERROR_INVALID_HANDLE;
  *ms = float(b->ms - a->ms);
  return CUDA_SUCCESS;
}

BKS_API CUresult cuEventElapsedTime(float* pMilliseconds, CUevent hStart, CUevent hEnd) {
  return elapsed(pMilliseconds, hStart, hEnd);
}
#if BKSTANDIN_DRIVER_VERSION >= 12080
BKS_API CUresult cuEventElapsedTime_v2(float* pMilliseconds, CUevent hStart, CUevent hEnd) {
  return elapsed(pMilliseconds, hStart, hEnd);
}
CHECK_TYPE(cuEventElapsedTime_v2, bk_pfn_cuEventElapsedTime);
#endif

BKS_API CUresult cuEventDestroy_v2(CUevent hEvent) {
  LOCK;
  NEED_CTX;
  Event* e = static_cast<Event*>(hEvent);
  if (!t_current->events.erase(e)) return CUDA_ERROR_INVALID_HANDLE;
  delete e;
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuEventDestroy_v2, bk_pfn_cuEventDestroy_v2);

// ---------------------------------------------------------------------------
// Graphs
// ---------------------------------------------------------------------------
BKS_API CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode) {
  LOCK;
  NEED_CTX;
  if (mode < 0 || mode > 2) return CUDA_ERROR_INVALID_VALUE;
  if (!hStream) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;  // the legacy stream cannot capture
  if (!valid_stream(t_current, hStream)) return CUDA_ERROR_INVALID_HANDLE;
  Stream* s = static_cast<Stream*>(hStream);
  if (s->capturing) return CUDA_ERROR_ILLEGAL_STATE;
  s->capturing = true;
  s->invalidated = false;
  s->rec.clear();
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuStreamBeginCapture_v2, bk_pfn_cuStreamBeginCapture_v2);

BKS_API CUresult cuStreamEndCapture(CUstream hStream, CUgraph* phGraph) {
  LOCK;
  NEED_CTX;
  if (!phGraph) return CUDA_ERROR_INVALID_VALUE;
  if (!hStream || !valid_stream(t_current, hStream)) return CUDA_ERROR_INVALID_HANDLE;
  Stream* s = static_cast<Stream*>(hStream);
  if (!s->capturing) return CUDA_ERROR_ILLEGAL_STATE;
  s->capturing = false;
  *phGraph = nullptr;
  if (s->invalidated) {
    s->rec.clear();
    return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  }
  Graph* g = new Graph;
  g->ops = std::move(s->rec);
  s->rec.clear();
  t_current->graphs.insert(g);
  *phGraph = g;
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuStreamEndCapture, bk_pfn_cuStreamEndCapture);

#if BKSTANDIN_DRIVER_VERSION >= 11040
BKS_API CUresult cuGraphInstantiateWithFlags(CUgraphExec* phGraphExec, CUgraph hGraph, unsigned long long flags) {
  LOCK;
  NEED_CTX;
  if (!phGraphExec) return CUDA_ERROR_INVALID_VALUE;
  Graph* g = static_cast<Graph*>(hGraph);
  if (!t_current->graphs.count(g)) return CUDA_ERROR_INVALID_VALUE;
  if (flags != 0) return CUDA_ERROR_NOT_SUPPORTED;
  Graph* e = new Graph(*g);
  t_current->execs.insert(e);
  *phGraphExec = e;
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuGraphInstantiateWithFlags, bk_pfn_cuGraphInstantiateWithFlags);
#endif

BKS_API CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream) {
  LOCK;
  NEED_CTX;
  Context* c = t_current;
  Graph* e = static_cast<Graph*>(hGraphExec);
  if (!c->execs.count(e)) return CUDA_ERROR_INVALID_VALUE;
  if (!valid_stream(c, hStream)) return CUDA_ERROR_INVALID_HANDLE;
  Stream* s = static_cast<Stream*>(hStream);
  if (s && s->capturing) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;  // child graphs: not used by blipcuda
  if (!s && any_blocking_capture(c)) {
    invalidate_captures(c);
    return CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
  }
  // The graph's nodes in capture order (a captured stream is a chain); a
  // faulting node ends it, its error sticky.
  ++c->graph_depth;
  int rc = CUDA_SUCCESS;
  for (const Op& op : e->ops) {
    if (op.kind == Op::Copy || op.kind == Op::Memset) {
      if (!in_alloc(c, op.dst, op.n) || (op.kind == Op::Copy && !in_alloc(c, op.src, op.n))) {
        rc = g_sticky = CUDA_ERROR_ILLEGAL_ADDRESS;  // a buffer freed since capture
        break;
      }
    }
    if ((rc = execute(c, op)) != CUDA_SUCCESS) break;
  }
  --c->graph_depth;
  return is_sticky(rc) ? CUDA_SUCCESS : rc;
}
CHECK_TYPE(cuGraphLaunch, bk_pfn_cuGraphLaunch);

BKS_API CUresult cuGraphExecDestroy(CUgraphExec hGraphExec) {
  LOCK;
  NEED_CTX;
  Graph* e = static_cast<Graph*>(hGraphExec);
  if (!t_current->execs.erase(e)) return CUDA_ERROR_INVALID_VALUE;
  delete e;
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuGraphExecDestroy, bk_pfn_cuGraphExecDestroy);

BKS_API CUresult cuGraphDestroy(CUgraph hGraph) {
  LOCK;
  NEED_CTX;
  Graph* g = static_cast<Graph*>(hGraph);
  if (!t_current->graphs.erase(g)) return CUDA_ERROR_INVALID_VALUE;
  delete g;
  return CUDA_SUCCESS;
}
CHECK_TYPE(cuGraphDestroy, bk_pfn_cuGraphDestroy);

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------
static CUresult error_text(CUresult error, const char** pStr, bool name) {
  if (!pStr) return CUDA_ERROR_INVALID_VALUE;
  for (const ErrorText& e : kErrors)
    if (e.code == error) {
      *pStr = name ? e.name : e.text;
      return CUDA_SUCCESS;
    }
  *pStr = nullptr;
  return CUDA_ERROR_INVALID_VALUE;  // documented for an unknown code
}

BKS_API CUresult cuGetErrorName(CUresult error, const char** pStr) { return error_text(error, pStr, true); }
CHECK_TYPE(cuGetErrorName, bk_pfn_cuGetErrorName);

BKS_API CUresult cuGetErrorString(CUresult error, const char** pStr) { return error_text(error, pStr, false); }
CHECK_TYPE(cuGetErrorString, bk_pfn_cuGetErrorString);
