//go:build unix

package outfile

import (
	"os"

	"golang.org/x/sys/unix"
)

// haveDescriptorPaths: /dev/fd/N and /dev/stdout name descriptors here.
const haveDescriptorPaths = true

// dupFile returns a new descriptor for the open descriptor fd, so that
// closing the output does not close the process's stdout.
func dupFile(fd int, name string) (*os.File, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "dup", Path: name, Err: err}
	}
	return os.NewFile(uintptr(nfd), name), nil
}
