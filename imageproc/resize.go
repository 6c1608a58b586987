package imageproc

import (
	"fmt"
	"math"
)

// The resampler below follows Pillow's src/libImaging/Resample.c (the
// 8-bit-per-channel path of ImagingResample with the BICUBIC filter), which
// is what Image.resize((w, h), Image.BICUBIC) runs when reducing_gap is None:
//
//   - the filter is Keys' cubic convolution with a = −0.5, support 2;
//   - on a downscale the support is multiplied by scale = in/out and the
//     filter argument by 1/scale (antialiasing); on an upscale scale < 1 and
//     the filter is used as is;
//   - output pixel i has centre (i + 0.5)·scale in input coordinates; the
//     window is [int(centre − support + 0.5), int(centre + support + 0.5))
//     clamped to the input; weights k((j − centre + 0.5)/filterscale) are
//     normalised to sum 1, then quantised to 22-bit fixed point (round half
//     away from zero);
//   - sums start at 1<<21 and are shifted right by 22, clipped to 0..255;
//   - the horizontal pass runs first, into an 8-bit intermediate, over only
//     the rows the vertical pass needs; a pass is skipped when its dimension
//     does not change, and an unchanged size is a plain copy.
//
// Every floating-point step that Pillow performs in double precision is done
// here in float64 in the same order; explicit float64 conversions keep the Go
// compiler from fusing multiply-adds on platforms that have FMA.

const (
	precisionBits = 32 - 8 - 2 // Pillow's PRECISION_BITS
	bicubicA      = -0.5
	bicubicRadius = 2.0
)

// bicubicKernel is Pillow's bicubic_filter.
func bicubicKernel(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x < 1 {
		// ((a + 2)·x − (a + 3))·x·x + 1
		t := float64((bicubicA+2)*x) - (bicubicA + 3)
		t = float64(t * x)
		t = float64(t * x)
		return t + 1
	}
	if x < 2 {
		// (((x − 5)·x + 8)·x − 4)·a
		t := x - 5
		t = float64(t*x) + 8
		t = float64(t*x) - 4
		return t * bicubicA
	}
	return 0
}

// coeffs holds the fixed-point weights of one pass: for output index i the
// input window starts at bounds[2i], has bounds[2i+1] taps, and the weights
// are k[i*ksize : i*ksize+bounds[2i+1]].
type coeffs struct {
	ksize  int
	bounds []int
	k      []int32
}

// precompute is Pillow's precompute_coeffs followed by
// normalize_coeffs_8bpc, for the box [0, inSize).
func precompute(inSize, outSize int) coeffs {
	scale := float64(inSize) / float64(outSize)
	filterscale := scale
	if filterscale < 1 {
		filterscale = 1
	}
	support := bicubicRadius * filterscale
	ksize := int(math.Ceil(support))*2 + 1
	c := coeffs{ksize: ksize, bounds: make([]int, 2*outSize), k: make([]int32, outSize*ksize)}
	kk := make([]float64, ksize)
	ss := 1 / filterscale
	for xx := 0; xx < outSize; xx++ {
		center := float64((float64(xx) + 0.5) * scale)
		xmin := int(center - support + 0.5) // C truncation toward zero
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		xmax -= xmin
		ww := 0.0
		for x := 0; x < xmax; x++ {
			w := bicubicKernel(float64((float64(x+xmin) - center + 0.5) * ss))
			kk[x] = w
			ww += w
		}
		for x := 0; x < xmax; x++ {
			if ww != 0 {
				kk[x] /= ww
			}
		}
		row := c.k[xx*ksize : (xx+1)*ksize]
		for x := 0; x < xmax; x++ {
			v := kk[x] * (1 << precisionBits)
			if v < 0 {
				row[x] = int32(-0.5 + v)
			} else {
				row[x] = int32(0.5 + v)
			}
		}
		c.bounds[2*xx] = xmin
		c.bounds[2*xx+1] = xmax
	}
	return c
}

