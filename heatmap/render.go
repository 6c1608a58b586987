package heatmap

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"strconv"
	"strings"

	"golang.org/x/image/draw"
)

// Limits on what Render accepts. Beyond them a heat map is no longer
// readable, and the image would take hundreds of megabytes.
const (
	// MaxImages is the largest number of images (columns).
	MaxImages = 200
	// MaxTexts is the largest number of texts (rows).
	MaxTexts = 500
	// MaxPixels is the largest output image, in pixels (width × height).
	MaxPixels = 40_000_000
)

// Errors Render returns, wrapped with details; test with errors.Is.
var (
	// ErrEmpty: there are no images or no texts.
	ErrEmpty = errors.New("heatmap: nothing to plot")
	// ErrShape: the scores, images, names and texts disagree in length.
	ErrShape = errors.New("heatmap: mismatched dimensions")
	// ErrTooLarge: too many images or texts, or the image would be
	// larger than MaxPixels.
	ErrTooLarge = errors.New("heatmap: plot too large")
	// ErrOptions: an Options field is out of range.
	ErrOptions = errors.New("heatmap: invalid options")
)

// Highlight selects which cells get an outline.
type Highlight int

const (
	// BestTextPerImage outlines, in each column, the text that scores
	// highest against that image: the top of a ranking of the texts per
	// image, as blipcuda match ranks them. This is the default.
	BestTextPerImage Highlight = iota
	// BestImagePerText outlines, in each row, the image that scores
	// highest against that text (text-to-image retrieval).
	BestImagePerText
	// NoHighlight outlines nothing.
	NoHighlight
)

// String names the highlight as the legend does.
func (h Highlight) String() string {
	switch h {
	case BestTextPerImage:
		return "best text per image"
	case BestImagePerText:
		return "best image per text"
	case NoHighlight:
		return "none"
	}
	return "Highlight(" + strconv.Itoa(int(h)) + ")"
}

// Options control the look of a heat map. The zero value gives a
// sensible plot: automatic colour range and sizes, no numbers in the
// cells, the best text per image outlined.
type Options struct {
	// Title is drawn in bold at the top; empty for none.
	Title string
	// Metric names the score, e.g. "P(match)" or "ITC cosine". It heads
	// the colour bar and starts the subtitle; empty means "score".
	Metric string
	// Min and Max are the ends of the colour scale: a score at or below
	// Min takes the first colour of the map, at or above Max the last.
	// When Min == Max (as in the zero value) the range is automatic: the
	// span of the finite scores, widened to round values (0.03…0.97
	// becomes 0…1, −0.08…0.55 becomes −0.1…0.6). For ITM probabilities
	// pass 0 and 1, so that a colour means the same in every plot; for
	// ITC cosines the automatic range is usually better than −1…1, which
	// leaves most of the colours unused.
	Min, Max float64
	// ShowValues prints each score in its cell, in black or white,
	// whichever contrasts more with the cell's colour. A number wider
	// than its cell is left out.
	ShowValues bool
	// ValueFormat is the fmt format of a printed score (default "%.2f").
	ValueFormat string
	// Highlight selects the outlined cells (default BestTextPerImage).
	Highlight Highlight
	// CellSize is the smallest width and height of a cell in pixels
	// (default 36). Cells are as wide as the thumbnails and as tall as
	// the longest wrapped text needs, so they may be larger.
	CellSize int
	// ThumbSize is the largest side of a thumbnail in pixels (default:
	// 128 for up to 6 images, less for more, down to 48 beyond 80).
	ThumbSize int
	// MaxTextWidth is the width in pixels at which texts wrap
	// (default 360).
	MaxTextWidth int
	// MaxTextLines is the most lines a text wraps to (default 3, or 2
	// beyond 20 texts); the rest is elided with "…".
	MaxTextLines int
}

// Layout constants, in pixels.
const (
	margin    = 24 // around everything
	labelGap  = 12 // between the row labels and the grid
	cellGap   = 2  // white gutter between cells
	nameGap   = 5  // between a thumbnail and its name
	headerGap = 6  // between the names and the grid
	legendGap = 32 // between the grid and the colour bar
	barW      = 18 // colour bar width
	tickLen   = 4
	tickPad   = 8 // between a tick and its label
	minBarH   = 200
	maxBarH   = 360
	rowPad    = 12 // vertical room around a row's text
)

