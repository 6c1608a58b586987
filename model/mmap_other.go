//go:build !unix

package model

import (
	"io"
	"os"
)

// mapReadOnly reads the first size bytes of f into memory: this system has
// no mmap here, so the weights cost their size in memory once more.
func mapReadOnly(f *os.File, size int) ([]byte, func() error, error) {
	buf := make([]byte, size)
	if _, err := io.ReadFull(io.NewSectionReader(f, 0, int64(size)), buf); err != nil {
		return nil, nil, err
	}
	return buf, func() error { return nil }, nil
}
