// kernels/standin/test_driver.cc — the stand-in libcuda.so.1's documented
// behaviours that blipcuda's Go tests do not reach: initialisation and
// context rules, module images, parameter info, launch limits, copy ranges,
// capture rules, events, error names.
//
//   build/standin/test_driver FATBIN [DIR]   # FATBIN: cuda/blipkernels.fatbin
//
// Prints one line per failed check and "N passed, M failed"; exit status 1 on
// any failure.
#include <dlfcn.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "../../cuda/cudadecl.h"

#include "check.h"

namespace {
void* lib;
template <class T>
T fn(const char* name) {
  return reinterpret_cast<T>(sym(lib, name));
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_driver FATBIN [DIR]\n");
    return 2;
  }
  std::ifstream f(argv[1], std::ios::binary);
  std::vector<unsigned char> fatbin((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const std::string dir = libdir(argc > 2 ? argv[2] : nullptr);
  lib = dlopen((dir + "/libcuda.so.1").c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib || fatbin.size() < 16) {
    fprintf(stderr, "cannot open %s/libcuda.so.1 (%s) or read %s\n", dir.c_str(), dlerror(), argv[1]);
    return 2;
  }
  auto init = fn<bk_pfn_cuInit>("cuInit");
  auto count = fn<bk_pfn_cuDeviceGetCount>("cuDeviceGetCount");
  auto get = fn<bk_pfn_cuDeviceGet>("cuDeviceGet");
  auto retain = fn<bk_pfn_cuDevicePrimaryCtxRetain>("cuDevicePrimaryCtxRetain");
  auto release = fn<bk_pfn_cuDevicePrimaryCtxRelease_v2>("cuDevicePrimaryCtxRelease_v2");
  auto set = fn<bk_pfn_cuCtxSetCurrent>("cuCtxSetCurrent");
  auto alloc = fn<bk_pfn_cuMemAlloc_v2>("cuMemAlloc_v2");
  auto mfree = fn<bk_pfn_cuMemFree_v2>("cuMemFree_v2");
  auto htod = fn<bk_pfn_cuMemcpyHtoD_v2>("cuMemcpyHtoD_v2");
  auto dtoh = fn<bk_pfn_cuMemcpyDtoH_v2>("cuMemcpyDtoH_v2");
  auto dtod = fn<bk_pfn_cuMemcpyDtoDAsync_v2>("cuMemcpyDtoDAsync_v2");
  auto load = fn<bk_pfn_cuModuleLoadData>("cuModuleLoadData");
  auto getfn = fn<bk_pfn_cuModuleGetFunction>("cuModuleGetFunction");
  auto pinfo = fn<bk_pfn_cuFuncGetParamInfo>("cuFuncGetParamInfo");
  auto launch = fn<bk_pfn_cuLaunchKernel>("cuLaunchKernel");
  auto screate = fn<bk_pfn_cuStreamCreate>("cuStreamCreate");
  auto ssync = fn<bk_pfn_cuStreamSynchronize>("cuStreamSynchronize");
  auto begin = fn<bk_pfn_cuStreamBeginCapture_v2>("cuStreamBeginCapture_v2");
  auto end = fn<bk_pfn_cuStreamEndCapture>("cuStreamEndCapture");
  auto ecreate = fn<bk_pfn_cuEventCreate>("cuEventCreate");
  auto erecord = fn<bk_pfn_cuEventRecord>("cuEventRecord");
  auto elapsed = fn<bk_pfn_cuEventElapsedTime>("cuEventElapsedTime_v2");
  auto ename = fn<bk_pfn_cuGetErrorName>("cuGetErrorName");
  auto estr = fn<bk_pfn_cuGetErrorString>("cuGetErrorString");

  int n = -1;
  CHECK(count(&n) == 3, "cuDeviceGetCount before cuInit: CUDA_ERROR_NOT_INITIALIZED");
  CHECK(init(1) == 1, "cuInit(flags ≠ 0): CUDA_ERROR_INVALID_VALUE");
  CHECK(init(0) == 0 && count(&n) == 0 && n == 1, "one device");
  CUdevice dev;
  CHECK(get(&dev, 1) == 101, "ordinal 1: CUDA_ERROR_INVALID_DEVICE");
  CUdeviceptr p = 0;
  CHECK(alloc(&p, 64) == 201, "no current context: CUDA_ERROR_INVALID_CONTEXT");
  CUcontext ctx;
  CHECK(retain(&ctx, 0) == 0 && set(ctx) == 0, "primary context");

  // Module images.
  CUmodule mod = nullptr;
  const char junk[64] = "not a fatbin";
  CHECK(load(&mod, junk) == 200, "no fatbin: CUDA_ERROR_INVALID_IMAGE");
  std::vector<unsigned char> other(fatbin);
  other[other.size() / 2] ^= 1;
  CHECK(load(&mod, other.data()) == 209, "another fatbin: CUDA_ERROR_NO_BINARY_FOR_GPU");
  CHECK(load(&mod, fatbin.data()) == 0, "the embedded fatbin loads");
  CUfunction fn = nullptr;
  CHECK(getfn(&fn, mod, "bk_no_such_kernel") == 500, "unknown kernel: CUDA_ERROR_NOT_FOUND");
  CHECK(getfn(&fn, mod, "bk_add_f32") == 0, "bk_add_f32");
  // bk_add_f32(float* out, const float* a, const float* b, int n).
  size_t off = 0, size = 0;
  bool ok = true;
  const size_t want_off[] = {0, 8, 16, 24}, want_size[] = {8, 8, 8, 4};
  for (size_t i = 0; i < 4; ++i) ok = ok && pinfo(fn, i, &off, &size) == 0 && off == want_off[i] && size == want_size[i];
  CHECK(ok, "cuFuncGetParamInfo: offsets 0 8 16 24, sizes 8 8 8 4");
  CHECK(pinfo(fn, 4, &off, &size) == 1, "parameter 4 of 4: CUDA_ERROR_INVALID_VALUE");
  // bk_gemm_nt_f32: 4 pointers (0..31), 6 ints (32..55), then strideA at 56.
  CUfunction gemm = nullptr;
  getfn(&gemm, mod, "bk_gemm_nt_f32");
  CHECK(pinfo(gemm, 10, &off, &size) == 0 && off == 56 && size == 8, "long long after ints: offset %zu size %zu", off, size);

  // Memory and launches.
  CHECK(alloc(&p, 0) == 1, "cuMemAlloc of 0 bytes: CUDA_ERROR_INVALID_VALUE");
  CHECK(alloc(&p, 16) == 0, "alloc");
  float in[4] = {1, 2, 3, 4}, out[4] = {};
  CHECK(htod(p, in, 16) == 0 && htod(p + 4, in, 16) == 1, "a copy past the allocation: CUDA_ERROR_INVALID_VALUE");
  CUstream s;
  screate(&s, 0);
  int cnt = 4;
  void* args[] = {&p, &p, &p, &cnt};
  CHECK(launch(fn, 1, 1, 1, 2048, 1, 1, 0, s, args, nullptr) == 1, "2048 threads: CUDA_ERROR_INVALID_VALUE");
  CHECK(launch(fn, 0, 1, 1, 256, 1, 1, 0, s, args, nullptr) == 1, "grid 0: CUDA_ERROR_INVALID_VALUE");
  CHECK(launch(fn, 1, 1, 1, 256, 1, 1, 0, s, nullptr, nullptr) == 1, "no parameters: CUDA_ERROR_INVALID_VALUE");
  CHECK(launch(fn, 1, 1, 1, 256, 1, 1, 0, s, args, nullptr) == 0 && dtoh(out, p, 16) == 0 && out[3] == 8,
        "p = p + p: %g", out[3]);

  // Capture rules: a synchronous copy while a blocking stream captures, and
  // synchronising the capturing stream, invalidate the capture.
  CHECK(begin(nullptr, 2) == 900, "the legacy stream cannot capture");
  CHECK(begin(s, 2) == 0 && begin(s, 2) == 401, "nested capture: CUDA_ERROR_ILLEGAL_STATE");
  CHECK(launch(fn, 1, 1, 1, 256, 1, 1, 0, s, args, nullptr) == 0, "captured launch");
  CHECK(dtoh(out, p, 16) == 906, "legacy copy while capturing: CUDA_ERROR_STREAM_CAPTURE_IMPLICIT");
  CUgraph g = reinterpret_cast<CUgraph>(1);
  CHECK(end(s, &g) == 901 && g == nullptr, "the capture is invalidated: CUDA_ERROR_STREAM_CAPTURE_INVALIDATED");
  CHECK(dtoh(out, p, 16) == 0 && out[3] == 8, "captured work did not run");
  CHECK(begin(s, 2) == 0 && ssync(s) == 900, "synchronising a capturing stream: CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED");
  CHECK(end(s, &g) == 901, "and it invalidates the capture");
  CUdeviceptr q = 0;
  alloc(&q, 16);
  CHECK(dtod(q, p, 16, s) == 0 && dtoh(out, q, 16) == 0 && out[0] == 2, "device copy on the stream");
  CHECK(mfree(q) == 0 && mfree(q) == 1, "double free: CUDA_ERROR_INVALID_VALUE");

  // Events.
  CUevent e1, e2, e3;
  ecreate(&e1, 0);
  ecreate(&e2, 0);
  ecreate(&e3, 2);  // CU_EVENT_DISABLE_TIMING
  float ms = -1;
  CHECK(elapsed(&ms, e1, e2) == 400, "unrecorded events: CUDA_ERROR_INVALID_HANDLE");
  erecord(e1, s);
  launch(fn, 1, 1, 1, 256, 1, 1, 0, s, args, nullptr);
  erecord(e2, s);
  erecord(e3, s);
  CHECK(elapsed(&ms, e1, e2) == 0 && ms >= 0, "elapsed %g ms", ms);
  CHECK(elapsed(&ms, e1, e3) == 400, "an event without timing: CUDA_ERROR_INVALID_HANDLE");

  // Error names and strings.
  const char* str = nullptr;
  CHECK(ename(700, &str) == 0 && str && !strcmp(str, "CUDA_ERROR_ILLEGAL_ADDRESS"), "name of 700");
  CHECK(estr(2, &str) == 0 && str && !strcmp(str, "out of memory"), "string of 2");
  CHECK(ename(12345, &str) == 1 && str == nullptr, "an unknown code: CUDA_ERROR_INVALID_VALUE, NULL");

  // The last release destroys the context: its handles are gone.
  CHECK(release(0) == 0 && alloc(&p, 16) == 201, "after the last release: CUDA_ERROR_INVALID_CONTEXT");
  CHECK(release(0) == 201, "one release too many: CUDA_ERROR_INVALID_CONTEXT");

  return report();
}
