package ops

// DotRowsInt8 sets out[i] to the dot product of q with row i of rows, a
// row-major matrix of len(out) rows of len(q) int8 values (quantised
// embeddings, each row to be multiplied by its scale by the caller): the
// inner loop of a similarity search. Values are converted to float32 and
// accumulated in float32; the order of the additions differs from a
// sequential loop, so results agree with one to float32 rounding. With
// AVX2 and FMA and len(q) a multiple of 16 it runs an assembly kernel (one
// pass over memory, 32 values a step, four accumulators); elsewhere a
// portable loop.
func DotRowsInt8(out, q []float32, rows []int8) {
	dim := len(q)
	if dim == 0 {
		clear(out)
		return
	}
	if len(rows) < len(out)*dim {
		panic("ops: DotRowsInt8: rows holds fewer than len(out)×len(q) values")
	}
	if len(out) == 0 {
		return
	}
	if dot8Asm && dim%16 == 0 {
		dotRowsInt8AVX2(&out[0], &q[0], &rows[0], len(out), dim)
		return
	}
	dotRowsInt8Go(out, q, rows)
}

// dotRowsInt8Go is DotRowsInt8's portable loop.
func dotRowsInt8Go(out, q []float32, rows []int8) {
	dim := len(q)
	for i := range out {
		r := rows[i*dim : (i+1)*dim : (i+1)*dim]
		var s0, s1 float32
		j := 0
		for ; j+1 < dim; j += 2 {
			s0 += q[j] * float32(r[j])
			s1 += q[j+1] * float32(r[j+1])
		}
		if j < dim {
			s0 += q[j] * float32(r[j])
		}
		out[i] = s0 + s1
	}
}

// EncodeFloat16 converts src to IEEE half-precision bits in dst (round to
// nearest, ties to even, as Float32ToFloat16). len(dst) must be at least
// len(src).
func EncodeFloat16(dst []uint16, src []float32) {
	_ = dst[:len(src)]
	for i, v := range src {
		dst[i] = Float32ToFloat16(v)
	}
}

// DecodeFloat16 converts half-precision bits to float32 in dst (exact).
// len(dst) must be at least len(src).
func DecodeFloat16(dst []float32, src []uint16) {
	_ = dst[:len(src)]
	for i, h := range src {
		dst[i] = Float16ToFloat32(h)
	}
}
