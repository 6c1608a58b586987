package heatmap

import (
	"image"
	_ "image/jpeg"
	_ "image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// TestSamples renders a gallery for looking at by eye:
//
//	HEATMAP_SAMPLES=/tmp go test ./heatmap -run Samples
//
// writes /tmp/heatmap-*.png. Without the variable it is skipped.
func TestSamples(t *testing.T) {
	dir := os.Getenv("HEATMAP_SAMPLES")
	if dir == "" {
		t.Skip("set HEATMAP_SAMPLES=DIR to write sample plots")
	}
	load := func(p string) image.Image {
		f, err := os.Open(p)
		if err != nil {
			t.Logf("%v (placeholder)", err)
			return nil
		}
		defer f.Close()
		img, _, err := image.Decode(f)
		if err != nil {
			t.Logf("%s: %v (placeholder)", p, err)
			return nil
		}
		return img
	}
	write := func(name string, scores [][]float64, imgs []image.Image, names, texts []string, opt Options) {
		t.Helper()
		img, err := Render(scores, imgs, names, texts, opt)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		p := filepath.Join(dir, "heatmap-"+name+".png")
		if err := WritePNG(p, img); err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(p)
		t.Logf("%s: %dx%d, %d bytes", p, img.Bounds().Dx(), img.Bounds().Dy(), st.Size())
	}
	rng := rand.New(rand.NewPCG(1, 2))

	// 3 images × 6 captions, probabilities.
	caps := []string{
		"a sandy beach with blue sea under a sunny sky",
		"pine trees in a forest",
		"a city skyline at night with lit windows and a full moon over the rooftops of tall office buildings",
		"a bowl of fruit on a wooden kitchen table",
		"two dogs playing in the snow",
		"a photo of the ocean",
	}
	names := []string{"/data/holiday/beach.png", "forest.png", "downtown_at_night_from_the_river_2019-07-14.jpg"}
	imgs := []image.Image{sceneBeach(160, 120), sceneForest(120, 160), sceneCity(200, 120)}
	p := [][]float64{
		{0.97, 0.02, 0.01, 0.003, 0.04, 0.81},
		{0.03, 0.93, 0.02, 0.01, 0.12, 0.02},
		{0.01, 0.04, 0.88, 0.01, 0.002, 0.05},
	}
	write("3x6-prob", p, imgs, names, caps, Options{Title: "BLIP base-coco · image–text matching", Metric: "P(match)", Min: 0, Max: 1, ShowValues: true})
	write("3x6-prob-novalues", p, imgs, names, caps, Options{Title: "BLIP base-coco", Metric: "P(match)", Min: 0, Max: 1})

	// 1 image × 12 captions.
	caps12 := []string{
		"a colourful gradient with a yellow circle",
		"a blue dot and a yellow dot on a rainbow background",
		"a grid of thin dark lines over a smooth colour gradient",
		"a checkerboard pattern in the top left corner",
		"a cat",
		"a dog sleeping on a sofa",
		"an abstract painting",
		"the sun and a planet",
		"a screenshot of a test pattern",
		"黄色的圆和蓝色的圆",
		"",
		"an extremely long caption that keeps going and going, describing every single detail of the picture in great length, far more than would ever fit on three lines of a label",
	}
	p12 := make([][]float64, 1)
	for range caps12 {
		p12[0] = append(p12[0], rng.Float64()*rng.Float64())
	}
	p12[0][4] = math.NaN()
	write("1x12-prob", p12, []image.Image{load("../testdata/images/photo_640x480.png")}, []string{"photo_640x480.png"}, caps12, Options{Title: "One image, twelve captions", Metric: "P(match)", Min: 0, Max: 1, ShowValues: true})

	// 6 images × 3 captions, cosines.
	files := []string{
		"../testdata/models/images/blocks.png", "../testdata/models/images/scene.png", "../testdata/models/images/waves_rgba.png",
		"../testdata/images/mixed_150x900.png", "../testdata/images/wide_500x7.png", "../testdata/images/missing.png",
	}
	var imgs6 []image.Image
	for _, f := range files {
		imgs6 = append(imgs6, load(f))
	}
	cos := make([][]float64, 6)
	for i := range cos {
		for range 3 {
			cos[i] = append(cos[i], -0.1+0.7*rng.Float64())
		}
	}
	write("6x3-cos", cos, imgs6, files, []string{"colourful blocks", "a yellow sun over a green field", "waves"}, Options{Title: "ITC similarity", Metric: "ITC cosine", ShowValues: true, ValueFormat: "%.3f"})

	// 30 × 30, no values.
	n := 30
	big := make([][]float64, n)
	var bigImgs []image.Image
	var bigNames, bigTexts []string
	gens := []func(int, int) image.Image{sceneBeach, sceneForest, sceneCity, sceneFruit}
	for i := range n {
		bigImgs = append(bigImgs, gens[i%4](96+i*3, 72+i))
		bigNames = append(bigNames, "IMG_"+string(rune('A'+i%26))+"_00"+string(rune('0'+i%10))+".jpg")
		bigTexts = append(bigTexts, caps[i%len(caps)])
		for j := range n {
			v := rng.Float64() * 0.3
			if i == j {
				v = 0.6 + 0.4*rng.Float64()
			}
			big[i] = append(big[i], v)
		}
	}
	write("30x30", big, bigImgs, bigNames, bigTexts, Options{Title: "30 × 30", Metric: "P(match)", Min: 0, Max: 1})
	// 1 × 1.
	write("1x1", [][]float64{{0.42}}, []image.Image{sceneFruit(64, 64)}, []string{"fruit.png"}, []string{"fruit"}, Options{Metric: "P(match)", Min: 0, Max: 1, ShowValues: true})
	// 50 images × 1 text, no thumbnails.
	row := make([][]float64, 50)
	for i := range row {
		row[i] = []float64{rng.Float64()}
	}
	write("50x1-nothumbs", row, nil, nil, []string{"a red apple"}, Options{Title: "50 images, no thumbnails", Metric: "P(match)", Min: 0, Max: 1})
	// 1 × 50.
	col := [][]float64{make([]float64, 50)}
	var t50 []string
	for j := range 50 {
		col[0][j] = rng.Float64()
		t50 = append(t50, caps[j%len(caps)])
	}
	write("1x50", col, []image.Image{sceneBeach(300, 200)}, []string{"beach.png"}, t50, Options{Metric: "P(match)", Min: 0, Max: 1, ShowValues: true, Highlight: BestImagePerText})

	// 12 images with long names, cosines with NaN, best image per text.
	var imgs12 []image.Image
	var names12 []string
	cos12 := make([][]float64, 12)
	for i := range 12 {
		imgs12 = append(imgs12, gens[i%4](80+20*i, 60+10*(i%3)))
		names12 = append(names12, "/very/long/path/to/the/dataset/validation_split_image_number_"+string(rune('a'+i))+".jpeg")
		for j := range 4 {
			v := -0.2 + 0.9*rng.Float64()
			if (i+j)%11 == 0 {
				v = math.NaN()
			}
			cos12[i] = append(cos12[i], v)
		}
	}
	write("12x4-cos", cos12, imgs12, names12, []string{"a beach", "trees", "a city at night seen from far away across a river with reflections of the lights", "fruit 🍎🍊 in a bowl"}, Options{
		Title:  "A rather long title that goes on and on to see how the layout copes with a title wider than the plot itself, which happens with few images",
		Metric: "ITC cosine similarity", ShowValues: true, Highlight: BestImagePerText})
}
