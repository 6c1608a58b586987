//go:build !unix

package index

import (
	"io"
	"os"
)

// sharedMap: the copy must be read again after writes.
const sharedMap = false

// mapFile reads the first size bytes of f (no memory map on this system).
func mapFile(f *os.File, size int) ([]byte, error) {
	b := make([]byte, size)
	_, err := io.ReadFull(io.NewSectionReader(f, 0, int64(size)), b)
	return b, err
}

func unmapFile([]byte) error { return nil }
