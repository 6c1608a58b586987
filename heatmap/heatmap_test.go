package heatmap

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// planFor lays out a heat map the way Render does, for tests that need
// the geometry.
func planFor(t *testing.T, scores [][]float64, images []image.Image, names, texts []string, opt Options) (*layout, *image.RGBA) {
	t.Helper()
	fs, err := newFaces()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fs.close)
	l, err := plan(fs, scores, images, names, texts, opt)
	if err != nil {
		t.Fatal(err)
	}
	img, err := Render(scores, images, names, texts, opt)
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds() != image.Rect(0, 0, l.W, l.H) {
		t.Fatalf("Render gave %v, plan %dx%d", img.Bounds(), l.W, l.H)
	}
	return l, img
}

func matrix(nImg, nTxt int, f func(i, t int) float64) [][]float64 {
	m := make([][]float64, nImg)
	for i := range m {
		m[i] = make([]float64, nTxt)
		for t := range m[i] {
			m[i][t] = f(i, t)
		}
	}
	return m
}

func TestViridis(t *testing.T) {
	if got, want := Viridis(0), (color.RGBA{68, 1, 84, 255}); got != want { // #440154
		t.Errorf("Viridis(0) = %v, want %v", got, want)
	}
	if got, want := Viridis(1), (color.RGBA{253, 231, 37, 255}); got != want { // #fde725
		t.Errorf("Viridis(1) = %v, want %v", got, want)
	}
	if got, want := Viridis(128.0/255), (color.RGBA{33, 145, 140, 255}); got != want { // #21918c, entry 128
		t.Errorf("Viridis(128/255) = %v, want %v", got, want)
	}
	if Viridis(math.NaN()) != Viridis(0) || Viridis(-3) != Viridis(0) || Viridis(7) != Viridis(1) {
		t.Error("Viridis does not clamp")
	}
	// Lightness rises monotonically: the map reads in greyscale.
	prev := -1.0
	for k := 0; k <= 100; k++ {
		l := luminance(Viridis(float64(k) / 100))
		if l < prev-1e-3 {
			t.Fatalf("luminance falls at %d%%: %g < %g", k, l, prev)
		}
		prev = l
	}
	// Values get dark text on the light end, light text on the dark end.
	if textOn(Viridis(0)) != inkLight || textOn(Viridis(1)) != inkDark {
		t.Error("textOn picks low-contrast ink")
	}
}

func TestScaleRange(t *testing.T) {
	nan := math.NaN()
	for _, c := range []struct {
		name           string
		vals           []float64
		min, max       float64
		wantLo, wantHi float64
		wantNaN        bool
	}{
		{"probabilities", []float64{0.03, 0.5, 0.97}, 0, 0, 0, 1, false},
		{"cosines", []float64{-0.08, 0.2, 0.55}, 0, 0, -0.1, 0.6, false},
		{"explicit", []float64{0.2, 0.3}, -1, 1, -1, 1, false},
		{"explicit equal is auto", []float64{0.2, 0.3}, 0.5, 0.5, 0.2, 0.3, false},
		{"one value in [0,1]", []float64{0.4}, 0, 0, 0, 1, false},
		{"one value", []float64{5}, 0, 0, 4.5, 5.5, false},
		{"all NaN", []float64{nan, nan}, 0, 0, 0, 1, true},
		{"NaN and Inf ignored", []float64{nan, math.Inf(1), 0.1, 0.9}, 0, 0, 0.1, 0.9, true},
	} {
		lo, hi, hasNaN := scaleRange([][]float64{c.vals}, c.min, c.max)
		if math.Abs(lo-c.wantLo) > 1e-9 || math.Abs(hi-c.wantHi) > 1e-9 || hasNaN != c.wantNaN {
			t.Errorf("%s: got %g…%g NaN=%v, want %g…%g NaN=%v", c.name, lo, hi, hasNaN, c.wantLo, c.wantHi, c.wantNaN)
		}
	}
}

