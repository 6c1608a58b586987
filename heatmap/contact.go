package heatmap

import (
	"fmt"
	"image"
	"image/color"
)

// A contact sheet shows ranked results as cards: for each query a title
// line (and, for an image query, the query image), then one card per
// result with its thumbnail (or its text) and caption lines. blipcuda
// search draws its --plot with it.

// SheetRow is one query of a contact sheet.
type SheetRow struct {
	// Title is the query, drawn above its cards.
	Title string
	// Query is the query image (image → text retrieval), or nil.
	Query image.Image
	// Cards are the results, best first.
	Cards []Card
}

// Card is one result.
type Card struct {
	// Image is the result's thumbnail; nil for a text result, whose Text
	// is drawn in its place.
	Image image.Image
	// Text is a text result, wrapped into the thumbnail's box.
	Text string
	// Label is the card's first caption line (e.g. "#1 photos/dog.jpg").
	Label string
	// Lines are further caption lines (the scores).
	Lines []string
}

// Contact-sheet geometry, in pixels.
const (
	cardW         = 188
	cardThumb     = 172
	cardGap       = 12
	sheetPad      = 20
	cardsWide     = 5
	maxSheetLines = 200 // lines of cards, all queries together
)

// Highlight colour of a card's rank label.
var rankInk = color.RGBA{0x0b, 0x55, 0x9c, 255}

// ContactSheet draws rows of result cards under a title and subtitle, up
// to five cards a line. It fails with ErrEmpty when there is nothing to
// draw and ErrTooLarge beyond MaxPixels.
func ContactSheet(title, subtitle string, rows []SheetRow) (*image.RGBA, error) {
	if len(rows) == 0 {
		return nil, fmt.Errorf("%w: no queries", ErrEmpty)
	}
	fs, err := newFaces()
	if err != nil {
		return nil, err
	}
	defer fs.close()
	captionLines := 1
	for _, r := range rows {
		for _, c := range r.Cards {
			captionLines = max(captionLines, 1+len(c.Lines))
		}
	}
	cardH := cardThumb + 6 + captionLines*fs.small.lineH
	width := 2*sheetPad + cardsWide*cardW + (cardsWide-1)*cardGap
	// Height: header, then per query its title line and its lines of cards.
	y := sheetPad + fs.title.lineH + fs.subtitle.lineH + cardGap
	lines := 0
	for _, r := range rows {
		n := len(r.Cards)
		if r.Query != nil {
			n++
		}
		l := max(1, (n+cardsWide-1)/cardsWide)
		lines += l
		y += fs.heading.lineH + 4 + l*(cardH+cardGap) + cardGap
	}
	height := y + sheetPad
	if lines > maxSheetLines || width*height > MaxPixels {
		return nil, fmt.Errorf("%w: %d lines of cards", ErrTooLarge, lines)
	}
	dst := image.NewRGBA(image.Rect(0, 0, width, height))
	fill(dst, dst.Bounds(), white)
	inner := width - 2*sheetPad
	y = sheetPad + fs.title.ascent
	fs.title.draw(dst, inkDark, sheetPad, y, fs.title.elideEnd(clean(title), inner))
	y += fs.subtitle.lineH
	fs.subtitle.draw(dst, inkMuted, sheetPad, y+2, fs.subtitle.elideEnd(clean(subtitle), inner))
	y += fs.title.descent + cardGap
	for _, r := range rows {
		y += fs.heading.lineH
		fs.heading.draw(dst, inkDark, sheetPad, y, fs.heading.elideEnd(clean(r.Title), inner))
		y += 4 + fs.heading.descent
		cards := r.Cards
		if r.Query != nil {
			cards = append([]Card{{Image: r.Query, Label: "query"}}, cards...)
		}
		if len(cards) == 0 {
			cards = []Card{{Text: "no results"}}
		}
		for i, c := range cards {
			col := i % cardsWide
			if i > 0 && col == 0 {
				y += cardH + cardGap
			}
			x := sheetPad + col*(cardW+cardGap)
			drawCard(dst, fs, image.Rect(x, y, x+cardW, y+cardH), c, r.Query != nil && i == 0)
		}
		y += cardH + 2*cardGap
	}
	return dst, nil
}

// drawCard draws one card into r: the thumbnail or text box, centred,
// then the label and lines.
func drawCard(dst *image.RGBA, fs *faces, r image.Rectangle, c Card, query bool) {
	box := image.Rect(r.Min.X+(r.Dx()-cardThumb)/2, r.Min.Y, r.Min.X+(r.Dx()+cardThumb)/2, r.Min.Y+cardThumb)
	if c.Image != nil {
		sz := thumbSize(c.Image, cardThumb, cardThumb)
		tr := image.Rect(0, 0, sz.X, sz.Y).Add(image.Pt(box.Min.X+(cardThumb-sz.X)/2, box.Min.Y+(cardThumb-sz.Y)/2))
		drawThumb(dst, fs.small, tr, c.Image)
	} else {
		fill(dst, box, emptyFill)
		frame(dst, box, frameGrey)
		lines := fs.label.wrap(c.Text, cardThumb-16, (cardThumb-16)/fs.label.lineH)
		ty := box.Min.Y + 8 + fs.label.ascent
		for _, l := range lines {
			fs.label.draw(dst, inkDark, box.Min.X+8, ty, l)
			ty += fs.label.lineH
		}
	}
	if query {
		frame(dst, box.Inset(-2), rankInk)
	}
	y := box.Max.Y + 6 + fs.small.ascent
	ink := rankInk
	if query {
		ink = inkMuted
	}
	fs.small.draw(dst, ink, r.Min.X, y, fs.small.elideMiddle(clean(c.Label), r.Dx()))
	for _, l := range c.Lines {
		y += fs.small.lineH
		fs.small.draw(dst, inkMuted, r.Min.X, y, fs.small.elideEnd(clean(l), r.Dx()))
	}
}
