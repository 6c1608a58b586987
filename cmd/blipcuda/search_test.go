package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/blipcuda/blipcuda"
	"github.com/blipcuda/blipcuda/index"
)

// genImages writes n distinct PNG images (random blocks of colour, some in
// a subdirectory) under dir and returns their paths, sorted.
func genImages(t *testing.T, dir string, n int, seed int64) []string {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	var out []string
	for i := 0; i < n; i++ {
		w, h := 40+rng.Intn(80), 40+rng.Intn(80)
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		for b := 0; b < 6; b++ {
			c := color.RGBA{uint8(rng.Intn(256)), uint8(rng.Intn(256)), uint8(rng.Intn(256)), 255}
			x0, y0 := rng.Intn(w), rng.Intn(h)
			x1, y1 := x0+rng.Intn(w-x0)+1, y0+rng.Intn(h-y0)+1
			for y := y0; y < y1; y++ {
				for x := x0; x < x1; x++ {
					img.Set(x, y, c)
				}
			}
		}
		name := fmt.Sprintf("img%03d.png", i)
		if i%3 == 0 {
			name = filepath.Join("sub", name)
		}
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// searchJSON is search's JSON output.
type searchJSON struct {
	SchemaVersion int    `json:"schema_version"`
	Direction     string `json:"direction"`
	Score         string `json:"score"`
	K             int    `json:"k"`
	Collection    int    `json:"collection"`
	Queries       []struct {
		Query      string `json:"query"`
		Candidates int    `json:"candidates"`
		Results    []struct {
			Rank      int         `json:"rank"`
			Image     string      `json:"image"`
			Text      string      `json:"text"`
			TextIndex *int        `json:"text_index"`
			Score     float32     `json:"score"`
			ITMProb   *float32    `json:"itm_prob"`
			ITMLogits *[2]float32 `json:"itm_logits"`
			ITC       float32     `json:"itc"`
		} `json:"results"`
	} `json:"queries"`
}

func parseSearch(t *testing.T, r result) searchJSON {
	t.Helper()
	var s searchJSON
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("search output: %v\n%v", err, r)
	}
	return s
}

// bruteITC ranks the candidates of row i of s by ITC (descending, ties by
// position) and returns their positions.
func bruteITC(s *blipcuda.Scores, image, text int, n int, byImage bool) []int {
	idx := make([]int, n)
	val := func(j int) float32 {
		if byImage {
			return s.ITC[j][text] // text → image: a column
		}
		return s.ITC[image][j]
	}
	for j := range idx {
		idx[j] = j
	}
	sort.SliceStable(idx, func(a, b int) bool { return val(idx[a]) > val(idx[b]) })
	return idx
}

func near(a, b, tol float32) bool { return math.Abs(float64(a-b)) <= float64(tol) }

// TestSearchEndToEnd indexes generated images with the tiny checkpoint,
// searches text → image and image → text, and checks every returned
// score against Match on the same pairs (ITM logits, ITC cosine, score =
// match logit + cosine), the top-k set against a brute-force ITC ranking
// of the whole collection, and the order against the scores.
func TestSearchEndToEnd(t *testing.T) {
	tmp := t.TempDir()
	imgs := genImages(t, filepath.Join(tmp, "photos"), 30, 1)
	idx := filepath.Join(tmp, "photos.blipidx")
	r := mustRun(t, runOpts{}, "index", filepath.Join(tmp, "photos"), "-o", idx, "--model", tinyBase, "--batch", "7")
	if !strings.Contains(r.stderr, "30 images (30 added") {
		t.Errorf("summary: %s", r.stderr)
	}
	queries := []string{"a red square on a blue field", "green and yellow stripes", "a dog on a beach"}
	want := libScores(t, tinyBase, blipcuda.ProtocolBLIP, imgs, queries)
	rel := func(p string) string { // results are shown relative to the working directory
		abs, _ := filepath.Abs(p)
		return abs
	}
	const k = 12
	for _, features := range []bool{false, true} {
		dir := idx
		tol := float32(1e-5)
		if features {
			dir = filepath.Join(tmp, "features.blipidx")
			mustRun(t, runOpts{}, "index", filepath.Join(tmp, "photos"), "-o", dir, "--model", tinyBase, "--features")
			tol = 5e-3 // features stored as float16
		}
		args := append([]string{"search", "--index", dir, "--k", fmt.Sprint(k), "--top", fmt.Sprint(k), "--format", "json"}, queries...)
		out := parseSearch(t, mustRun(t, runOpts{}, args...))
		if out.Direction != "text-to-image" || out.Score != "blip" || out.Collection != 30 || len(out.Queries) != len(queries) {
			t.Fatalf("header: %+v", out)
		}
		for q, sq := range out.Queries {
			brute := bruteITC(want, 0, q, len(imgs), true)
			var wantSet, gotSet []string
			for _, i := range brute[:k] {
				wantSet = append(wantSet, rel(imgs[i]))
			}
			if len(sq.Results) != k || sq.Candidates != k {
				t.Fatalf("query %d: %d results of %d candidates", q, len(sq.Results), sq.Candidates)
			}
			for n, h := range sq.Results {
				i := slices.IndexFunc(imgs, func(p string) bool { return rel(p) == rel(h.Image) })
				if i < 0 {
					t.Fatalf("query %d: result %q is not one of the images", q, h.Image)
				}
				gotSet = append(gotSet, rel(h.Image))
				l := want.ITMLogits[i][q]
				if !near(h.ITC, want.ITC[i][q], 1e-6) || !near(h.ITMLogits[0], l[0], tol) || !near(h.ITMLogits[1], l[1], tol) ||
					!near(*h.ITMProb, want.ITMProb[i][q], tol) || !near(h.Score, l[1]+want.ITC[i][q], tol) {
					t.Errorf("features %v query %d image %s: got score %g logits %v P %g ITC %g; Match: logits %v P %g ITC %g",
						features, q, h.Image, h.Score, *h.ITMLogits, *h.ITMProb, h.ITC, l, want.ITMProb[i][q], want.ITC[i][q])
				}
				if h.Rank != n+1 || (n > 0 && h.Score > sq.Results[n-1].Score) {
					t.Errorf("query %d: result %d (rank %d, score %g) out of order", q, n, h.Rank, h.Score)
				}
			}
			slices.Sort(wantSet)
			slices.Sort(gotSet)
			if !slices.Equal(gotSet, wantSet) {
				t.Errorf("features %v query %d: the k = %d set differs from the brute-force ITC ranking:\n got %v\nwant %v", features, q, k, gotSet, wantSet)
			}
		}
	}

	// --score itc: the brute-force ITC order itself.
	out := parseSearch(t, mustRun(t, runOpts{}, "search", "--index", idx, "--score", "itc", "--top", "5", "--format", "json", queries[0]))
	brute := bruteITC(want, 0, 0, len(imgs), true)
	for n, h := range out.Queries[0].Results {
		if rel(h.Image) != rel(imgs[brute[n]]) || h.ITMProb != nil || !near(h.ITC, want.ITC[brute[n]][0], 1e-6) {
			t.Errorf("--score itc rank %d: %s (%g), want %s (%g)", n+1, h.Image, h.ITC, imgs[brute[n]], want.ITC[brute[n]][0])
		}
	}

	// Image → text, with and without the index's features for the image.
	var texts []string
	for i := 0; i < 20; i++ {
		texts = append(texts, fmt.Sprintf("a picture of %d %s blocks", i+1, []string{"red", "blue", "green", "small", "large"}[i%5]))
	}
	textsFile := writeFile(t, tmp, "captions.txt", strings.Join(texts, "\n")+"\n")
	qimgs := []string{imgs[4], imgs[17]}
	wantT := libScores(t, tinyBase, blipcuda.ProtocolBLIP, qimgs, texts)
	for _, dir := range []string{idx, filepath.Join(tmp, "features.blipidx"), ""} {
		args := []string{"search", "--image", qimgs[0], "--image", qimgs[1], "--texts", textsFile, "--k", "6", "--top", "6", "--format", "json", "--model", tinyBase}
		tol := float32(1e-5)
		if dir != "" {
			args = append(args, "--index", dir)
			if strings.Contains(dir, "features") {
				tol = 5e-3
			}
		}
		out := parseSearch(t, mustRun(t, runOpts{}, args...))
		for qi, sq := range out.Queries {
			brute := bruteITC(wantT, qi, 0, len(texts), false)
			var wantSet, gotSet []int
			wantSet = append(wantSet, brute[:6]...)
			for n, h := range sq.Results {
				j := *h.TextIndex
				gotSet = append(gotSet, j)
				l := wantT.ITMLogits[qi][j]
				if h.Text != texts[j] || !near(h.ITC, wantT.ITC[qi][j], 1e-6) || !near(h.ITMLogits[1], l[1], tol) ||
					!near(h.ITMLogits[0], l[0], tol) || !near(h.Score, l[1]+wantT.ITC[qi][j], tol) {
					t.Errorf("index %q image %d text %d: got %g %v %g; Match %v %g", dir, qi, j, h.Score, *h.ITMLogits, h.ITC, l, wantT.ITC[qi][j])
				}
				if n > 0 && h.Score > sq.Results[n-1].Score {
					t.Errorf("image %d: results out of order", qi)
				}
			}
			slices.Sort(wantSet)
			slices.Sort(gotSet)
			if !slices.Equal(gotSet, wantSet) {
				t.Errorf("index %q image %d: k set %v, brute force %v", dir, qi, gotSet, wantSet)
			}
		}
	}

	// Contact sheets: a PNG with the thumbnails, an HTML page with them
	// inline; written together with --output.
	sheet, page, res := filepath.Join(tmp, "sheet.png"), filepath.Join(tmp, "sheet.html"), filepath.Join(tmp, "res.json")
	mustRun(t, runOpts{}, "search", "--index", idx, "--top", "7", "--plot", sheet, "-o", res, "--format", "json", queries[0], queries[1])
	f, err := os.Open(sheet)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(f)
	f.Close()
	if err != nil || cfg.Width < 900 || cfg.Height < 600 {
		t.Errorf("--plot PNG: %v %+v", err, cfg)
	}
	if _, err := os.Stat(res); err != nil {
		t.Error(err)
	}
	mustRun(t, runOpts{}, "search", "--image", qimgs[0], "--texts", textsFile, "--model", tinyBase, "--plot", page)
	if b, _ := os.ReadFile(page); !strings.Contains(string(b), "data:image/jpeg;base64,") || !strings.Contains(string(b), texts[0][:10]) {
		t.Errorf("--plot HTML:\n%.500s", b)
	}
	wantFail(t, run(t, runOpts{}, "search", "--image", qimgs[0], "--texts", textsFile, "--model", tinyBase, "-o", textsFile), 2, "same file")

	// Table and CSV carry the same first result.
	tab := mustRun(t, runOpts{}, "search", "--index", idx, "--top", "3", queries[0]).stdout
	csvOut := mustRun(t, runOpts{}, "search", "--index", idx, "--top", "3", "--format", "csv", queries[0]).stdout
	if !strings.Contains(tab, "score = ITM match logit + ITC cosine") || strings.Count(csvOut, "\n") != 4 {
		t.Errorf("table:\n%s\ncsv:\n%s", tab, csvOut)
	}
}

// TestIndexIncremental checks what a second run does: unchanged files
// untouched, a touched file (same content) not re-encoded, changed and new
// files encoded, deleted files kept until --prune.
func TestIndexIncremental(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "p")
	imgs := genImages(t, dir, 8, 2)
	idx := filepath.Join(tmp, "x.blipidx")
	mustRun(t, runOpts{}, "index", dir, "-o", idx, "--model", tinyBase)
	later := time.Now().Add(time.Hour)
	os.Chtimes(imgs[0], later, later)                   // same content
	copyFile(t, imgs[2], imgs[1])                       // new content
	os.Remove(imgs[3])                                  // gone
	genImages(t, filepath.Join(dir, "new"), 2, 3)       // two new
	r := mustRun(t, runOpts{}, "index", dir, "-o", idx) // the recorded model
	for _, w := range []string{"10 images (2 added, 1 re-encoded, 6 unchanged, 0 pruned", "1 indexed images no longer exist", "--prune"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("second run: no %q in\n%s", w, r.stderr)
		}
	}
	r = mustRun(t, runOpts{}, "index", dir, "-o", idx, "--prune")
	if !strings.Contains(r.stderr, "9 images (0 added, 0 re-encoded, 9 unchanged, 1 pruned") {
		t.Errorf("--prune: %s", r.stderr)
	}
	ix, err := index.Open(context.Background(), idx, index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	e, ok, _ := ix.Lookup("p/" + filepath.Base(imgs[1]))
	if !ok || e.SHA256 != mustHash(t, imgs[2]) {
		t.Errorf("the changed file's record: %+v %v", e, ok)
	}
}

