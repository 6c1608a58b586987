// kernels/test/test_abi.cc — the launch contract as data: every production
// kernel (names starting "bk_") with its parameter list, checked against the
// registry, which derives the byte sizes from the real signatures. A kernel
// added, removed or changed without updating this table (and the table in
// kernels/README.md, which it mirrors) fails here.
#include <map>
#include <set>

#include "harness.h"

namespace {

// P = pointer (8 bytes), I = int (4), F = float (4), L = long long (8).
const std::map<std::string, std::string> kContract = {
    {"bk_layernorm_warp_f32", "PPPPPPIIF"},      // out, sum, x, residual, gamma, beta, rows, D, eps
    {"bk_layernorm_block_f32", "PPPPPPIIF"},     // same
    {"bk_bias_act_f32", "PPPIII"},               // out, x, bias, rows, cols, act
    {"bk_add_f32", "PPPI"},                      // out, a, b, n
    {"bk_gather_rows_f32", "PPPIIIP"},           // out, table, ids, n, D, V, err
    {"bk_add_positions_f32", "PPPIII"},          // out, x, pos, rows, L, D
    {"bk_take_rows_f32", "PPIIII"},              // out, x, n, D, first, stride
    {"bk_l2_normalize_f32", "PPII"},             // out, x, rows, D
    {"bk_vit_tokens_f32", "PPPIII"},             // out, patches, cls, B, T, D
    {"bk_im2col_patch_f32", "PPIIIII"},          // cols, pixels, B, C, H, W, P
    {"bk_gemm_nt_f32", "PPPPIIIIIILLLI"},        // C, A, B, bias, M, N, K, lda, ldb, ldc, sA, sB, sC, act
    {"bk_gemm_nt_small_f32", "PPPPIIIIIILLLI"},  // same
    // out, q, k, v, mask, B, H, Lq, Lk, Dh, ldq, ldk, ldv, ldo, kv_batch, mask_batch, scale
    {"bk_attention_d16_f32", "PPPPPIIIIIIIIIIIF"},
    {"bk_attention_d32_f32", "PPPPPIIIIIIIIIIIF"},
    {"bk_attention_d64_f32", "PPPPPIIIIIIIIIIIF"},
    {"bk_attention_d128_f32", "PPPPPIIIIIIIIIIIF"},
    // Tensor cores (16-bit only): the same parameters, Dh = 64.
    {"bk_attention_mma_d64_f16", "PPPPPIIIIIIIIIIIF"},
    {"bk_attention_mma_d64_bf16", "PPPPPIIIIIIIIIIIF"},
};

}  // namespace

TEST(abi_contract) {
  std::set<std::string> registered;
  for (int i = 0; i < bkemu_kernel_count(); ++i) {
    const std::string name = bkemu_kernel_name(i);
    if (name.rfind("bk_", 0) == 0) registered.insert(name);
  }
  for (const auto& [name, sig] : kContract) {
    EXPECT(registered.count(name) == 1, "kernel %s is not registered", name.c_str());
    int sizes[32];
    const int n = bkemu_kernel_params(name.c_str(), sizes, 32);
    EXPECT(n == int(sig.size()), "%s: %d parameters, contract says %zu", name.c_str(), n, sig.size());
    for (int i = 0; i < n && i < int(sig.size()); ++i) {
      const int want = (sig[i] == 'P' || sig[i] == 'L') ? 8 : 4;
      EXPECT(sizes[i] == want, "%s: parameter %d is %d bytes, contract says %c", name.c_str(), i, sizes[i], sig[i]);
    }
  }
  for (const std::string& name : registered) {
    // _f16/_bf16 twins of a kernel pinned here are pinned in test_half_abi.cc.
    const size_t us = name.rfind('_');
    const std::string suffix = us == std::string::npos ? "" : name.substr(us);
    if ((suffix == "_f16" || suffix == "_bf16") && kContract.count(name.substr(0, us) + "_f32") == 1) continue;
    EXPECT(kContract.count(name) == 1, "kernel %s is not in the contract table", name.c_str());
  }
}
