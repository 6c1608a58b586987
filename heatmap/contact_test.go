package heatmap

import (
	"errors"
	"image"
	"image/color"
	"strings"
	"testing"
)

func TestContactSheet(t *testing.T) {
	red := image.NewUniform(color.RGBA{200, 30, 40, 255})
	photo := image.NewRGBA(image.Rect(0, 0, 300, 120))
	fill(photo, photo.Bounds(), color.RGBA{200, 30, 40, 255})
	rows := []SheetRow{
		{Title: "a red photo", Cards: []Card{
			{Image: photo, Label: "#1 red.png", Lines: []string{"score 1.5", "P(match) 0.9 · ITC 0.3"}},
			{Image: nil, Label: "#2 missing.png"},
			{Image: red, Label: "#3 " + strings.Repeat("very/long/", 30) + "name.png"},
		}},
		{Title: "captions", Query: photo, Cards: []Card{{Text: strings.Repeat("a long caption ", 40), Label: "#1"}}},
		{Title: "nothing"},
	}
	for i := 0; i < 7; i++ {
		rows[0].Cards = append(rows[0].Cards, Card{Image: photo, Label: "#n"})
	}
	img, err := ContactSheet("title", "subtitle", rows)
	if err != nil {
		t.Fatal(err)
	}
	// Three queries; the first wraps onto a second line of cards.
	b := img.Bounds()
	if b.Dx() != 2*sheetPad+cardsWide*cardW+(cardsWide-1)*cardGap || b.Dy() < 4*(cardThumb+cardGap) {
		t.Errorf("sheet of %v", b)
	}
	// The first card's thumbnail is red in its middle.
	x, y := sheetPad+cardW/2, 0
	for yy := 0; yy < b.Dy(); yy++ {
		if c := img.RGBAAt(x, yy); c.R > 150 && c.G < 80 {
			y = yy
			break
		}
	}
	if y == 0 {
		t.Error("no red thumbnail found in the first card's column")
	}
	if _, err := ContactSheet("t", "s", nil); !errors.Is(err, ErrEmpty) {
		t.Errorf("no rows: %v", err)
	}
	many := make([]SheetRow, 300)
	if _, err := ContactSheet("t", "s", many); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too many rows: %v", err)
	}
}
