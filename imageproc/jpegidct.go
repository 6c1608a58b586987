package imageproc

// The inverse DCT of libjpeg's "ISLOW" method (jidctint.c, the default DCT
// method, which Pillow does not change), reproduced from its documented
// algorithm: the Loeffler–Ligtenberg–Moschytz 1-D IDCT with 12 multiplies,
// applied to columns then rows, in fixed point with CONST_BITS = 13 fraction
// bits for the constants and PASS1_BITS = 2 extra bits kept between the
// passes. Every rounding step is a "descale": add half, arithmetic shift.
// Column (pass 1) and row (pass 2) shortcuts for all-zero AC terms are exact
// equivalents of the full computation, so they are used for speed.
//
// The output is range-limited the way libjpeg's C code does it: the 10 low
// bits of the descaled value are taken as a signed number, offset by 128 and
// clamped to 0..255 (its IDCT range-limit table). Values so far out of range
// that this wrap matters only occur in corrupt or adversarial data.

const (
	idctConstBits = 13
	idctPass1Bits = 2

	fix0_298631336 = 2446
	fix0_390180644 = 3196
	fix0_541196100 = 4433
	fix0_765366865 = 6270
	fix0_899976223 = 7373
	fix1_175875602 = 9633
	fix1_501321110 = 12299
	fix1_847759065 = 15137
	fix1_961570560 = 16069
	fix2_053119869 = 16819
	fix2_562915447 = 20995
	fix3_072711026 = 25172
)

// idctRangeLimit maps the low 10 bits of a descaled IDCT output to a sample.
var idctRangeLimit [1024]uint8

func init() {
	for i := range idctRangeLimit {
		v := i
		if v >= 512 {
			v -= 1024
		}
		idctRangeLimit[i] = clampU8(int32(v + 128))
	}
}

