package hub

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/blipcuda/blipcuda/hub/hubtest"
)

// randomBytes returns n reproducible pseudo-random bytes for seed.
func randomBytes(n int, seed byte) []byte {
	var key [32]byte
	key[0] = seed
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

// testClient returns a Client on the fake Hub fh with a fresh cache, fast
// retries and no environment.
func testClient(t *testing.T, fh *hubtest.Hub, opts ...Option) *Client {
	t.Helper()
	base := []Option{WithEndpoint(fh.URL), WithCacheDir(t.TempDir()), WithRetries(0)}
	c, err := NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	c.retryBase = time.Millisecond
	c.retryMax = 5 * time.Millisecond
	c.lockPoll = 5 * time.Millisecond
	return c
}

// sameCache returns a second Client on the cache of c (another "process").
func sameCache(t *testing.T, c *Client, opts ...Option) *Client {
	t.Helper()
	base := []Option{WithEndpoint(c.Endpoint()), WithCacheDir(c.CacheDir()), WithRetries(c.retries)}
	if c.token != "" {
		base = append(base, WithToken(c.token))
	}
	c2, err := NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	c2.retryBase, c2.retryMax, c2.lockPoll = c.retryBase, c.retryMax, c.lockPoll
	return c2
}

// listTree returns the cache's files relative to root, links shown as
// "name -> target", directories left out.
func listTree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out = append(out, rel+" -> "+filepath.ToSlash(target))
		case fi.Mode().IsRegular():
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
