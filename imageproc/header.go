package imageproc

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
)

// Header is what CheckFile learns about an image without decoding it.
type Header struct {
	// Format is "jpeg", "png", "gif", "bmp" or "webp".
	Format string
	// Width and Height are the declared size in pixels.
	Width, Height int
}

// tailLen is how much of a file's end CheckFile reads to find the format's
// end marker.
const tailLen = 4096

// CheckFile reads the header of the image file at path, and its end, and
// reports the errors Decode would report that can be found there, without
// decoding any pixels: not an image (ErrNotImage), a header that does not
// parse (ErrCorrupt, ErrTruncated, ErrUnsupported), a size over maxPixels
// (ErrTooLarge; maxPixels ≤ 0 selects DefaultMaxPixels), and, for PNG and
// JPEG, a file cut short before its end marker (IEND, EOI: ErrTruncated).
// It is quick (a few kilobytes read per file), for checking every input of
// a long run before it starts; an image it passes can still fail to decode.
// Only regular files are read: a directory, FIFO or device is refused
// with ErrNotImage. Errors name path as Decode's do.
func CheckFile(path string, maxPixels int) (Header, error) {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	// A FIFO or device would block or never end: only files are checked.
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		return Header{}, fmt.Errorf("imageproc: %s: %w: not a regular file (%v)", path, ErrNotImage, st.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return Header{}, fmt.Errorf("imageproc: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 16<<10)
	head, err := br.Peek(12)
	if len(head) == 0 {
		if err != nil && err != io.EOF {
			return Header{}, fmt.Errorf("imageproc: %s: reading: %w", path, err)
		}
		return Header{}, fmt.Errorf("imageproc: %s: %w: empty file", path, ErrNotImage)
	}
	format := Format(head)
	if format == "" {
		return Header{}, fmt.Errorf("imageproc: %s: %w: unrecognised header % x", path, ErrNotImage, head)
	}
	cfg, err := safeCall(func() (imageConfig, error) {
		c, err := decodeConfig(format, br)
		return imageConfig{c.Width, c.Height}, err
	})
	if err != nil {
		return Header{}, decodeError(path, format, "header", err)
	}
	h := Header{Format: format, Width: cfg.w, Height: cfg.h}
	if cfg.w <= 0 || cfg.h <= 0 {
		return h, fmt.Errorf("imageproc: %s: %w: %s declares size %dx%d", path, ErrCorrupt, format, cfg.w, cfg.h)
	}
	if px := int64(cfg.w) * int64(cfg.h); px > int64(maxPixels) {
		return h, fmt.Errorf("imageproc: %s: %w: %s declares %dx%d = %d pixels, limit %d",
			path, ErrTooLarge, format, cfg.w, cfg.h, px, maxPixels)
	}
	var marker []byte
	switch format {
	case "png":
		marker = []byte("IEND")
	case "jpeg":
		marker = []byte{0xff, 0xd9}
	default:
		return h, nil
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return h, nil // not a file whose end can be read
	}
	off := max(st.Size()-tailLen, 0)
	tail := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(tail, off); err != nil && err != io.EOF {
		return h, fmt.Errorf("imageproc: %s: reading: %w", path, err)
	}
	if !bytes.Contains(tail, marker) {
		return h, fmt.Errorf("imageproc: %s: %w: the %s data has no end marker (the file was cut short?)",
			path, ErrTruncated, format)
	}
	return h, nil
}

type imageConfig struct{ w, h int }
