package cuda

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// kernelSourcesHash recomputes what scripts/gen-fatbin.sh writes to
// kernels.sha256: sha256 over "<path>\n<sha256 hex of file>\n" for every
// kernels/*.cu and kernels/*.cuh in byte order of the path.
func kernelSourcesHash(t *testing.T) string {
	t.Helper()
	var files []string
	for _, pat := range []string{"../kernels/*.cu", "../kernels/*.cuh"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatal("no kernels/*.cu")
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s\n%x\n", strings.TrimPrefix(f, "../"), sha256.Sum256(data))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestFatbinFresh fails when cuda/blipkernels.fatbin was built from other
// kernels/ sources than the current ones.
func TestFatbinFresh(t *testing.T) {
	want, err := os.ReadFile("kernels.sha256")
	if err != nil {
		t.Fatalf("%v: run `go generate ./cuda` (scripts/gen-fatbin.sh)", err)
	}
	if got := kernelSourcesHash(t); got != strings.TrimSpace(string(want)) {
		t.Fatalf("cuda/blipkernels.fatbin is stale: kernels/ hashes to %s, cuda/kernels.sha256 says %s; regenerate with `go generate ./cuda`",
			got, strings.TrimSpace(string(want)))
	}
	fb, err := os.ReadFile("blipkernels.fatbin")
	if err != nil {
		t.Fatalf("%v: run `go generate ./cuda`", err)
	}
	// A fatbin starts with the magic 0xBA55ED50 (little-endian).
	if len(fb) < 16 || !bytes.Equal(fb[:4], []byte{0x50, 0xed, 0x55, 0xba}) {
		t.Fatalf("blipkernels.fatbin (%d bytes) does not start with the fatbin magic", len(fb))
	}
	// Every kernel name the ops backend launches is in it.
	for _, k := range []string{"bk_layernorm_warp_f32", "bk_layernorm_block_f32", "bk_bias_act_f32", "bk_add_f32",
		"bk_gather_rows_f32", "bk_add_positions_f32", "bk_take_rows_f32", "bk_l2_normalize_f32", "bk_vit_tokens_f32",
		"bk_im2col_patch_f32", "bk_gemm_nt_f32", "bk_gemm_nt_small_f32", "bk_attention_d16_f32", "bk_attention_d32_f32",
		"bk_attention_d64_f32", "bk_attention_d128_f32"} {
		if !bytes.Contains(fb, []byte(k)) {
			t.Errorf("kernel %s not in blipkernels.fatbin", k)
		}
	}
}
