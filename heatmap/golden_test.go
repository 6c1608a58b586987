package heatmap

import (
	"flag"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/example.png")

// exampleScores is the README example: four generated pictures and five
// captions, with P(match) scores as a BLIP ITM head might give them,
// indexed [image][text].
func exampleScores() (scores [][]float64, images []image.Image, names, texts []string) {
	images = []image.Image{sceneBeach(192, 128), sceneForest(128, 160), sceneCity(200, 120), sceneFruit(160, 120)}
	names = []string{"photos/beach.png", "photos/forest.png", "photos/skyline_at_night.png", "photos/fruit_bowl.png"}
	texts = []string{
		"a sandy beach with blue sea under a sunny sky",
		"pine trees in a forest",
		"a city skyline at night with lit windows and a full moon over the rooftops",
		"a bowl of apples and oranges on a wooden table",
		"a photo of the ocean",
	}
	scores = [][]float64{
		{0.97, 0.02, 0.01, 0.003, 0.81},
		{0.03, 0.93, 0.02, 0.01, 0.02},
		{0.01, 0.04, 0.88, 0.01, 0.05},
		{0.02, 0.01, 0.004, 0.91, 0.01},
	}
	return scores, images, names, texts
}

// TestExamplePNG keeps testdata/example.png, the picture in the README,
// in step with the code: with -update it rewrites the file
//
//	go test ./heatmap -run ExamplePNG -update
//
// and otherwise checks that a fresh rendering matches it (the same size,
// and all but a few pixels within a small tolerance, allowing for
// floating-point differences between platforms).
func TestExamplePNG(t *testing.T) {
	scores, images, names, texts := exampleScores()
	img, err := Render(scores, images, names, texts, Options{
		Title:      "blipcuda match · BLIP base-coco",
		Metric:     "P(match)",
		Min:        0,
		Max:        1,
		ShowValues: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "example.png")
	if *update {
		if err := WritePNG(golden, img); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(golden)
		t.Logf("wrote %s: %dx%d, %d bytes", golden, img.Bounds().Dx(), img.Bounds().Dy(), fi.Size())
		if fi.Size() > 150_000 {
			t.Errorf("%s is %d bytes; keep it under 150 kB", golden, fi.Size())
		}
		return
	}
	f, err := os.Open(golden)
	if err != nil {
		t.Fatalf("%v (regenerate with -update)", err)
	}
	defer f.Close()
	want, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if want.Bounds() != img.Bounds() {
		t.Fatalf("rendered %v, %s is %v (regenerate with -update)", img.Bounds(), golden, want.Bounds())
	}
	bad := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r1, g1, b1, _ := img.At(x, y).RGBA()
			r2, g2, b2, _ := want.At(x, y).RGBA()
			if diff(r1, r2) > 8<<8 || diff(g1, g2) > 8<<8 || diff(b1, b2) > 8<<8 {
				bad++
			}
		}
	}
	if frac := float64(bad) / float64(b.Dx()*b.Dy()); frac > 0.002 {
		t.Errorf("%d pixels (%.2f%%) differ from %s (regenerate with -update if the change is intended)", bad, 100*frac, golden)
	}
}

func diff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}
