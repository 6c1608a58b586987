//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package hub

import "golang.org/x/sys/unix"

const ioctlReadTermios = unix.TIOCGETA
