package heatmap

import (
	"image"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"
)

// The bundled Go fonts cover Latin, Greek and Cyrillic. Text in other
// scripts (Chinese, Japanese, Korean, Arabic, ...) is drawn with a system
// font that has the glyphs, found in FontDirs; a character no font has is
// drawn as the Go font's box, and MissingGlyphs lists such characters so
// that a program can warn.

// FontEnv is the environment variable naming extra font files or
// directories to take glyphs from (a list separated by the system's path
// list separator), searched before the system's font directories.
const FontEnv = "BLIPCUDA_FONTS"

// FontDirs are the system font directories searched for fallback fonts.
func FontDirs() []string {
	var dirs []string
	if v := os.Getenv(FontEnv); v != "" {
		dirs = append(dirs, filepath.SplitList(v)...)
	}
	home, _ := os.UserHomeDir()
	switch runtime.GOOS {
	case "darwin":
		dirs = append(dirs, "/System/Library/Fonts", "/Library/Fonts", filepath.Join(home, "Library", "Fonts"))
	case "windows":
		dirs = append(dirs, filepath.Join(os.Getenv("WINDIR"), "Fonts"))
	default:
		if x := os.Getenv("XDG_DATA_HOME"); x != "" {
			dirs = append(dirs, filepath.Join(x, "fonts"))
		}
		dirs = append(dirs, filepath.Join(home, ".local", "share", "fonts"), filepath.Join(home, ".fonts"),
			"/usr/share/fonts", "/usr/local/share/fonts")
	}
	return dirs
}

// maxFontFile bounds a font file read for fallback glyphs (Noto CJK
// collections are about 20 MB).
const maxFontFile = 64 << 20

// fallbacks is the process's cache of fallback fonts, found on demand.
var fallbacks struct {
	sync.Mutex
	files  []string // candidate files, best first; nil until listed
	next   int      // files[:next] have been parsed
	fonts  []*sfnt.Font
	source []string
}

// candidateFonts lists the font files of FontDirs, in the order they are
// tried: fonts known for wide coverage first (Noto CJK, Noto Sans, DejaVu
// Sans), regular weights before others; colour emoji fonts (bitmaps this
// renderer cannot draw) are left out.
func candidateFonts() []string {
	var files []string
	for _, dir := range FontDirs() {
		if st, err := os.Stat(dir); err == nil && !st.IsDir() {
			files = append(files, dir) // a font file named in BLIPCUDA_FONTS
			continue
		}
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if d != nil && d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			switch strings.ToLower(filepath.Ext(p)) {
			case ".ttf", ".otf", ".ttc", ".otc":
				if !strings.Contains(strings.ToLower(d.Name()), "emoji") {
					files = append(files, p)
				}
			}
			return nil
		})
	}
	rank := func(p string) int {
		n := strings.ToLower(filepath.Base(p))
		r := 50
		switch {
		case strings.Contains(n, "cjk") && strings.Contains(n, "sans"):
			r = 0
		case strings.Contains(n, "cjk"):
			r = 5
		case strings.HasPrefix(n, "notosans-"), strings.HasPrefix(n, "notosans"):
			r = 10
		case strings.HasPrefix(n, "dejavusans"):
			r = 20
		}
		if !strings.Contains(n, "regular") && (strings.Contains(n, "bold") || strings.Contains(n, "italic") ||
			strings.Contains(n, "oblique") || strings.Contains(n, "light") || strings.Contains(n, "thin") ||
			strings.Contains(n, "black") || strings.Contains(n, "mono")) {
			r += 100
		}
		return r
	}
	slices.SortStableFunc(files, func(a, b string) int { return rank(a) - rank(b) })
	return files
}

// hasGlyph reports whether f maps r to a glyph other than .notdef.
func hasGlyph(f *sfnt.Font, r rune) bool {
	var buf sfnt.Buffer
	i, err := f.GlyphIndex(&buf, r)
	return err == nil && i != 0
}

