package imageproc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"strings"
	"sync"

	"github.com/blipcuda/blipcuda/internal/bounded"
	"golang.org/x/image/bmp"
	"golang.org/x/image/webp"
)

// DefaultMaxPixels is the pixel limit used when a caller passes maxPixels ≤ 0.
// It equals PIL's Image.MAX_IMAGE_PIXELS (Pillow warns above it and refuses
// above twice it; this package refuses above it).
const DefaultMaxPixels = 89_478_485

// Errors wrapped by Decode and DecodeFile; test them with errors.Is.
var (
	// ErrNotImage: the data is empty or is not JPEG, PNG, GIF, BMP or WebP.
	ErrNotImage = errors.New("not a supported image (JPEG, PNG, GIF, BMP, WebP)")
	// ErrTooLarge: the declared size exceeds the pixel limit. It is detected
	// from the header, before any pixel data is decoded.
	ErrTooLarge = errors.New("image exceeds the pixel limit")
	// ErrTruncated: the data ends before the image is complete.
	ErrTruncated = errors.New("image data is truncated")
	// ErrCorrupt: the format is recognised but the data is invalid (including
	// non-positive dimensions and a decoder panic).
	ErrCorrupt = errors.New("image data is corrupt")
	// ErrUnsupported: a valid file that uses a feature Go's decoders lack
	// (e.g. RLE-compressed BMP, 12-bit JPEG).
	ErrUnsupported = errors.New("unsupported image variant")
)

// DecodeFile decodes the image file at path into RGB; see Decode. Only a
// regular file is read: a FIFO, a device or a directory is refused without
// blocking (bounded.ErrNotRegular).
func DecodeFile(path string, maxPixels int) (*RGB, error) {
	rgb, release, err := DecodeFileHeld(path, maxPixels)
	release()
	return rgb, err
}

// DecodeFileHeld is DecodeFile, but the image's share of the decode budget
// (see SetDecodeBudget) stays held until release is called, so that what
// the caller does next with the full-size pixels (resizing them, making a
// thumbnail) counts against the budget too. release must be called, also
// after an error; calling it again does nothing.
func DecodeFileHeld(path string, maxPixels int) (rgb *RGB, release func(), err error) {
	f, _, err := bounded.Open(path)
	if err != nil {
		return nil, func() {}, fmt.Errorf("imageproc: %w", err)
	}
	defer f.Close()
	rgb, held, err := decodeHeld(f, path, maxPixels)
	var once sync.Once
	return rgb, func() { once.Do(func() { decodeBudget.release(held) }) }, err
}

// Decode reads one JPEG, PNG, GIF (first frame), BMP or WebP image from r and
// converts it to RGB with ToRGB's Pillow semantics. name is used in error
// messages (normally the file path).
//
// The header is read first and the image is refused with ErrTooLarge when
// width·height > maxPixels (maxPixels ≤ 0 selects DefaultMaxPixels), before
// any pixel data is decoded or allocated. The decoding then waits for its
// share of the decode budget (see SetDecodeBudget), so that concurrent
// decodes together stay within it. Empty or unrecognised data gives
// ErrNotImage, short data ErrTruncated, invalid data (or a decoder panic)
// ErrCorrupt and unsupported variants ErrUnsupported; read errors from r are
// returned wrapped. Every error names name.
//
// JPEG is decoded by this package's own decoder, to the same RGB bytes as
// Pillow's libjpeg-turbo (see jpeg.go); a JPEG that ends early, even if only
// its EOI marker is missing, is refused with ErrTruncated as Pillow refuses
// it. Lossy WebP is converted from YUV like libwebp (fancy upsampling, BT.601
// limited range), not with Go's JFIF conversion. GIF follows Pillow: the first frame is placed on the logical screen, the
// area outside the frame takes the colour of the transparency index (or of
// index 0), and the transparent palette entry keeps its RGB. 16-bit grey PNGs
// are clipped to 255 (see ToRGB). No EXIF orientation is applied, as in
// BlipImageProcessor.
func Decode(r io.Reader, name string, maxPixels int) (*RGB, error) {
	rgb, held, err := decodeHeld(r, name, maxPixels)
	decodeBudget.release(held)
	return rgb, err
}

