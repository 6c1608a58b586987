package hub

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// countingFile counts the bytes written to a download's .incomplete file.
type countingFile struct {
	f       *os.File
	written *int64
}

func (c *countingFile) Write(p []byte) (int, error) {
	n, err := c.f.Write(p)
	*c.written += int64(n)
	return n, err
}
func (c *countingFile) Sync() error  { return c.f.Sync() }
func (c *countingFile) Close() error { return c.f.Close() }

// TestOverSendingServer: a server that sends more than it announced, or
// an endless body with no size, is cut one byte past the bound; what is
// written to disk never exceeds it.
func TestOverSendingServer(t *testing.T) {
	chunk := make([]byte, 64<<10)
	for _, c := range []struct {
		name, file, announce string
		limit                int64
		want                 string
	}{
		{"announced", "pytorch_model.bin", "1000", 1000, "more than the 1000 bytes the Hub announced"},
		{"unannounced", "config.json", "", unannouncedLimit("config.json"), "without an announced size"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var sent int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Repo-Commit", commit1)
				w.Header().Set("ETag", `"abc"`)
				if r.Method == http.MethodHead {
					if c.announce != "" {
						w.Header().Set("Content-Length", c.announce)
					}
					w.WriteHeader(http.StatusOK)
					return
				}
				w.WriteHeader(http.StatusOK) // no Content-Length: chunked, endless
				for sent < 4*c.limit+(256<<20) {
					n, err := w.Write(chunk)
					sent += int64(n)
					if err != nil {
						return
					}
				}
			}))
			defer srv.Close()
			cl, err := NewClient(WithEndpoint(srv.URL), WithCacheDir(t.TempDir()), WithRetries(0))
			if err != nil {
				t.Fatal(err)
			}
			var written int64
			cl.openFile = func(name string, flag int, perm os.FileMode) (writeFile, error) {
				f, err := os.OpenFile(name, flag, perm)
				if err != nil {
					return nil, err
				}
				return &countingFile{f: f, written: &written}, nil
			}
			_, err = cl.Download(context.Background(), repoID, "main", c.file)
			if !errors.Is(err, ErrBadResponse) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want ErrBadResponse saying %q", err, c.want)
			}
			if written > c.limit+1 {
				t.Errorf("%d bytes written to disk, want ≤ %d (the bound + 1)", written, c.limit+1)
			}
		})
	}
}