// Colours.
var (
	white      = color.RGBA{255, 255, 255, 255}
	inkDark    = color.RGBA{0x1f, 0x23, 0x28, 255}
	inkLight   = color.RGBA{255, 255, 255, 255}
	inkMuted   = color.RGBA{0x59, 0x63, 0x6e, 255}
	frameGrey  = color.RGBA{0xaf, 0xb8, 0xc1, 255}
	thumbFrame = color.NRGBA{0, 0, 0, 36}
	emptyFill  = color.RGBA{0xee, 0xf0, 0xf3, 255}
	hatchBack  = color.RGBA{0xea, 0xee, 0xf2, 255}
	hatchLine  = color.RGBA{0xb4, 0xbc, 0xc5, 255}
	markOuter  = color.RGBA{0x1f, 0x23, 0x28, 255}
	markInner  = color.RGBA{255, 255, 255, 255}
)

// FromFloat32 converts a float32 matrix, such as blipcuda.Scores.ITMProb
// or .ITC, for Render.
func FromFloat32(m [][]float32) [][]float64 {
	out := make([][]float64, len(m))
	for i, row := range m {
		out[i] = make([]float64, len(row))
		for j, v := range row {
			out[i][j] = float64(v)
		}
	}
	return out
}

// Render draws scores as a heat map and returns the image.
//
// scores is indexed by image, then text, as blipcuda.Scores is:
// scores[i][t] is the score of texts[t] against image i. Each image is a column, headed
// by its thumbnail and the base name of imageNames[i]; each text is a
// row, labelled on the left with the text wrapped to Options.MaxTextLines
// lines. A NaN score is drawn hatched grey and the legend says so; ±Inf
// takes the colour of the end of the scale.
//
// images holds the thumbnails' sources, one per image; a nil entry draws
// a grey placeholder, and a nil or empty slice leaves thumbnails out (the
// names remain). imageNames and texts may likewise be nil or empty, for
// "image 1", "image 2", … and "text 1", …; otherwise their lengths must
// match scores.
//
// Render does not panic on any input: it returns an error wrapping
// ErrEmpty, ErrShape, ErrTooLarge or ErrOptions. It is safe for
// concurrent use.
func Render(scores [][]float64, images []image.Image, imageNames, texts []string, opt Options) (*image.RGBA, error) {
	fs, err := newFaces(append(append([]string{opt.Title, opt.Metric}, imageNames...), texts...)...)
	if err != nil {
		return nil, err
	}
	defer fs.close()
	l, err := plan(fs, scores, images, imageNames, texts, opt)
	if err != nil {
		return nil, err
	}
	return l.render(scores, images), nil
}

// layout is the geometry of one heat map, and what it draws.
type layout struct {
	fs  *faces
	opt Options

	nImg, nTxt int
	lo, hi     float64 // colour scale
	hasNaN     bool

	W, H int

	title, subtitle    string
	titleBase, subBase int
	thumbTop, thumbBot int // thumbnails sit on thumbBot
	thumbs             []image.Rectangle
	names              []string
	nameBase           int
	lines              [][]string
	muted              []bool // rows whose label is a stand-in
	labelRight         int
	gridX, gridY       int
	cellW, cellH       int // a cell, without the gutter
	barX, barY, barH   int
	headingBase        int
	heading            string
	ticks              []float64
	tickLabels         []string
	legendY            int      // top of the first legend entry under the bar
	key                []string // full image names, when columns show numbers
	keyTop, keyRows    int
	keyColW, keyNumW   int
	highlight          [][]bool
	anyHighlight       bool
	valueFormat        string
}

// cell is the rectangle of image i, text t.
func (l *layout) cell(i, t int) image.Rectangle {
	x := l.gridX + i*(l.cellW+cellGap)
	y := l.gridY + t*(l.cellH+cellGap)
	return image.Rect(x, y, x+l.cellW, y+l.cellH)
}

// gridRect is the whole grid.
func (l *layout) gridRect() image.Rectangle {
	return image.Rect(l.gridX, l.gridY,
		l.gridX+l.nImg*(l.cellW+cellGap)-cellGap,
		l.gridY+l.nTxt*(l.cellH+cellGap)-cellGap)
}

