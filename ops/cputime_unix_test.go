//go:build unix

package ops

import "syscall"

// cpuSeconds returns the CPU time (user + system) this process has used, so
// benchmarks on a shared machine can report work per CPU-second next to
// wall-clock rates.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