// decodeHeld is Decode, returning the pixels of the decode budget it holds
// (released by the caller, whatever the error).
func decodeHeld(r io.Reader, name string, maxPixels int) (rgb *RGB, held int64, err error) {
	defer func() {
		// Defence in depth: the decoders run under safeCall; this catches a
		// panic in the conversions that follow them.
		if p := recover(); p != nil {
			rgb, err = nil, fmt.Errorf("imageproc: %s: %w: panic while converting: %v", name, ErrCorrupt, p)
		}
	}()
	img, gray16, err := decodeImage(r, name, maxPixels, func(px int64) { held = decodeBudget.acquire(px) })
	if err != nil {
		return nil, held, err
	}
	out, ok := img.(*RGB)
	if !ok {
		out = toRGB(img, gray16)
	}
	if !out.valid() {
		return nil, held, fmt.Errorf("imageproc: %s: %w: decoded image is empty", name, ErrCorrupt)
	}
	return out, held, nil
}

// recordingReader remembers the first read error other than io.EOF, so that
// I/O failures are not reported as corrupt images.
type recordingReader struct {
	r   io.Reader
	err error
}

func (rr *recordingReader) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	if err != nil && err != io.EOF && rr.err == nil {
		rr.err = err
	}
	return n, err
}

// Format names the image format of data that starts with head (its first
// 12 bytes are enough) by its magic bytes: "png", "jpeg", "gif", "bmp" or
// "webp", or "" for none of those.
func Format(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(head, []byte("\xff\xd8")):
		return "jpeg"
	case bytes.HasPrefix(head, []byte("GIF87a")), bytes.HasPrefix(head, []byte("GIF89a")):
		return "gif"
	case bytes.HasPrefix(head, []byte("BM")):
		return "bmp"
	case len(head) >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "WEBP":
		return "webp"
	}
	return ""
}

