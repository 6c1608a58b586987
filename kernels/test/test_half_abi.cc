// kernels/test/test_half_abi.cc — the launch contract of the float16 and
// bfloat16 kernels: every bk_<op>[_variant]_f32 kernel of test_abi.cc has an
// _f16 and a _bf16 twin with the same parameter list (tensor pointers become
// __half* / __nv_bfloat16*, 8 bytes like float*; ints, floats, const int* ids
// and int* err unchanged). The table pins them explicitly, as test_abi.cc pins
// the f32 ones; a twin added, removed or changed without updating it (and
// kernels/README.md) fails here. test_abi.cc leaves registered _f16/_bf16
// kernels whose _f32 twin it pins to this file.
#include <map>
#include <set>

#include "harness.h"

namespace {

// P = pointer (8 bytes), I = int (4), F = float (4), L = long long (8).
const std::map<std::string, std::string> kHalfContract = {
    // out, sum, x, residual, gamma, beta (all T*), rows, D, eps (float)
    {"bk_layernorm_warp_f16", "PPPPPPIIF"},
    {"bk_layernorm_warp_bf16", "PPPPPPIIF"},
    {"bk_layernorm_block_f16", "PPPPPPIIF"},
    {"bk_layernorm_block_bf16", "PPPPPPIIF"},
    // out, x, bias, rows, cols, act
    {"bk_bias_act_f16", "PPPIII"},
    {"bk_bias_act_bf16", "PPPIII"},
    // out, a, b, n
    {"bk_add_f16", "PPPI"},
    {"bk_add_bf16", "PPPI"},
    // out, table (T*), ids (const int*), n, D, V, err (int*)
    {"bk_gather_rows_f16", "PPPIIIP"},
    {"bk_gather_rows_bf16", "PPPIIIP"},
    // out, x, pos, rows, L, D
    {"bk_add_positions_f16", "PPPIII"},
    {"bk_add_positions_bf16", "PPPIII"},
    // out, x, n, D, first, stride
    {"bk_take_rows_f16", "PPIIII"},
    {"bk_take_rows_bf16", "PPIIII"},
    // out, x, rows, D
    {"bk_l2_normalize_f16", "PPII"},
    {"bk_l2_normalize_bf16", "PPII"},
    // out, patches, cls, B, T, D
    {"bk_vit_tokens_f16", "PPPIII"},
    {"bk_vit_tokens_bf16", "PPPIII"},
    // cols, pixels, B, C, H, W, P
    {"bk_im2col_patch_f16", "PPIIIII"},
    {"bk_im2col_patch_bf16", "PPIIIII"},
    // C, A, B, bias, M, N, K, lda, ldb, ldc, strideA, strideB, strideC, act
    {"bk_gemm_nt_f16", "PPPPIIIIIILLLI"},
    {"bk_gemm_nt_bf16", "PPPPIIIIIILLLI"},
    {"bk_gemm_nt_small_f16", "PPPPIIIIIILLLI"},
    {"bk_gemm_nt_small_bf16", "PPPPIIIIIILLLI"},
    // out, q, k, v, mask, B, H, Lq, Lk, Dh, ldq, ldk, ldv, ldo, kv_batch, mask_batch, scale (float)
    {"bk_attention_d16_f16", "PPPPPIIIIIIIIIIIF"},
    {"bk_attention_d32_f16", "PPPPPIIIIIIIIIIIF"},
    {"bk_attention_d64_f16", "PPPPPIIIIIIIIIIIF"},
    {"bk_attention_d128_f16", "PPPPPIIIIIIIIIIIF"},
    {"bk_attention_d16_bf16", "PPPPPIIIIIIIIIIIF"},
    {"bk_attention_d32_bf16", "PPPPPIIIIIIIIIIIF"},
    {"bk_attention_d64_bf16", "PPPPPIIIIIIIIIIIF"},
    {"bk_attention_d128_bf16", "PPPPPIIIIIIIIIIIF"},
};

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// "bk_x_f16" / "bk_x_bf16" → "bk_x_f32"; "" for other names.
std::string f32_twin(const std::string& name) {
  if (ends_with(name, "_bf16")) return name.substr(0, name.size() - 5) + "_f32";
  if (ends_with(name, "_f16")) return name.substr(0, name.size() - 4) + "_f32";
  return "";
}

std::vector<int> params(const std::string& name) {
  int sizes[32];
  const int n = bkemu_kernel_params(name.c_str(), sizes, 32);
  return n < 0 ? std::vector<int>() : std::vector<int>(sizes, sizes + std::min(n, 32));
}

}  // namespace

TEST(half_abi_contract) {
  std::set<std::string> registered;
  for (int i = 0; i < bkemu_kernel_count(); ++i) registered.insert(bkemu_kernel_name(i));
  for (const auto& [name, sig] : kHalfContract) {
    EXPECT(registered.count(name) == 1, "kernel %s is not registered", name.c_str());
    const std::vector<int> sizes = params(name);
    EXPECT(sizes.size() == sig.size(), "%s: %zu parameters, contract says %zu", name.c_str(), sizes.size(),
           sig.size());
    for (size_t i = 0; i < sizes.size() && i < sig.size(); ++i) {
      const int want = (sig[i] == 'P' || sig[i] == 'L') ? 8 : 4;
      EXPECT(sizes[i] == want, "%s: parameter %zu is %d bytes, contract says %c", name.c_str(), i, sizes[i], sig[i]);
    }
    // Same parameter list as the f32 kernel.
    const std::string twin = f32_twin(name);
    EXPECT(registered.count(twin) == 1, "%s: no f32 twin %s", name.c_str(), twin.c_str());
    EXPECT(params(twin) == sizes, "%s: parameters differ from %s", name.c_str(), twin.c_str());
  }
  // Every registered f32 kernel has both twins, and every registered
  // _f16/_bf16 kernel with an f32 twin is in the table.
  for (const std::string& name : registered) {
    if (name.rfind("bk_", 0) != 0) continue;
    if (ends_with(name, "_f32")) {
      const std::string base = name.substr(0, name.size() - 4);
      EXPECT(kHalfContract.count(base + "_f16") == 1 && kHalfContract.count(base + "_bf16") == 1,
             "f32 kernel %s has no f16/bf16 twins in the contract", name.c_str());
    }
    const std::string twin = f32_twin(name);
    if (!twin.empty() && registered.count(twin) == 1)
      EXPECT(kHalfContract.count(name) == 1, "kernel %s is not in the half contract table", name.c_str());
  }
}
