//go:build unix

// Package outfiletest makes the special files that output tests write to:
// device nodes standing in for /dev/null and /dev/full, and FIFOs with a
// reader.
package outfiletest

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Device numbers of the Linux memory devices, for DeviceNode.
const (
	Null = 3 // /dev/null: takes everything
	Full = 7 // /dev/full: every write fails with ENOSPC
)

// DeviceNode makes a character device with the numbers of /dev/null or
// /dev/full (major 1, minor Null or Full) named name in a temporary
// directory. It skips the test, saying why, where device nodes cannot be
// made (not root, no CAP_MKNOD) or opened (a nodev mount).
func DeviceNode(t testing.TB, name string, minor uint32) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(1, minor))); err != nil {
		t.Skipf("cannot make a device node (needs root/CAP_MKNOD): %v", err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("cannot open a device node here (nodev mount?): %v", err)
	}
	f.Close()
	return p
}

// FIFO makes a FIFO named name in dir and starts a reader on it; the
// channel gets everything written until the last writer closes (or the
// open's error).
func FIFO(t testing.TB, dir, name string) (string, <-chan string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := unix.Mkfifo(p, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	got := make(chan string, 1)
	go func() {
		f, err := os.Open(p)
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(f)
		f.Close()
		got <- string(b)
	}()
	return p, got
}

// Contents returns the contents of the file at p, failing the test if it
// cannot be read.
func Contents(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
