package ops

import "math"

// Conversions between float32 and the 16-bit storage types of the F16 and
// BF16 backends. Every conversion to 16 bits rounds to nearest, ties to even,
// exactly as PyTorch's .half() and .bfloat16() (and CUDA's __float2half_rn,
// __float2bfloat16_rn); conversions back are exact.

// Float32ToFloat16 returns the IEEE 754 half-precision bits nearest to v,
// ties to even: values beyond the largest half (65504, after rounding)
// become ±Inf, values below half the smallest subnormal (2⁻²⁵) become ±0,
// and NaN stays a (quiet) NaN.
func Float32ToFloat16(v float32) uint16 {
	b := math.Float32bits(v)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant == 0 {
			return sign | 0x7c00 // ±Inf
		}
		return sign | 0x7e00 | uint16(mant>>13) // quiet NaN, payload kept
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// A half subnormal (or zero): the value is m·2⁻²⁴.
		if e < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - e)
		m := mant >> shift
		rem := mant & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && m&1 == 1) {
			m++ // may carry into the smallest normal, which is right
		}
		return sign | uint16(m)
	}
	h := sign | uint16(e)<<10 | uint16(mant>>13)
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent, up to Inf, which is right
	}
	return h
}

// Float16ToFloat32 converts IEEE half-precision bits to float32 (exact).
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch exp {
	case 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal: value = mant · 2^-24.
		v := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	case 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// Float32ToBFloat16 returns the bfloat16 bits nearest to v, ties to even;
// NaN stays a (quiet) NaN.
func Float32ToBFloat16(v float32) uint16 {
	b := math.Float32bits(v)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// BFloat16ToFloat32 converts bfloat16 bits to float32 (exact).
func BFloat16ToFloat32(b uint16) float32 { return math.Float32frombits(uint32(b) << 16) }

// Round returns v rounded to the nearest value of dtype d (ties to even) and
// back to float32: the value a tensor of dtype d stores for v. F32 returns v.
func (d DType) Round(v float32) float32 {
	switch d {
	case F16:
		return Float16ToFloat32(Float32ToFloat16(v))
	case BF16:
		return BFloat16ToFloat32(Float32ToBFloat16(v))
	}
	return v
}

// encode16 converts src to dtype d's 16-bit bits (d is F16 or BF16).
func encode16(dst []uint16, src []float32, d DType) {
	conv := Float32ToBFloat16
	if d == F16 {
		conv = Float32ToFloat16
	}
	for i, v := range src {
		dst[i] = conv(v)
	}
}

// decode16 converts dtype d's 16-bit bits to float32 (d is F16 or BF16).
func decode16(dst []float32, src []uint16, d DType) {
	conv := BFloat16ToFloat32
	if d == F16 {
		conv = Float16ToFloat32
	}
	for i, h := range src {
		dst[i] = conv(h)
	}
}
