package imageproc

import "image"

// Go's image/jpeg returns the decoded Y, Cb and Cr planes at their stored
// resolution. Pillow's libjpeg-turbo (3.1.x in Pillow 12.0.0 wheels) turns
// them into RGB with "fancy" (triangle-filter) chroma upsampling and its own
// fixed-point colour conversion, while Go's generic path replicates chroma
// samples and rounds differently. jpegYCbCrToRGB reproduces libjpeg-turbo's
// upsampling (jdsample.c: h2v2/h2v1/h1v2 fancy upsampling, the box filter
// when the subsampled width is ≤ 2, edge rows and columns replicated) and its
// colour conversion (jdcolor.c ycc_rgb_convert), which removes most of the
// difference for 4:2:0 and 4:2:2 images. What remains comes from the IDCT:
// Go's integer IDCT is not libjpeg-turbo's ISLOW, so values still differ by a
// few levels (see TestFixturesLossy).

// libjpeg colour-conversion tables (SCALEBITS = 16).
var jpegCrR, jpegCbB, jpegCrG, jpegCbG [256]int32

func init() {
	const half = 1 << 15
	for i := 0; i < 256; i++ {
		x := int32(i - 128)
		jpegCrR[i] = (91881*x + half) >> 16  // FIX(1.40200)
		jpegCbB[i] = (116130*x + half) >> 16 // FIX(1.77200)
		jpegCrG[i] = -46802 * x              // FIX(0.71414)
		jpegCbG[i] = -22554*x + half         // FIX(0.34414), rounding folded in
	}
}

func clampU8(v int32) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// upsampleChroma expands one chroma plane (cw×ch samples, row stride
// stride) by the integer factors hs×vs to w×h the way libjpeg-turbo does.
func upsampleChroma(p []uint8, stride, cw, ch, hs, vs, w, h int) []uint8 {
	out := make([]uint8, w*h)
	u := newUpsampler(p, stride, cw, ch, hs, vs)
	for y := 0; y < h; y++ {
		u.row(out[y*w:(y+1)*w], y)
	}
	return out
}

// upsampler produces the rows of one upsampled plane.
type upsampler struct {
	p              []uint8
	stride, cw, ch int
	hs, vs         int
	fancy          bool
	line           []uint8
	sums           []int32
}

func newUpsampler(p []uint8, stride, cw, ch, hs, vs int) *upsampler {
	return &upsampler{
		p: p, stride: stride, cw: cw, ch: ch, hs: hs, vs: vs,
		// libjpeg-turbo's jinit_upsampler: the triangle filters for 2:1
		// horizontal (only when the subsampled width is > 2), 2:1 vertical
		// and 2:1 both ways; the box filter (sample replication) for 1:1,
		// the narrow cases and every other integer ratio (int_upsample).
		fancy: (hs == 2 && vs <= 2 && cw > 2) || (hs == 1 && vs == 2),
	}
}

// in returns input row r, clamped to the plane (libjpeg replicates the first
// and last rows as context).
func (u *upsampler) in(r int) []uint8 {
	r = max(0, min(r, u.ch-1))
	return u.p[r*u.stride : r*u.stride+u.cw]
}

