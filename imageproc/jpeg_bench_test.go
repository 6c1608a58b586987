package imageproc

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// benchPhotoJPEG encodes a photo-like w×h image (gradients, edges, texture,
// noise: not a flat or zero image) as a 4:2:0 quality-90 JPEG with Go's
// encoder, once per size.
func benchPhotoJPEG(b *testing.B, w, h int) []byte {
	b.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(uint64(w), uint64(h)))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			u, v := float64(x)/float64(w), float64(y)/float64(h)
			n := r.NormFloat64() * 5
			cr := 128 + 100*math.Sin(2*math.Pi*(1.3*u+0.2*v))*math.Cos(2*math.Pi*0.7*v) + n
			cg := 230*u*v + 25*math.Sin(float64(x)/3) + n
			cb := 200*(1-u) + 40*math.Cos(float64(y)/2.5+float64(x)/7) + n
			if (x/64+y/48)%5 == 0 {
				cr, cg = 255-cr, cg/2
			}
			i := img.PixOffset(x, y)
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = clampF(cr), clampF(cg), clampF(cb), 255
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

func clampF(v float64) uint8 { return uint8(math.Max(0, math.Min(255, math.Round(v)))) }

// BenchmarkJPEGDecode compares, on the same files, blipcuda's decoder (to
// RGB) with image/jpeg alone (to YCbCr planes, no colour conversion) and with
// image/jpeg plus the libjpeg-style conversion blipcuda used before (the old
// path to RGB).
func BenchmarkJPEGDecode(b *testing.B) {
	for _, sz := range [][2]int{{640, 480}, {4000, 3000}} {
		data := benchPhotoJPEG(b, sz[0], sz[1])
		name := fmt.Sprintf("%dx%d", sz[0], sz[1])
		b.Run("blipcuda/"+name, func(b *testing.B) {
			b.SetBytes(int64(sz[0] * sz[1]))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeJPEG(bytes.NewReader(data), 0); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("imagejpeg/"+name, func(b *testing.B) {
			b.SetBytes(int64(sz[0] * sz[1]))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("imagejpeg+rgb/"+name, func(b *testing.B) {
			b.SetBytes(int64(sz[0] * sz[1]))
			b.ReportAllocs()
			for b.Loop() {
				m, err := jpeg.Decode(bytes.NewReader(data))
				if err != nil {
					b.Fatal(err)
				}
				if jpegYCbCrToRGB(m.(*image.YCbCr)) == nil {
					b.Fatal("no conversion")
				}
			}
		})
	}
}

// BenchmarkJPEGDecodeInterleaved runs the three decoders of
// BenchmarkJPEGDecode alternately on the same file in every iteration and
// reports each one's fastest time and the speed ratios (image/jpeg's time
// over blipcuda's): on a shared, loaded machine the minimum of interleaved
// runs is far steadier than separate benchmarks.
func BenchmarkJPEGDecodeInterleaved(b *testing.B) {
	for _, sz := range [][2]int{{640, 480}, {4000, 3000}} {
		data := benchPhotoJPEG(b, sz[0], sz[1])
		b.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(b *testing.B) {
			best := [3]time.Duration{time.Hour, time.Hour, time.Hour}
			run := func(i int, f func() error) {
				start := time.Now()
				if err := f(); err != nil {
					b.Fatal(err)
				}
				best[i] = min(best[i], time.Since(start))
			}
			for b.Loop() {
				run(0, func() error { _, err := decodeJPEG(bytes.NewReader(data), 0); return err })
				run(1, func() error { _, err := jpeg.Decode(bytes.NewReader(data)); return err })
				run(2, func() error {
					m, err := jpeg.Decode(bytes.NewReader(data))
					if err == nil && jpegYCbCrToRGB(m.(*image.YCbCr)) == nil {
						err = fmt.Errorf("no conversion")
					}
					return err
				})
			}
			ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
			b.ReportMetric(ms(best[0]), "blipcuda-min-ms")
			b.ReportMetric(ms(best[1]), "imagejpeg-min-ms")
			b.ReportMetric(ms(best[2]), "imagejpeg+rgb-min-ms")
			b.ReportMetric(float64(best[1])/float64(best[0]), "ratio-imagejpeg")
			b.ReportMetric(float64(best[2])/float64(best[0]), "ratio-imagejpeg+rgb")
		})
	}
}