// fallbackFonts returns fonts that together cover as many of the runes
// want as the system's fonts can, parsing font files only until all are
// covered. The fonts are shared and read-only.
func fallbackFonts(want []rune) []*sfnt.Font {
	fallbacks.Lock()
	defer fallbacks.Unlock()
	covered := func(r rune) bool {
		for _, f := range fallbacks.fonts {
			if hasGlyph(f, r) {
				return true
			}
		}
		return false
	}
	missing := func() []rune {
		var m []rune
		for _, r := range want {
			if !covered(r) {
				m = append(m, r)
			}
		}
		return m
	}
	need := missing()
	if len(need) > 0 && fallbacks.files == nil {
		fallbacks.files = candidateFonts()
	}
	for len(need) > 0 && fallbacks.next < len(fallbacks.files) {
		p := fallbacks.files[fallbacks.next]
		fallbacks.next++
		for _, f := range parseFontFile(p) {
			if slices.ContainsFunc(need, func(r rune) bool { return hasGlyph(f, r) }) {
				fallbacks.fonts = append(fallbacks.fonts, f)
				fallbacks.source = append(fallbacks.source, p)
				need = missing()
				break
			}
		}
	}
	var out []*sfnt.Font
	for _, f := range fallbacks.fonts {
		if slices.ContainsFunc(want, func(r rune) bool { return hasGlyph(f, r) }) {
			out = append(out, f)
		}
	}
	return out
}

// parseFontFile parses a font file or collection; unreadable or invalid
// files give nothing.
func parseFontFile(p string) []*sfnt.Font {
	st, err := os.Stat(p)
	if err != nil || !st.Mode().IsRegular() || st.Size() > maxFontFile {
		return nil
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	c, err := opentype.ParseCollection(data)
	if err != nil {
		return nil
	}
	var out []*sfnt.Font
	for i := range min(c.NumFonts(), 4) {
		if f, err := c.Font(i); err == nil {
			out = append(out, f)
		}
	}
	return out
}

// missingRunes lists, once each in order, the runes of strs that f has no
// glyph for (spaces and control characters aside).
func missingRunes(f *sfnt.Font, strs []string) []rune {
	var out []rune
	seen := map[rune]bool{}
	for _, s := range strs {
		for _, r := range clean(s) {
			if r == ' ' || seen[r] {
				continue
			}
			seen[r] = true
			if !hasGlyph(f, r) {
				out = append(out, r)
			}
		}
	}
	return out
}

// MissingGlyphs returns the characters of strs (once each, in order) that
// neither the bundled font nor any system font found in FontDirs can draw:
// Render draws them as boxes. A program warns about them before the work
// whose results it will plot.
func MissingGlyphs(strs ...string) []rune {
	reg, _, err := parsedFonts()
	if err != nil {
		return nil
	}
	miss := missingRunes(reg, strs)
	if len(miss) == 0 {
		return nil
	}
	fbs := fallbackFonts(miss)
	return slices.DeleteFunc(miss, func(r rune) bool {
		return slices.ContainsFunc(fbs, func(f *sfnt.Font) bool { return hasGlyph(f, r) })
	})
}

// multiFace draws each rune with the first of its faces whose font has a
// glyph for it (the primary face draws the rest, as boxes). Vertical
// metrics are the primary face's, so that layouts do not move.
type multiFace struct {
	faces []font.Face
	fonts []*sfnt.Font
	pick  map[rune]int
}

func newMultiFace(primary font.Face, primaryFont *sfnt.Font, size float64, fallbackFonts []*sfnt.Font) font.Face {
	if len(fallbackFonts) == 0 {
		return primary
	}
	m := &multiFace{faces: []font.Face{primary}, fonts: []*sfnt.Font{primaryFont}, pick: map[rune]int{}}
	for _, f := range fallbackFonts {
		ff, err := opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingNone})
		if err == nil {
			m.faces = append(m.faces, ff)
			m.fonts = append(m.fonts, f)
		}
	}
	return m
}

func (m *multiFace) of(r rune) font.Face {
	i, ok := m.pick[r]
	if !ok {
		for k, f := range m.fonts {
			if hasGlyph(f, r) {
				i = k
				break
			}
		}
		m.pick[r] = i
	}
	return m.faces[i]
}

func (m *multiFace) Close() error {
	for _, f := range m.faces {
		f.Close()
	}
	return nil
}

func (m *multiFace) Glyph(dot fixed.Point26_6, r rune) (image.Rectangle, image.Image, image.Point, fixed.Int26_6, bool) {
	return m.of(r).Glyph(dot, r)
}

func (m *multiFace) GlyphBounds(r rune) (fixed.Rectangle26_6, fixed.Int26_6, bool) {
	return m.of(r).GlyphBounds(r)
}

func (m *multiFace) GlyphAdvance(r rune) (fixed.Int26_6, bool) { return m.of(r).GlyphAdvance(r) }

func (m *multiFace) Kern(r0, r1 rune) fixed.Int26_6 {
	if f := m.of(r0); f == m.of(r1) {
		return f.Kern(r0, r1)
	}
	return 0
}

func (m *multiFace) Metrics() font.Metrics { return m.faces[0].Metrics() }
