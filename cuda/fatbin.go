//go:build !cudaemu

package cuda

import _ "embed"

// fatbin is every kernel of kernels/ compiled by nvcc 13.0 (SASS sm_80,
// which sm_86 and sm_89 run too, and sm_90; PTX compute_90), loaded with
// cuModuleLoadData. Regenerate with `go generate ./cuda` after changing
// kernels/ (fatbin_test.go fails while it is stale).
//
//go:embed blipkernels.fatbin
var fatbin []byte
