//go:build unix

package model

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapReadOnly maps the first size bytes of f read-only and returns them
// with the function that unmaps them.
func mapReadOnly(f *os.File, size int) ([]byte, func() error, error) {
	buf, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return buf, func() error { return unix.Munmap(buf) }, nil
}