// decodeImage decodes to a Go image. gray16 reports a 16-bit grey PNG that Go
// returned as *image.NRGBA64 (because of a tRNS chunk).
// acquire is called with the declared pixel count once the header has been
// checked, before any pixel data is decoded.
func decodeImage(r io.Reader, name string, maxPixels int, acquire func(px int64)) (img image.Image, gray16 bool, err error) {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	rr := &recordingReader{r: r}
	br := bufio.NewReaderSize(rr, 16<<10)
	readErr := func() error {
		if rr.err != nil {
			return fmt.Errorf("imageproc: %s: reading: %w", name, rr.err)
		}
		return nil
	}
	head, _ := br.Peek(12)
	if err := readErr(); err != nil {
		return nil, false, err
	}
	if len(head) == 0 {
		return nil, false, fmt.Errorf("imageproc: %s: %w: empty file", name, ErrNotImage)
	}
	format := Format(head)
	if format == "" {
		return nil, false, fmt.Errorf("imageproc: %s: %w: unrecognised header % x", name, ErrNotImage, head)
	}

	// Header only: everything the config decoder consumes is kept in hdr and
	// replayed to the full decoder.
	var hdr bytes.Buffer
	cfg, err := safeCall(func() (image.Config, error) { return decodeConfig(format, io.TeeReader(br, &hdr)) })
	if err != nil {
		if e := readErr(); e != nil {
			return nil, false, e
		}
		return nil, false, decodeError(name, format, "header", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, false, fmt.Errorf("imageproc: %s: %w: %s declares size %dx%d", name, ErrCorrupt, format, cfg.Width, cfg.Height)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > int64(maxPixels) {
		return nil, false, fmt.Errorf("imageproc: %s: %w: %s declares %dx%d = %d pixels, limit %d",
			name, ErrTooLarge, format, cfg.Width, cfg.Height, px, maxPixels)
	}
	acquire(int64(cfg.Width) * int64(cfg.Height))
	if format == "png" {
		h := hdr.Bytes()
		// IHDR: bit depth at byte 24, colour type at byte 25 (0 = grey).
		gray16 = len(h) >= 26 && h[24] == 16 && h[25] == 0
	}

	src := io.MultiReader(bytes.NewReader(hdr.Bytes()), br)
	if format == "gif" {
		// Go's decoder reads up to the end of the first frame only. The
		// bytes before that frame's pixels recover the palette entry it
		// blanks for the transparent index: keep at most gifPrefix of them
		// (a GIF whose first frame comes later keeps Go's palette).
		prefix := &cappedBuffer{max: gifPrefix}
		img, err = safeCall(func() (image.Image, error) { return gif.Decode(io.TeeReader(src, prefix)) })
		if err != nil {
			if e := readErr(); e != nil {
				return nil, false, e
			}
			return nil, false, decodeError(name, format, "data", err)
		}
		if p, ok := img.(*image.Paletted); ok {
			img = gifLikePillow(prefix.buf, p, cfg.Width, cfg.Height)
		}
	} else {
		img, err = safeCall(func() (image.Image, error) { return decodeFull(format, src, maxPixels) })
		if err != nil {
			if e := readErr(); e != nil {
				return nil, false, e
			}
			return nil, false, decodeError(name, format, "data", err)
		}
	}
	if format == "webp" {
		// Lossy WebP: convert like libwebp (see webpyuv.go).
		var m *image.YCbCr
		switch t := img.(type) {
		case *image.YCbCr:
			m = t
		case *image.NYCbCrA:
			m = &t.YCbCr
		}
		if m != nil {
			if rgb := webpYUVToRGB(m); rgb != nil {
				img = rgb
			}
		}
	}
	b := img.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 || int64(b.Dx())*int64(b.Dy()) > int64(maxPixels) {
		return nil, false, fmt.Errorf("imageproc: %s: %w: decoded %s has size %dx%d, header said %dx%d",
			name, ErrCorrupt, format, b.Dx(), b.Dy(), cfg.Width, cfg.Height)
	}
	return img, gray16, nil
}

// gifPrefix bounds the bytes of a GIF kept for gifFirstPalette: the header,
// colour tables (768 bytes each) and the extensions before the first frame.
const gifPrefix = 1 << 20

// cappedBuffer keeps the first max bytes written to it and drops the rest.
type cappedBuffer struct {
	buf []byte
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func decodeConfig(format string, r io.Reader) (image.Config, error) {
	switch format {
	case "png":
		return png.DecodeConfig(r)
	case "jpeg":
		return jpegConfig(r)
	case "gif":
		return gif.DecodeConfig(r)
	case "bmp":
		return bmp.DecodeConfig(r)
	case "webp":
		return webp.DecodeConfig(r)
	}
	return image.Config{}, image.ErrFormat
}

func decodeFull(format string, r io.Reader, maxPixels int) (image.Image, error) {
	switch format {
	case "png":
		return png.Decode(r)
	case "jpeg":
		return decodeJPEG(r, maxPixels) // jpeg.go
	case "bmp":
		return bmp.Decode(r)
	case "webp":
		return webp.Decode(r)
	}
	return nil, image.ErrFormat
}

// safeCall runs a decoder and turns a panic into an error.
func safeCall[T any](f func() (T, error)) (v T, err error) {
	defer func() {
		if p := recover(); p != nil {
			var zero T
			v, err = zero, fmt.Errorf("%w: decoder panic: %v", ErrCorrupt, p)
		}
	}()
	return f()
}

// decodeError classifies a decoder error.
func decodeError(name, format, stage string, err error) error {
	if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTruncated) || errors.Is(err, ErrUnsupported) ||
		errors.Is(err, ErrTooLarge) || errors.Is(err, ErrNotImage) { // a recovered panic, or already classified
		return fmt.Errorf("imageproc: %s: decoding %s %s: %w", name, format, stage, err)
	}
	var pngUnsup png.UnsupportedError
	var jpegUnsup jpeg.UnsupportedError
	kind := ErrCorrupt
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		truncationMessage(err.Error()):
		kind = ErrTruncated
	case errors.Is(err, bmp.ErrUnsupported), errors.As(err, &pngUnsup), errors.As(err, &jpegUnsup):
		kind = ErrUnsupported
	}
	return fmt.Errorf("imageproc: %s: decoding %s %s: %w: %w", name, format, stage, kind, err)
}

// truncationMessage recognises the messages Go's decoders give for data that
// ends early without wrapping io.ErrUnexpectedEOF.
func truncationMessage(msg string) bool {
	for _, s := range []string{
		"unexpected EOF",        // most decoders, sometimes as text only
		"not enough image data", // image/gif
		"not enough pixel data", // image/png
		"short Huffman data",    // image/jpeg
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// gifLikePillow rebuilds the first GIF frame the way Pillow presents it: the
// transparent palette entry gets back the RGB stored in the file (Go's decoder
// replaces it with transparent black), and a frame smaller than the logical
// screen is placed on a screen-sized canvas filled with the transparency index,
// or index 0 when there is none.
func gifLikePillow(data []byte, m *image.Paletted, screenW, screenH int) *image.Paletted {
	pal := append(color.Palette(nil), m.Palette...)
	raw, ti, hasTI := gifFirstPalette(data)
	if hasTI && ti < len(pal) && 3*ti+2 < len(raw) {
		pal[ti] = color.RGBA{raw[3*ti], raw[3*ti+1], raw[3*ti+2], 0xff}
	}
	screen := image.Rect(0, 0, screenW, screenH)
	if m.Rect == screen {
		return &image.Paletted{Pix: m.Pix, Stride: m.Stride, Rect: m.Rect, Palette: pal}
	}
	fill := uint8(0)
	if hasTI {
		fill = uint8(ti)
	}
	canvas := image.NewPaletted(screen, pal)
	for i := range canvas.Pix {
		canvas.Pix[i] = fill
	}
	r := m.Rect.Intersect(screen)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		copy(canvas.Pix[canvas.PixOffset(r.Min.X, y):canvas.PixOffset(r.Max.X, y)],
			m.Pix[m.PixOffset(r.Min.X, y):m.PixOffset(r.Max.X, y)])
	}
	return canvas
}

// gifFirstPalette walks the GIF blocks up to the first image descriptor and
// returns the raw RGB colour table that frame uses (local, else global) and
// the transparency index from the graphic control extension before it. It
// returns a nil table when the data cannot be walked.
func gifFirstPalette(d []byte) (table []byte, ti int, hasTI bool) {
	if len(d) < 13 {
		return nil, 0, false
	}
	tableLen := func(flags byte) int { return 3 << ((flags & 7) + 1) }
	p := 13
	var global []byte
	if d[10]&0x80 != 0 {
		n := tableLen(d[10])
		if p+n > len(d) {
			return nil, 0, false
		}
		global, p = d[p:p+n], p+n
	}
	for p < len(d) {
		switch d[p] {
		case 0x21: // extension
			if p+2 > len(d) {
				return nil, 0, false
			}
			label := d[p+1]
			p += 2
			if label == 0xf9 && p+5 <= len(d) && d[p] == 4 {
				hasTI = d[p+1]&1 != 0
				ti = int(d[p+4])
			}
			for { // data sub-blocks
				if p >= len(d) {
					return nil, 0, false
				}
				n := int(d[p])
				p += 1 + n
				if n == 0 {
					break
				}
			}
		case 0x2c: // image descriptor
			if p+10 > len(d) {
				return nil, 0, false
			}
			flags := d[p+9]
			p += 10
			if flags&0x80 != 0 {
				n := tableLen(flags)
				if p+n > len(d) {
					return nil, 0, false
				}
				return d[p : p+n], ti, hasTI
			}
			return global, ti, hasTI
		default:
			return nil, 0, false
		}
	}
	return nil, 0, false
}
