package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/blipcuda/blipcuda"
)

const (
	fixtureDir  = "../testdata/eval"
	tinyBase    = "../testdata/models/tiny-base"
	annotations = fixtureDir + "/annotations.json"
)

// expected is testdata/eval/expected.json (see make_fixture.py).
type expected struct {
	K         int      `json:"k"`
	Images    int      `json:"images"`
	Texts     []string `json:"texts"`
	Truncated int      `json:"truncated"`
	Recall    Recall   `json:"recall"`
	I2T       []struct {
		Cols   []int32   `json:"cols"`
		Scores []float32 `json:"scores"`
	} `json:"i2t"`
	T2I []struct {
		Cols   []int32   `json:"cols"`
		Scores []float32 `json:"scores"`
	} `json:"t2i"`
}

func readExpected(t *testing.T) *expected {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var e expected
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	return &e
}

var (
	tinyOnce  sync.Once
	tinyModel *blipcuda.Model
	tinyErr   error
)

// tiny loads the tiny checkpoint once for the package's tests.
func tiny(t *testing.T) *blipcuda.Model {
	t.Helper()
	tinyOnce.Do(func() {
		tinyModel, tinyErr = blipcuda.Load(context.Background(), tinyBase, blipcuda.WithDevice("cpu"))
	})
	if tinyErr != nil {
		t.Fatal(tinyErr)
	}
	return tinyModel
}

// TestFixture: BLIP's evaluation of testdata/eval/annotations.json with the
// tiny checkpoint, against the independent Python implementation over
// transformers (make_fixture.py): the cleaned texts and the recall figures
// are equal, every row's top-k set is the same, and the scores in it agree
// within 1e-4.
func TestFixture(t *testing.T) {
	want := readExpected(t)
	c, err := ReadAnnotations(annotations)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Texts, want.Texts) {
		t.Fatalf("cleaned texts differ from BLIP's pre_caption:\n got %q\nwant %q", c.Texts, want.Texts)
	}
	r, err := Evaluate(context.Background(), tiny(t), c, Options{ImagesRoot: fixtureDir, K: want.K})
	if err != nil {
		t.Fatal(err)
	}
	if r.Recall != want.Recall {
		t.Errorf("recall\n got %+v\nwant %+v", r.Recall, want.Recall)
	}
	if r.Truncated != want.Truncated {
		t.Errorf("%d texts truncated, want %d", r.Truncated, want.Truncated)
	}
	if r.KI2T != want.K || r.KT2I != want.K || len(r.Skipped) != 0 {
		t.Errorf("k %d/%d, skipped %v", r.KI2T, r.KT2I, r.Skipped)
	}
	worst := 0.0
	check := func(dir string, got []Row, i int, cols []int32, scores []float32) {
		if !slices.Equal(got[i].Cols, cols) {
			t.Errorf("%s row %d: top-k %v, want %v", dir, i, got[i].Cols, cols)
			return
		}
		for k := range cols {
			d := math.Abs(float64(got[i].Scores[k]) - float64(scores[k]))
			worst = max(worst, d)
			if d > 1e-4 {
				t.Errorf("%s row %d col %d: score %g, want %g", dir, i, cols[k], got[i].Scores[k], scores[k])
			}
		}
	}
	if len(r.I2T) != len(want.I2T) || len(r.T2I) != len(want.T2I) {
		t.Fatalf("%d×%d rows, want %d×%d", len(r.I2T), len(r.T2I), len(want.I2T), len(want.T2I))
	}
	for i, w := range want.I2T {
		check("i2t", r.I2T, i, w.Cols, w.Scores)
	}
	for i, w := range want.T2I {
		check("t2i", r.T2I, i, w.Cols, w.Scores)
	}
	t.Logf("recall %+v; largest score difference %.2g over %d pairs", r.Recall, worst, r.Pairs)
}

