package hub

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// procLocks serialises goroutines of this process on one lock path, whatever
// Client they use; the file lock then serialises processes.
var procLocks sync.Map // lock path → chan struct{} (capacity 1)

// lockFile takes the exclusive lock {cache}/.locks/{repo folder}/{etag}.lock,
// the same file huggingface_hub locks, waiting while another goroutine or
// process holds it. The returned function releases it.
func (c *Client) lockFile(ctx context.Context, path string) (func(), error) {
	v, _ := procLocks.LoadOrStore(path, make(chan struct{}, 1))
	ch := v.(chan struct{})
	select {
	case ch <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	release := func() { <-ch }
	if err := os.MkdirAll(filepath.Dir(path), 0o777); err != nil {
		release()
		return nil, fmt.Errorf("hub: creating lock directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o664) // group-writable, as huggingface_hub makes it
	if err != nil {
		release()
		return nil, fmt.Errorf("hub: opening lock file: %w", err)
	}
	logged := false
	wait := c.lockPoll
	for {
		held, err := tryLock(f)
		if err != nil {
			// Some file systems (old NFS, FUSE) do not lock; huggingface_hub
			// then goes on without a lock too.
			c.log.WarnContext(ctx, "hub: file locking not supported, going on without it", "lock", path, "err", err)
			break
		}
		if held {
			break
		}
		if !logged {
			c.log.InfoContext(ctx, "hub: waiting for another process downloading the same file", "lock", path)
			logged = true
		}
		if err := sleep(ctx, wait); err != nil {
			_ = f.Close()
			release()
			return nil, err
		}
		wait = min(wait*2, time.Second)
	}
	return func() {
		_ = unlock(f)
		_ = f.Close()
		release()
	}, nil
}
