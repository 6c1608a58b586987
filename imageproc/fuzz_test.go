package imageproc

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzLimit keeps the fuzzers from spending time on huge declared images;
// the limit logic itself is what is exercised.
const fuzzLimit = 1 << 18

// FuzzDecode: arbitrary bytes never panic, every failure wraps one of the
// sentinel errors, and every success respects the pixel limit. Seeds are the
// small fixtures of every format, good and bad.
func FuzzDecode(f *testing.F) {
	entries, err := os.ReadDir(fixtureDir)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasSuffix(n, ".json") || strings.HasSuffix(n, ".py") || strings.HasSuffix(n, ".txt") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(fixtureDir, n))
		if err != nil {
			f.Fatal(err)
		}
		if len(data) <= 16<<10 {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := Decode(bytes.NewReader(data), "fuzz", fuzzLimit)
		if err != nil {
			if img != nil {
				t.Fatal("image and error")
			}
			if !errors.Is(err, ErrNotImage) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrTruncated) &&
				!errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("unclassified error: %v", err)
			}
			if strings.Contains(err.Error(), "panic") {
				// Recovered, but worth knowing about: record it as a failure so
				// that the fuzzer reports the input.
				t.Fatalf("recovered panic: %v", err)
			}
			return
		}
		if !img.valid() || img.W*img.H > fuzzLimit {
			t.Fatalf("bad result %dx%d (%d bytes)", img.W, img.H, len(img.Pix))
		}
		// A tiny resize of every decodable input.
		out := ResizeBicubic(img, 1+img.W%7, 1+img.H%5)
		if !out.valid() {
			t.Fatal("bad resize")
		}
	})
}

// FuzzResize: random small sizes never panic and give the requested size; the
// uniform-image property holds.
func FuzzResize(f *testing.F) {
	f.Add(uint16(1), uint16(1), uint16(384), uint16(384), uint64(1))
	f.Add(uint16(640), uint16(480), uint16(384), uint16(384), uint64(2))
	f.Add(uint16(7), uint16(500), uint16(3), uint16(1), uint64(3))
	f.Add(uint16(1), uint16(2), uint16(1000), uint16(1), uint64(4))
	f.Fuzz(func(t *testing.T, w, h, ow, oh uint16, seed uint64) {
		sw, sh := 1+int(w)%300, 1+int(h)%300
		dw, dh := 1+int(ow)%400, 1+int(oh)%400
		r := rand.New(rand.NewPCG(seed, 0))
		src := randomRGB(r, sw, sh)
		before := append([]uint8(nil), src.Pix...)
		out := ResizeBicubic(src, dw, dh)
		if out.W != dw || out.H != dh || len(out.Pix) != 3*dw*dh {
			t.Fatalf("%dx%d -> %dx%d gave %dx%d (%d bytes)", sw, sh, dw, dh, out.W, out.H, len(out.Pix))
		}
		if !bytes.Equal(before, src.Pix) {
			t.Fatal("source modified")
		}
		if sw == dw && sh == dh && !bytes.Equal(out.Pix, src.Pix) {
			t.Fatal("identity resize changed pixels")
		}
		v := uint8(seed)
		for i := range src.Pix {
			src.Pix[i] = v
		}
		for i, p := range ResizeBicubic(src, dw, dh).Pix {
			if p != v {
				t.Fatalf("uniform %d: %dx%d -> %dx%d value %d at %d", v, sw, sh, dw, dh, p, i)
			}
		}
	})
}

func BenchmarkPreprocess640x480(b *testing.B) {
	img := randomRGB(rand.New(rand.NewPCG(5, 6)), 640, 480)
	c := DefaultConfig()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Preprocess(img); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoadPNG640x480(b *testing.B) {
	c := DefaultConfig()
	path := filepath.Join(fixtureDir, "photo_640x480.png")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Load(path, 0); err != nil {
			b.Fatal(err)
		}
	}
}
