package imageproc

import (
	"image"
	"image/color"
)

// ToRGB converts img to 8-bit RGB with the semantics of Pillow's
// Image.convert("RGB"), which is what transformers applies to every non-RGB
// image before preprocessing:
//
//   - alpha is dropped, not composited: the stored colour channels are kept
//     (*image.NRGBA, *image.NRGBA64, *image.NYCbCrA). Go's premultiplied
//     *image.RGBA and *image.RGBA64 are un-premultiplied first, which is exact
//     for opaque pixels (what Go's decoders produce for RGB data) and the best
//     available otherwise; fully transparent premultiplied pixels become black;
//   - palette images are expanded through the palette, palette alpha ignored
//     (entries of type color.NRGBA, as Go's PNG decoder makes for tRNS
//     palettes, keep their RGB); indices beyond the palette give black;
//   - grey (*image.Gray) is replicated to R = G = B;
//   - 16-bit grey (*image.Gray16, Pillow mode "I;16") is clipped to 0..255, as
//     Pillow does: values above 255 become 255 (not the high byte). Pillow
//     really does this; a genuine 16-bit grey photograph comes out mostly white
//     in both pipelines;
//   - 16-bit RGB / RGBA / grey+alpha (*image.RGBA64, *image.NRGBA64) keep the
//     high byte of each sample, as Pillow's "RGB;16B"/"RGBA;16B"/"LA;16B"
//     unpackers do;
//   - *image.YCbCr (what image/jpeg returns) is upsampled and converted like
//     libjpeg-turbo: triangle-filter ("fancy") chroma upsampling and
//     libjpeg's fixed-point JFIF conversion (see jpegyuv.go);
//   - *image.NYCbCrA (what x/image/webp returns for lossy WebP with alpha) is
//     converted like libwebp: fancy upsampling and BT.601 limited-range
//     conversion (see webpyuv.go). A lossy WebP without alpha comes back from
//     x/image/webp as a plain *image.YCbCr that cannot be told from a JPEG;
//     Decode knows the format and handles it;
//   - other YCbCr layouts (sub-images, 4:1:1, 4:1:0) use color.YCbCrToRGB;
//   - CMYK (Adobe JPEG) uses Pillow's cmyk2rgb formula:
//     c' = clip(nk − round(c·nk/255)) with nk = 255 − k.
//
// Other image types go through color.NRGBAModel. The result always starts at
// (0, 0), whatever img.Bounds().Min is.
func ToRGB(img image.Image) *RGB {
	return toRGB(img, false)
}

