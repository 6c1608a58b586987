// kernels/standin/test_blas.cc — the stand-in cuBLAS/cuBLASLt against
// textbook column-major examples worked out by hand (not against blipcuda),
// through the stand-in driver's memory and streams.
//
//   build/standin/test_blas [DIR]   # DIR: the stand-in libraries (default: the executable's directory)
//
// Prints one line per failed check and "N passed, M failed"; exit status 1 on
// any failure.
#include <dlfcn.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "../../cuda/cudadecl.h"

#include "check.h"

namespace {
struct Cu {
  bk_pfn_cuMemAlloc_v2 alloc;
  bk_pfn_cuMemcpyHtoD_v2 htod;
  bk_pfn_cuMemcpyDtoH_v2 dtoh;
  bk_pfn_cuStreamSynchronize sync;
  bk_pfn_cuStreamBeginCapture_v2 begin;
  bk_pfn_cuStreamEndCapture end;
  bk_pfn_cuGraphInstantiateWithFlags inst;
  bk_pfn_cuGraphLaunch launch;
  CUstream stream;
} cu;

typedef cublasStatus_t (*pfn_layout_set)(cublasLtMatrixLayout_t, int, const void*, size_t);

CUdeviceptr upload(const std::vector<float>& v) {
  CUdeviceptr p = 0;
  cu.alloc(&p, v.size() * 4);
  cu.htod(p, v.data(), v.size() * 4);
  return p;
}
std::vector<float> download(CUdeviceptr p, size_t n) {
  std::vector<float> v(n);
  cu.sync(cu.stream);
  cu.dtoh(v.data(), p, n * 4);
  return v;
}
CUdeviceptr upload16(const std::vector<uint16_t>& v) {
  CUdeviceptr p = 0;
  cu.alloc(&p, v.size() * 2);
  cu.htod(p, v.data(), v.size() * 2);
  return p;
}
bool same(const std::vector<float>& got, const std::vector<float>& want, double tol = 0) {
  if (got.size() != want.size()) return false;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(double(got[i]) - want[i]) <= tol) && !(std::isnan(got[i]) && std::isnan(want[i]))) {
      printf("  element %zu: got %.9g want %.9g\n", i, got[i], want[i]);
      return false;
    }
  return true;
}
}  // namespace