// clip8 is Pillow's clip8 for a fixed-point sum.
func clip8(v int32) uint8 {
	if v >= 1<<precisionBits<<8 {
		return 255
	}
	if v <= 0 {
		return 0
	}
	return uint8(v >> precisionBits)
}

// ResizeBicubic resizes src to w×h with Pillow's BICUBIC filter. The result is
// bit-identical to Pillow's Image.resize((w, h), Image.BICUBIC) on an RGB
// image (reducing_gap=None, no box). src is not modified; when the size is
// unchanged the result is a copy. It panics if w or h is not positive or src
// is empty or inconsistent.
func ResizeBicubic(src *RGB, w, h int) *RGB {
	if !src.valid() {
		panic("imageproc: ResizeBicubic of an empty or inconsistent image")
	}
	if w <= 0 || h <= 0 {
		panic(fmt.Sprintf("imageproc: ResizeBicubic to invalid size %dx%d", w, h))
	}
	if w == src.W && h == src.H {
		return src.Clone()
	}
	needH := w != src.W
	needV := h != src.H
	vert := precompute(src.H, h)
	cur := src
	if needH {
		horiz := precompute(src.W, w)
		// Only rows yFirst..yLast-1 of the source are used by the vertical pass.
		yFirst := vert.bounds[0]
		yLast := vert.bounds[2*h-2] + vert.bounds[2*h-1]
		if !needV {
			yFirst, yLast = 0, src.H
		}
		for i := 0; i < h; i++ {
			vert.bounds[2*i] -= yFirst
		}
		cur = resampleHorizontal(src, yFirst, yLast, w, horiz)
	}
	if needV {
		cur = resampleVertical(cur, h, vert)
	}
	return cur
}

// resampleHorizontal is ImagingResampleHorizontal_8bpc for 3 bands over
// source rows [y0, y1).
func resampleHorizontal(src *RGB, y0, y1, w int, c coeffs) *RGB {
	out := NewRGB(w, y1-y0)
	sw := src.W
	for y := y0; y < y1; y++ {
		in := src.Pix[3*y*sw : 3*(y+1)*sw]
		dst := out.Pix[3*(y-y0)*w : 3*(y-y0+1)*w]
		for xx := 0; xx < w; xx++ {
			xmin, n := c.bounds[2*xx], c.bounds[2*xx+1]
			k := c.k[xx*c.ksize : xx*c.ksize+n]
			p := in[3*xmin : 3*(xmin+n)]
			var s0, s1, s2 int32 = 1 << (precisionBits - 1), 1 << (precisionBits - 1), 1 << (precisionBits - 1)
			for _, kv := range k {
				q := p[:3:len(p)] // one bounds check per tap
				s0 += int32(q[0]) * kv
				s1 += int32(q[1]) * kv
				s2 += int32(q[2]) * kv
				p = p[3:]
			}
			d := dst[3*xx : 3*xx+3 : 3*xx+3]
			d[0], d[1], d[2] = clip8(s0), clip8(s1), clip8(s2)
		}
	}
	return out
}

// resampleVertical is ImagingResampleVertical_8bpc for 3 bands.
func resampleVertical(src *RGB, h int, c coeffs) *RGB {
	w := src.W
	out := NewRGB(w, h)
	rowLen := 3 * w
	acc := make([]int32, rowLen)
	for yy := 0; yy < h; yy++ {
		ymin, n := c.bounds[2*yy], c.bounds[2*yy+1]
		k := c.k[yy*c.ksize : yy*c.ksize+n]
		for i := range acc {
			acc[i] = 1 << (precisionBits - 1)
		}
		// Row-wise accumulation: the same integer sums as Pillow's
		// per-pixel loop, in a cache-friendly order.
		for y, kv := range k {
			row := src.Pix[(ymin+y)*rowLen : (ymin+y+1)*rowLen]
			a := acc[:len(row)]
			for i, v := range row {
				a[i] += int32(v) * kv
			}
		}
		dst := out.Pix[yy*rowLen : (yy+1)*rowLen]
		for i, v := range acc {
			dst[i] = clip8(v)
		}
	}
	return out
}