// check validates the input and the options, and fills in defaults.
func check(scores [][]float64, images []image.Image, imageNames, texts []string, opt *Options) error {
	nImg := len(scores)
	if nImg == 0 {
		return fmt.Errorf("%w: no images (scores has no rows)", ErrEmpty)
	}
	nTxt := len(scores[0])
	if nTxt == 0 {
		return fmt.Errorf("%w: no texts (scores[0] is empty)", ErrEmpty)
	}
	for i, row := range scores {
		if len(row) != nTxt {
			return fmt.Errorf("%w: scores[%d] has %d values, scores[0] has %d (scores is [image][text])", ErrShape, i, len(row), nTxt)
		}
	}
	if len(images) != 0 && len(images) != nImg {
		return fmt.Errorf("%w: %d thumbnail images for %d rows of scores (scores is [image][text])", ErrShape, len(images), nImg)
	}
	if len(imageNames) != 0 && len(imageNames) != nImg {
		return fmt.Errorf("%w: %d image names for %d rows of scores (scores is [image][text])", ErrShape, len(imageNames), nImg)
	}
	if len(texts) != 0 && len(texts) != nTxt {
		return fmt.Errorf("%w: %d texts for %d columns of scores (scores is [image][text])", ErrShape, len(texts), nTxt)
	}
	if nImg > MaxImages {
		return fmt.Errorf("%w: %d images, at most %d", ErrTooLarge, nImg, MaxImages)
	}
	if nTxt > MaxTexts {
		return fmt.Errorf("%w: %d texts, at most %d", ErrTooLarge, nTxt, MaxTexts)
	}

	if math.IsNaN(opt.Min) || math.IsInf(opt.Min, 0) || math.IsNaN(opt.Max) || math.IsInf(opt.Max, 0) {
		return fmt.Errorf("%w: colour range %g…%g is not finite", ErrOptions, opt.Min, opt.Max)
	}
	if opt.Min > opt.Max || math.IsInf(opt.Max-opt.Min, 0) {
		return fmt.Errorf("%w: colour range Min %g … Max %g", ErrOptions, opt.Min, opt.Max)
	}
	for _, f := range []struct {
		name   string
		v, max int
	}{
		{"CellSize", opt.CellSize, 1024},
		{"ThumbSize", opt.ThumbSize, 1024},
		{"MaxTextWidth", opt.MaxTextWidth, 4096},
		{"MaxTextLines", opt.MaxTextLines, 20},
	} {
		if f.v < 0 || f.v > f.max {
			return fmt.Errorf("%w: %s %d is outside 0…%d", ErrOptions, f.name, f.v, f.max)
		}
	}
	if opt.Highlight < BestTextPerImage || opt.Highlight > NoHighlight {
		return fmt.Errorf("%w: unknown %v", ErrOptions, opt.Highlight)
	}
	if opt.ValueFormat != "" && strings.Contains(fmt.Sprintf(opt.ValueFormat, 0.5), "%!") {
		return fmt.Errorf("%w: ValueFormat %q does not format a float64", ErrOptions, opt.ValueFormat)
	}

	if opt.CellSize == 0 {
		opt.CellSize = 36
	}
	if opt.ThumbSize == 0 {
		switch {
		case nImg <= 6:
			opt.ThumbSize = 128
		case nImg <= 12:
			opt.ThumbSize = 104
		case nImg <= 30:
			opt.ThumbSize = 80
		case nImg <= 80:
			opt.ThumbSize = 64
		default:
			opt.ThumbSize = 48
		}
	}
	if opt.MaxTextWidth == 0 {
		opt.MaxTextWidth = 360
	}
	if opt.MaxTextLines == 0 {
		opt.MaxTextLines = 3
		if nTxt > 20 {
			opt.MaxTextLines = 2
		}
	}
	if opt.ValueFormat == "" {
		opt.ValueFormat = "%.2f"
	}
	if opt.Metric = clean(opt.Metric); opt.Metric == "" {
		opt.Metric = "score"
	}
	return nil
}

