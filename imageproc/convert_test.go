package imageproc

import (
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"testing"
)

// Mode conversions against Pillow's convert("RGB"). The fixtures
// (TestFixturesExact) check every mode end to end on real files: RGBA, P,
// P with tRNS, L, LA, 1, I;16, I;16 with tRNS, 16-bit RGB / RGBA / LA, RGB with
// a tRNS colour key, 2-bit grey, GIF (P, with transparency, frame offset),
// BMP (24/32/8/1-bit) and WebP (RGB, RGBA). These unit tests pin the rules on
// hand-made Go images.

func rgbOf(t *testing.T, img image.Image) [][3]uint8 {
	t.Helper()
	m := ToRGB(img)
	b := img.Bounds()
	if m.W != b.Dx() || m.H != b.Dy() || len(m.Pix) != 3*m.W*m.H {
		t.Fatalf("ToRGB size %dx%d (%d bytes), want %dx%d", m.W, m.H, len(m.Pix), b.Dx(), b.Dy())
	}
	out := make([][3]uint8, m.W*m.H)
	for i := range out {
		out[i] = [3]uint8(m.Pix[3*i : 3*i+3])
	}
	return out
}

func expectPixels(t *testing.T, what string, got, want [][3]uint8) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d pixels, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%s: pixel %d = %v, want %v", what, i, got[i], want[i])
		}
	}
}

func TestToRGBNRGBADropsAlpha(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 3, 1))
	copy(m.Pix, []uint8{10, 20, 30, 0, 200, 100, 50, 128, 1, 2, 3, 255})
	// Pillow keeps the stored colour whatever the alpha (no compositing).
	expectPixels(t, "NRGBA", rgbOf(t, m), [][3]uint8{{10, 20, 30}, {200, 100, 50}, {1, 2, 3}})
}

func TestToRGBRGBAUnpremultiplies(t *testing.T) {
	m := image.NewRGBA(image.Rect(0, 0, 3, 1))
	copy(m.Pix, []uint8{10, 20, 30, 255, 50, 25, 0, 128, 9, 9, 9, 0})
	expectPixels(t, "RGBA", rgbOf(t, m), [][3]uint8{{10, 20, 30}, {99, 49, 0}, {0, 0, 0}})
}

func TestToRGBGray(t *testing.T) {
	m := image.NewGray(image.Rect(0, 0, 2, 1))
	copy(m.Pix, []uint8{0, 77})
	expectPixels(t, "Gray", rgbOf(t, m), [][3]uint8{{0, 0, 0}, {77, 77, 77}})
}

func TestToRGBGray16Clips(t *testing.T) {
	// Pillow: I;16 -> RGB clips to 255 (measured with Pillow 12.0.0:
	// [0, 100, 255, 256, 1000, 65535] -> [0, 100, 255, 255, 255, 255]).
	m := image.NewGray16(image.Rect(0, 0, 6, 1))
	for i, v := range []uint16{0, 100, 255, 256, 1000, 65535} {
		m.SetGray16(i, 0, color.Gray16{Y: v})
	}
	expectPixels(t, "Gray16", rgbOf(t, m), [][3]uint8{{0, 0, 0}, {100, 100, 100}, {255, 255, 255}, {255, 255, 255}, {255, 255, 255}, {255, 255, 255}})
}

func TestToRGB16BitHighByte(t *testing.T) {
	// Pillow opens 16-bit RGB/RGBA PNGs with the "RGB;16B"/"RGBA;16B" unpackers,
	// which keep the high byte (measured: 0x1234, 0xff80, 0x00ff -> 18, 255, 0).
	n := image.NewNRGBA64(image.Rect(0, 0, 1, 1))
	n.SetNRGBA64(0, 0, color.NRGBA64{R: 0x1234, G: 0xff80, B: 0x00ff, A: 0x0001})
	expectPixels(t, "NRGBA64", rgbOf(t, n), [][3]uint8{{0x12, 0xff, 0x00}})
	r := image.NewRGBA64(image.Rect(0, 0, 2, 1))
	r.SetRGBA64(0, 0, color.RGBA64{R: 0x8080, G: 0x7fff, B: 0x0180, A: 0xffff})
	r.SetRGBA64(1, 0, color.RGBA64{R: 0x4000, G: 0x2000, B: 0, A: 0x8000}) // premultiplied
	expectPixels(t, "RGBA64", rgbOf(t, r), [][3]uint8{{0x80, 0x7f, 0x01}, {0x7f, 0x3f, 0}})
}

