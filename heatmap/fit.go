package heatmap

import (
	"errors"
	"fmt"
	"image"
	"image/color"
)

// Fit lays out, without drawing anything, the heat map Render would draw
// for images of the given sizes (nil or empty: no thumbnails) with these
// names and texts, and returns opt with the sizes it left to their
// defaults (zero ThumbSize, CellSize, MaxTextLines, MaxTextWidth) reduced
// step by step until the picture is at most MaxPixels: smaller thumbnails
// and cells, one-line labels, narrower label column, down to sizes that
// still show a line of text per row. Pass the result to Render with the
// real scores and thumbnails (of the same aspect ratios) to get that
// layout.
//
// It is quick, so that a program can check a plot before the work that
// produces its scores. Past the smallest sizes it returns an error
// wrapping ErrTooLarge that gives the size the picture would have; so do
// more than MaxImages images or MaxTexts texts. Other errors are Render's.
func Fit(nImages int, sizes []image.Point, imageNames, texts []string, opt Options) (Options, error) {
	nTexts := len(texts)
	if nImages <= 0 || nTexts == 0 {
		return opt, fmt.Errorf("%w: %d images, %d texts", ErrEmpty, nImages, nTexts)
	}
	if nImages > MaxImages {
		return opt, fmt.Errorf("%w: %d images, at most %d", ErrTooLarge, nImages, MaxImages)
	}
	if nTexts > MaxTexts {
		return opt, fmt.Errorf("%w: %d texts, at most %d", ErrTooLarge, nTexts, MaxTexts)
	}
	fs, err := newFaces(append(append([]string{opt.Title, opt.Metric}, imageNames...), texts...)...)
	if err != nil {
		return opt, err
	}
	defer fs.close()
	scores := make([][]float64, nImages)
	for i := range scores {
		scores[i] = make([]float64, nTexts)
	}
	var thumbs []image.Image
	if len(sizes) > 0 {
		thumbs = make([]image.Image, len(sizes))
		for i, s := range sizes {
			thumbs[i] = sizeOnly{image.Rectangle{Max: s}}
		}
	}
	var last *layout
	for _, step := range shrinkSteps {
		try := opt
		step.apply(&try, opt)
		l, err := plan(fs, scores, thumbs, imageNames, texts, try)
		if err == nil {
			// Keep the defaults plan chose for what the step did not set,
			// so that Render lays the same picture out.
			return try, nil
		}
		if !errors.Is(err, ErrTooLarge) || l == nil {
			return opt, err
		}
		last = l
	}
	return opt, fmt.Errorf("%w: %d images × %d texts make a %d×%d picture even with %d-pixel thumbnails and one-line labels; at most %d pixels",
		ErrTooLarge, nImages, nTexts, last.W, last.H, shrinkSteps[len(shrinkSteps)-1].thumb, MaxPixels)
}

// shrinkStep sets the sizes of one attempt of Fit, where the caller left
// them to their defaults (zero).
type shrinkStep struct{ thumb, cell, lines, textW int }

func (s shrinkStep) apply(o *Options, orig Options) {
	set := func(dst *int, orig, v int) {
		if orig == 0 && v != 0 {
			*dst = v
		}
	}
	set(&o.ThumbSize, orig.ThumbSize, s.thumb)
	set(&o.CellSize, orig.CellSize, s.cell)
	set(&o.MaxTextLines, orig.MaxTextLines, s.lines)
	set(&o.MaxTextWidth, orig.MaxTextWidth, s.textW)
}

// shrinkSteps are Fit's attempts, from Render's defaults to the smallest
// sizes that stay legible: a 24-pixel thumbnail still shows what the image
// is, and a row is never less than one line of label text.
var shrinkSteps = []shrinkStep{
	{},
	{lines: 2},
	{thumb: 64, lines: 2},
	{thumb: 48, cell: 28, lines: 1},
	{thumb: 32, cell: 20, lines: 1, textW: 280},
	{thumb: 24, cell: 16, lines: 1, textW: 200},
}

// sizeOnly is an image with a size and no pixels, for laying out.
type sizeOnly struct{ r image.Rectangle }

func (s sizeOnly) ColorModel() color.Model { return color.RGBAModel }
func (s sizeOnly) Bounds() image.Rectangle { return s.r }
func (s sizeOnly) At(int, int) color.Color { return color.RGBA{} }