// plan checks the input and lays the heat map out.
func plan(fs *faces, scores [][]float64, images []image.Image, imageNames, texts []string, opt Options) (*layout, error) {
	if err := check(scores, images, imageNames, texts, &opt); err != nil {
		return nil, err
	}
	l := &layout{fs: fs, opt: opt, nImg: len(scores), nTxt: len(scores[0]), valueFormat: opt.ValueFormat}
	l.lo, l.hi, l.hasNaN = scaleRange(scores, opt.Min, opt.Max)
	l.highlight, l.anyHighlight = bestCells(scores, opt.Highlight)

	// Rows: wrapped texts, right-aligned against the grid.
	labelW, maxLines := 0, 1
	l.lines = make([][]string, l.nTxt)
	l.muted = make([]bool, l.nTxt)
	for t := range l.nTxt {
		s := ""
		if len(texts) != 0 {
			s = texts[t]
		}
		if clean(s) == "" {
			// No text to show: say so, in grey.
			l.muted[t] = true
			s = "text " + strconv.Itoa(t+1)
			if len(texts) != 0 {
				s = "(empty text)"
			}
		}
		l.lines[t] = fs.label.wrap(s, opt.MaxTextWidth, opt.MaxTextLines)
		maxLines = max(maxLines, len(l.lines[t]))
		for _, line := range l.lines[t] {
			labelW = max(labelW, fs.label.width(line))
		}
	}
	pad := rowPad
	if opt.CellSize < 24 {
		pad = rowPad / 3 // compact rows, for many texts
	}
	l.cellH = max(opt.CellSize, maxLines*fs.label.lineH+pad)

	// Columns: as wide as a thumbnail.
	l.cellW = opt.CellSize
	if len(images) != 0 {
		l.cellW = max(l.cellW, opt.ThumbSize)
	} else {
		widest := 0
		for i := range l.nImg {
			widest = max(widest, fs.small.width(nameOf(imageNames, i)))
		}
		l.cellW = max(l.cellW, min(widest+8, opt.ThumbSize))
	}

	// Thumbnails fit a cellW × ThumbSize box, keep their aspect and sit
	// on a common line above their names.
	thumbH := 0
	sizes := make([]image.Point, l.nImg)
	if len(images) != 0 {
		for i, img := range images {
			sizes[i] = thumbSize(img, l.cellW, opt.ThumbSize)
			thumbH = max(thumbH, sizes[i].Y)
		}
	}

	// Names under the thumbnails, elided to distinct labels; column
	// numbers, with a key under the grid, when columns are too narrow for
	// that.
	var numbers bool
	l.names, numbers = columnLabels(fs.small, imageNames, l.nImg, l.cellW-8)

	// Vertical layout.
	y := margin
	if t := clean(opt.Title); t != "" {
		l.title = t
		l.titleBase = y + fs.title.ascent
		y += fs.title.lineH + 2
	}
	plural := func(n int, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return strconv.Itoa(n) + " " + one + "s"
	}
	l.subtitle = clean(opt.Metric) + "  ·  " + plural(l.nImg, "image") + " × " + plural(l.nTxt, "text")
	l.subBase = y + fs.subtitle.ascent
	y += fs.subtitle.lineH + 14
	l.thumbTop = y
	if thumbH > 0 {
		y += thumbH + nameGap
	}
	l.thumbBot = l.thumbTop + thumbH
	l.nameBase = y + fs.small.ascent
	y += fs.small.lineH + headerGap
	l.gridY = y

	// Horizontal layout.
	l.labelRight = margin + labelW
	l.gridX = l.labelRight + labelGap
	grid := l.gridRect()
	l.thumbs = make([]image.Rectangle, l.nImg)
	for i := range l.nImg {
		c := l.cell(i, 0)
		s := sizes[i]
		x := c.Min.X + (l.cellW-s.X)/2
		l.thumbs[i] = image.Rect(x, l.thumbBot-s.Y, x+s.X, l.thumbBot)
	}

	// Colour bar and legend, right of the grid, top-aligned with it.
	l.barX = grid.Max.X + legendGap
	l.barY = grid.Min.Y
	l.barH = min(max(grid.Dy(), minBarH), maxBarH)
	l.heading = fs.heading.elideEnd(clean(opt.Metric), 220)
	l.headingBase = l.barY - headerGap - fs.small.descent - 2
	l.ticks = ticks(l.lo, l.hi, l.barH/minTickGap+1, l.barH/56+1)
	legendW := fs.heading.width(l.heading)
	for _, v := range l.ticks {
		s := formatTick(v, l.ticks)
		l.tickLabels = append(l.tickLabels, s)
		legendW = max(legendW, barW+tickLen+tickPad+fs.small.width(s))
	}
	l.legendY = l.barY + l.barH + 20
	legendBot := l.barY + l.barH
	if entries := l.legendEntries(); len(entries) > 0 {
		legendBot = l.legendY + len(entries)*legendPitch
		for _, e := range entries {
			legendW = max(legendW, legendSwatch+8+fs.small.width(e))
		}
	}

	l.W = l.barX + legendW + margin
	l.H = max(grid.Max.Y, legendBot) + margin
	if numbers {
		l.planKey(imageNames, grid.Max.Y+keyGap)
	}

	// The title and subtitle may widen the image, up to a point.
	limit := max(l.W-2*margin, 640)
	l.title = fs.title.elideEnd(l.title, limit)
	l.subtitle = fs.subtitle.elideEnd(l.subtitle, limit)
	l.W = max(l.W, 2*margin+fs.title.width(l.title), 2*margin+fs.subtitle.width(l.subtitle))

	if px := int64(l.W) * int64(l.H); px > MaxPixels {
		// l is returned too, for Fit's message.
		return l, fmt.Errorf("%w: %d×%d pixels (%d images × %d texts), at most %d; use smaller CellSize, ThumbSize or MaxTextLines", ErrTooLarge, l.W, l.H, l.nImg, l.nTxt, MaxPixels)
	}
	return l, nil
}

// nameOf is the label of image i.
func nameOf(names []string, i int) string {
	if len(names) == 0 {
		return baseName("", i)
	}
	return baseName(names[i], i)
}

const (
	legendSwatch = 22 // legend swatch width
	legendPitch  = 24 // legend line pitch
)