// TestResume interrupts an evaluation during the ITM phase, damages the end
// of its checkpoint as a crash might, and resumes: the result is the
// uninterrupted one exactly, and the images already scored are not scored
// again.
func TestResume(t *testing.T) {
	m := tiny(t)
	c, err := ReadAnnotations(annotations)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := Evaluate(context.Background(), m, c, Options{ImagesRoot: fixtureDir, K: 12})
	if err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(t.TempDir(), "run.checkpoint")
	ctx, cancel := context.WithCancel(context.Background())
	_, err = Evaluate(ctx, m, c, Options{ImagesRoot: fixtureDir, K: 12, Checkpoint: ckpt,
		Progress: func(p Phase, done, total int) {
			if p == PhaseITM && done > total/2 {
				cancel()
			}
		}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v, want context.Canceled", err)
	}
	// A record cut short.
	f, err := os.OpenFile(ckpt, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{recITM, 200, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3})
	f.Close()

	var phases []Phase
	var warnings []string
	r, err := Evaluate(context.Background(), m, c, Options{ImagesRoot: fixtureDir, K: 12, Checkpoint: ckpt,
		Progress: func(p Phase, done, total int) {
			if done == 0 {
				phases = append(phases, p)
			}
		},
		Warn: func(s string) { warnings = append(warnings, s) }})
	if err != nil {
		t.Fatal(err)
	}
	if !r.ResumedEmbeddings || r.Resumed == 0 || r.Resumed >= len(c.Entries) {
		t.Errorf("resumed embeddings %v, %d of %d images' ITM", r.ResumedEmbeddings, r.Resumed, len(c.Entries))
	}
	if slices.Contains(phases, PhaseImages) || slices.Contains(phases, PhaseTexts) {
		t.Errorf("the resumed run encoded again: phases %v", phases)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %q", warnings)
	}
	sameResult(t, r, ref)

	// Another run's checkpoint (k differs) is replaced, with a warning.
	warnings = nil
	r, err = Evaluate(context.Background(), m, c, Options{ImagesRoot: fixtureDir, K: 13, Checkpoint: ckpt,
		Warn: func(s string) { warnings = append(warnings, s) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "another run") || r.ResumedEmbeddings {
		t.Errorf("warnings %q, resumed %v", warnings, r.ResumedEmbeddings)
	}
}

func sameResult(t *testing.T, got, want *Result) {
	t.Helper()
	if got.Recall != want.Recall {
		t.Errorf("recall %+v, want %+v", got.Recall, want.Recall)
	}
	for _, m := range []struct {
		name      string
		got, want []Row
	}{{"i2t", got.I2T, want.I2T}, {"t2i", got.T2I, want.T2I}} {
		for i := range m.want {
			if !slices.Equal(m.got[i].Cols, m.want[i].Cols) || !slices.Equal(m.got[i].Scores, m.want[i].Scores) {
				t.Errorf("%s row %d differs", m.name, i)
			}
		}
	}
}

// TestSkipMissing: a missing image is an error naming it; with SkipMissing
// it is left out with its captions.
func TestSkipMissing(t *testing.T) {
	m := tiny(t)
	dir := t.TempDir()
	b, err := os.ReadFile(annotations)
	if err != nil {
		t.Fatal(err)
	}
	var ann []map[string]any
	if err := json.Unmarshal(b, &ann); err != nil {
		t.Fatal(err)
	}
	ann = ann[:8]
	ann[3]["image"] = "images/nowhere.png"
	ann[5]["image"] = "annotations.json" // exists, is not an image
	b, _ = json.Marshal(ann)
	c, err := ParseAnnotations("small.json", b)
	if err != nil {
		t.Fatal(err)
	}
	missing := CheckImages(c, fixtureDir)
	if len(missing) != 1 || missing[0].Entry != 4 || !strings.Contains(missing[0].Err.Error(), "nowhere.png") {
		t.Errorf("CheckImages: %v", missing)
	}
	_, err = Evaluate(context.Background(), m, c, Options{ImagesRoot: fixtureDir, K: 10, Checkpoint: filepath.Join(dir, "c")})
	if !errors.Is(err, ErrMissingImage) || !strings.Contains(err.Error(), "nowhere.png") || !strings.Contains(err.Error(), "entry 4") {
		t.Errorf("missing image: %v", err)
	}
	r, err := Evaluate(context.Background(), m, c, Options{ImagesRoot: fixtureDir, K: 10, SkipMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Skipped) != 2 || r.Skipped[0].Entry != 4 || r.Skipped[1].Entry != 6 {
		t.Errorf("skipped %v", r.Skipped)
	}
	if len(r.Collection.Entries) != 6 || len(r.Collection.Texts) != len(c.Texts)-len(c.ImageTexts[3])-len(c.ImageTexts[5]) {
		t.Errorf("evaluated %d images, %d texts", len(r.Collection.Entries), len(r.Collection.Texts))
	}
	// k larger than the collection is clamped.
	if r.KI2T != 10 || r.KT2I != 6 {
		t.Errorf("k %d/%d, want 10/6", r.KI2T, r.KT2I)
	}
}

// TestRank checks Row.Rank against a sort of the dense row: scores
// descending, ties with the higher column first.
func TestRank(t *testing.T) {
	rows := []struct {
		n      int
		cols   []int32
		scores []float32
	}{
		{5, []int32{1, 3}, []float32{2, 1}},
		{6, []int32{0, 2, 5}, []float32{0.5, 0.5, -100}},
		{6, []int32{1, 4}, []float32{-150, 3}},
		{4, nil, nil},
		{7, []int32{0, 1, 2, 3, 4, 5, 6}, []float32{1, 1, 1, 2, 2, -100, -101}},
	}
	for _, tc := range rows {
		r := Row{Cols: tc.cols, Scores: tc.scores}
		dense := Dense([]Row{r}, tc.n)
		order := make([]int, tc.n)
		for j := range order {
			order[j] = j
		}
		slices.SortStableFunc(order, func(a, b int) int {
			switch {
			case dense[a] < dense[b]:
				return -1
			case dense[a] > dense[b]:
				return 1
			}
			return 0
		})
		slices.Reverse(order)
		for pos, j := range order {
			if got := r.Rank(j, tc.n); got != pos {
				t.Errorf("row %v %v of %d: rank of %d is %d, want %d", tc.cols, tc.scores, tc.n, j, got, pos)
			}
		}
	}
}

// TestComputeRecall on a hand-made case.
func TestComputeRecall(t *testing.T) {
	// Two images, three texts: image 0 has texts 0 and 1, image 1 text 2.
	i2t := []Row{
		{Cols: []int32{0, 1, 2}, Scores: []float32{0.1, 0.9, 0.5}}, // best caption (1) first
		{Cols: []int32{0, 2}, Scores: []float32{0.8, 0.2}},         // its caption second
	}
	t2i := []Row{
		{Cols: []int32{0, 1}, Scores: []float32{1, 2}}, // text 0: its image second
		{Cols: []int32{0}, Scores: []float32{3}},       // text 1: first
		{Cols: []int32{1}, Scores: []float32{-100}},    // text 2: tie at −100, image 1 first
	}
	r, err := ComputeRecall(i2t, t2i, [][]int{{0, 1}, {2}}, []int{0, 0, 1})
	if err != nil {
		t.Fatal(err)
	}
	want := Recall{TxtR1: 50, TxtR5: 100, TxtR10: 100, ImgR1: 100.0 * 2 / 3, ImgR5: 100, ImgR10: 100}
	want.TxtRMean = (want.TxtR1 + want.TxtR5 + want.TxtR10) / 3
	want.ImgRMean = (want.ImgR1 + want.ImgR5 + want.ImgR10) / 3
	want.RMean = (want.TxtRMean + want.ImgRMean) / 2
	if r != want {
		t.Errorf("got %+v\nwant %+v", r, want)
	}
	if _, err := ComputeRecall(i2t, t2i[:2], [][]int{{0, 1}, {2}}, []int{0, 0, 1}); err == nil {
		t.Error("mismatched rows accepted")
	}
}

// TestParseAnnotationsBadInput: each mistake is refused with a message
// naming the file and the entry.
func TestParseAnnotationsBadInput(t *testing.T) {
	for _, c := range []struct {
		name, data string
		want       []string
	}{
		{"empty", "", []string{"ann.json", "not JSON"}},
		{"not JSON", "{\n\"image\": x}", []string{"ann.json", "not JSON", "line 2"}},
		{"object", `{"image": "a.jpg", "caption": ["x"]}`, []string{"a JSON object", "list of"}},
		{"empty list", `[]`, []string{"empty list"}},
		{"entry not object", `[{"image": "a.jpg", "caption": ["x"]}, 3]`, []string{"entry 2 is a number"}},
		{"no image", `[{"caption": ["x"]}]`, []string{`entry 1 has no "image"`}},
		{"image not string", `[{"image": 7, "caption": ["x"]}]`, []string{`entry 1: "image" is a number`}},
		{"empty image", `[{"image": "", "caption": ["x"]}]`, []string{`entry 1: "image" is empty`}},
		{"no caption", `[{"image": "a.jpg"}]`, []string{`entry 1 (image "a.jpg") has no "caption"`}},
		{"caption string", `[{"image": "a.jpg", "caption": "a dog"}]`, []string{`"caption" is a string`, "train layout"}},
		{"caption null", `[{"image": "a.jpg", "caption": null}]`, []string{`"caption" is null`}},
		{"empty captions", `[{"image": "a.jpg", "caption": []}]`, []string{"entry 1", "caption list is empty"}},
		{"caption not string", `[{"image": "a.jpg", "caption": ["a dog", 5]}]`, []string{"entry 1", "caption 2 is a number"}},
		{"caption no words", `[{"image": "a.jpg", "caption": ["a dog"]}, {"image": "b.jpg", "caption": ["...!"]}]`,
			[]string{"entry 2", `image "b.jpg"`, "caption 1", "no words"}},
		{"duplicate", `[{"image": "a.jpg", "caption": ["x"]}, {"image": "b.jpg", "caption": ["y"]}, {"image": "./a.jpg", "caption": ["z"]}]`,
			[]string{"entry 3", "already entry 1"}},
		{"invalid UTF-8", "[{\"image\": \"a.jpg\", \"caption\": [\"caf\xe9\"]}]", []string{"UTF-8"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseAnnotations("ann.json", []byte(c.data))
			if !errors.Is(err, ErrAnnotations) {
				t.Fatalf("err %v, want ErrAnnotations", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not mention %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), "ann.json") {
				t.Errorf("%q does not name the file", err)
			}
		})
	}
	if _, err := ReadAnnotations(filepath.Join(t.TempDir(), "none.json")); err == nil || !strings.Contains(err.Error(), "none.json") {
		t.Errorf("missing file: %v", err)
	}
}

// TestParseAnnotations: the layout, numbering and cleaning.
func TestParseAnnotations(t *testing.T) {
	c, err := ParseAnnotations("a.json", []byte("\xef\xbb\xbf"+`[{"image": "val2014/x.jpg", "caption": ["A Dog.", "two  cats!"], "id": 3},
		{"image": "val2014/y.jpg", "caption": ["A bus"]}]`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Texts, []string{"a dog", "two cats", "a bus"}) || !slices.Equal(c.TextImage, []int{0, 0, 1}) ||
		fmt.Sprint(c.ImageTexts) != "[[0 1] [2]]" || c.Entries[1].Image != "val2014/y.jpg" || c.Entries[0].Captions[0] != "A Dog." {
		t.Errorf("%+v", c)
	}
	s := c.Subset([]int{1})
	if !slices.Equal(s.Texts, []string{"a bus"}) || fmt.Sprint(s.ImageTexts) != "[[0]]" || !slices.Equal(s.TextImage, []int{0}) {
		t.Errorf("subset %+v", s)
	}
}

func FuzzParseAnnotations(f *testing.F) {
	f.Add([]byte(`[{"image": "a.jpg", "caption": ["a dog", "A cat."]}]`))
	f.Add([]byte(`[{"image": "a.jpg", "caption": "x"}, 3, null]`))
	f.Add([]byte(`{"a": [1, 2]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseAnnotations("f.json", data)
		if err != nil {
			if !errors.Is(err, ErrAnnotations) {
				t.Fatalf("error %v is not ErrAnnotations", err)
			}
			return
		}
		if len(c.Entries) == 0 || len(c.Texts) != len(c.TextImage) || len(c.ImageTexts) != len(c.Entries) {
			t.Fatalf("inconsistent collection %+v", c)
		}
		for _, s := range c.Texts {
			if s == "" {
				t.Fatal("empty text accepted")
			}
		}
	})
}

// TestRecogniseSplit: the COCO 5k and Flickr30k 1k test splits by image
// count and paths, and the paper's figures by architecture.
func TestRecogniseSplit(t *testing.T) {
	make := func(n int, prefix string) *Collection {
		c := &Collection{}
		for i := range n {
			c.Entries = append(c.Entries, Entry{Image: fmt.Sprintf("%s%06d.jpg", prefix, i), Captions: []string{"x"}})
		}
		return c
	}
	for _, tc := range []struct {
		c       *Collection
		dataset string
	}{
		{make(5000, "val2014/COCO_val2014_"), "coco"},
		{make(1000, "flickr30k-images/"), "flickr30k"},
		{make(4999, "val2014/"), ""},
		{make(5000, "train2014/"), ""},
		{make(1000, "val2014/"), ""},
	} {
		s, ok := RecogniseSplit(tc.c)
		if ok != (tc.dataset != "") || s.Dataset != tc.dataset {
			t.Errorf("%d images under %s: %+v %v", len(tc.c.Entries), tc.c.Entries[0].Image, s, ok)
		}
	}
	if p, ok := PublishedFor("coco", 768); !ok || p.TR != [3]float64{81.9, 95.4, 97.8} || p.IR != [3]float64{64.3, 85.7, 91.5} {
		t.Errorf("ViT-B COCO: %+v", p)
	}
	if p, ok := PublishedFor("flickr30k", 1024); !ok || p.TR != [3]float64{97.4, 99.8, 99.9} || p.IR != [3]float64{87.6, 97.7, 99.0} {
		t.Errorf("ViT-L Flickr30k: %+v", p)
	}
	if _, ok := PublishedFor("coco", 16); ok {
		t.Error("figures for an unknown architecture")
	}
}
