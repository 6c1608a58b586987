package blipcuda

import (
	"bytes"
	"context"
	"errors"
	"os"
	"reflect"
	"testing"

	"github.com/blipcuda/blipcuda/imageproc"
)

// TestMatchMany: queries scored together (shared images, shared and
// distinct texts, an invalid query among them) give exactly what Match
// gives on each alone.
func TestMatchMany(t *testing.T) {
	ctx := context.Background()
	m := loadTiny(t, "tiny-base", WithImageBatch(2), WithTextBatch(3))
	ims := images(t, m, []string{"scene.png", "blocks.png", "waves_rgba.png"})
	again := images(t, m, []string{"scene.png"})[0] // equal pixels, another *Image
	queries := []MatchQuery{
		{Images: []*Image{ims[0]}, Texts: []string{"a red square", "two cats on a sofa", "a beach at sunset with waves"}},
		{Images: []*Image{ims[1], ims[2]}, Texts: []string{"a red square", "blue stripes"}},
		{Images: []*Image{ims[0]}, Texts: []string{"a cat", ""}}, // invalid text 1
		{Images: []*Image{again, ims[2]}, Texts: []string{"two cats on a sofa", "waves", "a long caption about many things in a picture of the sea"}},
		{Images: nil, Texts: []string{"no image"}},
	}
	got, errs, err := m.MatchMany(ctx, queries)
	if err != nil {
		t.Fatal(err)
	}
	for q, query := range queries {
		want, werr := m.Match(ctx, query.Images, query.Texts)
		if (werr == nil) != (errs[q] == nil) {
			t.Fatalf("query %d: err %v, Match err %v", q, errs[q], werr)
		}
		if werr != nil {
			if got[q] != nil {
				t.Errorf("query %d: scores with an error", q)
			}
			continue
		}
		if !reflect.DeepEqual(got[q], want) {
			t.Errorf("query %d: MatchMany\n%+v\nMatch\n%+v", q, got[q], want)
		}
	}
	if !errors.Is(errs[2], ErrEmptyText) {
		t.Errorf("query 2: err %v, want ErrEmptyText", errs[2])
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := m.MatchMany(cctx, queries[:1]); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
}

func TestDecodeImage(t *testing.T) {
	m := loadTiny(t, "tiny-base", WithMaxPixels(1000*1000))
	data, err := os.ReadFile("testdata/models/images/scene.png")
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.DecodeImage("upload", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	want := images(t, m, []string{"scene.png"})[0]
	if !reflect.DeepEqual(got.pixels, want.pixels) || got.Name != "upload" {
		t.Error("DecodeImage differs from LoadImage")
	}
	if _, err := m.DecodeImage("junk", bytes.NewReader([]byte("not an image"))); !errors.Is(err, imageproc.ErrNotImage) {
		t.Errorf("junk: %v", err)
	}
	big, err := os.ReadFile("testdata/images/bad_huge_100000x100000.png")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.DecodeImage("bomb", bytes.NewReader(big)); !errors.Is(err, imageproc.ErrTooLarge) {
		t.Errorf("bomb: %v", err)
	}
	if err := m.CheckTexts([]string{"ok", "\xff"}); !errors.Is(err, ErrInvalidText) {
		t.Errorf("CheckTexts: %v", err)
	}
}
