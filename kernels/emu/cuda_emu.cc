// kernels/emu/cuda_emu.cc — runtime of the CUDA-on-CPU emulation: kernel
// registry, fibers, per-block scheduler, worker pool, and the C API of bkemu.h.
// See cuda_emu.h for the execution model.
//
// Build: compiled once per program (g++ -std=c++20 -O2 -pthread), beside the
// kernels/*.cu translation units; or through kernels/emu/bkemu_all.cc, which
// includes this file and every kernel source in one translation unit.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cuda_emu.h"

#if defined(__x86_64__) && !defined(BKEMU_USE_UCONTEXT)
#define BKEMU_ASM_SWITCH 1
#else
#include <ucontext.h>
#endif

namespace bkemu {

__thread Fiber* tl_fiber = nullptr;

// ---------------------------------------------------------------------------
// Registry
// ---------------------------------------------------------------------------
struct KernelInfo {
  std::string name;
  GenericFn fn;
  Invoker inv;
  std::vector<int> sizes;
  std::vector<unsigned char> pointers;  // 1 where parameter i is a pointer
};

namespace {

// Function-local statics: kernels register from static initialisers of other
// translation units, in any order.
std::map<std::string, KernelInfo>& registry() {
  static std::map<std::string, KernelInfo> r;
  return r;
}
std::mutex& registry_mu() {
  static std::mutex m;
  return m;
}

const KernelInfo* find_kernel(const char* name) {
  if (name == nullptr) return nullptr;
  std::lock_guard<std::mutex> g(registry_mu());
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : &it->second;
}

}  // namespace

bool register_kernel(const char* name, GenericFn fn, Invoker inv, int nparams, const int* sizes,
                     const unsigned char* pointers) {
  std::lock_guard<std::mutex> g(registry_mu());
  KernelInfo k{name, fn, inv, std::vector<int>(sizes, sizes + nparams),
               std::vector<unsigned char>(pointers, pointers + nparams)};
  return registry().emplace(k.name, std::move(k)).second;
}

// ---------------------------------------------------------------------------
// Context switching
// ---------------------------------------------------------------------------
#ifdef BKEMU_ASM_SWITCH
// bkemu_ctx_switch(save, load): pushes the callee-saved registers on the
// current stack, stores the stack pointer in *save, switches to the stack
// `load` and pops the same frame from it. The SSE/x87 control words are not
// switched (ldmxcsr/fldcw would double the cost): all fibers of a worker share
// the thread's floating-point environment, which kernels never change.
extern "C" void bkemu_ctx_switch(void** save, void* load);
extern "C" void bkemu_fiber_entry_stub();
asm(R"(
  .text
  .p2align 4
  .globl bkemu_ctx_switch
  .hidden bkemu_ctx_switch
  .type bkemu_ctx_switch,@function
bkemu_ctx_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size bkemu_ctx_switch,.-bkemu_ctx_switch

  .p2align 4
  .globl bkemu_fiber_entry_stub
  .hidden bkemu_fiber_entry_stub
  .type bkemu_fiber_entry_stub,@function
bkemu_fiber_entry_stub:
  movq %r12, %rdi
  callq *%r13
  ud2
  .size bkemu_fiber_entry_stub,.-bkemu_fiber_entry_stub
)");
#endif

void fiber_main(Fiber* f);

struct SchedCtx {
#ifdef BKEMU_ASM_SWITCH
  void* sp = nullptr;
#else
  ucontext_t uc;
#endif
};

// ---------------------------------------------------------------------------
// Launch description shared by the workers of one launch
// ---------------------------------------------------------------------------
struct Launch {
  const KernelInfo* k = nullptr;
  void** args = nullptr;
  dim3 grid, block;
  unsigned shared = 0;
  unsigned nthreads = 0;
  unsigned long long total = 0;          // blocks
  std::atomic<unsigned long long> next{0};
  std::atomic<int> err{0};
};

// ---------------------------------------------------------------------------
// Worker: runs blocks, one at a time, each as a set of fibers
// ---------------------------------------------------------------------------
struct Worker {
  SchedCtx sched;
  Block blk;
  std::vector<Fiber> fibers;
#ifndef BKEMU_ASM_SWITCH
  std::vector<std::unique_ptr<ucontext_t>> ucs;
#endif
  char* stacks = nullptr;  // nfib * (guard + stack)
  size_t stack_bytes = 0;  // usable bytes per fiber
  size_t slot_bytes = 0;   // guard + stack
  unsigned nfib = 0;
  unsigned char* dyn = nullptr;  // dynamic shared memory of the current block
  Launch* launch = nullptr;      // current launch (read by fiber_main)
  unsigned nlive = 0;            // fibers of the current block
  unsigned remaining = 0;        // of which not exited

