//go:build !amd64 || purego

package ops

// dotF16Asm is false: this build has no assembly kernel.
const dotF16Asm = false

func dotRowsF16AVX2(out, q *float32, rows *uint16, n, dim int) { panic("unreachable") }
