//go:build !race

package ops

// raceEnabled is false: see race_test.go.
const raceEnabled = false