// legendEntries are the lines under the colour bar: the outline, and the
// NaN hatching when some score is NaN.
func (l *layout) legendEntries() []string {
	var e []string
	if l.anyHighlight {
		e = append(e, l.opt.Highlight.String())
	}
	if l.hasNaN {
		e = append(e, "no score (NaN)")
	}
	return e
}

// thumbSize is the size of img scaled to fit a w × h box, aspect kept;
// nil and empty images get a 4:3 placeholder.
func thumbSize(img image.Image, w, h int) image.Point {
	var sw, sh int
	if img != nil {
		b := img.Bounds()
		sw, sh = b.Dx(), b.Dy()
	}
	if sw <= 0 || sh <= 0 {
		sw, sh = 4, 3
	}
	if sw*h >= sh*w { // wider than the box
		return image.Pt(w, max(1, int(math.Round(float64(w)*float64(sh)/float64(sw)))))
	}
	return image.Pt(max(1, int(math.Round(float64(h)*float64(sw)/float64(sh)))), h)
}

// scaleRange is the colour scale: [min, max] when they differ, otherwise
// the span of the finite scores widened to round values. It also reports
// whether any score is NaN.
func scaleRange(scores [][]float64, lo, hi float64) (float64, float64, bool) {
	dlo, dhi := math.Inf(1), math.Inf(-1)
	hasNaN := false
	for _, row := range scores {
		for _, v := range row {
			switch {
			case math.IsNaN(v):
				hasNaN = true
			case !math.IsInf(v, 0):
				dlo, dhi = min(dlo, v), max(dhi, v)
			}
		}
	}
	if lo < hi {
		return lo, hi, hasNaN
	}
	switch {
	case dlo > dhi: // no finite score
		return 0, 1, hasNaN
	case dlo == dhi:
		if dlo >= 0 && dlo <= 1 {
			return 0, 1, hasNaN
		}
		d := math.Max(math.Abs(dlo)*0.1, 1e-9)
		return dlo - d, dhi + d, hasNaN
	}
	step := niceStep((dhi - dlo) / 10)
	lo = math.Floor(dlo/step) * step
	hi = math.Ceil(dhi/step) * step
	if lo >= hi || math.IsInf(hi-lo, 0) { // step lost in rounding, or overflow
		return dlo, dhi, hasNaN
	}
	return lo, hi, hasNaN
}

