//go:build !linux && !darwin && !freebsd && !netbsd && !openbsd && !dragonfly && !windows

package progress

func isTerminalFd(uintptr) bool { return false }
