//go:build !unix

package ops

// cpuSeconds is not available on this system; see cputime_unix_test.go.
func cpuSeconds() float64 { return 0 }