func TestToRGBGray16WithTRNS(t *testing.T) {
	// Go decodes a 16-bit grey PNG with tRNS to NRGBA64; Pillow still clips.
	n := image.NewNRGBA64(image.Rect(0, 0, 2, 1))
	n.SetNRGBA64(0, 0, color.NRGBA64{R: 0x1234, G: 0x1234, B: 0x1234, A: 0})
	n.SetNRGBA64(1, 0, color.NRGBA64{R: 100, G: 100, B: 100, A: 0xffff})
	got := toRGB(n, true)
	if want := []uint8{255, 255, 255, 100, 100, 100}; string(got.Pix) != string(want) {
		t.Errorf("gray16+tRNS = %v, want %v", got.Pix, want)
	}
}

func TestToRGBPaletted(t *testing.T) {
	pal := color.Palette{
		color.RGBA{10, 20, 30, 255},
		color.NRGBA{200, 100, 50, 0}, // PNG tRNS entry: RGB kept
		color.RGBA{},                 // Go GIF transparent entry
	}
	m := image.NewPaletted(image.Rect(0, 0, 4, 1), pal)
	copy(m.Pix, []uint8{0, 1, 2, 7}) // 7: beyond the palette -> black
	expectPixels(t, "Paletted", rgbOf(t, m), [][3]uint8{{10, 20, 30}, {200, 100, 50}, {0, 0, 0}, {0, 0, 0}})
}

func TestToRGBCMYKLikePillow(t *testing.T) {
	// Values from Pillow 12.0.0: Image.frombytes("CMYK", ...).convert("RGB").
	cases := []struct{ cmyk, rgb [4]uint8 }{
		{[4]uint8{0, 0, 0, 0}, [4]uint8{255, 255, 255}},
		{[4]uint8{255, 255, 255, 255}, [4]uint8{0, 0, 0}},
		{[4]uint8{10, 200, 128, 7}, [4]uint8{238, 53, 124}},
		{[4]uint8{255, 0, 77, 128}, [4]uint8{0, 127, 89}},
		{[4]uint8{1, 2, 3, 254}, [4]uint8{1, 1, 1}},
		{[4]uint8{128, 128, 128, 128}, [4]uint8{63, 63, 63}},
	}
	m := image.NewCMYK(image.Rect(0, 0, len(cases), 1))
	want := make([][3]uint8, len(cases))
	for i, c := range cases {
		copy(m.Pix[4*i:], c.cmyk[:])
		want[i] = [3]uint8(c.rgb[:3])
	}
	expectPixels(t, "CMYK", rgbOf(t, m), want)
}

// TestToRGBYCbCr: *image.YCbCr is converted with libjpeg's fixed-point
// JFIF formulas (checked here against an independent float formulation, for
// 4:4:4 where no upsampling is involved; the upsampling is checked bit-exact
// against Pillow by the jpg_blocks fixtures); a sub-image falls back to Go's
// conversion.
func TestToRGBYCbCr(t *testing.T) {
	m := image.NewYCbCr(image.Rect(0, 0, 256, 3), image.YCbCrSubsampleRatio444)
	for i := range m.Y {
		m.Y[i] = uint8(i * 7)
		m.Cb[i], m.Cr[i] = uint8(i), uint8(255-i*3)
	}
	round := func(f float64) int { return int(math.Floor(f + 0.5)) }
	clamp := func(v int) uint8 { return uint8(max(0, min(255, v))) }
	got := rgbOf(t, m)
	for i := range got {
		y, cb, cr := int(m.Y[i]), int(m.Cb[i])-128, int(m.Cr[i])-128
		want := [3]uint8{
			clamp(y + round(91881*float64(cr)/65536)),
			clamp(y + int(math.Floor((-22554*float64(cb)-46802*float64(cr)+32768)/65536))),
			clamp(y + round(116130*float64(cb)/65536)),
		}
		if got[i] != want {
			t.Fatalf("pixel %d (Y %d Cb %d Cr %d) = %v, want %v", i, y, cb+128, cr+128, got[i], want)
		}
	}
	sub := m.SubImage(image.Rect(1, 1, 4, 3)).(*image.YCbCr)
	gs := rgbOf(t, sub)
	for y := 1; y < 3; y++ {
		for x := 1; x < 4; x++ {
			c := m.YCbCrAt(x, y)
			r, g, b := color.YCbCrToRGB(c.Y, c.Cb, c.Cr)
			if gs[(y-1)*3+x-1] != [3]uint8{r, g, b} {
				t.Errorf("sub-image (%d,%d) = %v, want %v", x, y, gs[(y-1)*3+x-1], [3]uint8{r, g, b})
			}
		}
	}
}

