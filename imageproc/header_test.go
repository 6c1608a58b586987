package imageproc

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	img := image.NewRGBA(image.Rect(0, 0, 300, 200))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	img.Set(0, 0, color.RGBA{1, 2, 3, 255})
	var pb, jb bytes.Buffer
	png.Encode(&pb, img)
	jpeg.Encode(&jb, img, nil)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		name string
		data []byte
		want error
	}{
		{"ok.png", pb.Bytes(), nil},
		{"ok.jpg", jb.Bytes(), nil},
		{"trailing.jpg", append(append([]byte{}, jb.Bytes()...), "junk after EOI"...), nil},
		{"cut.png", pb.Bytes()[:pb.Len()*2/3], ErrTruncated},
		{"cut.jpg", jb.Bytes()[:jb.Len()*2/3], ErrTruncated},
		{"header.png", pb.Bytes()[:20], ErrTruncated},
		{"empty.png", nil, ErrNotImage},
		{"text.png", []byte("not an image at all"), ErrNotImage},
	} {
		p := write(c.name, c.data)
		h, err := CheckFile(p, 0)
		if !errors.Is(err, c.want) || (err == nil) != (c.want == nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %q does not name the file", c.name, err)
		}
		if err == nil && (h.Width != 300 || h.Height != 200) {
			t.Errorf("%s: size %dx%d", c.name, h.Width, h.Height)
		}
		// What CheckFile refuses, Decode refuses too.
		if _, derr := DecodeFile(p, 0); c.want != nil && derr == nil {
			t.Errorf("%s: CheckFile refuses what DecodeFile reads", c.name)
		}
	}
	if _, err := CheckFile(write("big.png", pb.Bytes()), 1000); !errors.Is(err, ErrTooLarge) {
		t.Errorf("pixel limit: %v", err)
	}
	if _, err := CheckFile(dir, 0); !errors.Is(err, ErrNotImage) || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a directory: %v", err)
	}
	if _, err := CheckFile(filepath.Join(dir, "missing.png"), 0); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}

// TestCheckFileAcceptsWhatDecodes: every fixture image that decodes passes
// CheckFile (no false alarm on a real file).
func TestCheckFileAcceptsWhatDecodes(t *testing.T) {
	paths, _ := filepath.Glob("../testdata/images/*")
	if len(paths) == 0 {
		t.Fatal("no fixture images in ../testdata/images")
	}
	n := 0
	for _, p := range paths {
		if _, err := DecodeFile(p, 0); err != nil {
			continue
		}
		n++
		if _, err := CheckFile(p, 0); err != nil {
			t.Errorf("%s decodes, but CheckFile: %v", p, err)
		}
	}
	t.Logf("%d decodable fixtures checked", n)
}
