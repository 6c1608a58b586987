package bounded

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

func TestQuote(t *testing.T) {
	if got := Quote("a dog"); got != `"a dog"` {
		t.Errorf("Quote(short) = %s", got)
	}
	long := strings.Repeat("é", 1<<20)
	got := Quote(long)
	if !strings.HasSuffix(got, "…") || utf8.RuneCountInString(got) != QuoteLen+3 {
		t.Errorf("Quote of 1 M runes = %d runes: %.40s…", utf8.RuneCountInString(got), got)
	}
	if got := Quote("\xff\n"); got != `"\xff\n"` {
		t.Errorf("Quote escapes: %s", got)
	}
}

func TestReadFileLimits(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "config.json")
	os.WriteFile(small, []byte("{}"), 0o644)
	if b, err := ReadFile(small, 2); err != nil || string(b) != "{}" {
		t.Errorf("ReadFile at the limit = %q, %v", b, err)
	}
	if _, err := ReadFile(small, 1); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), small) {
		t.Errorf("over the limit: %v", err)
	}
	// A sparse 3 GB file is refused from its size, without reading it.
	huge := filepath.Join(dir, "huge.json")
	f, _ := os.Create(huge)
	f.Truncate(3 << 30)
	f.Close()
	start := time.Now()
	if _, err := ReadFile(huge, ConfigLimit); !errors.Is(err, ErrTooLarge) {
		t.Errorf("3 GB file: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusing a 3 GB file took %v", d)
	}
	// Devices and directories are refused by name.
	for path, kind := range map[string]string{"/dev/zero": "character device", dir: "directory"} {
		if _, err := os.Stat(path); err != nil {
			continue
		}
		if _, err := ReadFile(path, ConfigLimit); !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), kind) {
			t.Errorf("%s: %v, want ErrNotRegular saying %s", path, err, kind)
		}
	}
}

func TestOpenFIFODoesNotBlock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() { _, err := ReadFile(p, ConfigLimit); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "FIFO") {
			t.Errorf("err = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadFile blocked on a FIFO")
	}
}

// endless is an infinite stream of bytes.
type endless struct{}

func (endless) Read(p []byte) (int, error) { return len(p), nil }

func TestReadAllStops(t *testing.T) {
	_, err := ReadAll("stream", endless{}, 1<<20)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "stream") {
		t.Errorf("err = %v", err)
	}
	b, err := ReadAll("r", io.LimitReader(endless{}, 5000), 5000)
	if err != nil || len(b) != 5000 {
		t.Errorf("at the limit: %d bytes, %v", len(b), err)
	}
}
