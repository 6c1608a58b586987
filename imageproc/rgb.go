package imageproc

import (
	"fmt"
	"image"
	"image/color"
)

// RGB is an 8-bit RGB image stored interleaved, row-major (HWC): the pixel at
// (x, y) is Pix[3*(y*W+x) : 3*(y*W+x)+3] = R, G, B. It implements image.Image.
type RGB struct {
	W, H int
	Pix  []uint8
}

// NewRGB returns a zeroed W×H image. It panics if a dimension is negative or
// the size overflows int, like image.NewRGBA.
func NewRGB(w, h int) *RGB {
	if w < 0 || h < 0 {
		panic(fmt.Sprintf("imageproc: negative image size %dx%d", w, h))
	}
	n := w * h * 3
	if w != 0 && (n/3)/w != h {
		panic(fmt.Sprintf("imageproc: image size %dx%d overflows", w, h))
	}
	return &RGB{W: w, H: h, Pix: make([]uint8, n)}
}

// ColorModel implements image.Image.
func (m *RGB) ColorModel() color.Model { return color.RGBAModel }

// Bounds implements image.Image; the image starts at (0, 0).
func (m *RGB) Bounds() image.Rectangle { return image.Rect(0, 0, m.W, m.H) }

// At implements image.Image. Pixels outside the bounds are transparent black.
func (m *RGB) At(x, y int) color.Color {
	if x < 0 || y < 0 || x >= m.W || y >= m.H {
		return color.RGBA{}
	}
	i := 3 * (y*m.W + x)
	return color.RGBA{m.Pix[i], m.Pix[i+1], m.Pix[i+2], 0xff}
}

// Clone returns a deep copy of m.
func (m *RGB) Clone() *RGB {
	return &RGB{W: m.W, H: m.H, Pix: append([]uint8(nil), m.Pix...)}
}

// valid reports whether the fields are consistent.
func (m *RGB) valid() bool {
	return m != nil && m.W > 0 && m.H > 0 && len(m.Pix) == 3*m.W*m.H && (3*m.W*m.H)/3/m.W == m.H
}