  ~Worker() {
    if (stacks) munmap(stacks, slot_bytes * nfib);
    std::free(dyn);
  }

  bool ensure(unsigned n) {
    if (dyn == nullptr) {
      dyn = static_cast<unsigned char*>(std::aligned_alloc(128, kMaxDynamicShared));
      if (dyn == nullptr) return false;
    }
    if (n <= nfib) return true;
    if (stacks) munmap(stacks, slot_bytes * nfib);
    stacks = nullptr;
    nfib = 0;
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    size_t kb = 128;
    if (const char* e = std::getenv("BKEMU_STACK_KB")) {
      const long v = std::strtol(e, nullptr, 10);
      if (v >= 16 && v <= 65536) kb = size_t(v);
    }
    stack_bytes = (kb * 1024 + page - 1) / page * page;
    slot_bytes = stack_bytes + page;
    void* m = mmap(nullptr, slot_bytes * n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return false;
    stacks = static_cast<char*>(m);
    for (unsigned i = 0; i < n; ++i) mprotect(stacks + i * slot_bytes, page, PROT_NONE);  // guard page
    fibers.assign(n, Fiber{});
#ifndef BKEMU_ASM_SWITCH
    ucs.clear();
    for (unsigned i = 0; i < n; ++i) ucs.emplace_back(new ucontext_t);
#endif
    nfib = n;
    return true;
  }

  void init_context(unsigned i) {
    Fiber& f = fibers[i];
    char* lo = stacks + i * slot_bytes + (slot_bytes - stack_bytes);
#ifdef BKEMU_ASM_SWITCH
    // Stack tops are "coloured" (staggered by i·320 bytes mod 4 KiB): slots are
    // a multiple of the page size apart, and without the stagger every
    // fiber's hot frames would map to the same few cache sets.
    const uintptr_t color = (uintptr_t(i) * 320u) % 4096u;
    uintptr_t top = (reinterpret_cast<uintptr_t>(lo + stack_bytes) - color) & ~uintptr_t(15);
    // After the six pops and `ret` the stub runs with rsp = top (16-aligned),
    // so its `call` enters fiber_main with the ABI's alignment.
    unsigned long long* sp = reinterpret_cast<unsigned long long*>(top);
    *--sp = reinterpret_cast<unsigned long long>(&bkemu_fiber_entry_stub);  // return address
    *--sp = 0;                                                              // rbp
    *--sp = 0;                                                              // rbx
    *--sp = reinterpret_cast<unsigned long long>(&f);                       // r12: argument
    *--sp = reinterpret_cast<unsigned long long>(&fiber_main);              // r13: entry
    *--sp = 0;                                                              // r14
    *--sp = 0;                                                              // r15
    f.sp = sp;
#else
    ucontext_t* uc = ucs[i].get();
    getcontext(uc);
    uc->uc_stack.ss_sp = lo;
    uc->uc_stack.ss_size = stack_bytes;
    uc->uc_link = nullptr;
    const uintptr_t p = reinterpret_cast<uintptr_t>(&f);
    makecontext(uc, reinterpret_cast<void (*)()>(&fiber_entry_uc), 2, unsigned(p >> 32), unsigned(p & 0xffffffffu));
    f.sp = uc;
#endif
  }

#ifndef BKEMU_ASM_SWITCH
  static void fiber_entry_uc(unsigned hi, unsigned lo) {
    fiber_main(reinterpret_cast<Fiber*>((uintptr_t(hi) << 32) | uintptr_t(lo)));
  }
#endif

  void switch_to(Fiber& f) {
#ifdef BKEMU_ASM_SWITCH
    bkemu_ctx_switch(&sched.sp, f.sp);
#else
    swapcontext(&sched.uc, static_cast<ucontext_t*>(f.sp));
#endif
  }

  // Runs block number `linear` of launch L. Returns 0 or a BKEMU_ERR_* code.
  int run_block(Launch& L, unsigned long long linear) {
    const unsigned n = L.nthreads;
    Block& b = blk;
    const unsigned long long gxy = (unsigned long long)L.grid.x * L.grid.y;
    b.bid = uint3{unsigned(linear % L.grid.x), unsigned((linear / L.grid.x) % L.grid.y), unsigned(linear / gxy)};
    b.bdim = L.block;
    b.gdim = L.grid;
    b.dyn_smem = dyn;
    if (L.shared) std::memset(dyn, 0xff, L.shared);
    b.live = n;
    b.arrived = 0;
    b.gen = 0;
    b.red[0] = b.red[1] = b.redf[0] = b.redf[1] = 0;
    b.red_reset = -1;
    b.nwarps = (n + kWarpSize - 1) / kWarpSize;
    for (unsigned w = 0; w < b.nwarps; ++w) {
      Warp& wp = b.warps[w];
      const unsigned lanes = std::min<unsigned>(kWarpSize, n - w * kWarpSize);
      wp.live = lanes;
      wp.live_mask = lanes == 32 ? 0xffffffffu : ((1u << lanes) - 1u);
      wp.arrived = 0;
      wp.gen = 0;
      wp.wmask[0] = wp.wmask[1] = 0;
      wp.xreset = -1;
    }
    const unsigned bx = L.block.x, bxy = L.block.x * L.block.y;
    for (unsigned i = 0; i < n; ++i) {
      Fiber& f = fibers[i];
      f.tid = uint3{i % bx, (i / bx) % L.block.y, i / bxy};
      f.lane = i % kWarpSize;
      f.warp = i / kWarpSize;
      f.wparity = 0;
      f.bparity = 0;
      f.wait_gen = nullptr;
      f.wait_val = 0;
      f.done = false;
      f.idx = i;
      f.blk = &b;
      f.worker = this;
      init_context(i);
    }
    // Fibers hand control to each other (next_runnable); control comes back
    // here when every fiber has exited, or when none can run: a deadlock.
    nlive = n;
    remaining = n;
    tl_fiber = &fibers[0];
    switch_to(fibers[0]);
    tl_fiber = nullptr;
    return remaining == 0 ? 0 : BKEMU_ERR_DEADLOCK;
  }

  // The next fiber after `from` (round-robin) that can run: not exited, and
  // not waiting at a barrier that has yet to complete. Null if none.
  Fiber* next_runnable(unsigned from) {
    for (unsigned k = 1; k <= nlive; ++k) {
      Fiber& g = fibers[(from + k) % nlive];
      if (!g.done && !(g.wait_gen && *g.wait_gen == g.wait_val)) return &g;
    }
    return nullptr;
  }

  // Leaves fiber f (suspended or exited) for the next runnable one, or for the
  // scheduler when there is none.
  void leave(Fiber* f) {
    Fiber* g = next_runnable(f->idx);
#ifdef BKEMU_ASM_SWITCH
    tl_fiber = g;
    bkemu_ctx_switch(&f->sp, g ? g->sp : sched.sp);
#else
    tl_fiber = g;
    swapcontext(static_cast<ucontext_t*>(f->sp), g ? static_cast<ucontext_t*>(g->sp) : &sched.uc);
#endif
  }

  void run(Launch& L) {
    launch = &L;
    if (!ensure(L.nthreads)) {
      L.err.store(BKEMU_ERR_RESOURCES);
      return;
    }
    for (;;) {
      if (L.err.load(std::memory_order_relaxed) != 0) return;
      const unsigned long long i = L.next.fetch_add(1, std::memory_order_relaxed);
      if (i >= L.total) return;
      const int e = run_block(L, i);
      if (e != 0) {
        int z = 0;
        L.err.compare_exchange_strong(z, e);
        return;
      }
    }
  }
};

// Entry of every fiber: run the kernel body, then leave the block.
void fiber_main(Fiber* f) {
  Launch* L = f->worker->launch;
  L->k->inv(L->k->fn, L->args);
  // Exit: this thread no longer counts at barriers; complete any barrier that
  // was only waiting for it.
  Block* b = f->blk;
  Warp& w = b->warps[f->warp];
  --b->live;
  if (b->arrived > 0 && b->arrived == b->live) release_block_barrier(b);
  --w.live;
  w.live_mask &= ~(1u << f->lane);
  if (w.arrived > 0 && w.arrived == w.live) release_warp_barrier(w);
  f->done = true;
  --f->worker->remaining;
  f->worker->leave(f);  // never resumed: the context is rebuilt for the next block
  __builtin_unreachable();
}

namespace {

// ---------------------------------------------------------------------------
// Pool of worker threads
// ---------------------------------------------------------------------------
class Pool {
 public:
  static Pool& get() {
    static Pool* p = new Pool;  // never destroyed: workers may outlive static destructors
    return *p;
  }

