package imageproc

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/blipcuda/blipcuda/internal/bounded"
)

// TestDecodeFileFIFO: a FIFO named like an image is refused at once, not
// waited on.
func TestDecodeFileFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "photo.png")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skipf("mkfifo: %v (the file system has no FIFOs)", err)
	}
	done := make(chan error, 1)
	go func() { _, err := DecodeFile(p, 0); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, bounded.ErrNotRegular) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "FIFO") {
			t.Errorf("err = %v, want ErrNotRegular naming %s and saying FIFO", err, p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("DecodeFile blocked on a FIFO")
	}
}

// endlessGIF is a GIF header followed by comment-extension sub-blocks,
// size bytes in all: the first frame never comes.
type endlessGIF struct{ left int }

func (g *endlessGIF) Read(p []byte) (int, error) {
	if g.left <= 0 {
		return 0, io.EOF
	}
	n := 0
	for n+256 <= len(p) && g.left > 0 {
		p[n] = 255
		for i := 1; i < 256; i++ {
			p[n+i] = 'x'
		}
		n += 256
		g.left -= 256
	}
	return n, nil
}

// TestGIFStreamBounded: a GIF is decoded as a stream; its size does not
// decide what is allocated (it was read whole).
func TestGIFStreamBounded(t *testing.T) {
	head := []byte("GIF89a\x10\x00\x10\x00\x00\x00\x00" + "\x21\xfe") // 16×16, no colour table, a comment extension
	r := io.MultiReader(bytes.NewReader(head), &endlessGIF{left: 64 << 20})
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	_, err := Decode(r, "stream.gif", 0)
	runtime.ReadMemStats(&b)
	if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCorrupt) {
		t.Errorf("err = %v, want a truncated or corrupt GIF", err)
	}
	if n := b.TotalAlloc - a.TotalAlloc; n > 8<<20 {
		t.Errorf("decoding a 64 MB GIF stream allocated %d bytes, want ≤ 8 MiB", n)
	}
}

// TestDecodeBudget: concurrent decodes hold at most the budget's pixels
// at once, and an image larger than the budget still decodes (alone).
func TestDecodeBudget(t *testing.T) {
	encode := func(w, h int) []byte {
		var buf bytes.Buffer
		m := image.NewGray(image.Rect(0, 0, w, h))
		m.Set(1, 1, color.Gray{Y: 200})
		png.Encode(&buf, m)
		return buf.Bytes()
	}
	small, large := encode(30, 30), encode(40, 40)
	old := SetDecodeBudget(1000)
	defer SetDecodeBudget(old)
	decodeBudget.mu.Lock()
	decodeBudget.peak = 0
	decodeBudget.mu.Unlock()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		data := small
		if i%4 == 0 {
			data = large
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := Decode(bytes.NewReader(data), "img.png", 0); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	decodeBudget.mu.Lock()
	peak, used := decodeBudget.peak, decodeBudget.used
	decodeBudget.mu.Unlock()
	if peak > 1000 || peak < 900 {
		t.Errorf("peak pixels held = %d, want 900..1000 (one 30×30 image, or the budget)", peak)
	}
	if used != 0 {
		t.Errorf("%d pixels still held after every decode returned", used)
	}
}

// TestDecodeFileHeld: the budget stays held until release, also after an
// error, and releasing twice is harmless.
func TestDecodeFileHeld(t *testing.T) {
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 30, 30)))
	p := filepath.Join(t.TempDir(), "a.png")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	used := func() int64 {
		decodeBudget.mu.Lock()
		defer decodeBudget.mu.Unlock()
		return decodeBudget.used
	}
	rgb, release, err := DecodeFileHeld(p, 0)
	if err != nil || rgb == nil {
		t.Fatal(err)
	}
	if got := used(); got != 900 {
		t.Errorf("%d pixels held before release, want 900", got)
	}
	release()
	release()
	if got := used(); got != 0 {
		t.Errorf("%d pixels held after release", got)
	}
	bad := filepath.Join(t.TempDir(), "trunc.png")
	os.WriteFile(bad, buf.Bytes()[:60], 0o644)
	_, release, err = DecodeFileHeld(bad, 0)
	release()
	if err == nil || used() != 0 {
		t.Errorf("truncated: err %v, %d pixels held after release", err, used())
	}
}
