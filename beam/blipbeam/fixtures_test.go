package blipbeam

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/blipcuda/blipcuda"
	"github.com/xitongsys/parquet-go-source/buffer"
	"github.com/xitongsys/parquet-go/reader"
)

// tinyModel is the tiny random checkpoint of the root module's fixtures.
const tinyModel = "../../testdata/models/tiny-base"

var words = []string{"a", "dog", "cat", "red", "bus", "on", "the", "beach", "under", "sun", "bowl", "of",
	"fruit", "table", "two", "people", "walking", "street", "city", "green", "field", "with", "trees"}

// fixture is a generated dataset: images as files and as WebDataset
// samples, captions, and the inputs that must land in the dead letters.
type fixture struct {
	dir    string
	images []string          // image files
	bytes  map[string][]byte // file → content
	pairs  []Pair            // the valid pairs (Key, Image = file, Caption)
	bad    map[string]string // key of each sample that must fail → a word its reason holds
	wds    string            // glob of the WebDataset shards
}

// makeImage draws a deterministic picture of w×h as PNG or JPEG.
func makeImage(rng *rand.Rand, w, h int, asJPEG bool) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	c0 := color.RGBA{uint8(rng.Intn(256)), uint8(rng.Intn(256)), uint8(rng.Intn(256)), 255}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{c0.R + uint8(x*3), c0.G + uint8(y*5), c0.B ^ uint8(x*y), 255})
		}
	}
	var b bytes.Buffer
	if asJPEG {
		jpeg.Encode(&b, img, &jpeg.Options{Quality: 85})
	} else {
		png.Encode(&b, img)
	}
	return b.Bytes()
}

func caption(rng *rand.Rand) string {
	n := 3 + rng.Intn(8)
	s := words[rng.Intn(len(words))]
	for i := 1; i < n; i++ {
		s += " " + words[rng.Intn(len(words))]
	}
	return s
}

// newFixture writes nImages images (each with 1 to 3 captions) as files and
// as two WebDataset shards, plus broken samples: an undecodable image, a
// truncated one, a sample without caption, one whose caption has no words.
func newFixture(t testing.TB, nImages int) *fixture {
	t.Helper()
	rng := rand.New(rand.NewSource(18))
	f := &fixture{dir: t.TempDir(), bytes: map[string][]byte{}, bad: map[string]string{}}
	imgDir := filepath.Join(f.dir, "images")
	if err := os.Mkdir(imgDir, 0o777); err != nil {
		t.Fatal(err)
	}
	type sample struct {
		key, ext string
		img      []byte
		txt      *string
	}
	var samples []sample
	for i := 0; i < nImages; i++ {
		asJPEG := i%3 == 0
		data := makeImage(rng, 24+rng.Intn(60), 24+rng.Intn(60), asJPEG)
		ext := "png"
		if asJPEG {
			ext = "jpg"
		}
		path := filepath.Join(imgDir, fmt.Sprintf("%04d.%s", i, ext))
		if err := os.WriteFile(path, data, 0o666); err != nil {
			t.Fatal(err)
		}
		f.images = append(f.images, path)
		f.bytes[path] = data
		for c := 0; c < 1+i%3; c++ {
			key := fmt.Sprintf("%05d%04d", i, c)
			cap := caption(rng)
			f.pairs = append(f.pairs, Pair{Key: key, Image: path, Caption: cap})
			samples = append(samples, sample{key, ext, data, &cap})
		}
	}
	empty, words := "  ", "some caption"
	garbage := []byte("\xff\xd8 this is not a jpeg")
	good := f.bytes[f.images[0]]
	samples = append(samples,
		sample{"bad-garbage", "jpg", garbage, &words},
		sample{"bad-truncated", "png", good[:len(good)/2], &words},
		sample{"bad-nocaption", "png", good, nil},
		sample{"bad-emptycaption", "png", good, &empty})
	f.bad["bad-garbage"] = "bad-garbage.jpg"
	f.bad["bad-truncated"] = "truncated"
	f.bad["bad-nocaption"] = "no caption"
	f.bad["bad-emptycaption"] = "empty"
	rng.Shuffle(len(samples), func(i, j int) { samples[i], samples[j] = samples[j], samples[i] })

	wdsDir := filepath.Join(f.dir, "wds")
	os.Mkdir(wdsDir, 0o777)
	half := len(samples) / 2
	for s, part := range [][]sample{samples[:half], samples[half:]} {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		add := func(name string, data []byte) {
			tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data))})
			tw.Write(data)
		}
		for _, sm := range part {
			add(sm.key+"."+sm.ext, sm.img)
			if sm.txt != nil {
				add(sm.key+".txt", []byte(*sm.txt))
			}
			meta, _ := json.Marshal(map[string]any{"key": sm.key, "url": "https://example.com/" + sm.key, "status": "success"})
			add(sm.key+".json", meta)
		}
		tw.Close()
		if err := os.WriteFile(filepath.Join(wdsDir, fmt.Sprintf("%05d.tar", s)), b.Bytes(), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	f.wds = filepath.Join(wdsDir, "*.tar")
	return f
}

