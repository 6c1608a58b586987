//go:build !unix

package index

import (
	"context"
	"errors"
	"os"
	"time"
)

var errLockTimeout = errors.New("lock held")

// lockFile opens path; this system has no flock, so writers are not kept
// apart here (the database's own lock still serialises their transactions).
func lockFile(ctx context.Context, path string, wait time.Duration) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
}