int main(int argc, char** argv) {
  const std::string dir = libdir(argc > 1 ? argv[1] : nullptr);
  void* lcu = dlopen((dir + "/libcuda.so.1").c_str(), RTLD_NOW | RTLD_LOCAL);
  void* lblas = dlopen((dir + "/libcublas.so.13").c_str(), RTLD_NOW | RTLD_LOCAL);
  void* llt = dlopen((dir + "/libcublasLt.so.13").c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lcu || !lblas || !llt) {
    fprintf(stderr, "cannot open the stand-ins in %s: %s\n", dir.c_str(), dlerror());
    return 2;
  }
  ((bk_pfn_cuInit)sym(lcu, "cuInit"))(0);
  CUcontext ctx;
  ((bk_pfn_cuDevicePrimaryCtxRetain)sym(lcu, "cuDevicePrimaryCtxRetain"))(&ctx, 0);
  ((bk_pfn_cuCtxSetCurrent)sym(lcu, "cuCtxSetCurrent"))(ctx);
  cu.alloc = (bk_pfn_cuMemAlloc_v2)sym(lcu, "cuMemAlloc_v2");
  cu.htod = (bk_pfn_cuMemcpyHtoD_v2)sym(lcu, "cuMemcpyHtoD_v2");
  cu.dtoh = (bk_pfn_cuMemcpyDtoH_v2)sym(lcu, "cuMemcpyDtoH_v2");
  cu.sync = (bk_pfn_cuStreamSynchronize)sym(lcu, "cuStreamSynchronize");
  cu.begin = (bk_pfn_cuStreamBeginCapture_v2)sym(lcu, "cuStreamBeginCapture_v2");
  cu.end = (bk_pfn_cuStreamEndCapture)sym(lcu, "cuStreamEndCapture");
  cu.inst = (bk_pfn_cuGraphInstantiateWithFlags)sym(lcu, "cuGraphInstantiateWithFlags");
  cu.launch = (bk_pfn_cuGraphLaunch)sym(lcu, "cuGraphLaunch");
  ((bk_pfn_cuStreamCreate)sym(lcu, "cuStreamCreate"))(&cu.stream, 0);

  auto create = (bk_pfn_cublasCreate_v2)sym(lblas, "cublasCreate_v2");
  auto set_stream = (bk_pfn_cublasSetStream_v2)sym(lblas, "cublasSetStream_v2");
  auto set_math = (bk_pfn_cublasSetMathMode)sym(lblas, "cublasSetMathMode");
  auto sgemm = (bk_pfn_cublasSgemmStridedBatched)sym(lblas, "cublasSgemmStridedBatched");
  auto gemm_ex = (bk_pfn_cublasGemmStridedBatchedEx)sym(lblas, "cublasGemmStridedBatchedEx");
  cublasHandle_t h;
  CHECK(create(&h) == 0, "cublasCreate_v2");
  set_stream(h, cu.stream);
  const float one = 1, zero = 0;
  const float nan = NAN;

  // 1. The textbook product: A = [1 2 3; 4 5 6] (2×3), B = [7 8; 9 10; 11 12]
  //    (3×2), A·B = [58 64; 139 154], all column-major.
  CUdeviceptr A = upload({1, 4, 2, 5, 3, 6}), B = upload({7, 9, 11, 8, 10, 12}), C = upload({nan, nan, nan, nan});
  CHECK(sgemm(h, 0, 0, 2, 2, 3, &one, (float*)A, 2, 0, (float*)B, 3, 0, &zero, (float*)C, 2, 0, 1) == 0, "sgemm NN");
  CHECK(same(download(C, 4), {58, 139, 64, 154}), "A·B column-major (beta 0 ignores NaN C)");

  // 2. The same with both operands stored transposed: At = Aᵀ (3×2), Bt = Bᵀ (2×3).
  CUdeviceptr At = upload({1, 2, 3, 4, 5, 6}), Bt = upload({7, 8, 9, 10, 11, 12});
  CHECK(sgemm(h, 1, 1, 2, 2, 3, &one, (float*)At, 3, 0, (float*)Bt, 2, 0, &zero, (float*)C, 2, 0, 1) == 0, "sgemm TT");
  CHECK(same(download(C, 4), {58, 139, 64, 154}), "op = T reads the stored transpose");
  CHECK(sgemm(h, 1, 0, 2, 2, 3, &one, (float*)At, 3, 0, (float*)B, 3, 0, &zero, (float*)C, 2, 0, 1) == 0, "sgemm TN");
  CHECK(same(download(C, 4), {58, 139, 64, 154}), "op(A) = T, op(B) = N");

  // 3. Leading dimensions: A with lda 3 (a padding row of 99s that must not
  //    be read), C with ldc 3 (its padding row must stay untouched).
  CUdeviceptr Ap = upload({1, 4, 99, 2, 5, 99, 3, 6, 99}), Cp = upload({0, 0, -7, 0, 0, -7});
  CHECK(sgemm(h, 0, 0, 2, 2, 3, &one, (float*)Ap, 3, 0, (float*)B, 3, 0, &zero, (float*)Cp, 3, 0, 1) == 0, "lda 3");
  CHECK(same(download(Cp, 6), {58, 139, -7, 64, 154, -7}), "lda/ldc padding neither read nor written");
  CHECK(sgemm(h, 0, 0, 2, 2, 3, &one, (float*)A, 1, 0, (float*)B, 3, 0, &zero, (float*)C, 2, 0, 1) == 7,
        "lda < m is CUBLAS_STATUS_INVALID_VALUE");
  CHECK(sgemm(h, 0, 0, 2, 2, 3, &one, (float*)A, 2, 0, (float*)B, 3, 0, &zero, (float*)C, 1, 0, 1) == 7,
        "ldc < m is CUBLAS_STATUS_INVALID_VALUE");
  CHECK(sgemm(h, 0, 0, 2, 2, 3, &one, (float*)A, 4, 0, (float*)B, 3, 0, &zero, (float*)C, 2, 0, 1) == 13,
        "lda 4 reads past A's allocation: CUBLAS_STATUS_EXECUTION_FAILED");

  // 4. alpha and beta: C = 2·A·B + 1·C0.
  CUdeviceptr Cb = upload({1, 1, 1, 1});
  const float two = 2;
  CHECK(sgemm(h, 0, 0, 2, 2, 3, &two, (float*)A, 2, 0, (float*)B, 3, 0, &one, (float*)Cb, 2, 0, 1) == 0, "beta 1");
  CHECK(same(download(Cb, 4), {117, 279, 129, 309}), "alpha 2, beta 1");

  // 5. Strided batches: batch 1 of A is 10·A; B broadcast (stride 0).
  CUdeviceptr A2 = upload({1, 4, 2, 5, 3, 6, 10, 40, 20, 50, 30, 60}), C2 = upload(std::vector<float>(8, nan));
  CHECK(sgemm(h, 0, 0, 2, 2, 3, &one, (float*)A2, 2, 6, (float*)B, 3, 0, &zero, (float*)C2, 2, 4, 2) == 0, "batched");
  CHECK(same(download(C2, 8), {58, 139, 64, 154, 580, 1390, 640, 1540}), "strided batch, stride 0 broadcasts B");

  // 6. TF32 math mode rounds inputs to 10 mantissa bits: 1 + 2^-12 → 1.
  CUdeviceptr x = upload({1.0f + 1.0f / 4096}), y = upload({1}), z = upload({0});
  set_math(h, 3);
  sgemm(h, 0, 0, 1, 1, 1, &one, (float*)x, 1, 0, (float*)y, 1, 0, &zero, (float*)z, 1, 0, 1);
  CHECK(same(download(z, 1), {1}), "TF32 tensor-op math rounds the inputs");
  set_math(h, 0);
  sgemm(h, 0, 0, 1, 1, 1, &one, (float*)x, 1, 0, (float*)y, 1, 0, &zero, (float*)z, 1, 0, 1);
  CHECK(same(download(z, 1), {1.0f + 1.0f / 4096}), "default math keeps float32");

  // 7. float16 with float32 compute, one rounding: 1·1 + 1·2^-11 = 1 + 2^-11,
  //    a tie between 1 and 1 + 2^-10 → even → 1.0 (0x3c00). 2^-11 is 0x1000.
  //    And 1·1 + 1·(2^-11 + 2^-12) rounds up to 1 + 2^-10 (0x3c01).
  CUdeviceptr h1 = upload16({0x3c00, 0x1000}), h2 = upload16({0x3c00, 0x3c00}), h3 = upload16({0x3c00, 0x1200});
  CUdeviceptr hout = upload16({0});
  CHECK(gemm_ex(h, 1, 0, 1, 1, 2, &one, (void*)h1, 2, 2, 0, (void*)h2, 2, 2, 0, &zero, (void*)hout, 2, 1, 0, 1, 68, -1) == 0,
        "GemmEx 16F");
  uint16_t got16 = 0;
  cu.sync(cu.stream);
  cu.dtoh(&got16, hout, 2);
  CHECK(got16 == 0x3c00, "float16 tie rounds to even: got 0x%04x", got16);
  gemm_ex(h, 1, 0, 1, 1, 2, &one, (void*)h3, 2, 2, 0, (void*)h2, 2, 2, 0, &zero, (void*)hout, 2, 1, 0, 1, 68, -1);
  cu.sync(cu.stream);
  cu.dtoh(&got16, hout, 2);
  CHECK(got16 == 0x3c01, "float16 above the tie rounds up: got 0x%04x", got16);
  //    bfloat16: 1 + 2^-8 is a tie between 1 (0x3f80) and 1 + 2^-7 → 0x3f80.
  CUdeviceptr b1 = upload16({0x3f80, 0x3b80}), b2 = upload16({0x3f80, 0x3f80});
  gemm_ex(h, 1, 0, 1, 1, 2, &one, (void*)b1, 14, 2, 0, (void*)b2, 14, 2, 0, &zero, (void*)hout, 14, 1, 0, 1, 68, -1);
  cu.sync(cu.stream);
  cu.dtoh(&got16, hout, 2);
  CHECK(got16 == 0x3f80, "bfloat16 tie rounds to even: got 0x%04x", got16);
  CHECK(gemm_ex(h, 1, 0, 1, 1, 2, &one, (void*)b1, 14, 2, 0, (void*)h2, 2, 2, 0, &zero, (void*)hout, 2, 1, 0, 1, 68, -1) == 15,
        "mixed A/B types: CUBLAS_STATUS_NOT_SUPPORTED");

  // 8. Graph capture: the GEMM recorded once runs again on new inputs.
  CHECK(cu.begin(cu.stream, 2) == 0, "begin capture");
  sgemm(h, 0, 0, 2, 2, 3, &one, (float*)A, 2, 0, (float*)B, 3, 0, &zero, (float*)C, 2, 0, 1);
  CUgraph g = nullptr;
  CUgraphExec ge = nullptr;
  CHECK(cu.end(cu.stream, &g) == 0 && cu.inst(&ge, g, 0) == 0, "end capture, instantiate");
  const float a10[6] = {10, 40, 20, 50, 30, 60};
  cu.htod(A, a10, sizeof a10);
  CHECK(cu.launch(ge, cu.stream) == 0, "graph launch");
  CHECK(same(download(C, 4), {580, 1390, 640, 1540}), "captured GEMM replays on current contents");
  const float a1[6] = {1, 4, 2, 5, 3, 6};
  cu.htod(A, a1, sizeof a1);

  // 9. cuBLASLt: the same product with row-major (CUBLASLT_ORDER_ROW)
  //    layouts: A row-major 2×3 = {1,2,3,4,5,6}, B row-major 3×2 = {7,8,9,10,11,12};
  //    D row-major 2×2 = {58, 64, 139, 154}; then the BIAS epilogue (bias[i]
  //    added to row i of D) and GELU_BIAS (tanh form: GELU(1) = 0.841192,
  //    GELU(-1) = -0.158808, GELU(0) = 0).
  auto lt_create = (bk_pfn_cublasLtCreate)sym(llt, "cublasLtCreate");
  auto desc_create = (bk_pfn_cublasLtMatmulDescCreate)sym(llt, "cublasLtMatmulDescCreate");
  auto desc_set = (bk_pfn_cublasLtMatmulDescSetAttribute)sym(llt, "cublasLtMatmulDescSetAttribute");
  auto layout_create = (bk_pfn_cublasLtMatrixLayoutCreate)sym(llt, "cublasLtMatrixLayoutCreate");
  auto layout_set = (pfn_layout_set)sym(llt, "cublasLtMatrixLayoutSetAttribute");
  auto pref_create = (bk_pfn_cublasLtMatmulPreferenceCreate)sym(llt, "cublasLtMatmulPreferenceCreate");
  auto pref_set = (bk_pfn_cublasLtMatmulPreferenceSetAttribute)sym(llt, "cublasLtMatmulPreferenceSetAttribute");
  auto heuristic = (bk_pfn_cublasLtMatmulAlgoGetHeuristic)sym(llt, "cublasLtMatmulAlgoGetHeuristic");
  auto matmul = (bk_pfn_cublasLtMatmul)sym(llt, "cublasLtMatmul");
  cublasLtHandle_t lt;
  CHECK(lt_create(&lt) == 0, "cublasLtCreate");
  cublasLtMatmulDesc_t desc;
  desc_create(&desc, 68, 0);
  cublasLtMatrixLayout_t la, lb, ld;
  layout_create(&la, 0, 2, 3, 3);
  layout_create(&lb, 0, 3, 2, 2);
  layout_create(&ld, 0, 2, 2, 2);
  const int32_t row = 1;
  for (auto l : {la, lb, ld}) CHECK(layout_set(l, 1, &row, sizeof row) == 0, "order attribute");
  CHECK(layout_set(la, 1, &row, 2) == 7, "attribute of the wrong size: INVALID_VALUE");
  cublasLtMatmulPreference_t pref;
  pref_create(&pref);
  const uint64_t ws = 1 << 20;
  pref_set(pref, 1, &ws, sizeof ws);
  cublasLtMatmulHeuristicResult_t res;
  int nres = 0;
  CHECK(heuristic(lt, desc, la, lb, ld, ld, pref, 1, &res, &nres) == 0 && nres == 1 && res.state == 0 &&
            res.workspaceSize <= ws,
        "heuristic");
  CUdeviceptr Ar = upload({1, 2, 3, 4, 5, 6}), Br = upload({7, 8, 9, 10, 11, 12}), Dr = upload({nan, nan, nan, nan});
  CHECK(matmul(lt, desc, &one, (void*)Ar, la, (void*)Br, lb, &zero, (void*)Dr, ld, (void*)Dr, ld, &res.algo, nullptr, 0,
               cu.stream) == 0,
        "Lt matmul");
  CHECK(same(download(Dr, 4), {58, 64, 139, 154}), "row-major layouts");
  // BIAS: bias[0] = -58 for row 0, bias[1] = -139 for row 1.
  CUdeviceptr bias = upload({-58, -139});
  uint32_t epi = 4;
  desc_set(desc, 7, &epi, sizeof epi);
  const void* bp = (const void*)bias;
  desc_set(desc, 8, &bp, sizeof bp);
  CHECK(matmul(lt, desc, &one, (void*)Ar, la, (void*)Br, lb, &zero, (void*)Dr, ld, (void*)Dr, ld, &res.algo, nullptr, 0,
               cu.stream) == 7,
        "an algorithm from another problem (no epilogue) is refused");
  heuristic(lt, desc, la, lb, ld, ld, pref, 1, &res, &nres);
  matmul(lt, desc, &one, (void*)Ar, la, (void*)Br, lb, &zero, (void*)Dr, ld, (void*)Dr, ld, &res.algo, nullptr, 0, cu.stream);
  CHECK(same(download(Dr, 4), {0, 6, 0, 15}), "BIAS epilogue: bias[i] added to row i of D");
  // GELU_BIAS: bias {-57, -140} gives pre-activations {1, 7, -1, 14}.
  CUdeviceptr bias2 = upload({-57, -140});
  epi = 36;
  desc_set(desc, 7, &epi, sizeof epi);
  bp = (const void*)bias2;
  desc_set(desc, 8, &bp, sizeof bp);
  heuristic(lt, desc, la, lb, ld, ld, pref, 1, &res, &nres);
  matmul(lt, desc, &one, (void*)Ar, la, (void*)Br, lb, &zero, (void*)Dr, ld, (void*)Dr, ld, &res.algo, nullptr, 0, cu.stream);
  CHECK(same(download(Dr, 4), {0.841192f, 7.0f, -0.158808f, 14.0f}, 2e-6), "GELU_BIAS: tanh GELU after the bias");
  // Column order with a transpose: Aᵀ stored column-major (3×2, ld 3) with
  // TRANSA = T, B column-major 3×2: D column-major 2×2.
  cublasLtMatmulDesc_t d2;
  desc_create(&d2, 68, 0);
  const int32_t opT = 1;
  desc_set(d2, 3, &opT, sizeof opT);
  cublasLtMatrixLayout_t lat, lbc, ldc;
  layout_create(&lat, 0, 3, 2, 3);
  layout_create(&lbc, 0, 3, 2, 3);
  layout_create(&ldc, 0, 2, 2, 2);
  CHECK(heuristic(lt, d2, lat, lbc, ldc, ldc, pref, 1, &res, &nres) == 0, "heuristic, TRANSA = T");
  matmul(lt, d2, &one, (void*)At, lat, (void*)B, lbc, &zero, (void*)C, ldc, (void*)C, ldc, &res.algo, nullptr, 0, cu.stream);
  CHECK(same(download(C, 4), {58, 139, 64, 154}), "Lt column-major with TRANSA = T");
  cublasLtMatrixLayout_t bad;
  layout_create(&bad, 0, 2, 3, 2);  // k = 2 ≠ 3
  CHECK(heuristic(lt, d2, lat, bad, ldc, ldc, pref, 1, &res, &nres) == 7 && nres == 0,
        "inconsistent shapes: CUBLAS_STATUS_INVALID_VALUE, no result");
  cublasLtMatrixLayout_t lshort;
  layout_create(&lshort, 0, 3, 2, 2);  // ld 2 < 3 rows
  CHECK(heuristic(lt, d2, lat, lshort, ldc, ldc, pref, 1, &res, &nres) == 7, "ld < rows: CUBLAS_STATUS_INVALID_VALUE");

  return report();
}