// niceStep rounds x > 0 up to 1, 2, 2.5 or 5 × a power of ten.
func niceStep(x float64) float64 {
	if !(x > 0) || math.IsInf(x, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= x*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// minTickGap is the least distance between colour bar ticks, in pixels.
const minTickGap = 24

// ticks are round values in [lo, hi], at most maxN (at least 2) of them.
// Of the round steps that give at most maxN ticks, it prefers one that
// puts ticks on both ends of the scale, then the one whose number of
// ticks is nearest to want (more on a tie).
func ticks(lo, hi float64, maxN, want int) []float64 {
	maxN = max(maxN, 2)
	if !(hi > lo) || math.IsInf(hi-lo, 0) {
		return []float64{lo, hi}
	}
	var best []float64
	bestScore := -1
	for step, k := niceStep((hi-lo)/50), 0; step <= (hi-lo)*1.0001 && k < 100; step, k = niceStep(step*1.01), k+1 {
		first := math.Ceil(lo/step-1e-9) * step
		n := int(math.Floor((hi-first)/step+1e-9)) + 1
		if n > maxN {
			continue
		}
		var ts []float64
		for k := range n {
			v := first + float64(k)*step
			if math.Abs(v) < step*1e-9 {
				v = 0
			}
			ts = append(ts, v)
		}
		score := 2*(50-abs(n-want)) + min(n, want+1) - want
		for _, end := range []float64{lo, hi} {
			if math.Abs(math.Round(end/step)*step-end) < step*1e-6 {
				score += 1000
			}
		}
		if n >= 2 && score > bestScore {
			best, bestScore = ts, score
		}
	}
	if best == nil {
		best = []float64{lo, hi}
	}
	return best
}

// formatTick formats a tick with as many decimals as the ticks need.
func formatTick(v float64, all []float64) string {
	dec := 0
	for _, t := range all {
		for dec < 6 {
			s := strconv.FormatFloat(t, 'f', dec, 64)
			if f, _ := strconv.ParseFloat(s, 64); math.Abs(f-t) <= 1e-9*math.Max(1, math.Abs(t)) {
				break
			}
			dec++
		}
	}
	return minus(strconv.FormatFloat(v, 'f', dec, 64))
}

// minus uses the typographic minus sign, and drops the sign of zero.
func minus(s string) string {
	if strings.HasPrefix(s, "-") {
		if strings.Trim(s[1:], "0.") == "" {
			return s[1:]
		}
		return "−" + s[1:]
	}
	return s
}

// bestCells marks the highest finite score in each column (image) or
// row (text); ties are all marked. A ranking of one is no ranking: with
// one text (or one image) nothing is marked. It reports whether any cell
// is marked.
func bestCells(scores [][]float64, h Highlight) (best [][]bool, any bool) {
	best = make([][]bool, len(scores))
	for i := range scores {
		best[i] = make([]bool, len(scores[i]))
	}
	mark := func(n int, at func(k int) *float64, set func(k int)) {
		m := math.Inf(-1)
		found := false
		for k := range n {
			if v := *at(k); !math.IsNaN(v) && (v > m || !found) {
				m, found = v, true
			}
		}
		if !found {
			return
		}
		for k := range n {
			if *at(k) == m {
				set(k)
				any = true
			}
		}
	}
	switch {
	case h == BestTextPerImage && len(scores[0]) > 1:
		for i := range scores {
			mark(len(scores[i]), func(t int) *float64 { return &scores[i][t] }, func(t int) { best[i][t] = true })
		}
	case h == BestImagePerText && len(scores) > 1:
		for t := range scores[0] {
			mark(len(scores), func(i int) *float64 { return &scores[i][t] }, func(i int) { best[i][t] = true })
		}
	}
	return best, any
}

// colorOf is the colour of score v on the layout's scale.
func (l *layout) colorOf(v float64) color.RGBA {
	switch {
	case math.IsInf(v, 1):
		return Viridis(1)
	case math.IsInf(v, -1):
		return Viridis(0)
	}
	return Viridis((v - l.lo) / (l.hi - l.lo))
}

// render draws the planned heat map.
func (l *layout) render(scores [][]float64, images []image.Image) *image.RGBA {
	fs := l.fs
	dst := image.NewRGBA(image.Rect(0, 0, l.W, l.H))
	fill(dst, dst.Bounds(), white)

	if l.title != "" {
		fs.title.draw(dst, inkDark, margin, l.titleBase, l.title)
	}
	fs.subtitle.draw(dst, inkMuted, margin, l.subBase, l.subtitle)

	// Column headers.
	for i := range l.nImg {
		if len(images) != 0 {
			drawThumb(dst, fs.small, l.thumbs[i], images[i])
		}
		c := l.cell(i, 0)
		w := fs.small.width(l.names[i])
		fs.small.draw(dst, inkMuted, c.Min.X+(c.Dx()-w)/2, l.nameBase, l.names[i])
	}

	// Row labels, right-aligned, centred on their row.
	lh := fs.label.lineH
	for t, lines := range l.lines {
		c := l.cell(0, t)
		top := c.Min.Y + (c.Dy()-len(lines)*lh)/2
		for k, line := range lines {
			base := top + k*lh + (lh+fs.label.ascent-fs.label.descent)/2
			ink := inkDark
			if l.muted[t] {
				ink = inkMuted
			}
			fs.label.draw(dst, ink, l.labelRight-fs.label.width(line), base, line)
		}
	}

	// Cells.
	for i := range l.nImg {
		for t := range l.nTxt {
			c := l.cell(i, t)
			v := scores[i][t]
			if math.IsNaN(v) {
				hatch(dst, c)
				continue
			}
			bg := l.colorOf(v)
			fill(dst, c, bg)
			if l.opt.ShowValues {
				s := minus(fmt.Sprintf(l.valueFormat, v))
				w := fs.small.width(s)
				if w <= c.Dx()-6 && fs.small.lineH <= c.Dy() {
					base := c.Min.Y + (c.Dy()+fs.small.inkHeight("0"))/2
					fs.small.draw(dst, textOn(bg), c.Min.X+(c.Dx()-w)/2, base, s)
				}
			}
		}
	}
	for i := range l.nImg {
		for t := range l.nTxt {
			if l.highlight[i][t] {
				mark(dst, l.cell(i, t))
			}
		}
	}

	// Colour bar: the maximum at the top.
	bar := image.Rect(l.barX, l.barY, l.barX+barW, l.barY+l.barH)
	for y := bar.Min.Y; y < bar.Max.Y; y++ {
		f := 1 - float64(y-bar.Min.Y)/float64(max(1, bar.Dy()-1))
		fill(dst, image.Rect(bar.Min.X, y, bar.Max.X, y+1), Viridis(f))
	}
	frame(dst, bar.Inset(-1), frameGrey)
	fs.heading.draw(dst, inkDark, l.barX, l.headingBase, l.heading)
	digitH := fs.small.inkHeight("0")
	for k, v := range l.ticks {
		y := bar.Min.Y + int(math.Round((1-(v-l.lo)/(l.hi-l.lo))*float64(bar.Dy()-1)))
		fill(dst, image.Rect(bar.Max.X+1, y, bar.Max.X+1+tickLen, y+1), inkMuted)
		fs.small.draw(dst, inkDark, bar.Max.X+tickLen+tickPad, y+digitH/2, l.tickLabels[k])
	}

	// The key of the column numbers.
	for k, e := range l.key {
		col, row := k/l.keyRows, k%l.keyRows
		x := margin + col*l.keyColW
		base := l.keyTop + row*fs.small.lineH + fs.small.ascent
		num := strconv.Itoa(k + 1)
		fs.small.draw(dst, inkDark, x+l.keyNumW-fs.small.width(num), base, num)
		fs.small.draw(dst, inkMuted, x+l.keyNumW+8, base, e)
	}

	// Legend entries under the bar.
	for k, e := range l.legendEntries() {
		y := l.legendY + k*legendPitch
		sw := image.Rect(l.barX, y, l.barX+legendSwatch, y+legendPitch-8)
		if e == "no score (NaN)" {
			hatch(dst, sw)
		} else {
			fill(dst, sw, Viridis(0.6))
			mark(dst, sw)
		}
		base := sw.Min.Y + (sw.Dy()+digitH)/2
		fs.small.draw(dst, inkDark, sw.Max.X+8, base, e)
	}
	return dst
}

// fill paints r with c.
func fill(dst *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(dst, r, image.NewUniform(c), image.Point{}, draw.Src)
}

// frame draws a one-pixel outline just inside r.
func frame(dst *image.RGBA, r image.Rectangle, c color.Color) {
	if r.Empty() {
		return
	}
	u := image.NewUniform(c)
	for _, e := range []image.Rectangle{
		image.Rect(r.Min.X, r.Min.Y, r.Max.X, r.Min.Y+1),
		image.Rect(r.Min.X, r.Max.Y-1, r.Max.X, r.Max.Y),
		image.Rect(r.Min.X, r.Min.Y, r.Min.X+1, r.Max.Y),
		image.Rect(r.Max.X-1, r.Min.Y, r.Max.X, r.Max.Y),
	} {
		draw.Draw(dst, e, u, image.Point{}, draw.Over)
	}
}

// mark outlines a highlighted cell: a dark ring with a white ring
// inside, visible on every colour of the map.
func mark(dst *image.RGBA, r image.Rectangle) {
	for k := range 2 {
		frame(dst, r.Inset(k), markOuter)
	}
	frame(dst, r.Inset(2), markInner)
}

// hatch fills r with diagonal grey stripes: a cell without a score.
func hatch(dst *image.RGBA, r image.Rectangle) {
	fill(dst, r, hatchBack)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if (x+y)%7 == 0 {
				dst.SetRGBA(x, y, hatchLine)
			}
		}
	}
}