  int set_threads(int n) {
    std::lock_guard<std::mutex> g(launch_mu_);
    const int prev = requested_;
    requested_ = n > 0 ? n : 0;
    return prev;
  }

  int launch(Launch& L) {
    std::lock_guard<std::mutex> g(launch_mu_);
    unsigned want = threads();
    if ((unsigned long long)want > L.total) want = unsigned(L.total);
    if (!start(want)) return BKEMU_ERR_RESOURCES;
    {
      std::unique_lock<std::mutex> lk(mu_);
      job_ = &L;
      active_ = want;
      participants_ = want;
      ++job_id_;
    }
    cv_.notify_all();
    {
      std::unique_lock<std::mutex> lk(mu_);
      done_cv_.wait(lk, [&] { return active_ == 0; });
      job_ = nullptr;
    }
    return L.err.load();
  }

 private:
  unsigned threads() const {
    if (requested_ > 0) return unsigned(requested_);
    if (const char* e = std::getenv("BKEMU_THREADS")) {
      const long v = std::strtol(e, nullptr, 10);
      if (v > 0 && v <= 1024) return unsigned(v);
    }
    const unsigned hc = std::thread::hardware_concurrency();
    return hc ? hc : 1;
  }

  bool start(unsigned n) {
    while (workers_.size() < n) {
      const unsigned idx = unsigned(workers_.size());
      workers_.emplace_back(new Worker);
      try {
        threads_.emplace_back([this, idx] { loop(idx); });
      } catch (...) {
        workers_.pop_back();
        return false;
      }
      threads_.back().detach();
    }
    return true;
  }

