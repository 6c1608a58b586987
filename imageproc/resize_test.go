package imageproc

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func randomRGB(r *rand.Rand, w, h int) *RGB {
	m := NewRGB(w, h)
	for i := range m.Pix {
		m.Pix[i] = uint8(r.Uint32())
	}
	return m
}

func TestResizeIdentityCopies(t *testing.T) {
	src := randomRGB(rand.New(rand.NewPCG(1, 2)), 7, 5)
	got := ResizeBicubic(src, 7, 5)
	if !bytes.Equal(got.Pix, src.Pix) || &got.Pix[0] == &src.Pix[0] {
		t.Error("same-size resize must be an equal copy")
	}
}

func TestResizePanicsOnBadSize(t *testing.T) {
	for _, tc := range []struct {
		src  *RGB
		w, h int
	}{{NewRGB(2, 2), 0, 1}, {NewRGB(2, 2), 1, -1}, {&RGB{}, 1, 1}, {&RGB{W: 2, H: 2, Pix: make([]uint8, 3)}, 1, 1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("no panic for %dx%d -> %dx%d", tc.src.W, tc.src.H, tc.w, tc.h)
				}
			}()
			ResizeBicubic(tc.src, tc.w, tc.h)
		}()
	}
}

// TestCoefficients: every window's fixed-point weights sum to 1<<22 within
// rounding, and the windows stay inside the input.
func TestCoefficients(t *testing.T) {
	for _, tc := range [][2]int{{1, 1}, {1, 384}, {384, 1}, {640, 384}, {37, 384}, {1000, 3}, {5, 7}} {
		c := precompute(tc[0], tc[1])
		for i := 0; i < tc[1]; i++ {
			lo, n := c.bounds[2*i], c.bounds[2*i+1]
			if lo < 0 || n < 1 || lo+n > tc[0] || n > c.ksize {
				t.Fatalf("%v: window %d = [%d, +%d) (ksize %d)", tc, i, lo, n, c.ksize)
			}
			sum := 0
			for _, k := range c.k[i*c.ksize : i*c.ksize+n] {
				sum += int(k)
			}
			if d := sum - 1<<precisionBits; d < -n || d > n {
				t.Errorf("%v: window %d sums to 2^22%+d", tc, i, d)
			}
		}
	}
}

// TestResizeKernelValues pins the kernel to Keys' a = −0.5 cubic.
func TestResizeKernelValues(t *testing.T) {
	for _, tc := range [][2]float64{{0, 1}, {0.5, 0.5625}, {-0.5, 0.5625}, {1, 0}, {1.5, -0.0625}, {2, 0}, {3, 0}} {
		if got := bicubicKernel(tc[0]); got != tc[1] {
			t.Errorf("k(%v) = %v, want %v", tc[0], got, tc[1])
		}
	}
}

// TestResizeUniform: a uniform image stays exactly uniform at any size.
func TestResizeUniform(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 200; i++ {
		w, h, ow, oh := 1+r.IntN(60), 1+r.IntN(60), 1+r.IntN(90), 1+r.IntN(90)
		src := NewRGB(w, h)
		c := [3]uint8{uint8(r.Uint32()), uint8(r.Uint32()), uint8(r.Uint32())}
		for p := 0; p < w*h; p++ {
			copy(src.Pix[3*p:], c[:])
		}
		got := ResizeBicubic(src, ow, oh)
		for p := 0; p < ow*oh; p++ {
			if [3]uint8(got.Pix[3*p:3*p+3]) != c {
				t.Fatalf("%dx%d -> %dx%d: pixel %d = %v, want %v", w, h, ow, oh, p, got.Pix[3*p:3*p+3], c)
			}
		}
	}
}

// TestPreprocessValues checks the float path on a hand-computed value:
// transformers gives ((float32(200/255) - float32(mean)) / float32(std)).
func TestPreprocessValues(t *testing.T) {
	img := NewRGB(1, 1)
	copy(img.Pix, []uint8{200, 0, 255})
	c := DefaultConfig()
	c.DoResize = false
	pv, err := c.Preprocess(img)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{
		(float32(200.0/255) - float32(0.48145466)) / float32(0.26862954),
		(0 - float32(0.4578275)) / float32(0.26130258),
		(float32(1) - float32(0.40821073)) / float32(0.27577711),
	}
	for i := range want {
		if pv[i] != want[i] {
			t.Errorf("channel %d = %v, want %v", i, pv[i], want[i])
		}
	}
}

func TestConfigLoad(t *testing.T) {
	c := DefaultConfig()
	path := filepath.Join(fixtureDir, "photo_97x71.png")
	pv, err := c.Load(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	img := decodeFixture(t, "photo_97x71.png")
	want, err := c.Preprocess(img)
	if err != nil {
		t.Fatal(err)
	}
	if len(pv) != 3*384*384 || !bytes.Equal(float32Bytes(pv), float32Bytes(want)) {
		t.Error("Load differs from DecodeFile + Preprocess")
	}
	if _, err := c.Load(filepath.Join(fixtureDir, "bad_text.jpg"), 0); err == nil {
		t.Error("Load accepted a text file")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}