// idctISLOW transforms one block of quantised coefficients (natural order)
// with the quantisation table q (natural order) and writes the 8×8 samples to
// dst with row stride stride.
func idctISLOW(coef *[64]int32, q *[64]int32, dst []uint8, stride int) {
	var ws [64]int32

	// Pass 1: columns, from coefficients into the workspace.
	for c := 0; c < 8; c++ {
		if coef[8+c] == 0 && coef[16+c] == 0 && coef[24+c] == 0 && coef[32+c] == 0 &&
			coef[40+c] == 0 && coef[48+c] == 0 && coef[56+c] == 0 {
			dc := (coef[c] * q[c]) << idctPass1Bits
			for r := 0; r < 8; r++ {
				ws[8*r+c] = dc
			}
			continue
		}
		// Even part.
		z2 := coef[16+c] * q[16+c]
		z3 := coef[48+c] * q[48+c]
		z1 := (z2 + z3) * fix0_541196100
		tmp2 := z1 - z3*fix1_847759065
		tmp3 := z1 + z2*fix0_765366865
		z2 = coef[c] * q[c]
		z3 = coef[32+c] * q[32+c]
		tmp0 := (z2 + z3) << idctConstBits
		tmp1 := (z2 - z3) << idctConstBits
		tmp10, tmp13 := tmp0+tmp3, tmp0-tmp3
		tmp11, tmp12 := tmp1+tmp2, tmp1-tmp2

		// Odd part.
		tmp0 = coef[56+c] * q[56+c]
		tmp1 = coef[40+c] * q[40+c]
		tmp2 = coef[24+c] * q[24+c]
		tmp3 = coef[8+c] * q[8+c]
		// (The odd part is written out in both passes: as a function it
		// is not inlined and costs a fifth of the decode time.)
		z1 = tmp0 + tmp3
		z2 = tmp1 + tmp2
		z3 = tmp0 + tmp2
		z4 := tmp1 + tmp3
		z5 := (z3 + z4) * fix1_175875602
		z1 *= -fix0_899976223
		z2 *= -fix2_562915447
		z3 = z3*-fix1_961570560 + z5
		z4 = z4*-fix0_390180644 + z5
		tmp0 = tmp0*fix0_298631336 + z1 + z3
		tmp1 = tmp1*fix2_053119869 + z2 + z4
		tmp2 = tmp2*fix3_072711026 + z2 + z3
		tmp3 = tmp3*fix1_501321110 + z1 + z4

		const sh = idctConstBits - idctPass1Bits
		const half = 1 << (sh - 1)
		ws[c] = (tmp10 + tmp3 + half) >> sh
		ws[56+c] = (tmp10 - tmp3 + half) >> sh
		ws[8+c] = (tmp11 + tmp2 + half) >> sh
		ws[48+c] = (tmp11 - tmp2 + half) >> sh
		ws[16+c] = (tmp12 + tmp1 + half) >> sh
		ws[40+c] = (tmp12 - tmp1 + half) >> sh
		ws[24+c] = (tmp13 + tmp0 + half) >> sh
		ws[32+c] = (tmp13 - tmp0 + half) >> sh
	}

	// Pass 2: rows, from the workspace to samples.
	const sh = idctConstBits + idctPass1Bits + 3
	const half = 1 << (sh - 1)
	for r := 0; r < 8; r++ {
		w := ws[8*r : 8*r+8 : 8*r+8]
		out := dst[r*stride : r*stride+8 : r*stride+8]
		if w[1] == 0 && w[2] == 0 && w[3] == 0 && w[4] == 0 && w[5] == 0 && w[6] == 0 && w[7] == 0 {
			v := idctRangeLimit[((w[0]+(1<<(idctPass1Bits+2)))>>(idctPass1Bits+3))&1023]
			for i := range out {
				out[i] = v
			}
			continue
		}
		z2, z3 := w[2], w[6]
		z1 := (z2 + z3) * fix0_541196100
		tmp2 := z1 - z3*fix1_847759065
		tmp3 := z1 + z2*fix0_765366865
		tmp0 := (w[0] + w[4]) << idctConstBits
		tmp1 := (w[0] - w[4]) << idctConstBits
		tmp10, tmp13 := tmp0+tmp3, tmp0-tmp3
		tmp11, tmp12 := tmp1+tmp2, tmp1-tmp2

		tmp0, tmp1, tmp2, tmp3 = w[7], w[5], w[3], w[1]
		z1 = tmp0 + tmp3
		z2 = tmp1 + tmp2
		z3 = tmp0 + tmp2
		z4 := tmp1 + tmp3
		z5 := (z3 + z4) * fix1_175875602
		z1 *= -fix0_899976223
		z2 *= -fix2_562915447
		z3 = z3*-fix1_961570560 + z5
		z4 = z4*-fix0_390180644 + z5
		tmp0 = tmp0*fix0_298631336 + z1 + z3
		tmp1 = tmp1*fix2_053119869 + z2 + z4
		tmp2 = tmp2*fix3_072711026 + z2 + z3
		tmp3 = tmp3*fix1_501321110 + z1 + z4

		out[0] = idctRangeLimit[((tmp10+tmp3+half)>>sh)&1023]
		out[7] = idctRangeLimit[((tmp10-tmp3+half)>>sh)&1023]
		out[1] = idctRangeLimit[((tmp11+tmp2+half)>>sh)&1023]
		out[6] = idctRangeLimit[((tmp11-tmp2+half)>>sh)&1023]
		out[2] = idctRangeLimit[((tmp12+tmp1+half)>>sh)&1023]
		out[5] = idctRangeLimit[((tmp12-tmp1+half)>>sh)&1023]
		out[3] = idctRangeLimit[((tmp13+tmp0+half)>>sh)&1023]
		out[4] = idctRangeLimit[((tmp13-tmp0+half)>>sh)&1023]
	}
}

// idctFlat is idctISLOW for a block whose only non-zero coefficient is the
// DC term, with dequantised value dc: both passes take their all-zero-AC
// shortcuts, so every sample is the same.
func idctFlat(dc int32, dst []uint8, stride int) {
	v := idctRangeLimit[(((dc<<idctPass1Bits)+(1<<(idctPass1Bits+2)))>>(idctPass1Bits+3))&1023]
	for r := 0; r < 8; r++ {
		row := dst[r*stride : r*stride+8 : r*stride+8]
		for i := range row {
			row[i] = v
		}
	}
}
