package ops

import "math"

// The softmax of one attention row, and the exponential it uses.
//
// softmaxRow is written so that its vector form (AVX2 assembly, used for the
// first len(s) &^ 7 elements of each pass where available) gives bitwise the
// same result as this Go code:
//
//   - products and sums that must round separately are written with explicit
//     conversions (float32(a*b) + c), which forbid the compiler to fuse them
//     into one FMA (the Go spec allows fusion otherwise);
//   - the exponential sum is accumulated in float64 in eight lanes, element j
//     in lane j%8, and the lanes are added in a fixed order at the end, which
//     is exactly what eight float64 vector lanes do.
//
// So results are reproducible and the same with or without the assembly.

// expPoly holds the Taylor coefficients 1/k! of e^u for k = 8 down to 0:
// on |u| ≤ ln2/2 the truncation error of the degree-8 polynomial is below
// 2.5e-10, far under float32's 6e-8.
var expPoly = [9]float64{1.0 / 40320, 1.0 / 5040, 1.0 / 720, 1.0 / 120, 1.0 / 24, 1.0 / 6, 1.0 / 2, 1, 1}

// Limits of expf: above expHi e^x overflows float32, below expLo it rounds
// to 0 (less than half the smallest subnormal).
const (
	expHi = 88.72284
	expLo = -103.97208
)

// expf returns e^x rounded to float32 (within an ulp of
// float32(math.Exp(float64(x))), usually equal), several times faster than
// math.Exp: x·log2(e) = n + f with n an integer and |f| ≤ 1/2, e^x =
// 2^n · e^u with u = f·ln2, e^u from expPoly, 2^n from the exponent bits.
// All in float64, rounded once at the end.
func expf(x float32) float32 {
	switch {
	case x != x:
		return x
	case x > expHi:
		return float32(math.Inf(1))
	case x < expLo:
		return 0
	}
	t := float64(x) * math.Log2E
	n := math.Floor(t + 0.5)
	u := (t - n) * math.Ln2
	q := expPoly[0]
	for _, c := range expPoly[1:] {
		q = float64(q*u) + c
	}
	return float32(q * math.Float64frombits(uint64(int64(n)+1023)<<52))
}

// softmaxRow replaces s with softmax(s·scale + mask) (mask nil: no mask),
// subtracting the row maximum before exponentiating so large logits do not
// overflow, and summing the exponentials in float64. With vec it runs the
// AVX2 code on the first len(s) &^ 7 elements (same bits; see above).
func softmaxRow(s []float32, scale float32, mask []float32, vec bool) {
	if mask != nil {
		mask = mask[:len(s)]
	}
	v := 0 // elements handled by the vector code
	if vec && haveSoftmaxAsm {
		v = len(s) &^ 7
	}

	// Pass 1: scale, mask, row maximum.
	mx := float32(math.Inf(-1))
	if v > 0 {
		mx = softmaxScaleMax(s[:v], scale, mask)
	}
	for j := v; j < len(s); j++ {
		x := float32(s[j] * scale)
		if mask != nil {
			x += mask[j]
		}
		s[j] = x
		mx = max(mx, x)
	}

	// Pass 2: exponentials and their sum.
	var lanes [8]float64
	if v > 0 {
		softmaxExpSum(s[:v], mx, &lanes)
	}
	for j := v; j < len(s); j++ {
		e := expf(s[j] - mx)
		s[j] = e
		lanes[j%8] += float64(e)
	}
	sum := ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]))

	// Pass 3: normalise.
	inv := 1 / sum
	if v > 0 {
		softmaxScale(s[:v], inv)
	}
	for j := v; j < len(s); j++ {
		s[j] = float32(float64(s[j]) * inv)
	}
}