// inputRow is a row of the input Parquet file, with optional columns as
// pandas writes them.
type inputRow struct {
	Key     *string `parquet:"name=key, type=BYTE_ARRAY, convertedtype=UTF8, repetitiontype=OPTIONAL"`
	Path    *string `parquet:"name=path, type=BYTE_ARRAY, convertedtype=UTF8, repetitiontype=OPTIONAL"`
	Caption *string `parquet:"name=caption, type=BYTE_ARRAY, convertedtype=UTF8, repetitiontype=OPTIONAL"`
}

// writeParquetPairs writes pairs, and rows that must fail, to a Parquet
// file with columns key, path, caption.
func (f *fixture) writeParquetPairs(t *testing.T, pairs []Pair) string {
	t.Helper()
	garbage := filepath.Join(f.dir, "garbage.jpg")
	os.WriteFile(garbage, []byte("not an image"), 0o666)
	missing := filepath.Join(f.dir, "missing.png")
	str := func(s string) *string { return &s }
	rows := []inputRow{
		{Key: str("bad-garbage"), Path: &garbage, Caption: str("a dog")},
		{Key: str("bad-missing"), Path: &missing, Caption: str("a dog")},
		{Key: str("bad-nullcaption"), Path: &f.images[0]},
	}
	f.bad = map[string]string{"bad-garbage": "not a supported image", "bad-missing": "no such file", "bad-nullcaption": "no caption"}
	for _, p := range pairs {
		rows = append(rows, inputRow{Key: str(p.Key), Path: str(p.Image), Caption: str(p.Caption)})
	}
	path := filepath.Join(f.dir, "pairs.parquet")
	if err := writeParquet(context.Background(), path, new(inputRow), rows); err != nil {
		t.Fatal(err)
	}
	return path
}

// readRows reads every row of the Parquet files matching glob.
func readRows[T any](t *testing.T, glob string) []T {
	t.Helper()
	files, err := filepath.Glob(glob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no files match %s (%v)", glob, err)
	}
	var out []T
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		pr, err := reader.NewParquetReader(buffer.NewBufferFileFromBytes(data), new(T), 1)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		rows := make([]T, pr.GetNumRows())
		if err := pr.Read(&rows); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		pr.ReadStop()
		out = append(out, rows...)
	}
	return out
}

// expectedScores is what the library's Match gives for each pair: each
// image loaded from its file, matched against its captions.
func expectedScores(t *testing.T, m *blipcuda.Model, pairs []Pair) map[string]PairScore {
	t.Helper()
	ctx := context.Background()
	byImage := map[string][]Pair{}
	var order []string
	for _, p := range pairs {
		if byImage[p.Image] == nil {
			order = append(order, p.Image)
		}
		byImage[p.Image] = append(byImage[p.Image], p)
	}
	out := map[string]PairScore{}
	for _, path := range order {
		img, err := m.LoadImage(path)
		if err != nil {
			t.Fatal(err)
		}
		ps := byImage[path]
		texts := make([]string, len(ps))
		for i, p := range ps {
			texts[i] = p.Caption
		}
		s, err := m.Match(ctx, []*blipcuda.Image{img}, texts)
		if err != nil {
			t.Fatal(err)
		}
		for j, p := range ps {
			l := s.ITMLogits[0][j]
			out[p.Key] = PairScore{Key: p.Key, Image: p.Image, Caption: p.Caption, ITMProb: s.ITMProb[0][j], ITMLogit: l[1] - l[0], ITC: s.ITC[0][j]}
		}
	}
	return out
}
