package imageproc

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The JPEG decoder fixtures: testdata/images/jpeg/*.jpg, written by
// testdata/images/make_jpeg_fixtures.py with Pillow 12.0.0 and libjpeg-turbo's
// cjpeg/jpegtran, and jpeg/pillow.json with the SHA-256 of Pillow's
// convert("RGB") of each (or Pillow's error for the files it refuses).

const jpegFixtureDir = fixtureDir + "/jpeg"

type jpegFixtures struct {
	Images []struct {
		File          string `json:"file"`
		Width, Height int
		PilMode       string `json:"pil_mode"`
		RGBSha256     string `json:"rgb_sha256"`
		Note          string `json:"note"`
	} `json:"images"`
	Bad []struct {
		File        string  `json:"file"`
		PillowError *string `json:"pillow_error"`
		Note        string  `json:"note"`
	} `json:"bad"`
}

func loadJPEGFixtures(t testing.TB) *jpegFixtures {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(jpegFixtureDir, "pillow.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fs jpegFixtures
	if err := json.Unmarshal(data, &fs); err != nil {
		t.Fatal(err)
	}
	return &fs
}

// TestJPEGPillowExact: every pixel of every generated JPEG (all subsamplings
// libjpeg accepts, progressive scripts with successive approximation, restart
// intervals, odd sizes, quality 1 and 100, optimised tables, grey, RGB, CMYK,
// YCCK, the colour-space rules, a damaged restart interval) equals Pillow's
// decode.
func TestJPEGPillowExact(t *testing.T) {
	fs := loadJPEGFixtures(t)
	if len(fs.Images) < 50 {
		t.Fatalf("only %d JPEG fixtures", len(fs.Images))
	}
	for _, e := range fs.Images {
		t.Run(e.File, func(t *testing.T) {
			t.Parallel()
			img, err := DecodeFile(filepath.Join(jpegFixtureDir, e.File), 0)
			if err != nil {
				t.Fatalf("%s (%s): %v", e.File, e.Note, err)
			}
			if img.W != e.Width || img.H != e.Height {
				t.Fatalf("size %dx%d, Pillow %dx%d", img.W, img.H, e.Width, e.Height)
			}
			if got := sha256Hex(img.Pix); got != e.RGBSha256 {
				t.Errorf("%s (%s, Pillow mode %s): RGB differs from Pillow's decode", e.File, e.Note, e.PilMode)
			}
		})
	}
}

// TestJPEGPillowRefuses: the files Pillow refuses are refused, with the
// matching error class and the file's name in the message.
func TestJPEGPillowRefuses(t *testing.T) {
	fs := loadJPEGFixtures(t)
	want := map[string]error{
		"bad_12bit.jpg":            ErrUnsupported,
		"bad_arith.jpg":            ErrUnsupported,
		"bad_truncated_half.jpg":   ErrTruncated,
		"bad_truncated_prog.jpg":   ErrTruncated,
		"bad_noeoi.jpg":            ErrTruncated,
		"bad_huge_65535x65535.jpg": ErrTooLarge,
	}
	for _, e := range fs.Bad {
		path := filepath.Join(jpegFixtureDir, e.File)
		_, err := DecodeFile(path, 0)
		if err == nil {
			t.Errorf("%s (%s): decoded; Pillow: %v", e.File, e.Note, e.PillowError)
			continue
		}
		if e.PillowError == nil && e.File != "bad_arith.jpg" {
			t.Errorf("%s: Pillow decodes it, blipcuda refuses: %v", e.File, err)
		}
		if w, ok := want[e.File]; !ok || !errors.Is(err, w) {
			t.Errorf("%s: error %v, want %v", e.File, err, want[e.File])
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error does not name the file: %v", e.File, err)
		}
	}
}

// TestJPEGHugeHeaderNoAllocation: a header declaring 65535×65535 is refused
// from the header alone, before any sample buffer is made, even when the
// caller's limit would allow it to be decoded further.
func TestJPEGHugeHeaderNoAllocation(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(jpegFixtureDir, "bad_huge_65535x65535.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{0, 1 << 30} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := Decode(bytes.NewReader(data), "huge.jpg", limit)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("limit %d: error %v, want ErrTooLarge", limit, err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
			t.Errorf("limit %d: %d bytes allocated before refusing", limit, n)
		}
	}
	// Within the pixel limit but a thin frame whose MCU padding would need
	// far more memory than its pixels: refused by decodeJPEG's own budget.
	d := &jpegDecoder{maxPixels: 1 << 16}
	seg := []byte{8, 0xff, 0xf0, 0, 1, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1}
	if err := d.frame(0xc2, seg); err != nil {
		t.Fatal(err)
	}
	if err := d.allocate(); !errors.Is(err, ErrTooLarge) {
		t.Errorf("1x65520 4:2:0 progressive with limit 65536: %v, want ErrTooLarge", err)
	}
}

// TestJPEGCorruptNoPanic flips, cuts and repeats bytes of the fixtures: every
// result is an image or a classified error (the fuzzer does this at length).
func TestJPEGCorruptNoPanic(t *testing.T) {
	fs := loadJPEGFixtures(t)
	for i, e := range fs.Images {
		if i%4 != 0 {
			continue
		}
		data, err := os.ReadFile(filepath.Join(jpegFixtureDir, e.File))
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 40; j++ {
			m := append([]byte(nil), data...)
			p := (j*7919 + 13) % len(m)
			switch j % 3 {
			case 0:
				m[p] ^= byte(1 << (j % 8))
			case 1:
				m = m[:p]
			case 2:
				m = append(m[:p:p], data[p/2:]...)
			}
			img, err := Decode(bytes.NewReader(m), e.File, 1<<20)
			if err != nil {
				if !errors.Is(err, ErrNotImage) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrTruncated) &&
					!errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) || strings.Contains(err.Error(), "panic") {
					t.Fatalf("%s mutation %d: %v", e.File, j, err)
				}
				continue
			}
			if !img.valid() {
				t.Fatalf("%s mutation %d: invalid image", e.File, j)
			}
		}
	}
}

// FuzzJPEG: the JPEG decoder on arbitrary bytes behind a JPEG signature never
// panics, classifies every failure, keeps to the pixel limit and returns the
// size its header declares. Seeds: every JPEG fixture up to 16 KiB.
func FuzzJPEG(f *testing.F) {
	for _, dir := range []string{fixtureDir, jpegFixtureDir} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".jpg") {
				continue
			}
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				f.Fatal(err)
			}
			if len(data) <= 16<<10 {
				f.Add(data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			data = append([]byte{0xff, 0xd8}, data...)
		}
		data[0], data[1] = 0xff, 0xd8
		img, err := Decode(bytes.NewReader(data), "fuzz.jpg", fuzzLimit)
		if err != nil {
			if img != nil {
				t.Fatal("image and error")
			}
			if !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCorrupt) &&
				!errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrNotImage) {
				t.Fatalf("unclassified error: %v", err)
			}
			if strings.Contains(err.Error(), "panic") || !strings.Contains(err.Error(), "fuzz.jpg") {
				t.Fatalf("bad error: %v", err)
			}
			return
		}
		cfg, err := jpegConfig(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("decoded, but the header does not parse: %v", err)
		}
		if !img.valid() || img.W != cfg.Width || img.H != cfg.Height || img.W*img.H > fuzzLimit {
			t.Fatalf("decoded %dx%d, header %dx%d", img.W, img.H, cfg.Width, cfg.Height)
		}
	})
}
