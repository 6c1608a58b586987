//go:build amd64 && !purego

package ops

// dot8Asm reports whether dotRowsInt8AVX2 can run: AVX2 and FMA with the
// YMM registers saved by the OS.
var dot8Asm = hasAVX2FMA

// dotRowsInt8AVX2 is DotRowsInt8 for n ≥ 1 rows of dim values, dim a
// positive multiple of 16.
//
//go:noescape
func dotRowsInt8AVX2(out, q *float32, rows *int8, n, dim int)