func TestToRGBSubImageAndGeneric(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 4, 3))
	for i := range m.Pix {
		m.Pix[i] = uint8(i)
	}
	sub := m.SubImage(image.Rect(1, 1, 3, 3))
	want := [][3]uint8{{20, 21, 22}, {24, 25, 26}, {36, 37, 38}, {40, 41, 42}}
	expectPixels(t, "SubImage", rgbOf(t, sub), want)

	rgb := ToRGB(m)
	expectPixels(t, "RGB sub", rgbOf(t, ToRGB(rgb)), rgbOf(t, m))
	if c := ToRGB(rgb); &c.Pix[0] == &rgb.Pix[0] {
		t.Error("ToRGB(*RGB) must copy")
	}

	a := image.NewAlpha(image.Rect(0, 0, 2, 1)) // generic path
	a.Pix[0], a.Pix[1] = 0, 200
	expectPixels(t, "Alpha", rgbOf(t, a), [][3]uint8{{0, 0, 0}, {255, 255, 255}})

	if e := ToRGB(image.NewRGBA(image.Rect(0, 0, 0, 5))); e.W != 0 || e.H != 0 || len(e.Pix) != 0 {
		t.Errorf("empty image: %+v", e)
	}
}

func TestRGBImageInterface(t *testing.T) {
	m := NewRGB(2, 1)
	copy(m.Pix, []uint8{1, 2, 3, 4, 5, 6})
	var img image.Image = m
	if img.Bounds() != image.Rect(0, 0, 2, 1) {
		t.Error(img.Bounds())
	}
	if c := img.At(1, 0); c != (color.RGBA{4, 5, 6, 255}) {
		t.Error(c)
	}
	if c := img.At(2, 0); c != (color.RGBA{}) {
		t.Error(c)
	}
}

// TestYUVConvertersAllSizes runs the libjpeg / libwebp conversions over every
// small size and subsampling (edge cases: widths 1–2 use the box filter,
// odd sizes end on half chroma samples) and the GIF block walker over random
// bytes: no panics, right sizes.
func TestYUVConvertersAllSizes(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	ratios := []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410}
	for w := 1; w <= 19; w++ {
		for h := 1; h <= 19; h++ {
			for _, sr := range ratios {
				m := image.NewYCbCr(image.Rect(0, 0, w, h), sr)
				for _, p := range [][]uint8{m.Y, m.Cb, m.Cr} {
					for i := range p {
						p[i] = uint8(r.Uint32())
					}
				}
				if got := ToRGB(m); got.W != w || got.H != h || len(got.Pix) != 3*w*h {
					t.Fatalf("%v %dx%d: got %dx%d", sr, w, h, got.W, got.H)
				}
				if sr == image.YCbCrSubsampleRatio420 {
					if got := webpYUVToRGB(m); got == nil || got.W != w || got.H != h {
						t.Fatalf("webp %dx%d failed", w, h)
					}
				}
			}
		}
	}
	for i := 0; i < 20000; i++ {
		b := make([]byte, r.IntN(64))
		for j := range b {
			b[j] = uint8(r.Uint32())
		}
		if r.IntN(2) == 0 && len(b) > 13 {
			copy(b, "GIF89a")
		}
		gifFirstPalette(b)
	}
}
