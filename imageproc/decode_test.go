package imageproc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestBadFiles(t *testing.T) {
	fsx := loadFixtures(t)
	want := map[string]error{
		"bad_empty.png":              ErrNotImage,
		"bad_text.jpg":               ErrNotImage,
		"bad_header_only.png":        ErrTruncated,
		"bad_truncated.png":          ErrTruncated,
		"bad_truncated.jpg":          ErrTruncated,
		"bad_truncated.gif":          ErrTruncated,
		"bad_huge_100000x100000.png": ErrTooLarge,
		"bad_zero_0x10.bmp":          ErrUnsupported, // x/image/bmp calls a zero width "unsupported"
	}
	if len(fsx.Bad) != len(want) {
		t.Errorf("fixtures list %d bad files, test knows %d", len(fsx.Bad), len(want))
	}
	for _, b := range fsx.Bad {
		sentinel, ok := want[b.File]
		if !ok {
			t.Errorf("no expectation for %s", b.File)
			continue
		}
		if b.PillowError == nil {
			t.Errorf("%s: Pillow opens it; Go refusing it would be a difference", b.File)
		}
		path := filepath.Join(fixtureDir, b.File)
		img, err := DecodeFile(path, 0)
		if img != nil || !errors.Is(err, sentinel) {
			t.Errorf("%s: got %v, want an error wrapping %q", b.File, err, sentinel)
			continue
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error does not name the file: %v", b.File, err)
		}
		t.Logf("%s: %v (Pillow: %s)", b.File, err, *b.PillowError)
	}
	if _, err := DecodeFile(filepath.Join(fixtureDir, "does-not-exist.png"), 0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// countingReader counts the bytes handed out.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestTooLargeRefusedBeforeDecoding proves that the 100000×100000 header is
// refused from the header alone: quickly, without reading the rest of the
// stream and without allocating anything near the 3·10^10-byte image.
func TestTooLargeRefusedBeforeDecoding(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(fixtureDir, "bad_huge_100000x100000.png"))
	if err != nil {
		t.Fatal(err)
	}
	// Append 1 MiB of junk: it must not be read.
	stream := append(append([]byte(nil), data...), make([]byte, 1<<20)...)
	cr := &countingReader{r: bytes.NewReader(stream)}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	img, err := Decode(cr, "huge.png", 0)
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	if img != nil || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("refused in %v, allocated %d bytes, read %d bytes: %v", elapsed, alloc, cr.n, err)
	if alloc > 1<<20 {
		t.Errorf("allocated %d bytes before refusing", alloc)
	}
	if cr.n > 128<<10 {
		t.Errorf("read %d bytes before refusing", cr.n)
	}
	if elapsed > time.Second {
		t.Errorf("took %v", elapsed)
	}
}

// TestPixelLimitEveryFormat: the limit applies to every format, at exactly
// width·height.
func TestPixelLimitEveryFormat(t *testing.T) {
	for _, name := range []string{"photo_97x71.png", "photo_97x71.gif", "photo_97x71.bmp", "photo_97x71.webp",
		"webp_lossy_97x71.webp", "jpg_photo_200x150_444.jpg"} {
		data, err := os.ReadFile(filepath.Join(fixtureDir, name))
		if err != nil {
			t.Fatal(err)
		}
		img, err := Decode(bytes.NewReader(data), name, 0)
		if err != nil {
			t.Fatal(err)
		}
		px := img.W * img.H
		if _, err := Decode(bytes.NewReader(data), name, px); err != nil {
			t.Errorf("%s at limit %d: %v", name, px, err)
		}
		if _, err := Decode(bytes.NewReader(data), name, px-1); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s at limit %d: %v, want ErrTooLarge", name, px-1, err)
		}
	}
}

// errReader fails after handing out some bytes.
type errReader struct {
	data []byte
	err  error
}

func (e *errReader) Read(p []byte) (int, error) {
	if len(e.data) == 0 {
		return 0, e.err
	}
	n := copy(p, e.data)
	e.data = e.data[n:]
	return n, nil
}

func TestReadErrorIsNotCorruption(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(fixtureDir, "photo_97x71.png"))
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk on fire")
	for _, n := range []int{0, 20, len(data) / 2} {
		_, err := Decode(&errReader{data: data[:n], err: boom}, "x.png", 0)
		if !errors.Is(err, boom) || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTruncated) {
			t.Errorf("after %d bytes: %v, want the read error", n, err)
		}
	}
}

func TestUnsupportedAndCorrupt(t *testing.T) {
	// An 8-bit RLE-compressed BMP: valid, but x/image/bmp does not implement RLE.
	var b bytes.Buffer
	b.WriteString("BM")
	binary.Write(&b, binary.LittleEndian, []uint32{54 + 1024 + 4, 0, 54 + 1024})
	binary.Write(&b, binary.LittleEndian, []any{uint32(40), int32(2), int32(2), uint16(1), uint16(8), uint32(1), uint32(4), int32(0), int32(0), uint32(256), uint32(0)})
	b.Write(make([]byte, 1024+4))
	if _, err := Decode(bytes.NewReader(b.Bytes()), "rle.bmp", 0); !errors.Is(err, ErrUnsupported) {
		t.Errorf("RLE BMP: %v, want ErrUnsupported", err)
	}
	// A PNG with a broken IDAT checksum.
	data, err := os.ReadFile(filepath.Join(fixtureDir, "photo_97x71.png"))
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), data...)
	i := bytes.Index(bad, []byte("IDAT"))
	bad[i+40] ^= 0xff
	if _, err := Decode(bytes.NewReader(bad), "crc.png", 0); !errors.Is(err, ErrCorrupt) {
		t.Errorf("bad CRC: %v, want ErrCorrupt", err)
	}
	// A GIF header declaring 0×0.
	if _, err := Decode(strings.NewReader("GIF89a\x00\x00\x00\x00\x00\x00\x00;"), "zero.gif", 0); !errors.Is(err, ErrCorrupt) {
		t.Errorf("0x0 GIF: %v, want ErrCorrupt", err)
	}
}

func TestDecoderPanicIsRecovered(t *testing.T) {
	_, err := safeCall(func() (int, error) { panic("index out of range") })
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "panic") {
		t.Fatalf("got %v", err)
	}
	e := decodeError("f.webp", "webp", "data", err)
	if !errors.Is(e, ErrCorrupt) || !strings.Contains(e.Error(), "f.webp") {
		t.Fatalf("got %v", e)
	}
}

func TestSniff(t *testing.T) {
	for head, want := range map[string]string{
		"\x89PNG\r\n\x1a\nxxxx": "png", "\xff\xd8\xff\xe0": "jpeg", "GIF87a": "gif", "GIF89a": "gif",
		"BM\x00\x00": "bmp", "RIFF\x00\x00\x00\x00WEBP": "webp", "RIFF\x00\x00\x00\x00WAVE": "", "II*\x00": "",
	} {
		if got := Format([]byte(head)); got != want {
			t.Errorf("Format(%q) = %q, want %q", head, got, want)
		}
	}
}

func ExampleDecodeFile() {
	img, err := DecodeFile("../testdata/images/photo_97x71.png", 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(img.W, img.H, len(img.Pix))
	_, err = DecodeFile("../testdata/images/bad_huge_100000x100000.png", 0)
	fmt.Println(errors.Is(err, ErrTooLarge))
	// Output:
	// 97 71 20661
	// true
}
