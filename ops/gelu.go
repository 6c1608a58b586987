package ops

import "math"

// GELU, exact erf form.
//
// geluSpec is the definition: 0.5·x·(1 + erf(x/√2)) in float64 with
// math.Erf, rounded once to float32. math.Erf costs 10–70 ns (its tail
// branches call math.Exp twice), a large share of a vision layer, so gelu
// returns the same float32 faster: it evaluates erf from a table of Taylor
// polynomials, bounds how far that float64 result can be from geluSpec's, and
// when every value in the bound rounds to the same float32 — nearly always —
// that float32 is necessarily geluSpec's. Otherwise it calls geluSpec. So
// gelu(x) == geluSpec(x) for every x, bit for bit (TestGELUMatchesSpec).

// geluSpec is the exact erf GELU, computed in float64 and rounded once.
func geluSpec(x float32) float32 {
	v := float64(x)
	return float32(0.5 * v * (1 + math.Erf(v/math.Sqrt2)))
}

// erf on [0, erfTableMax) from Taylor polynomials of degree 8 around the
// centres (i + 1/2)/erfTableStep of intervals of width 1/erfTableStep. With
// |t| ≤ 1/32 the truncation error is below 1e-15 (the ninth derivative of erf
// is at most about 4e3 in size, and 4e3/9!·32⁻⁹ ≈ 3e-16).
const (
	erfTableStep = 16
	erfTableMax  = 4.5
	erfTableLen  = int(erfTableMax * erfTableStep)
)

// erfTaylor[i][n] is erf⁽ⁿ⁾(cᵢ)/n! for cᵢ = (i + 1/2)/erfTableStep: erf(cᵢ)
// for n = 0 and (2/√π)·(−1)ⁿ⁻¹·Hₙ₋₁(cᵢ)·e^(−cᵢ²)/n! after, with Hₖ the
// (physicists') Hermite polynomials, Hₖ₊₁(z) = 2z·Hₖ(z) − 2k·Hₖ₋₁(z).
var erfTaylor = func() (t [erfTableLen][9]float64) {
	for i := range t {
		c := (float64(i) + 0.5) / erfTableStep
		g := 2 / math.SqrtPi * math.Exp(-c*c)
		h0, h1 := 1.0, 2*c // H₀, H₁
		t[i][0] = math.Erf(c)
		fact := 1.0
		for n := 1; n < len(t[i]); n++ {
			fact *= float64(n)
			// h0 holds Hₙ₋₁.
			sign := 1.0
			if (n-1)%2 == 1 {
				sign = -1
			}
			t[i][n] = sign * h0 * g / fact
			h0, h1 = h1, 2*c*h1-2*float64(n)*h0
		}
	}
	return t
}()

// erfErrMax bounds |erfTable(z) − math.Erf(z)| on [0, erfTableMax):
// truncation plus rounding plus math.Erf's own error, with a tenfold margin
// over the largest difference measured (TestErfTable).
const erfErrMax = 1e-14

// geluSlack·|z| bounds |g − s| in gelu, where g is gelu's float64 value and s
// geluSpec's, both for x = z·√2: 0.5·|x|·erfErrMax from erf, and under
// 1e-15·|x| from the float64 roundings of both expressions (each a few ulps
// of terms no larger than |x|).
const geluSlack = math.Sqrt2 * (0.5*erfErrMax + 2e-15)

// erfTable returns erf(z) for 0 ≤ z < erfTableMax within erfErrMax. The
// polynomial is evaluated by Estrin's scheme (independent halves, so the
// dependency chain is half as long as Horner's).
func erfTable(z float64) float64 {
	i := int(z * erfTableStep)
	c := &erfTaylor[i]
	t := z - (float64(i)+0.5)/erfTableStep
	t2 := t * t
	t4 := t2 * t2
	lo := (c[0] + c[1]*t) + (c[2]+c[3]*t)*t2
	hi := (c[4] + c[5]*t) + (c[6]+c[7]*t)*t2
	return lo + (hi+c[8]*t4)*t4
}

// gelu returns geluSpec(x), usually without calling math.Erf (see above).
func gelu(x float32) float32 {
	v := float64(x)
	z := v * (1 / math.Sqrt2) // not geluSpec's v/√2: ≤ 1 ulp apart, which moves erf by < 1e-15, inside erfErrMax
	az := math.Abs(z)
	if az < erfTableMax && az != 0 { // (±0 goes to geluSpec, which keeps the sign)
		// 0.5·v·(1 + erf(z)) = 0.5·v + 0.5·|v|·erf(|z|), erf being odd.
		g := 0.5*v + az*(math.Sqrt2/2)*erfTable(az)
		d := az * geluSlack
		if lo := float32(g - d); lo == float32(g+d) {
			return lo // every value within d of g, geluSpec's included, rounds to lo
		}
	} else if z > 0 {
		// erf(z) ≥ 1 − erfc(4.5) > 1 − 2e-10, so geluSpec's float64 value is
		// within 1.1e-10·x of x, far inside x's rounding interval: it rounds
		// to x (+Inf included).
		return x
	}
	return geluSpec(x) // ambiguous rounding, ±0, z ≤ −4.5, NaN
}
