//go:build amd64 && !purego

package ops

import "math"

// haveSoftmaxAsm reports whether the AVX2 softmax passes can run.
var haveSoftmaxAsm = hasAVX2FMA

// expTable holds the float64 constants of expf, each repeated in four lanes
// for the assembly: log2(e), 0.5, ln2, expPoly, then the int64 exponent bias
// 1023 (as bits). Built from the same Go expressions as expf, so both round
// identically.
var expTable = func() (t [4 + len(expPoly)][4]float64) {
	vals := append([]float64{math.Log2E, 0.5, math.Ln2}, expPoly[:]...)
	vals = append(vals, math.Float64frombits(1023))
	for i, v := range vals {
		t[i] = [4]float64{v, v, v, v}
	}
	return t
}()

// expClamp holds expf's limits and +Inf, eight float32 each.
var expClamp = func() (t [3][8]float32) {
	for i := range 8 {
		t[0][i], t[1][i], t[2][i] = expLo, expHi, float32(math.Inf(1))
	}
	return t
}()

// The three passes of softmaxRow over n elements, n a positive multiple of
// 8. mask may be nil.
//
//go:noescape
func softmaxScaleMaxAVX2(s *float32, n int, scale float32, mask *float32) float32

//go:noescape
func softmaxExpSumAVX2(s *float32, n int, mx float32, lanes *[8]float64, table *[4 + len(expPoly)][4]float64, clamp *[3][8]float32)

//go:noescape
func softmaxScaleAVX2(s *float32, n int, inv float64)

// softmaxScaleMax: s[j] = float32(s[j]·scale) + mask[j]; returns max s[j].
func softmaxScaleMax(s []float32, scale float32, mask []float32) float32 {
	var m *float32
	if mask != nil {
		m = &mask[:len(s)][0]
	}
	return softmaxScaleMaxAVX2(&s[0], len(s)&^7, scale, m)
}

// softmaxExpSum: s[j] = expf(s[j] − mx); lanes[j%8] += s[j].
func softmaxExpSum(s []float32, mx float32, lanes *[8]float64) {
	softmaxExpSumAVX2(&s[0], len(s)&^7, mx, lanes, &expTable, &expClamp)
}

// softmaxScale: s[j] = float32(float64(s[j])·inv).
func softmaxScale(s []float32, inv float64) {
	softmaxScaleAVX2(&s[0], len(s)&^7, inv)
}
