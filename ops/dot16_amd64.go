//go:build amd64 && !purego

package ops

import "golang.org/x/sys/cpu"

// dotF16Asm reports whether dotRowsF16AVX2 can run: AVX2, FMA and F16C
// (VCVTPH2PS) with the YMM registers saved by the OS.
var dotF16Asm = hasAVX2FMA && cpu.X86.HasF16C

// dotRowsF16AVX2 is DotRowsF16 for n ≥ 1 rows of dim values, dim a
// positive multiple of 16.
//
//go:noescape
func dotRowsF16AVX2(out, q *float32, rows *uint16, n, dim int)
