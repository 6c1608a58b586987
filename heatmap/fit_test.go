package heatmap

import (
	"errors"
	"fmt"
	"image"
	"strings"
	"testing"
)

func fitInputs(nImg, nTxt int) ([]image.Point, []string, []string) {
	sizes := make([]image.Point, nImg)
	names := make([]string, nImg)
	for i := range sizes {
		sizes[i] = image.Pt(640, 480-i%3*100)
		names[i] = fmt.Sprintf("photos/holiday_%04d.jpg", i)
	}
	texts := make([]string, nTxt)
	for t := range texts {
		texts[t] = fmt.Sprintf("caption %d: a dog running along the beach under a cloudy sky at dusk", t)
	}
	return sizes, names, texts
}

// TestFitShrinks: sizes inside MaxImages × MaxTexts that Render's defaults
// made larger than MaxPixels (and refused after all the scoring) now fit.
func TestFitShrinks(t *testing.T) {
	for _, c := range [][2]int{{100, 200}, {200, 100}, {30, 500}, {3, 4}, {200, 250}, {100, 500}} {
		sizes, names, texts := fitInputs(c[0], c[1])
		opt, err := Fit(c[0], sizes, names, texts, Options{ShowValues: true})
		if err != nil {
			t.Errorf("%d×%d: %v", c[0], c[1], err)
			continue
		}
		fs, _ := newFaces()
		thumbs := make([]image.Image, len(sizes))
		for i, s := range sizes {
			thumbs[i] = sizeOnly{image.Rectangle{Max: s}}
		}
		scores := make([][]float64, c[0])
		for i := range scores {
			scores[i] = make([]float64, c[1])
		}
		l, err := plan(fs, scores, thumbs, names, texts, opt)
		fs.close()
		if err != nil {
			t.Errorf("%d×%d: Render would refuse what Fit accepted: %v", c[0], c[1], err)
			continue
		}
		t.Logf("%d×%d: %d×%d px, thumbs %d, cells %d, lines %d", c[0], c[1], l.W, l.H, opt.ThumbSize, opt.CellSize, opt.MaxTextLines)
		if c == [2]int{3, 4} && (opt.ThumbSize != 0 || opt.CellSize != 0) {
			t.Errorf("a small plot was shrunk: %+v", opt)
		}
	}
}

func TestFitRefuses(t *testing.T) {
	sizes, names, texts := fitInputs(200, 500)
	_, err := Fit(200, sizes, names, texts, Options{})
	if !errors.Is(err, ErrTooLarge) || strings.Contains(err.Error(), "CellSize") {
		t.Errorf("200×500: %v, want ErrTooLarge without library field names", err)
	}
	sizes, names, texts = fitInputs(MaxImages+1, 2)
	if _, err := Fit(MaxImages+1, sizes, names, texts, Options{}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too many images: %v", err)
	}
	// Sizes the caller set are kept.
	sizes, names, texts = fitInputs(100, 200)
	if _, err := Fit(100, sizes, names, texts, Options{ThumbSize: 256, CellSize: 200}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("fixed large sizes: %v, want ErrTooLarge", err)
	}
}
