package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/blipcuda/blipcuda/index"
)

// TestIndexFullDisk runs `index` with a file size limit (RLIMIT_FSIZE, which
// makes writes past it fail with EFBIG, as a full disk fails them with
// ENOSPC) that the features file reaches in the middle of a run: the run
// fails naming the error, the index holds exactly the batches committed
// before, all complete, and a run without the limit finishes it.
func TestIndexFullDisk(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "p")
	imgs := genImages(t, dir, 30, 6)
	idx := filepath.Join(tmp, "x.blipidx")
	first := filepath.Join(tmp, "first")
	for _, p := range imgs[:10] {
		copyFile(t, p, filepath.Join(first, filepath.Base(p)))
	}
	mustRun(t, runOpts{}, "index", first, "-o", idx, "--model", tinyBase, "--features", "--batch", "4")
	st, err := os.Stat(filepath.Join(idx, "features.f16"))
	if err != nil {
		t.Fatal(err)
	}
	perImage := st.Size() / 10
	limit := uint64(st.Size() + 5*perImage + perImage/2) // room for 5 more images
	cmd, stdout, stderr := binCmd(t, runOpts{}, "index", dir, first, "-o", idx, "--features", "--batch", "4")
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Skipf("no RLIMIT_FSIZE here: %v", err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: limit, Max: old.Max}); err != nil {
		t.Skipf("cannot lower RLIMIT_FSIZE: %v", err)
	}
	err = cmd.Start()
	syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old)
	if err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if err == nil || !strings.Contains(stderr.String(), "file too large") || !strings.Contains(stderr.String(), "as before") {
		t.Fatalf("index past the size limit: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	ctx := context.Background()
	ix, err := index.Open(ctx, idx, index.Options{})
	if err != nil {
		t.Fatalf("the index does not open after the failed run: %v", err)
	}
	// 10 before, then batches of 4 while 5 images fit: one batch of 4.
	if n := ix.Len(); n != 14 {
		t.Errorf("%d images after the failed run, want 14 (10 + one batch of 4)", n)
	}
	err = ix.Entries(ctx, func(e index.Entry) error {
		f, err := ix.Features(e)
		if err == nil && len(f) != 577*16 {
			t.Errorf("%s: %d feature values", e.Path, len(f))
		}
		return err
	})
	ix.Close()
	if err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, runOpts{}, "index", dir, first, "-o", idx, "--features", "--batch", "4")
	if !strings.Contains(r.stderr, "index "+idx+": 40 images") {
		t.Errorf("rerun: %s", r.stderr)
	}
}
