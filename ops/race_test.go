//go:build race

package ops

// raceEnabled shrinks the slowest reference comparisons under the race
// detector, which slows the float64 reference loops about tenfold.
const raceEnabled = true