  void loop(unsigned idx) {
    // An alternate signal stack: a signal (e.g. a Go runtime's SIGPROF, whose
    // handlers use SA_ONSTACK) may arrive while this thread runs on a fiber
    // stack, and should not depend on that stack's free space.
    static constexpr size_t kAltStack = 64 * 1024;
    stack_t ss{};
    ss.ss_sp = std::malloc(kAltStack);
    ss.ss_size = kAltStack;
    if (ss.ss_sp) sigaltstack(&ss, nullptr);
    unsigned long long seen = 0;
    for (;;) {
      Launch* L;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return job_id_ != seen && idx < participants_; });
        seen = job_id_;
        L = job_;
      }
      workers_[idx]->run(*L);
      {
        std::lock_guard<std::mutex> lk(mu_);
        if (--active_ == 0) done_cv_.notify_all();
      }
    }
  }

  std::mutex launch_mu_;  // one launch at a time
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  Launch* job_ = nullptr;
  unsigned long long job_id_ = 0;
  unsigned active_ = 0, participants_ = 0;
  int requested_ = 0;
};

}  // namespace

void suspend(Fiber* f, const unsigned* gen) {
  f->wait_gen = gen;
  f->wait_val = *gen;
  f->worker->leave(f);
  f->wait_gen = nullptr;  // resumed: the barrier completed
}

}  // namespace bkemu