func TestTicks(t *testing.T) {
	for _, c := range []struct {
		lo, hi    float64
		maxN, n   int
		want      string
		wantFirst string
	}{
		{0, 1, 13, 6, "0.0 0.2 0.4 0.6 0.8 1.0", ""},
		{-0.1, 0.6, 9, 4, "−0.1 0.0 0.1 0.2 0.3 0.4 0.5 0.6", ""},
		{0, 1, 9, 4, "0.00 0.25 0.50 0.75 1.00", ""},
		{0.2, 0.36, 9, 4, "", "0.20"},
	} {
		ts := ticks(c.lo, c.hi, c.maxN, c.n)
		var s []string
		for _, v := range ts {
			if v < c.lo-1e-9 || v > c.hi+1e-9 {
				t.Errorf("tick %g outside %g…%g", v, c.lo, c.hi)
			}
			s = append(s, formatTick(v, ts))
		}
		got := strings.Join(s, " ")
		if len(ts) > c.maxN || len(ts) < 2 {
			t.Errorf("%g…%g: %d ticks %q, want 2…%d", c.lo, c.hi, len(ts), got, c.maxN)
		}
		if c.want != "" && got != c.want {
			t.Errorf("%g…%g: ticks %q, want %q", c.lo, c.hi, got, c.want)
		}
		if c.wantFirst != "" && s[0] != c.wantFirst {
			t.Errorf("%g…%g: ticks %q, want first %q", c.lo, c.hi, got, c.wantFirst)
		}
	}
	// Degenerate ranges never loop or panic.
	for _, r := range [][2]float64{{0, 0}, {1, 1}, {0, 5e-324}, {-math.MaxFloat64, math.MaxFloat64}, {math.NaN(), 1}} {
		if ts := ticks(r[0], r[1], 8, 5); len(ts) == 0 {
			t.Errorf("ticks(%g, %g) is empty", r[0], r[1])
		}
	}
	if got := minus("-0.00"); got != "0.00" {
		t.Errorf(`minus("-0.00") = %q`, got)
	}
	if got := minus("-0.25"); got != "−0.25" {
		t.Errorf(`minus("-0.25") = %q`, got)
	}
}