func mustHash(t *testing.T, p string) string {
	h, err := hashFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestSearchBadInputs covers the bad inputs through the command.
func TestSearchBadInputs(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "p")
	imgs := genImages(t, dir, 5, 4)
	idx := filepath.Join(tmp, "x.blipidx")
	mustRun(t, runOpts{}, "index", dir, "-o", idx, "--model", tinyBase)

	notIndex := writeFile(t, tmp, "notes.blipidx", "hello")
	wantFail(t, run(t, runOpts{}, "search", "--index", notIndex, "dog"), 1, "not a blipcuda index", notIndex)
	wantFail(t, run(t, runOpts{}, "search", "--index", filepath.Join(tmp, "missing.blipidx"), "dog"), 1, "missing.blipidx")
	wantFail(t, run(t, runOpts{}, "search", "--index", idx, "!!!"), 2, "no words left")
	wantFail(t, run(t, runOpts{}, "search", "--index", idx, "--model", tinyLarge, "dog"), 1, "built with another model", "tiny-base")
	wantFail(t, run(t, runOpts{}, "search", "--index", idx, "--k", "0", "dog"), 2, "--k")
	wantFail(t, run(t, runOpts{}, "search", "--index", idx, "--score", "cosine", "dog"), 2, "--score")
	wantFail(t, run(t, runOpts{}, "search", "dog"), 2, "--index")
	wantFail(t, run(t, runOpts{}, "index", "-o", idx, filepath.Join(tmp, "nothing-here")), 1, "nothing-here")
	fresh := filepath.Join(tmp, "fresh.blipidx")
	badModel := filepath.Join(tmp, "badmodel")
	os.Mkdir(badModel, 0o755) // a directory without config.json: fails after the index is opened
	wantFail(t, run(t, runOpts{}, "index", dir, "-o", fresh, "--model", badModel), 1, "config.json")
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Errorf("a failed first run left %s behind (%v)", fresh, err)
	}

	// k larger than the collection: all of them, and said so.
	r := mustRun(t, runOpts{}, "search", "--index", idx, "--format", "json", "dog")
	if out := parseSearch(t, r); len(out.Queries[0].Results) != 5 || !strings.Contains(r.stderr, "all of them are re-ranked") {
		t.Errorf("k > collection: %v", r)
	}

	// A vanished image is skipped with a warning.
	os.Remove(imgs[2])
	r = mustRun(t, runOpts{}, "search", "--index", idx, "--format", "json", "dog")
	out := parseSearch(t, r)
	if len(out.Queries[0].Results) != 4 || !strings.Contains(r.stderr, "vanished since it was indexed") || !strings.Contains(r.stderr, filepath.Base(imgs[2])) {
		t.Errorf("vanished image: %v", r)
	}

	// An unreadable image: skipped and counted, or fatal with --strict.
	bad := writeFile(t, dir, "broken.png", "not a png")
	r = mustRun(t, runOpts{}, "index", dir, "-o", idx)
	if !strings.Contains(r.stderr, "broken.png") || !strings.Contains(r.stderr, "1 unreadable") {
		t.Errorf("unreadable image: %v", r)
	}
	wantFail(t, run(t, runOpts{}, "index", dir, "-o", idx, "--strict"), 1, bad)

	// A second writer waits, then refuses; a search goes on beside the writer.
	ix, err := index.Open(ctx, idx, index.Options{Write: true})
	if err != nil {
		t.Fatal(err)
	}
	wantFail(t, run(t, runOpts{}, "index", dir, "-o", idx, "--wait", "300ms"), 1, "being written by another process", idx)
	mustRun(t, runOpts{}, "search", "--index", idx, "dog")
	ix.Close()

	// Truncated vectors, a newer format.
	cp := filepath.Join(tmp, "cp.blipidx")
	mustRun(t, runOpts{}, "index", dir, "-o", cp, "--model", tinyBase)
	os.Truncate(filepath.Join(cp, "embeddings.f32"), 100)
	wantFail(t, run(t, runOpts{}, "search", "--index", cp, "dog"), 1, "truncated", cp)
	db, err := bolt.Open(filepath.Join(idx, "index.db"), 0o666, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("format"), []byte("99")) })
	db.Close()
	wantFail(t, run(t, runOpts{}, "search", "--index", idx, "dog"), 1, "newer version", "format version 99")
	wantFail(t, run(t, runOpts{}, "index", dir, "-o", idx), 1, "newer version")
}