// drawThumb scales img into r, over white, with a faint frame; a nil or
// empty image becomes a grey placeholder.
func drawThumb(dst *image.RGBA, f *face, r image.Rectangle, img image.Image) {
	if img == nil || img.Bounds().Empty() {
		fill(dst, r, emptyFill)
		frame(dst, r, frameGrey)
		const s = "no image"
		if w := f.width(s); w <= r.Dx()-8 && f.lineH <= r.Dy() {
			f.draw(dst, inkMuted, r.Min.X+(r.Dx()-w)/2, r.Min.Y+(r.Dy()+f.inkHeight(s))/2, s)
		}
		return
	}
	src, sr := img, img.Bounds()
	// Catmull-Rom's cost grows with the reduction (seconds for a photo
	// into a thumbnail), so first shrink large images to at least twice
	// the thumbnail's size with a box filter.
	// Absurd sizes (an image.Uniform has bounds of 2e9 pixels a side)
	// are only sampled.
	if sr.Dx() > 1<<16 || sr.Dy() > 1<<16 {
		draw.ApproxBiLinear.Scale(dst, r, src, sr, draw.Over, nil)
		frame(dst, r, thumbFrame)
		return
	}
	if k := min(sr.Dx()/(2*r.Dx()), sr.Dy()/(2*r.Dy()), 4000); k >= 2 {
		src = shrink(img, k)
		sr = src.Bounds()
	}
	draw.CatmullRom.Scale(dst, r, src, sr, draw.Over, nil)
	frame(dst, r, thumbFrame)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// shrink reduces img by the integer factor k (2 ≤ k ≤ 4000) with a box
// filter: each output pixel is the mean of a k×k block, in premultiplied
// RGBA. Up to k−1 pixels at the right and bottom edges are dropped. It
// converts img a few rows at a time, through image/draw's fast paths for
// the common image types.
func shrink(img image.Image, k int) *image.RGBA {
	const stripRows = 16
	b := img.Bounds()
	w, h := b.Dx()/k, b.Dy()/k
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	strip := image.NewRGBA(image.Rect(0, 0, w*k, min(k, stripRows)))
	sums := make([]uint32, 4*w) // k*k*255 < 1<<32
	n := uint32(k * k)
	for y := range h {
		clear(sums)
		for r0 := 0; r0 < k; r0 += stripRows {
			rows := min(stripRows, k-r0)
			draw.Draw(strip, image.Rect(0, 0, w*k, rows), img, image.Pt(b.Min.X, b.Min.Y+y*k+r0), draw.Src)
			for r := range rows {
				row := strip.Pix[r*strip.Stride : r*strip.Stride+4*w*k]
				for x := range w {
					s := sums[4*x : 4*x+4 : 4*x+4]
					p := row[4*x*k : 4*(x+1)*k]
					for j := 0; j+3 < len(p); j += 4 {
						s[0] += uint32(p[j])
						s[1] += uint32(p[j+1])
						s[2] += uint32(p[j+2])
						s[3] += uint32(p[j+3])
					}
				}
			}
		}
		o := out.Pix[y*out.Stride : y*out.Stride+4*w]
		for i, v := range sums {
			o[i] = uint8((v + n/2) / n)
		}
	}
	return out
}

// Key layout, in pixels.
const (
	keyGap      = 20  // between the grid and the key
	keyNameMaxW = 320 // widest name in the key
)

// planKey lays out, under the grid from y down, the key that maps column
// numbers to image names, in as many columns as the picture's width holds.
func (l *layout) planKey(imageNames []string, y int) {
	fs := l.fs
	l.key = make([]string, l.nImg)
	nameW := 0
	for i := range l.nImg {
		name := clean(nameOf(imageNames, i))
		if len(imageNames) != 0 && clean(imageNames[i]) != "" {
			name = clean(imageNames[i]) // the path as given: it tells same-named files apart
		}
		l.key[i] = fs.small.elideMiddle(name, keyNameMaxW)
		nameW = max(nameW, fs.small.width(l.key[i]))
	}
	l.keyNumW = fs.small.width(strconv.Itoa(l.nImg))
	l.keyColW = l.keyNumW + 8 + nameW + 24
	cols := max(1, (l.W-2*margin+24)/l.keyColW)
	l.keyRows = (l.nImg + cols - 1) / cols
	l.keyTop = y
	l.H = max(l.H, y+l.keyRows*fs.small.lineH+margin)
}

// columnLabels returns the labels under the columns: each image's base
// name elided to maxW pixels, keeping the part that tells it from the
// others when eliding the middle makes two alike; numbers (1, 2, ...) when
// the columns are too narrow for distinct names, with numbers true.
func columnLabels(f *face, imageNames []string, n, maxW int) (labels []string, numbers bool) {
	labels = make([]string, n)
	numbered := func() ([]string, bool) {
		for i := range labels {
			labels[i] = strconv.Itoa(i + 1)
		}
		return labels, true
	}
	if maxW < f.width("abc…xyz") {
		return numbered()
	}
	names := make([][]rune, n)
	for i := range n {
		names[i] = []rune(nameOf(imageNames, i))
		labels[i] = f.elideMiddle(string(names[i]), maxW)
	}
	for pass := 0; pass < 2; pass++ {
		groups := map[string][]int{}
		for i, s := range labels {
			groups[s] = append(groups[s], i)
		}
		clash := false
		for _, g := range groups {
			if len(g) < 2 {
				continue
			}
			clash = true
			// Keep what differs: drop the prefix and suffix the group
			// shares (but a few characters of context), then elide.
			pre, suf := len(names[g[0]]), len(names[g[0]])
			for _, i := range g[1:] {
				pre = min(pre, commonPrefix(names[g[0]], names[i]))
				suf = min(suf, commonSuffix(names[g[0]], names[i]))
			}
			for _, i := range g {
				r := names[i]
				from := max(0, pre-2)
				to := len(r) - max(0, suf-4)
				if to <= from {
					from, to = 0, len(r)
				}
				s := string(r[from:to])
				if from > 0 {
					s = ellipsis + s
				}
				if to < len(r) {
					s += ellipsis
				}
				if pass == 1 {
					s = string(r[from:]) // no end elision on the second try
					if from > 0 {
						s = ellipsis + s
					}
				}
				labels[i] = f.elideEnd(s, maxW)
			}
		}
		if !clash {
			return labels, false
		}
	}
	seen := map[string]bool{}
	for _, s := range labels {
		if seen[s] || s == "" {
			return numbered()
		}
		seen[s] = true
	}
	return labels, false
}

func commonPrefix(a, b []rune) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

func commonSuffix(a, b []rune) int {
	n := 0
	for n < len(a) && n < len(b) && a[len(a)-1-n] == b[len(b)-1-n] {
		n++
	}
	return n
}