func TestTextFitting(t *testing.T) {
	fs, err := newFaces()
	if err != nil {
		t.Fatal(err)
	}
	defer fs.close()
	f := fs.label

	long := "a very long caption about a dog that runs along the beach and jumps over the waves while its owner watches"
	if s := f.elideEnd(long, 150); !strings.HasSuffix(s, ellipsis) || f.width(s) > 150 || !strings.HasPrefix(long, strings.TrimSuffix(s, ellipsis)) {
		t.Errorf("elideEnd = %q (width %d)", s, f.width(s))
	}
	if s := f.elideEnd("short", 150); s != "short" {
		t.Errorf("elideEnd changed a short text: %q", s)
	}
	if s := f.elideEnd("anything", 1); s != "" {
		t.Errorf("elideEnd into 1px = %q, want empty", s)
	}

	name := "holiday_photos_from_the_beach_2019_0001.jpg"
	s := f.elideMiddle(name, 120)
	if !strings.Contains(s, ellipsis) || f.width(s) > 120 || !strings.HasPrefix(s, "holi") || !strings.HasSuffix(s, ".jpg") {
		t.Errorf("elideMiddle = %q (width %d)", s, f.width(s))
	}

	for _, c := range []struct {
		name     string
		text     string
		maxW     int
		maxLines int
		lines    int
		elided   bool
	}{
		{"fits", "a dog", 200, 3, 1, false},
		{"wraps", "a dog running on a sandy beach next to the sea", 150, 3, 0, false},
		{"elided", long, 150, 2, 2, true},
		{"one line", long, 150, 1, 1, true},
		{"long word", strings.Repeat("x", 200), 100, 3, 3, true},
		{"CJK, no spaces", strings.Repeat("一只狗在海滩上奔跑", 10), 120, 3, 3, true},
		{"control characters", "a\tdog\n\non the\r\nbeach\x00", 400, 3, 1, false},
		{"invalid UTF-8", "a \xff\xfe dog", 400, 3, 1, false},
		{"only spaces", " \t\n ", 100, 3, 1, false},
		{"tiny width", "hello world", 1, 2, 2, true},
	} {
		lines := f.wrap(c.text, c.maxW, c.maxLines)
		if len(lines) > c.maxLines || (c.lines > 0 && len(lines) != c.lines) {
			t.Errorf("%s: %d lines %q, want %d (max %d)", c.name, len(lines), lines, c.lines, c.maxLines)
		}
		for _, line := range lines {
			if !utf8.ValidString(line) || strings.ContainsAny(line, "\t\n\r\x00") {
				t.Errorf("%s: bad line %q", c.name, line)
			}
			// A single glyph may be wider than a tiny line; nothing more.
			if w := f.width(line); w > c.maxW && utf8.RuneCountInString(line) > 1 {
				t.Errorf("%s: line %q is %dpx wide, max %d", c.name, line, w, c.maxW)
			}
		}
		if got := strings.HasSuffix(lines[len(lines)-1], ellipsis); got != c.elided {
			t.Errorf("%s: elided=%v, want %v: %q", c.name, got, c.elided, lines)
		}
		if !c.elided {
			if got, want := strings.Join(lines, " "), clean(c.text); got != want {
				t.Errorf("%s: wrapped text %q lost words of %q", c.name, got, want)
			}
		}
	}

	for in, want := range map[string]string{
		"/data/x/beach.png": "beach.png", `C:\pics\cat.jpg`: "cat.jpg", "dir/": "dir", "": "image 4", "/": "image 4",
	} {
		if got := baseName(in, 3); got != want {
			t.Errorf("baseName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLayout checks that sizes follow the numbers of images and texts and
// that nothing is drawn outside the image or over the grid.
func TestLayout(t *testing.T) {
	thumbs := func(n int) []image.Image {
		imgs := make([]image.Image, n)
		for i := range imgs {
			imgs[i] = image.NewUniform(color.RGBA{200, 50, 50, 255}) // infinite bounds: placeholder
			if i%2 == 0 {
				imgs[i] = image.NewRGBA(image.Rect(0, 0, 40+i, 30))
			}
		}
		return imgs
	}
	var prev *layout
	for _, dims := range [][2]int{{1, 1}, {1, 50}, {50, 1}, {3, 6}, {30, 30}} {
		nImg, nTxt := dims[0], dims[1]
		scores := matrix(nImg, nTxt, func(i, t int) float64 { return float64(i+t) / float64(nImg+nTxt) })
		l, img := planFor(t, scores, thumbs(nImg), nil, nil, Options{Title: "t", Metric: "P(match)", Min: 0, Max: 1})
		g := l.gridRect()
		if !g.In(img.Bounds().Inset(margin - 1)) {
			t.Errorf("%v: grid %v outside the margins of %v", dims, g, img.Bounds())
		}
		if got := (g.Dx() + cellGap) / (l.cellW + cellGap); got != nImg {
			t.Errorf("%v: grid has %d columns", dims, got)
		}
		if got := (g.Dy() + cellGap) / (l.cellH + cellGap); got != nTxt {
			t.Errorf("%v: grid has %d rows", dims, got)
		}
		for i, r := range l.thumbs {
			if r.Max.Y > g.Min.Y || r.Dx() > l.cellW || r.Empty() {
				t.Errorf("%v: thumbnail %d at %v, grid at %v, cell width %d", dims, i, r, g, l.cellW)
			}
		}
		if l.barX < g.Max.X+legendGap || l.barY+l.barH > l.H-margin {
			t.Errorf("%v: colour bar misplaced", dims)
		}
		if l.W*l.H > MaxPixels {
			t.Errorf("%v: %dx%d too large", dims, l.W, l.H)
		}
		// Margins stay white.
		for x := range l.W {
			if c := img.RGBAAt(x, l.H-1); c != white {
				t.Fatalf("%v: bottom edge pixel %d is %v", dims, x, c)
			}
		}
		if prev != nil && nImg > prev.nImg && l.W <= prev.W {
			t.Errorf("%v: more images but not wider", dims)
		}
		prev = l
	}
	// Default thumbnails shrink as images grow in number.
	few, _ := planFor(t, matrix(3, 2, func(i, t int) float64 { return 0 }), thumbs(3), nil, nil, Options{})
	many, _ := planFor(t, matrix(40, 2, func(i, t int) float64 { return 0 }), thumbs(40), nil, nil, Options{})
	if few.cellW <= many.cellW {
		t.Errorf("cell width %d for 3 images, %d for 40", few.cellW, many.cellW)
	}
}

func TestCellColours(t *testing.T) {
	nan := math.NaN()
	scores := [][]float64{
		{0, 0.25, 0.5},
		{0.75, 1, nan},
		{math.Inf(1), math.Inf(-1), 2},
	}
	for _, opt := range []Options{
		{Min: 0, Max: 1, Highlight: NoHighlight},
		{Min: -1, Max: 3, Highlight: NoHighlight},
		{Highlight: NoHighlight}, // auto range 0…2
	} {
		l, img := planFor(t, scores, nil, nil, nil, opt)
		for i := range scores {
			for tx, v := range scores[i] {
				c := l.cell(i, tx)
				got := img.RGBAAt((c.Min.X+c.Max.X)/2, (c.Min.Y+c.Max.Y)/2)
				if math.IsNaN(v) {
					if got != hatchBack && got != hatchLine {
						t.Errorf("NaN cell is %v, want hatching", got)
					}
					continue
				}
				f := (v - l.lo) / (l.hi - l.lo)
				if math.IsInf(v, 1) {
					f = 1
				} else if math.IsInf(v, -1) {
					f = 0
				}
				if want := Viridis(f); got != want {
					t.Errorf("range %g…%g: cell %d,%d (%g) is %v, want %v", l.lo, l.hi, i, tx, v, got, want)
				}
				// The whole cell is flat.
				if corner := img.RGBAAt(c.Min.X, c.Min.Y); corner != got {
					t.Errorf("cell %d,%d corner %v, centre %v", i, tx, corner, got)
				}
			}
		}
		if !l.hasNaN || len(l.legendEntries()) != 1 {
			t.Errorf("legend %q does not explain NaN", l.legendEntries())
		}
	}
	if l, _ := planFor(t, scores, nil, nil, nil, Options{}); l.lo != 0 || l.hi != 2 {
		t.Errorf("auto range %g…%g, want 0…2", l.lo, l.hi)
	}

	// Values are printed in high-contrast ink, and only when asked.
	one := [][]float64{{0.05, 0.95}}
	for _, show := range []bool{false, true} {
		l, img := planFor(t, one, nil, nil, nil, Options{Min: 0, Max: 1, ShowValues: show, Highlight: NoHighlight})
		for tx, v := range one[0] {
			bg := Viridis(v)
			ink := textOn(bg)
			found := false
			c := l.cell(0, tx)
			for y := c.Min.Y; y < c.Max.Y; y++ {
				for x := c.Min.X; x < c.Max.X; x++ {
					if p := img.RGBAAt(x, y); p != bg && closer(p, ink, bg) {
						found = true
					}
				}
			}
			if found != show {
				t.Errorf("ShowValues=%v: value ink in cell %g: %v", show, v, found)
			}
		}
	}
}

// closer reports whether p is nearer to a than to b.
func closer(p, a, b color.RGBA) bool {
	d := func(x, y color.RGBA) int {
		dr, dg, db := int(x.R)-int(y.R), int(x.G)-int(y.G), int(x.B)-int(y.B)
		return dr*dr + dg*dg + db*db
	}
	return d(p, a) < d(p, b)
}

func TestHighlight(t *testing.T) {
	nan := math.NaN()
	// [image][text]
	scores := [][]float64{
		{0.1, 0.9, 0.3, nan},
		{0.8, 0.2, 0.8, 0.1}, // tie: both marked
		{nan, nan, nan, nan}, // no score: none marked
		{0.3, 0.95, 0.35, 0.5},
	}
	isMarked := func(img *image.RGBA, c image.Rectangle) bool {
		return img.RGBAAt(c.Min.X, c.Min.Y) == markOuter &&
			img.RGBAAt(c.Max.X-2, c.Max.Y-2) == markOuter &&
			img.RGBAAt(c.Min.X+2, (c.Min.Y+c.Max.Y)/2) == markInner
	}
	for _, c := range []struct {
		h    Highlight
		want [][]bool
	}{
		// Per image: image 0 → text 1 (0.9); image 1 → texts 0 and 2
		// (0.8, tied); image 2 → nothing; image 3 → text 1 (0.95).
		{BestTextPerImage, [][]bool{{false, true, false, false}, {true, false, true, false}, {false, false, false, false}, {false, true, false, false}}},
		// Per text: text 0 → image 1 (0.8); text 1 → image 3 (0.95);
		// text 2 → image 1 (0.8); text 3 → image 3 (0.5).
		{BestImagePerText, [][]bool{{false, false, false, false}, {true, false, true, false}, {false, false, false, false}, {false, true, false, true}}},
		{NoHighlight, [][]bool{{false, false, false, false}, {false, false, false, false}, {false, false, false, false}, {false, false, false, false}}},
	} {
		l, img := planFor(t, scores, nil, nil, nil, Options{Min: 0, Max: 1, Highlight: c.h})
		for i := range scores {
			for tx := range scores[i] {
				if got := isMarked(img, l.cell(i, tx)); got != c.want[i][tx] {
					t.Errorf("%v: cell image %d text %d marked=%v, want %v", c.h, i, tx, got, c.want[i][tx])
				}
			}
		}
		if got := len(l.legendEntries()) == 2; got != (c.h != NoHighlight) {
			t.Errorf("%v: legend %q", c.h, l.legendEntries())
		}
	}

	// The highlight lands on the maximum of random columns.
	rng := rand.New(rand.NewPCG(3, 4))
	scores = matrix(5, 7, func(i, t int) float64 { return rng.Float64() })
	l, img := planFor(t, scores, nil, nil, nil, Options{})
	for i := range scores {
		best := 0
		for tx := range scores[i] {
			if scores[i][tx] > scores[i][best] {
				best = tx
			}
		}
		for tx := range scores[i] {
			if got := isMarked(img, l.cell(i, tx)); got != (tx == best) {
				t.Errorf("image %d: text %d marked=%v, best is %d", i, tx, got, best)
			}
		}
	}

	// A ranking of one is no ranking.
	l, img = planFor(t, [][]float64{{0.5}, {0.7}}, nil, nil, nil, Options{})
	if isMarked(img, l.cell(0, 0)) || isMarked(img, l.cell(1, 0)) || len(l.legendEntries()) != 0 {
		t.Error("one text, but cells are outlined")
	}
}

func TestErrors(t *testing.T) {
	ok := matrix(2, 3, func(i, t int) float64 { return 0.5 })
	two := []string{"a", "b"}
	three := []string{"x", "y", "z"}
	imgs := []image.Image{nil, nil}
	for _, c := range []struct {
		name   string
		scores [][]float64
		images []image.Image
		names  []string
		texts  []string
		opt    Options
		want   error
	}{
		{"no images", nil, nil, nil, nil, Options{}, ErrEmpty},
		{"no texts", [][]float64{{}, {}}, nil, nil, nil, Options{}, ErrEmpty},
		{"ragged", [][]float64{{1, 2}, {1}}, nil, nil, nil, Options{}, ErrShape},
		{"thumbnails", ok, []image.Image{nil}, two, three, Options{}, ErrShape},
		{"names", ok, imgs, three, three, Options{}, ErrShape},
		{"texts", ok, imgs, two, two, Options{}, ErrShape},
		{"transposed", matrix(3, 2, func(i, t int) float64 { return 0 }), imgs, two, three, Options{}, ErrShape},
		{"too many images", matrix(MaxImages+1, 1, func(i, t int) float64 { return 0 }), nil, nil, nil, Options{}, ErrTooLarge},
		{"too many texts", matrix(1, MaxTexts+1, func(i, t int) float64 { return 0 }), nil, nil, nil, Options{}, ErrTooLarge},
		{"too many pixels", matrix(MaxImages, MaxTexts, func(i, t int) float64 { return 0 }), nil, nil, nil, Options{}, ErrTooLarge},
		{"huge cells", ok, nil, nil, nil, Options{CellSize: 1024, ThumbSize: 1024, MaxTextLines: 20}, nil},
		{"Min > Max", ok, nil, nil, nil, Options{Min: 1, Max: 0}, ErrOptions},
		{"NaN Max", ok, nil, nil, nil, Options{Max: math.NaN()}, ErrOptions},
		{"Inf Min", ok, nil, nil, nil, Options{Min: math.Inf(-1)}, ErrOptions},
		{"infinite span", ok, nil, nil, nil, Options{Min: -math.MaxFloat64, Max: math.MaxFloat64}, ErrOptions},
		{"negative CellSize", ok, nil, nil, nil, Options{CellSize: -1}, ErrOptions},
		{"huge ThumbSize", ok, nil, nil, nil, Options{ThumbSize: 5000}, ErrOptions},
		{"negative MaxTextWidth", ok, nil, nil, nil, Options{MaxTextWidth: -5}, ErrOptions},
		{"MaxTextLines", ok, nil, nil, nil, Options{MaxTextLines: 100}, ErrOptions},
		{"Highlight", ok, nil, nil, nil, Options{Highlight: 7}, ErrOptions},
		{"ValueFormat", ok, nil, nil, nil, Options{ValueFormat: "%d"}, ErrOptions},
		{"ValueFormat arity", ok, nil, nil, nil, Options{ValueFormat: "%.2f %v"}, ErrOptions},
		{"fine", ok, imgs, two, three, Options{}, nil},
	} {
		img, err := Render(c.scores, c.images, c.names, c.texts, c.opt)
		if c.want == nil {
			if err != nil || img == nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if !errors.Is(err, c.want) || img != nil {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		} else if !strings.HasPrefix(err.Error(), "heatmap: ") {
			t.Errorf("%s: error %q lacks the package prefix", c.name, err)
		}
	}
}

func TestWritePNG(t *testing.T) {
	img, err := Render([][]float64{{0.2, 0.8}}, nil, nil, []string{"a", "b"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	listing := func() []string {
		t.Helper()
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		return names
	}

	p := filepath.Join(dir, "plot.png")
	if err := WritePNG(p, img); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	back, err := png.Decode(bytes.NewReader(data))
	if err != nil || back.Bounds() != img.Bounds() {
		t.Fatalf("read back: %v, %v", err, back)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode())
	}
	if got := listing(); len(got) != 1 || got[0] != "plot.png" {
		t.Errorf("directory holds %q", got)
	}

	// A failing encode (an empty image) leaves the old file as it was,
	// and no temporary file.
	err = WritePNG(p, image.NewRGBA(image.Rect(0, 0, 0, 0)))
	if err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("empty image: %v", err)
	}
	if again, _ := os.ReadFile(p); !bytes.Equal(again, data) {
		t.Error("failed write changed the file")
	}
	if got := listing(); len(got) != 1 {
		t.Errorf("failed write left %q", got)
	}

	// A failing encode of a new file leaves nothing.
	q := filepath.Join(dir, "new.png")
	if err := WritePNG(q, image.NewRGBA(image.Rect(0, 0, 0, 0))); err == nil {
		t.Error("empty image: no error")
	}
	if _, err := os.Stat(q); !os.IsNotExist(err) {
		t.Errorf("failed write created %s: %v", q, err)
	}

	// The path is a directory.
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WritePNG(sub, img); err == nil || !strings.Contains(err.Error(), sub) {
		t.Errorf("directory: %v", err)
	}
	if es, _ := os.ReadDir(sub); len(es) != 0 {
		t.Errorf("directory target got %d entries", len(es))
	}

	// The directory does not exist.
	missing := filepath.Join(dir, "no", "such", "dir", "x.png")
	if err := WritePNG(missing, img); err == nil || !strings.Contains(err.Error(), missing) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing directory: %v", err)
	}

	// The directory is not writable (root writes anyway: skip then).
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	if f, err := os.CreateTemp(ro, "probe"); err == nil {
		f.Close()
		os.Remove(f.Name())
		t.Log("directory permissions not enforced (root?): skipping the read-only case")
	} else {
		r := filepath.Join(ro, "x.png")
		if err := WritePNG(r, img); err == nil || !strings.Contains(err.Error(), r) || !errors.Is(err, os.ErrPermission) {
			t.Errorf("read-only directory: %v", err)
		}
		if es, _ := os.ReadDir(ro); len(es) != 0 {
			t.Errorf("read-only directory got %d entries", len(es))
		}
	}

	if err := WritePNG(filepath.Join(dir, "nil.png"), nil); err == nil {
		t.Error("nil image: no error")
	}
}

func TestThumbnails(t *testing.T) {
	// Aspect is kept; extreme shapes keep at least a pixel.
	for _, c := range []struct{ w, h, bw, bh, ww, wh int }{
		{400, 300, 128, 128, 128, 96},
		{300, 400, 128, 128, 96, 128},
		{2000, 5, 100, 100, 100, 1},
		{4, 1500, 100, 100, 1, 100},
		{10, 10, 128, 64, 64, 64},
	} {
		got := thumbSize(image.NewRGBA(image.Rect(0, 0, c.w, c.h)), c.bw, c.bh)
		if got != image.Pt(c.ww, c.wh) {
			t.Errorf("%dx%d in %dx%d: %v, want %dx%d", c.w, c.h, c.bw, c.bh, got, c.ww, c.wh)
		}
	}
	if got := thumbSize(nil, 100, 100); got != image.Pt(100, 75) {
		t.Errorf("placeholder %v", got)
	}

	// A large image goes through the box filter: a half-black, half-white
	// image stays so, and the mean is kept.
	src := image.NewRGBA(image.Rect(10, 20, 10+1200, 20+800))
	for y := src.Rect.Min.Y; y < src.Rect.Max.Y; y++ {
		for x := src.Rect.Min.X; x < src.Rect.Max.X; x++ {
			c := color.RGBA{0, 0, 0, 255}
			if x >= src.Rect.Min.X+600 {
				c = color.RGBA{255, 255, 255, 255}
			}
			src.SetRGBA(x, y, c)
		}
	}
	s := shrink(src, 4)
	if s.Bounds() != image.Rect(0, 0, 300, 200) {
		t.Fatalf("shrink bounds %v", s.Bounds())
	}
	if a, b := s.RGBAAt(10, 10), s.RGBAAt(290, 190); a.R != 0 || a.A != 255 || b.R != 255 {
		t.Errorf("shrink: %v %v", a, b)
	}
	l, img := planFor(t, [][]float64{{1}, {0}}, []image.Image{src, image.NewGray(image.Rect(0, 0, 3, 7))}, nil, nil, Options{})
	r := l.thumbs[0]
	if r.Dx() != l.cellW || r.Dy() != l.cellW*2/3 {
		t.Errorf("thumbnail %v for a 3:2 image, cell width %d", r, l.cellW)
	}
	left, right := img.RGBAAt(r.Min.X+r.Dx()/4, r.Min.Y+r.Dy()/2), img.RGBAAt(r.Max.X-r.Dx()/4, r.Min.Y+r.Dy()/2)
	if left.R > 10 || right.R < 245 {
		t.Errorf("thumbnail pixels %v %v", left, right)
	}
}

// TestConcurrent renders from several goroutines; run with -race.
func TestConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	imgs := make([]*image.RGBA, 4)
	for k := range imgs {
		wg.Go(func() {
			img, err := Render([][]float64{{0.1, 0.9}, {0.5, 0.4}}, nil, []string{"a.png", "b.png"}, []string{"one", "two"}, Options{Title: "x", ShowValues: true})
			if err != nil {
				t.Error(err)
				return
			}
			imgs[k] = img
		})
	}
	wg.Wait()
	for k := 1; k < len(imgs); k++ {
		if imgs[k] != nil && imgs[0] != nil && !bytes.Equal(imgs[k].Pix, imgs[0].Pix) {
			t.Error("concurrent renders differ")
		}
	}
}

// TestRandom renders random shapes, values and options: no panics, and
// errors only where expected.
func TestRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 60 {
		nImg, nTxt := 1+rng.IntN(12), 1+rng.IntN(12)
		if err := renderRandom(rng, nImg, nTxt); err != nil {
			t.Fatalf("%dx%d: %v", nImg, nTxt, err)
		}
	}
}

// renderRandom renders a random heat map, and checks what it can.
func renderRandom(rng *rand.Rand, nImg, nTxt int) error {
	specials := []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0, 1, -1, 1e300, -1e300, 5e-324}
	scores := matrix(nImg, nTxt, func(i, t int) float64 {
		if rng.IntN(8) == 0 {
			return specials[rng.IntN(len(specials))]
		}
		return rng.NormFloat64()
	})
	var imgs []image.Image
	if rng.IntN(2) == 0 {
		imgs = make([]image.Image, nImg)
		for i := range imgs {
			if rng.IntN(4) != 0 {
				imgs[i] = image.NewNRGBA(image.Rect(0, 0, 1+rng.IntN(300), 1+rng.IntN(300)))
			}
		}
	}
	words := []string{"a", "dog", "猫", "\xff", "very-long-hyphenated-word-without-any-spaces-at-all", "\n", "é", "🙂", ""}
	texts := make([]string, nTxt)
	for t := range texts {
		for range rng.IntN(30) {
			texts[t] += words[rng.IntN(len(words))] + " "
		}
	}
	opt := Options{
		Title:        texts[0],
		Metric:       texts[nTxt-1],
		ShowValues:   rng.IntN(2) == 0,
		Highlight:    Highlight(rng.IntN(3)),
		CellSize:     rng.IntN(80),
		ThumbSize:    rng.IntN(160),
		MaxTextWidth: rng.IntN(500),
		MaxTextLines: rng.IntN(5),
	}
	if rng.IntN(2) == 0 {
		opt.Min, opt.Max = -rng.Float64(), rng.Float64()
	}
	img, err := Render(scores, imgs, nil, texts, opt)
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return nil
		}
		return err
	}
	if b := img.Bounds(); b.Empty() || b.Dx()*b.Dy() > MaxPixels {
		return errors.New("bad bounds " + b.String())
	}
	return nil
}

func FuzzRender(f *testing.F) {
	f.Add(uint64(1), uint8(1), uint8(1))
	f.Add(uint64(2), uint8(3), uint8(6))
	f.Add(uint64(3), uint8(30), uint8(2))
	f.Fuzz(func(t *testing.T, seed uint64, nImg, nTxt uint8) {
		rng := rand.New(rand.NewPCG(seed, 0))
		if err := renderRandom(rng, 1+int(nImg%16), 1+int(nTxt%16)); err != nil {
			t.Fatal(err)
		}
	})
}
