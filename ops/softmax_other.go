//go:build !amd64 || purego

package ops

// haveSoftmaxAsm is false: softmaxRow runs only its Go code.
const haveSoftmaxAsm = false

func softmaxScaleMax(s []float32, scale float32, mask []float32) float32 { panic("unreachable") }
func softmaxExpSum(s []float32, mx float32, lanes *[8]float64)           { panic("unreachable") }
func softmaxScale(s []float32, inv float64)                              { panic("unreachable") }
