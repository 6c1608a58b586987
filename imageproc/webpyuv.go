package imageproc

import "image"

// Lossy WebP stores BT.601 limited-range YUV 4:2:0. x/image/webp returns the
// planes as an *image.YCbCr, whose colour model is JFIF full-range, so Go's
// generic conversion is off by several levels. VP8 decoding itself is exact
// integer arithmetic, so the planes equal libwebp's; libwebp (and thus
// Pillow) then converts them with "fancy" upsampling of the chroma and 14-bit
// fixed-point YUV→RGB. webpYUVToRGB reproduces both (libwebp
// src/dsp/upsampling.c UpsampleRgbLinePair, src/dec/io_dec.c EmitFancyRGB,
// src/dsp/yuv.h VP8YUVToR/G/B), so lossy WebP decodes like Pillow.

// webpClip8 is VP8Clip8 with YUV_FIX2 = 6.
func webpClip8(v int) uint8 {
	const mask = (256 << 6) - 1
	if v&^mask == 0 {
		return uint8(v >> 6)
	}
	if v < 0 {
		return 0
	}
	return 255
}

func mulHi(v, coeff int) int { return (v * coeff) >> 8 }

// webpPixel is VP8YuvToRgb.
func webpPixel(y, u, v int, dst []uint8) {
	yy := mulHi(y, 19077)
	dst[0] = webpClip8(yy + mulHi(v, 26149) - 14234)
	dst[1] = webpClip8(yy - mulHi(u, 6419) - mulHi(v, 13320) + 8708)
	dst[2] = webpClip8(yy + mulHi(u, 33050) - 17685)
}

// webpLinePair is UpsampleRgbLinePair: it writes the output rows of topY and
// (if not nil) bottomY, whose chroma lies between chroma rows top (nearer to
// topY) and cur (nearer to bottomY).
func webpLinePair(topY, bottomY, topU, topV, curU, curV []uint8, topDst, bottomDst []uint8, n int) {
	// The two chroma channels are filtered independently; libwebp packs them
	// in one uint32 but the lanes never interact.
	up := func(tl, t, l, c int) (d12, d03 int) {
		avg := tl + t + l + c + 8
		return (avg + 2*(t+l)) >> 3, (avg + 2*(tl+c)) >> 3
	}
	lastPair := (n - 1) >> 1
	tlU, tlV := int(topU[0]), int(topV[0])
	lU, lV := int(curU[0]), int(curV[0])
	webpPixel(int(topY[0]), (3*tlU+lU+2)>>2, (3*tlV+lV+2)>>2, topDst[0:3])
	if bottomY != nil {
		webpPixel(int(bottomY[0]), (3*lU+tlU+2)>>2, (3*lV+tlV+2)>>2, bottomDst[0:3])
	}
	for x := 1; x <= lastPair; x++ {
		tU, tV := int(topU[x]), int(topV[x])
		cU, cV := int(curU[x]), int(curV[x])
		d12U, d03U := up(tlU, tU, lU, cU)
		d12V, d03V := up(tlV, tV, lV, cV)
		webpPixel(int(topY[2*x-1]), ((d12U+tlU)>>1)&0xff, (d12V+tlV)>>1, topDst[3*(2*x-1):])
		webpPixel(int(topY[2*x]), ((d03U+tU)>>1)&0xff, (d03V+tV)>>1, topDst[3*(2*x):])
		if bottomY != nil {
			webpPixel(int(bottomY[2*x-1]), ((d03U+lU)>>1)&0xff, (d03V+lV)>>1, bottomDst[3*(2*x-1):])
			webpPixel(int(bottomY[2*x]), ((d12U+cU)>>1)&0xff, (d12V+cV)>>1, bottomDst[3*(2*x):])
		}
		tlU, tlV, lU, lV = tU, tV, cU, cV
	}
	if n&1 == 0 {
		webpPixel(int(topY[n-1]), (3*tlU+lU+2)>>2, (3*tlV+lV+2)>>2, topDst[3*(n-1):])
		if bottomY != nil {
			webpPixel(int(bottomY[n-1]), (3*lU+tlU+2)>>2, (3*lV+tlV+2)>>2, bottomDst[3*(n-1):])
		}
	}
}

// webpYUVToRGB converts a 4:2:0 image decoded from lossy WebP the way
// libwebp's fancy upsampler does. It returns nil for any other layout.
func webpYUVToRGB(m *image.YCbCr) *RGB {
	b := m.Rect
	w, h := b.Dx(), b.Dy()
	if m.SubsampleRatio != image.YCbCrSubsampleRatio420 || w <= 0 || h <= 0 || b.Min != (image.Point{}) {
		return nil
	}
	cw, ch := (w+1)/2, (h+1)/2
	if m.YStride < w || m.CStride < cw || len(m.Y) < (h-1)*m.YStride+w ||
		len(m.Cb) < (ch-1)*m.CStride+cw || len(m.Cr) < (ch-1)*m.CStride+cw {
		return nil
	}
	out := NewRGB(w, h)
	yRow := func(y int) []uint8 { return m.Y[y*m.YStride : y*m.YStride+w] }
	uRow := func(c int) []uint8 { return m.Cb[c*m.CStride : c*m.CStride+cw] }
	vRow := func(c int) []uint8 { return m.Cr[c*m.CStride : c*m.CStride+cw] }
	dRow := func(y int) []uint8 { return out.Pix[3*y*w : 3*(y+1)*w] }
	// Row 0: chroma row 0 mirrored above.
	webpLinePair(yRow(0), nil, uRow(0), vRow(0), uRow(0), vRow(0), dRow(0), nil, w)
	// Rows 2k−1 and 2k lie between chroma rows k−1 and k.
	y := 1
	for ; y+1 < h; y += 2 {
		k := (y + 1) / 2
		webpLinePair(yRow(y), yRow(y+1), uRow(k-1), vRow(k-1), uRow(k), vRow(k), dRow(y), dRow(y+1), w)
	}
	// The last row of an even height: last chroma row mirrored below.
	if y < h {
		k := ch - 1
		webpLinePair(yRow(y), nil, uRow(k), vRow(k), uRow(k), vRow(k), dRow(y), nil, w)
	}
	return out
}
