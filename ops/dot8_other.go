//go:build !amd64 || purego

package ops

// dot8Asm is false: this build has no assembly kernel.
const dot8Asm = false

func dotRowsInt8AVX2(out, q *float32, rows *int8, n, dim int) { panic("unreachable") }
