package heatmap

import (
	"fmt"
	"image"
	"image/color"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// ellipsis marks elided text.
const ellipsis = "…"

var (
	parseOnce             sync.Once
	regularFont, boldFont *opentype.Font
	parseErr              error
)

func parsedFonts() (regular, bold *opentype.Font, err error) {
	parseOnce.Do(func() {
		regularFont, parseErr = opentype.Parse(goregular.TTF)
		if parseErr != nil {
			parseErr = fmt.Errorf("heatmap: parse Go regular font: %w", parseErr)
			return
		}
		boldFont, parseErr = opentype.Parse(gobold.TTF)
		if parseErr != nil {
			parseErr = fmt.Errorf("heatmap: parse Go bold font: %w", parseErr)
		}
	})
	return regularFont, boldFont, parseErr
}

// faces holds the font faces of one rendering. Faces cache glyphs and are
// not safe for concurrent use, so every Render call makes its own.
type faces struct {
	title, subtitle, label, small, heading *face
}

// face is a font face with its vertical metrics in whole pixels.
type face struct {
	font.Face
	ascent, descent, lineH int
}

func newFace(f *opentype.Font, size float64, fallback []*opentype.Font) (*face, error) {
	ff, err := opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingNone})
	if err != nil {
		return nil, fmt.Errorf("heatmap: font face at %gpx: %w", size, err)
	}
	m := ff.Metrics()
	return &face{
		Face:    newMultiFace(ff, f, size, fallback),
		ascent:  m.Ascent.Ceil(),
		descent: m.Descent.Ceil(),
		lineH:   int(size*1.3 + 0.5),
	}, nil
}

// newFaces makes the faces of one rendering of strs: the bundled Go fonts,
// with system fonts for the characters of strs they lack.
func newFaces(strs ...string) (*faces, error) {
	reg, bold, err := parsedFonts()
	if err != nil {
		return nil, err
	}
	var fallback []*opentype.Font
	if miss := missingRunes(reg, strs); len(miss) > 0 {
		fallback = fallbackFonts(miss)
	}
	var fs faces
	for _, x := range []struct {
		dst  **face
		f    *opentype.Font
		size float64
	}{
		{&fs.title, bold, 20},
		{&fs.subtitle, reg, 13},
		{&fs.label, reg, 14},
		{&fs.small, reg, 12},
		{&fs.heading, bold, 13},
	} {
		if *x.dst, err = newFace(x.f, x.size, fallback); err != nil {
			return nil, err
		}
	}
	return &fs, nil
}

// close releases the faces.
func (fs *faces) close() {
	for _, f := range []*face{fs.title, fs.subtitle, fs.label, fs.small, fs.heading} {
		if f != nil {
			f.Close()
		}
	}
}

// width is the advance width of s in pixels, rounded up.
func (f *face) width(s string) int {
	return font.MeasureString(f, s).Ceil()
}

// draw draws s with its left end at x and its baseline at y.
func (f *face) draw(dst *image.RGBA, c color.Color, x, y int, s string) {
	d := font.Drawer{Dst: dst, Src: image.NewUniform(c), Face: f, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

// inkHeight is the height of the glyphs of s above the baseline (cap or
// digit height for most labels), used to centre short labels.
func (f *face) inkHeight(s string) int {
	b, _ := font.BoundString(f, s)
	return (-b.Min.Y).Ceil()
}

// clean makes a label printable on one line: invalid UTF-8 becomes U+FFFD,
// runs of white space and control characters become one space, and the
// ends are trimmed.
func clean(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s { // ranging turns invalid UTF-8 into U+FFFD
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// elideEnd shortens s to fit maxW pixels, ending it with "…" when cut.
func (f *face) elideEnd(s string, maxW int) string {
	if f.width(s) <= maxW {
		return s
	}
	runes := []rune(s)
	// Largest n with runes[:n] + "…" fitting; width is monotonic in n.
	lo, hi := 0, len(runes)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if f.width(strings.TrimRight(string(runes[:mid]), " ")+ellipsis) <= maxW {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	if lo == 0 && f.width(ellipsis) > maxW {
		return ""
	}
	return strings.TrimRight(string(runes[:lo]), " ") + ellipsis
}

// elideMiddle shortens s to fit maxW pixels by replacing its middle with
// "…", so that both the start and the end (a file's extension and the
// numbers that tell img_0001.jpg from img_0002.jpg) stay visible.
func (f *face) elideMiddle(s string, maxW int) string {
	if f.width(s) <= maxW {
		return s
	}
	runes := []rune(s)
	fits := func(keep int) (string, bool) {
		head := (keep + 1) / 2
		tail := keep - head
		t := string(runes[:head]) + ellipsis + string(runes[len(runes)-tail:])
		return t, f.width(t) <= maxW
	}
	lo, hi := 0, len(runes)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if _, ok := fits(mid); ok {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	t, ok := fits(lo)
	if !ok {
		return ""
	}
	return t
}

// wrap breaks s into at most maxLines lines of at most maxW pixels. It
// breaks at spaces, and inside words (or runs of CJK text, which has no
// spaces) that are wider than a line. Text beyond the last line is
// dropped and the last line ends with "…".
func (f *face) wrap(s string, maxW, maxLines int) []string {
	s = clean(s)
	if s == "" {
		return []string{""}
	}
	var lines []string
	line := ""
	overflow := false
	push := func() bool {
		lines = append(lines, line)
		line = ""
		return len(lines) < maxLines
	}
words:
	for _, w := range strings.Split(s, " ") {
		cand := w
		if line != "" {
			cand = line + " " + w
		}
		if f.width(cand) <= maxW {
			line = cand
			continue
		}
		if line != "" {
			if !push() {
				overflow = true
				break
			}
		}
		// w alone: break it by runes when it is wider than a line.
		for f.width(w) > maxW {
			n := f.fitRunes(w, maxW)
			line = w[:n]
			w = w[n:]
			if !push() {
				overflow = true
				break words
			}
		}
		line = w
	}
	if !overflow {
		if line != "" {
			lines = append(lines, line)
		}
		return lines
	}
	// Mark the cut on the last kept line.
	last := lines[len(lines)-1]
	for last != "" && f.width(last+ellipsis) > maxW {
		_, size := utf8.DecodeLastRuneInString(last)
		last = last[:len(last)-size]
	}
	lines[len(lines)-1] = strings.TrimRight(last, " ") + ellipsis
	return lines
}

// fitRunes returns the byte length of the longest prefix of w (at least
// one rune) that fits maxW pixels.
func (f *face) fitRunes(w string, maxW int) int {
	n := 0
	for i, r := range w {
		end := i + utf8.RuneLen(r)
		if n > 0 && f.width(w[:end]) > maxW {
			break
		}
		n = end
	}
	return n
}

// baseName is the label under a thumbnail: the file's base name (with
// either kind of path separator), or "image N" when there is none.
func baseName(name string, i int) string {
	name = clean(name)
	name = strings.TrimRight(name, `/\`)
	if j := strings.LastIndexAny(name, `/\`); j >= 0 {
		name = name[j+1:]
	}
	if name == "" || name == "." {
		return fmt.Sprintf("image %d", i+1)
	}
	return name
}
