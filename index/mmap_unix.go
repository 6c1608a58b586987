//go:build unix

package index

import (
	"os"

	"golang.org/x/sys/unix"
)

// sharedMap: the map shows what WriteAt writes.
const sharedMap = true

// mapFile maps the first size bytes of f read-only and shared: rows the
// process writes with WriteAt are visible through the map.
func mapFile(f *os.File, size int) ([]byte, error) {
	return unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
}

func unmapFile(b []byte) error {
	if b == nil {
		return nil
	}
	return unix.Munmap(b)
}
