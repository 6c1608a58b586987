package hub

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestLockHelperProcess is not a test: TestLockAcrossProcesses runs it in a
// child process to hold a blob lock the way another program would.
func TestLockHelperProcess(t *testing.T) {
	path := os.Getenv("BLIPCUDA_HUB_LOCK_HELPER")
	if path == "" {
		t.Skip("helper process for TestLockAcrossProcesses")
	}
	c, err := NewClient(WithCacheDir(filepath.Dir(path)))
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := c.lockFile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("locked\n")
	_, _ = io.Copy(io.Discard, os.Stdin) // hold until the parent closes stdin
	unlock()
}

func TestLockAcrossProcesses(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" && runtime.GOOS != "freebsd" && runtime.GOOS != "windows" {
		t.Skip("no cross-process lock on " + runtime.GOOS)
	}
	fh, files := standardHub(t)
	c := testClient(t, fh)
	f := files["pytorch_model.bin"]
	lock := c.lockPath(repoID, f.ETag)

	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "BLIPCUDA_HUB_LOCK_HELPER="+lock)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}

	type result struct {
		path string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		p, err := c.Download(context.Background(), repoID, "main", "pytorch_model.bin")
		done <- result{p, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("Download did not wait for the other process's lock: %v", r)
	case <-time.After(300 * time.Millisecond):
	}
	// The other process finishes the blob, then releases its lock.
	blob := blobPath(c.repoDir(repoID), f.ETag)
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blob+".tmp", f.Data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(blob+".tmp", blob); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Download still waiting after the lock was released")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	checkContent(t, r.path, f.Data)
	if n := fh.Count("cdn", "GET"); n != 0 {
		t.Errorf("the waiting Download fetched the blob again (%d GETs)", n)
	}
}