// TestIndexCrash kills `index` runs with SIGKILL at random moments and
// checks after each that the index opens, that every record is complete
// (its file's hash, and an embedding equal to the image's), and finally
// that a run to the end completes the index.
func TestIndexCrash(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "p")
	imgs := genImages(t, dir, 96, 5)
	idx := filepath.Join(tmp, "x.blipidx")
	m, err := blipcuda.Load(ctx, tinyBase)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	want := map[string][]float32{}
	for _, p := range imgs {
		im, err := m.LoadImage(p)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := m.EncodeImages(ctx, []*blipcuda.Image{im}, false)
		if err != nil {
			t.Fatal(err)
		}
		want[filepath.ToSlash(must(filepath.Rel(tmp, p)))] = enc[0].Embedding
	}
	check := func(stage string) int {
		ix, err := index.Open(ctx, idx, index.Options{})
		if errors.Is(err, fs.ErrNotExist) {
			return 0 // killed before the index's database was in place
		}
		if err != nil {
			t.Fatalf("%s: the index does not open: %v", stage, err)
		}
		defer ix.Close()
		n := 0
		err = ix.Entries(ctx, func(e index.Entry) error {
			n++
			w, ok := want[e.Path]
			if !ok {
				return fmt.Errorf("record of an unknown file %s", e.Path)
			}
			emb, err := ix.Embedding(e)
			if err != nil {
				return err
			}
			for i := range w {
				if !near(emb[i], w[i], 1e-5) {
					return fmt.Errorf("%s: incomplete or wrong embedding", e.Path)
				}
			}
			if e.SHA256 != mustHash(t, ix.Resolve(e.Path)) {
				return fmt.Errorf("%s: wrong hash", e.Path)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		if n != ix.Len() {
			t.Fatalf("%s: %d records, Len %d", stage, n, ix.Len())
		}
		if n > 0 {
			if _, err := ix.Search(ctx, [][]float32{want[filepath.ToSlash(must(filepath.Rel(tmp, imgs[0])))]}, 5); err != nil {
				t.Fatalf("%s: search: %v", stage, err)
			}
		}
		return n
	}
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	prev := 0
	for round := 0; round < 6; round++ {
		cmd, _, _ := binCmd(t, runOpts{}, "index", dir, "-o", idx, "--model", tinyBase, "--batch", "4", "--features")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(rng.Intn(800)) * time.Millisecond
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		n := check(fmt.Sprintf("round %d (killed after %v)", round, delay))
		if n < prev {
			t.Fatalf("round %d: %d records, %d before: a kill lost committed batches", round, n, prev)
		}
		t.Logf("round %d: killed after %v, %d of %d images indexed", round, delay, n, len(imgs))
		prev = n
	}
	r := mustRun(t, runOpts{}, "index", dir, "-o", idx, "--model", tinyBase, "--features")
	if n := check("after the final run"); n != len(imgs) {
		t.Fatalf("after the final run: %d of %d images\n%v", n, len(imgs), r)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestSearchDuringIndex searches an index over and over while an `index`
// run adds to it in another process: every search succeeds (or finds the
// index still empty), and sees a growing number of images.
func TestSearchDuringIndex(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "p")
	genImages(t, dir, 64, 7)
	idx := filepath.Join(tmp, "x.blipidx")
	cmd, _, stderr := binCmd(t, runOpts{}, "index", dir, "-o", idx, "--model", tinyBase, "--batch", "4")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	prev, searches := 0, 0
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("index: %v\n%s", err, stderr)
			}
			running = false
		default:
		}
		r := run(t, runOpts{}, "search", "--index", idx, "--score", "itc", "--top", "100", "--format", "json", "a red square")
		if r.code != 0 {
			if strings.Contains(r.stderr, "holds no images yet") || strings.Contains(r.stderr, "no such file") ||
				strings.Contains(r.stderr, "has no index.db") || strings.Contains(r.stderr, "is an empty directory") {
				continue // before the first commit (the run has made the directory, not yet its lock file)
			}
			t.Fatalf("search during the run: %v", r)
		}
		n := len(parseSearch(t, r).Queries[0].Results)
		if n < prev {
			t.Fatalf("a search saw %d images after one saw %d", n, prev)
		}
		prev = n
		searches++
	}
	if prev != 64 || searches < 2 {
		t.Errorf("last search saw %d images, %d searches succeeded", prev, searches)
	}
	t.Logf("%d searches during and after the run", searches)
}