// row writes output row y (len(dst) output samples).
func (u *upsampler) row(dst []uint8, y int) {
	hs, vs, cw := u.hs, u.vs, u.cw
	near := u.in(y / vs)
	full := dst
	switch {
	case !u.fancy:
		if hs == 1 {
			copy(dst, near)
			return
		}
		for x := range dst {
			dst[x] = near[x/hs]
		}
	case hs == 2 && vs == 2: // h2v2_fancy_upsample (cw > 2)
		far := u.in(y/2 - 1)
		if y%2 == 1 {
			far = u.in(y/2 + 1)
		}
		// Column sums 3·near + far, then 3:1 horizontally; the output
		// width is 2·cw or 2·cw − 1.
		near, far = near[:cw], far[:cw]
		dst = dst[:2*cw-1]
		prev := 3*int32(near[0]) + int32(far[0])
		cur := 3*int32(near[1]) + int32(far[1])
		dst[0] = uint8((prev*4 + 8) >> 4)
		dst[1] = uint8((prev*3 + cur + 7) >> 4)
		for c := 1; c < cw-1; c++ {
			next := 3*int32(near[c+1]) + int32(far[c+1])
			dst[2*c] = uint8((cur*3 + prev + 8) >> 4)
			dst[2*c+1] = uint8((cur*3 + next + 7) >> 4)
			prev, cur = cur, next
		}
		dst[2*cw-2] = uint8((cur*3 + prev + 8) >> 4)
		if len(full) >= 2*cw {
			full[2*cw-1] = uint8((cur*4 + 7) >> 4)
		}
	case hs == 2: // h2v1_fancy_upsample (cw > 2)
		in := near[:cw]
		dst = dst[:2*cw-1]
		dst[0] = in[0]
		dst[1] = uint8((int32(in[0])*3 + int32(in[1]) + 2) >> 2)
		for c := 1; c < cw-1; c++ {
			v := int32(in[c]) * 3
			dst[2*c] = uint8((v + int32(in[c-1]) + 1) >> 2)
			dst[2*c+1] = uint8((v + int32(in[c+1]) + 2) >> 2)
		}
		c := cw - 1
		dst[2*c] = uint8((int32(in[c])*3 + int32(in[c-1]) + 1) >> 2)
		if len(full) >= 2*cw {
			full[2*c+1] = in[c]
		}
	default: // vs == 2, hs == 1: h1v2_fancy_upsample
		far, bias := u.in(y/2-1), int32(1)
		if y%2 == 1 {
			far, bias = u.in(y/2+1), 2
		}
		far = far[:len(dst)]
		near = near[:len(dst)]
		for x := range dst {
			dst[x] = uint8((3*int32(near[x]) + int32(far[x]) + bias) >> 2)
		}
	}
}

// jpegYCbCrToRGB converts a YCbCr image decoded by image/jpeg like
// libjpeg-turbo. It returns nil for layouts it does not handle (the caller
// then uses Go's conversion).
func jpegYCbCrToRGB(m *image.YCbCr) *RGB {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	if m.Rect.Min != (image.Point{}) || w <= 0 || h <= 0 {
		return nil
	}
	var hs, vs int
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio444:
		hs, vs = 1, 1
	case image.YCbCrSubsampleRatio422:
		hs, vs = 2, 1
	case image.YCbCrSubsampleRatio420:
		hs, vs = 2, 2
	case image.YCbCrSubsampleRatio440:
		hs, vs = 1, 2
	default:
		return nil
	}
	cw, ch := (w+hs-1)/hs, (h+vs-1)/vs
	if m.YStride < w || len(m.Y) < (h-1)*m.YStride+w || m.CStride < cw ||
		len(m.Cb) < (ch-1)*m.CStride+cw || len(m.Cr) < (ch-1)*m.CStride+cw {
		return nil
	}
	cb := upsampleChroma(m.Cb, m.CStride, cw, ch, hs, vs, w, h)
	cr := upsampleChroma(m.Cr, m.CStride, cw, ch, hs, vs, w, h)
	out := NewRGB(w, h)
	jpegYCCRowsToRGB(out, m.Y, m.YStride, cb, w, cr, w)
	return out
}

// jpegYCCRowsToRGB fills out from full-resolution Y, Cb and Cr planes (each
// with its row stride) with libjpeg's ycc_rgb_convert.
func jpegYCCRowsToRGB(out *RGB, yp []uint8, ys int, cb []uint8, cbs int, cr []uint8, crs int) {
	w := out.W
	for y := 0; y < out.H; y++ {
		yr := yp[y*ys : y*ys+w]
		br := cb[y*cbs : y*cbs+w]
		rr := cr[y*crs : y*crs+w]
		d := out.Pix[3*y*w : 3*(y+1)*w]
		for x, yv := range yr {
			d[3*x], d[3*x+1], d[3*x+2] = jpegYCCToRGB(yv, br[x], rr[x])
		}
	}
}

// jpegYCCToRGB converts one sample like libjpeg's ycc_rgb_convert.
func jpegYCCToRGB(yv, b, r uint8) (uint8, uint8, uint8) {
	Y := int32(yv) + rangeLimitOffset
	// The masks change nothing (the sums are within 0..1023); they let the
	// compiler drop the bounds checks.
	return rangeLimit[(Y+jpegCrR[r])&1023], rangeLimit[(Y+(jpegCbG[b]+jpegCrG[r])>>16)&1023], rangeLimit[(Y+jpegCbB[b])&1023]
}

// rangeLimit[v+rangeLimitOffset] clamps v to 0..255 for the sums that the
// colour conversion can produce (−227..482), like libjpeg's
// sample_range_limit table.
const rangeLimitOffset = 256

var rangeLimit = func() (t [1024]uint8) {
	for i := range t {
		t[i] = clampU8(int32(i - rangeLimitOffset))
	}
	return t
}()
