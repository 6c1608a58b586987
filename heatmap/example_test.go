package heatmap_test

import (
	"image"
	"log"
	"os"
	"path/filepath"

	"github.com/blipcuda/blipcuda/heatmap"
)

// Scores are indexed by image, then text, as in blipcuda.Scores; convert those
// with heatmap.FromFloat32.
func ExampleRender() {
	scores := [][]float64{
		{0.91, 0.03, 0.40}, // cat.jpg against each text
		{0.02, 0.88, 0.35}, // dog.jpg
	}
	thumbs := []image.Image{
		image.NewRGBA(image.Rect(0, 0, 64, 48)), // decoded images in practice
		nil,                                     // a grey placeholder
	}
	img, err := heatmap.Render(scores, thumbs,
		[]string{"pets/cat.jpg", "pets/dog.jpg"},
		[]string{"a cat on a sofa", "a dog in the park", "a pet"},
		heatmap.Options{Title: "Pets", Metric: "P(match)", Min: 0, Max: 1, ShowValues: true})
	if err != nil {
		log.Fatal(err)
	}
	if err := heatmap.WritePNG(filepath.Join(os.TempDir(), "pets.png"), img); err != nil {
		log.Fatal(err)
	}
}
