//go:build !unix

package outfile

import (
	"errors"
	"os"
)

// haveDescriptorPaths: no /dev/fd here.
const haveDescriptorPaths = false

// dupFile: descriptor paths (/dev/fd/N) exist on Unix systems only.
func dupFile(fd int, name string) (*os.File, error) {
	return nil, &os.PathError{Op: "open", Path: name, Err: errors.ErrUnsupported}
}