long long bkemu_clock64() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// ---------------------------------------------------------------------------
// C API
// ---------------------------------------------------------------------------
extern "C" int bkemu_launch(const char* kernel_name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                            unsigned bz, unsigned shared_bytes, void** args) {
  using namespace bkemu;
  const KernelInfo* k = find_kernel(kernel_name);
  if (k == nullptr) return BKEMU_ERR_UNKNOWN_KERNEL;
  if (bx == 0 || by == 0 || bz == 0 || bx > 1024 || by > 1024 || bz > 64 ||
      (unsigned long long)bx * by * bz > (unsigned long long)kMaxThreads)
    return BKEMU_ERR_INVALID_BLOCK;
  if (gx == 0 || gy == 0 || gz == 0 || gx > 0x7fffffffu || gy > 65535 || gz > 65535) return BKEMU_ERR_INVALID_GRID;
  if (shared_bytes > kMaxDynamicShared) return BKEMU_ERR_SHARED_TOO_LARGE;
  if (args == nullptr && !k->sizes.empty()) return BKEMU_ERR_NULL_ARGS;
  Launch L;
  L.k = k;
  L.args = args;
  L.grid = dim3(gx, gy, gz);
  L.block = dim3(bx, by, bz);
  L.shared = shared_bytes;
  L.nthreads = bx * by * bz;
  L.total = (unsigned long long)gx * gy * gz;
  return Pool::get().launch(L);
}

extern "C" const char* bkemu_error(int code) {
  switch (code) {
    case BKEMU_OK: return "no error";
    case BKEMU_ERR_UNKNOWN_KERNEL: return "bkemu: unknown kernel name";
    case BKEMU_ERR_INVALID_BLOCK: return "bkemu: invalid block dimensions";
    case BKEMU_ERR_INVALID_GRID: return "bkemu: invalid grid dimensions";
    case BKEMU_ERR_SHARED_TOO_LARGE: return "bkemu: dynamic shared memory larger than 227 KiB";
    case BKEMU_ERR_NULL_ARGS: return "bkemu: null argument array for a kernel with parameters";
    case BKEMU_ERR_DEADLOCK: return "bkemu: barrier deadlock (divergent __syncthreads or warp collective)";
    case BKEMU_ERR_RESOURCES: return "bkemu: out of resources (stacks or threads)";
    case BKEMU_ERR_ARG_SIZE: return "bkemu: argument count or sizes differ from the kernel's parameters";
  }
  return "bkemu: unknown error code";
}

extern "C" int bkemu_kernel_count(void) {
  std::lock_guard<std::mutex> g(bkemu::registry_mu());
  return int(bkemu::registry().size());
}

extern "C" const char* bkemu_kernel_name(int i) {
  std::lock_guard<std::mutex> g(bkemu::registry_mu());
  if (i < 0 || i >= int(bkemu::registry().size())) return nullptr;
  auto it = bkemu::registry().begin();
  std::advance(it, i);
  return it->second.name.c_str();
}

extern "C" int bkemu_kernel_params(const char* kernel_name, int* sizes, int max_sizes) {
  const bkemu::KernelInfo* k = bkemu::find_kernel(kernel_name);
  if (k == nullptr) return BKEMU_ERR_UNKNOWN_KERNEL;
  if (sizes)
    for (int i = 0; i < int(k->sizes.size()) && i < max_sizes; ++i) sizes[i] = k->sizes[i];
  return int(k->sizes.size());
}

extern "C" int bkemu_kernel_param_pointers(const char* kernel_name, unsigned char* pointers, int max_params) {
  const bkemu::KernelInfo* k = bkemu::find_kernel(kernel_name);
  if (k == nullptr) return BKEMU_ERR_UNKNOWN_KERNEL;
  if (pointers)
    for (int i = 0; i < int(k->pointers.size()) && i < max_params; ++i) pointers[i] = k->pointers[i];
  return int(k->pointers.size());
}

extern "C" int bkemu_set_threads(int n) { return bkemu::Pool::get().set_threads(n); }