// toRGB is ToRGB; gray16 says that img is an *image.NRGBA64 that holds a
// 16-bit grey PNG with a tRNS chunk (Pillow mode "I;16"), whose grey channel
// must be clipped rather than shifted.
func toRGB(img image.Image, gray16 bool) *RGB {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return &RGB{}
	}
	out := NewRGB(w, h)
	dst := out.Pix
	switch m := img.(type) {
	case *RGB:
		for y := 0; y < h; y++ {
			i := 3 * ((b.Min.Y+y)*m.W + b.Min.X)
			copy(dst[3*y*w:3*(y+1)*w], m.Pix[i:i+3*w])
		}
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			s := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			d := dst[3*y*w : 3*(y+1)*w]
			for x := 0; x < w; x++ {
				d[3*x], d[3*x+1], d[3*x+2] = s[4*x], s[4*x+1], s[4*x+2]
			}
		}
	case *image.RGBA:
		for y := 0; y < h; y++ {
			s := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			d := dst[3*y*w : 3*(y+1)*w]
			for x := 0; x < w; x++ {
				d[3*x], d[3*x+1], d[3*x+2] = unpremul8(s[4*x], s[4*x+1], s[4*x+2], s[4*x+3])
			}
		}
	case *image.NRGBA64:
		for y := 0; y < h; y++ {
			s := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			d := dst[3*y*w : 3*(y+1)*w]
			for x := 0; x < w; x++ {
				if gray16 {
					v := clip16(s[8*x], s[8*x+1])
					d[3*x], d[3*x+1], d[3*x+2] = v, v, v
				} else {
					// Big-endian samples: the first byte is the high byte.
					d[3*x], d[3*x+1], d[3*x+2] = s[8*x], s[8*x+2], s[8*x+4]
				}
			}
		}
	case *image.RGBA64:
		for y := 0; y < h; y++ {
			s := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			d := dst[3*y*w : 3*(y+1)*w]
			for x := 0; x < w; x++ {
				p := s[8*x : 8*x+8]
				if p[6] == 0xff && p[7] == 0xff {
					d[3*x], d[3*x+1], d[3*x+2] = p[0], p[2], p[4]
					continue
				}
				c := color.NRGBA64Model.Convert(color.RGBA64{
					R: uint16(p[0])<<8 | uint16(p[1]), G: uint16(p[2])<<8 | uint16(p[3]),
					B: uint16(p[4])<<8 | uint16(p[5]), A: uint16(p[6])<<8 | uint16(p[7]),
				}).(color.NRGBA64)
				d[3*x], d[3*x+1], d[3*x+2] = uint8(c.R>>8), uint8(c.G>>8), uint8(c.B>>8)
			}
		}
	case *image.Gray:
		for y := 0; y < h; y++ {
			s := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			d := dst[3*y*w : 3*(y+1)*w]
			for x := 0; x < w; x++ {
				v := s[x]
				d[3*x], d[3*x+1], d[3*x+2] = v, v, v
			}
		}
	case *image.Gray16:
		for y := 0; y < h; y++ {
			s := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			d := dst[3*y*w : 3*(y+1)*w]
			for x := 0; x < w; x++ {
				v := clip16(s[2*x], s[2*x+1])
				d[3*x], d[3*x+1], d[3*x+2] = v, v, v
			}
		}
	case *image.Paletted:
		var lut [256][3]uint8 // indices beyond the palette stay black
		for i, c := range m.Palette {
			if i == 256 {
				break
			}
			lut[i] = paletteRGB(c)
		}
		for y := 0; y < h; y++ {
			s := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			d := dst[3*y*w : 3*(y+1)*w]
			for x := 0; x < w; x++ {
				c := lut[s[x]]
				d[3*x], d[3*x+1], d[3*x+2] = c[0], c[1], c[2]
			}
		}
	case *image.YCbCr:
		if rgb := jpegYCbCrToRGB(m); rgb != nil {
			return rgb
		}
		ycbcrToRGB(m, b, dst)
	case *image.NYCbCrA:
		if rgb := webpYUVToRGB(&m.YCbCr); rgb != nil {
			return rgb
		}
		ycbcrToRGB(&m.YCbCr, b, dst)
	case *image.CMYK:
		for y := 0; y < h; y++ {
			s := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			d := dst[3*y*w : 3*(y+1)*w]
			for x := 0; x < w; x++ {
				d[3*x], d[3*x+1], d[3*x+2] = cmykToRGB(s[4*x], s[4*x+1], s[4*x+2], s[4*x+3])
			}
		}
	default:
		for y := 0; y < h; y++ {
			d := dst[3*y*w : 3*(y+1)*w]
			for x := 0; x < w; x++ {
				c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				d[3*x], d[3*x+1], d[3*x+2] = c.R, c.G, c.B
			}
		}
	}
	return out
}

// clip16 is Pillow's I;16 → 8-bit rule: min(v, 255) for the big-endian
// 16-bit sample hi:lo.
func clip16(hi, lo uint8) uint8 {
	if hi != 0 {
		return 255
	}
	return lo
}

// unpremul8 un-premultiplies an 8-bit premultiplied colour the way
// color.NRGBAModel does.
func unpremul8(r, g, b, a uint8) (uint8, uint8, uint8) {
	switch a {
	case 0xff:
		return r, g, b
	case 0:
		return 0, 0, 0
	}
	c := color.NRGBAModel.Convert(color.RGBA{r, g, b, a}).(color.NRGBA)
	return c.R, c.G, c.B
}

// paletteRGB returns the RGB of a palette entry, ignoring its alpha.
func paletteRGB(c color.Color) [3]uint8 {
	switch p := c.(type) {
	case color.NRGBA:
		return [3]uint8{p.R, p.G, p.B}
	case color.RGBA:
		r, g, b := unpremul8(p.R, p.G, p.B, p.A)
		return [3]uint8{r, g, b}
	case color.NRGBA64:
		return [3]uint8{uint8(p.R >> 8), uint8(p.G >> 8), uint8(p.B >> 8)}
	case color.Gray:
		return [3]uint8{p.Y, p.Y, p.Y}
	case nil:
		return [3]uint8{}
	}
	n := color.NRGBAModel.Convert(c).(color.NRGBA)
	return [3]uint8{n.R, n.G, n.B}
}

// cmykToRGB is Pillow's cmyk2rgb: with nk = 255 − k,
// out = clip8(nk − MULDIV255(in, nk)), MULDIV255(a, b) = (t + t>>8) >> 8 with
// t = a·b + 128.
func cmykToRGB(c, m, y, k uint8) (uint8, uint8, uint8) {
	nk := 255 - int(k)
	f := func(v uint8) uint8 {
		t := int(v)*nk + 128
		r := nk - ((t>>8)+t)>>8
		if r < 0 {
			return 0
		}
		return uint8(r)
	}
	return f(c), f(m), f(y)
}

// ycbcrToRGB converts the part b of m into dst (3 bytes per pixel).
func ycbcrToRGB(m *image.YCbCr, b image.Rectangle, dst []uint8) {
	w := b.Dx()
	i := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Min.X+w; x++ {
			yi, ci := m.YOffset(x, y), m.COffset(x, y)
			dst[i], dst[i+1], dst[i+2] = color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
			i += 3
		}
	}
}
