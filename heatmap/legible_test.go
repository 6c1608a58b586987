package heatmap

import (
	"fmt"
	"image"
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/image/math/fixed"
)

func planOf(t *testing.T, names, texts []string, thumbs bool) *layout {
	t.Helper()
	fs, err := newFaces(append(append([]string{}, names...), texts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fs.close)
	scores := make([][]float64, len(names))
	var imgs []image.Image
	for i := range scores {
		scores[i] = make([]float64, len(texts))
		if thumbs {
			imgs = append(imgs, sizeOnly{image.Rect(0, 0, 640, 480)})
		}
	}
	l, err := plan(fs, scores, imgs, names, texts, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func distinct(s []string) bool {
	seen := map[string]bool{}
	for _, x := range s {
		if seen[x] {
			return false
		}
		seen[x] = true
	}
	return true
}

// TestColumnLabelsDistinct: names that elide alike in the middle
// (photo….png twice) are elided to the part that tells them apart.
func TestColumnLabelsDistinct(t *testing.T) {
	var names, texts []string
	for i := range 30 {
		names = append(names, fmt.Sprintf("photos/photo_2024_summer_holiday_beach_%04d.png", i))
	}
	for i := range 40 {
		texts = append(texts, fmt.Sprintf("caption %d", i))
	}
	l := planOf(t, names, texts, true)
	if !distinct(l.names) || l.key != nil {
		t.Errorf("labels not distinct (or numbered): %q", l.names)
	}
	if !strings.Contains(l.names[7], "0007") {
		t.Errorf("label %q lacks the distinguishing part 0007", l.names[7])
	}
	// Names differing in the middle only.
	names = names[:0]
	for i := range 30 {
		names = append(names, fmt.Sprintf("camera_%c_2024_summer_holiday_beach.png", 'A'+i%26)+strings.Repeat("x", i/26))
	}
	l = planOf(t, names, texts[:3], true)
	if !distinct(l.names) {
		t.Errorf("labels not distinct: %q", l.names)
	}
}

// TestNumberedColumnsHaveAKey: columns too narrow for names show numbers,
// and a key under the grid maps each number to its file.
func TestNumberedColumnsHaveAKey(t *testing.T) {
	var names []string
	for i := range 120 {
		names = append(names, fmt.Sprintf("dir%d/img.png", i)) // same base name everywhere
	}
	l := planOf(t, names, []string{"a dog", "a cat"}, true)
	if l.names[0] != "1" || len(l.key) != 120 || !strings.Contains(l.key[41], "dir41/img.png") {
		t.Fatalf("names %q…, key %d entries %q", l.names[:3], len(l.key), l.key[:2])
	}
	if bottom := l.keyTop + l.keyRows*l.fs.small.lineH; bottom > l.H || l.keyTop < l.gridRect().Max.Y {
		t.Errorf("key rows %d..%d outside the picture (grid ends %d, height %d)", l.keyTop, bottom, l.gridRect().Max.Y, l.H)
	}
	scores := make([][]float64, 120)
	for i := range scores {
		scores[i] = []float64{0.2, 0.8}
	}
	img, err := Render(scores, nil, names, []string{"a dog", "a cat"}, Options{})
	if l2 := planOf(t, names, []string{"a dog", "a cat"}, false); err != nil || img.Bounds().Dy() != l2.H || len(l2.key) != 120 {
		t.Errorf("Render: %v, height %v want %d with the key", err, img.Bounds(), l2.H)
	}
}

// TestFallbackFont: text the Go font lacks (Chinese) is drawn with a
// system font that has it; what no font has is reported by MissingGlyphs.
// It needs a CJK font (Debian: fonts-noto-cjk, which .ci/run installs and
// then sets BLIPCUDA_REQUIRE_CJK_FONT so that this cannot skip there).
func TestFallbackFont(t *testing.T) {
	const zh = "一只狗在海滩上奔跑"
	if miss := MissingGlyphs(zh); len(miss) > 0 {
		if os.Getenv("BLIPCUDA_REQUIRE_CJK_FONT") != "" {
			t.Fatalf("no font for %q found in %v", string(miss), FontDirs())
		}
		t.Skipf("no installed font has %q (install fonts-noto-cjk, as .ci/run does)", string(miss))
	}
	fs, err := newFaces(zh)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.close()
	mf, ok := fs.label.Face.(*multiFace)
	if !ok {
		t.Fatal("no fallback face for Chinese text")
	}
	if mf.of('狗') == mf.faces[0] || mf.of('a') != mf.faces[0] {
		t.Error("runes are not drawn with the face that has them")
	}
	// The glyph drawn is not the Go font's box.
	_, boxMask, _, _, _ := mf.faces[0].Glyph(fixedPt(0, 20), '狗')
	_, mask, _, _, ok := mf.Glyph(fixedPt(0, 20), '狗')
	if !ok || sameMask(boxMask, mask) {
		t.Error("狗 is drawn as the Go font's box")
	}
	// A character no font has is reported.
	if miss := MissingGlyphs("a dog " + string(rune(0x10FFFD))); !slices.Equal(miss, []rune{0x10FFFD}) {
		t.Errorf("MissingGlyphs = %q", miss)
	}
}

func fixedPt(x, y int) fixed.Point26_6 { return fixed.P(x, y) }

func sameMask(a, b image.Image) bool {
	if a == nil || b == nil || a.Bounds() != b.Bounds() {
		return false
	}
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if a.At(x, y) != b.At(x, y) {
				return false
			}
		}
	}
	return true
}
