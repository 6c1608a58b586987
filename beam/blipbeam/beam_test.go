package blipbeam

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/blipcuda/blipcuda"
	"github.com/blipcuda/blipcuda/index"
)

// The pipelines run on Prism, in process (loopback workers).
func TestMain(m *testing.M) { ptest.MainWithDefault(m, "prism") }

// testModel runs on the CPU with small batches, so that a bundle is cut
// into several model calls.
var testModel = Model{Name: tinyModel, Device: "cpu", ImageBatch: 4}

func loadLib(t *testing.T) *blipcuda.Model {
	t.Helper()
	m, err := blipcuda.Load(context.Background(), tinyModel, blipcuda.WithDevice("cpu"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func run(t testing.TB, build func(s beam.Scope) error) error {
	t.Helper()
	p, s := beam.NewPipelineWithRoot()
	if err := build(s); err != nil {
		t.Fatal(err)
	}
	return ptest.Run(p)
}

const tol = 1e-4

func near(a, b float32) bool { return math.Abs(float64(a-b)) <= tol }

// checkScores compares scored rows with the library's, as sets keyed by
// pair key.
func checkScores(t *testing.T, rows []ScoreRow, want map[string]PairScore, th Threshold) {
	t.Helper()
	if len(rows) != len(want) {
		t.Errorf("%d scored rows, want %d", len(rows), len(want))
	}
	seen := map[string]bool{}
	for _, r := range rows {
		w, ok := want[r.Key]
		switch {
		case !ok:
			t.Errorf("unexpected row %q", r.Key)
			continue
		case seen[r.Key]:
			t.Errorf("row %q appears twice", r.Key)
		}
		seen[r.Key] = true
		if r.Caption != w.Caption || !near(r.ITMProb, w.ITMProb) || !near(r.ITMLogit, w.ITMLogit) || !near(r.ITC, w.ITC) {
			t.Errorf("%s: pipeline (%q, itm_prob %.6f, itm_logit %.6f, itc %.6f), library (%q, %.6f, %.6f, %.6f)",
				r.Key, r.Caption, r.ITMProb, r.ITMLogit, r.ITC, w.Caption, w.ITMProb, w.ITMLogit, w.ITC)
		}
		if r.Keep != th.Keep(PairScore{ITMProb: r.ITMProb, ITC: r.ITC}) {
			t.Errorf("%s: keep %v for itm_prob %.4f, itc %.4f", r.Key, r.Keep, r.ITMProb, r.ITC)
		}
	}
}

// checkFailures reads the dead-letter file and checks it holds exactly the
// broken inputs, each with a reason that says what is wrong.
func checkFailures(t *testing.T, path string, bad map[string]string) {
	t.Helper()
	files, _ := filepath.Glob(path + "*")
	got := map[string]string{}
	for _, file := range files {
		fh, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			var f Failure
			if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
				t.Fatalf("%s: %q: %v", file, sc.Text(), err)
			}
			id := f.Key
			if id == "" {
				id = f.Ref
			}
			if _, dup := got[id]; dup {
				t.Errorf("failure %q reported twice", id)
			}
			got[id] = f.Reason
		}
		fh.Close()
	}
	for key, word := range bad {
		reason, ok := got[key]
		if !ok {
			t.Errorf("%s is not in the dead letters (%v)", key, got)
		} else if !strings.Contains(reason, word) {
			t.Errorf("%s: reason %q does not say %q", key, reason, word)
		}
	}
	if len(got) != len(bad) {
		t.Errorf("%d dead letters, want %d: %v", len(got), len(bad), got)
	}
}

// medianITM is a threshold that keeps about half the pairs.
func medianITM(want map[string]PairScore) Threshold {
	var ps []float32
	for _, w := range want {
		ps = append(ps, w.ITMProb)
	}
	slices.Sort(ps)
	return Threshold{MinITM: ps[len(ps)/2], MinITC: -1}
}

// TestFilterWebDataset runs the filter pipeline over a generated WebDataset
// of a few hundred pairs (images repeated across samples, broken samples
// among them) and checks the scores against Model.Match, the dead letters,
// and the kept shards.
func TestFilterWebDataset(t *testing.T) {
	f := newFixture(t, 120)
	m := loadLib(t)
	want := expectedScores(t, m, f.pairs)
	th := medianITM(want)
	out := filepath.Join(f.dir, "out")
	job := FilterJob{WebDataset: []string{f.wds}, Model: testModel, Config: Config{Batch: 16}, Threshold: th,
		Scores: filepath.Join(out, "scores"), Kept: filepath.Join(out, "kept"), Shards: 3, Failures: filepath.Join(out, "failures.jsonl")}
	if err := run(t, job.Build); err != nil {
		t.Fatal(err)
	}
	rows := readRows[ScoreRow](t, filepath.Join(out, "scores-*-of-00003.parquet"))
	for i := range rows {
		w := want[rows[i].Key]
		if !strings.HasSuffix(rows[i].Image, "#"+rows[i].Key+"."+filepath.Ext(w.Image)[1:]) {
			t.Errorf("row %s: image %q does not name its shard member", rows[i].Key, rows[i].Image)
		}
	}
	checkScores(t, rows, want, th)
	checkFailures(t, job.Failures, f.bad)

	// The kept shards: exactly the pairs that pass, with their image bytes,
	// caption, and metadata gaining the scores.
	byKey := map[string]Pair{}
	for _, p := range f.pairs {
		byKey[p.Key] = p
	}
	kept := map[string]bool{}
	tars, _ := filepath.Glob(filepath.Join(out, "kept-*-of-00003.tar"))
	if len(tars) == 0 {
		t.Fatal("no kept shards")
	}
	for _, file := range tars {
		data, _ := os.ReadFile(file)
		tr := tar.NewReader(bytes.NewReader(data))
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			body, _ := io.ReadAll(tr)
			key, ext, _ := splitMember(h.Name)
			p := byKey[key]
			switch ext {
			case "jpg", "png":
				kept[key] = true
				if !bytes.Equal(body, f.bytes[p.Image]) {
					t.Errorf("%s: image bytes differ from the input's", h.Name)
				}
			case "txt":
				if string(body) != p.Caption {
					t.Errorf("%s: caption %q, want %q", h.Name, body, p.Caption)
				}
			case "json":
				var meta map[string]any
				if err := json.Unmarshal(body, &meta); err != nil || meta["url"] == nil || meta["itm_prob"] == nil {
					t.Errorf("%s: metadata %s lacks the input's url or the scores (%v)", h.Name, body, err)
				}
			}
		}
	}
	for key, w := range want {
		if kept[key] != th.Keep(w) && !near(w.ITMProb, th.MinITM) {
			t.Errorf("%s (itm_prob %.5f, threshold %.5f): kept %v", key, w.ITMProb, th.MinITM, kept[key])
		}
	}
}

// TestFilterParquet scores pairs listed in a Parquet file (optional
// columns, as pandas writes them; the image column named "path") and
// checks them against Model.Match.
func TestFilterParquet(t *testing.T) {
	f := newFixture(t, 30)
	input := f.writeParquetPairs(t, f.pairs)
	m := loadLib(t)
	want := expectedScores(t, m, f.pairs)
	th := Threshold{MinITM: 0.5, MinITC: 0}
	out := filepath.Join(f.dir, "out")
	job := FilterJob{Parquet: []string{input}, Model: testModel, Config: Config{Batch: 8}, Threshold: th,
		Scores: filepath.Join(out, "scores"), Shards: 2, Failures: filepath.Join(out, "failures.jsonl")}
	if err := run(t, job.Build); err != nil {
		t.Fatal(err)
	}
	rows := readRows[ScoreRow](t, filepath.Join(out, "scores-*.parquet"))
	for _, r := range rows {
		if r.Image != want[r.Key].Image {
			t.Errorf("row %s: image %q, want %q", r.Key, r.Image, want[r.Key].Image)
		}
	}
	checkScores(t, rows, want, th)
	checkFailures(t, job.Failures, f.bad)
}

// embedJob embeds the fixture's images plus a list holding a corrupt and a
// missing file.
func embedJob(t *testing.T, f *fixture, out string) (EmbedJob, map[string]string) {
	list := filepath.Join(f.dir, "refs.txt")
	garbage := filepath.Join(f.dir, "garbage.png")
	os.WriteFile(garbage, []byte("\x89PNG\r\n\x1a\nnot really"), 0o666)
	missing := filepath.Join(f.dir, "missing.jpg")
	os.WriteFile(list, []byte("# extra references\n"+garbage+"\n\n"+missing+"\n"), 0o666)
	return EmbedJob{Images: []string{filepath.Join(f.dir, "images", "*")}, Lists: []string{list}, Model: testModel,
		Config: Config{Batch: 8}, Index: filepath.Join(out, "index"), Parquet: filepath.Join(out, "embeddings"), Shards: 4,
		Failures: filepath.Join(out, "failures.jsonl")}, map[string]string{garbage: "garbage.png", missing: "no such file"}
}

// mergeShards merges the index shards of dir into a new index and returns
// it.
func mergeShards(t *testing.T, dir string) (*index.Index, index.MergeStats) {
	t.Helper()
	ctx := context.Background()
	paths, _ := filepath.Glob(filepath.Join(dir, "shard-*-of-*"+index.Extension))
	var srcs []*index.Index
	for _, p := range paths {
		ix, err := index.Open(ctx, p, index.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer ix.Close()
		srcs = append(srcs, ix)
	}
	out, err := index.Open(ctx, filepath.Join(t.TempDir(), "merged"+index.Extension), index.Options{Write: true, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	st, err := index.Merge(ctx, out, srcs)
	if err != nil {
		t.Fatal(err)
	}
	return out, st
}

// checkIndex checks that an index holds exactly the images, with the
// library's embeddings and the files' hashes.
func checkIndex(t *testing.T, ix *index.Index, want map[string]blipcuda.ImageEncoding, f *fixture) {
	t.Helper()
	if ix.Len() != len(want) {
		t.Errorf("index holds %d images, want %d", ix.Len(), len(want))
	}
	err := ix.Entries(context.Background(), func(e index.Entry) error {
		path := ix.Resolve(e.Path)
		w, ok := want[path]
		if !ok {
			t.Errorf("unexpected index record %s", path)
			return nil
		}
		emb, err := ix.Embedding(e)
		if err != nil {
			return err
		}
		for i := range emb {
			if !near(emb[i], w.Embedding[i]) {
				t.Errorf("%s: embedding[%d] %.6f, library %.6f", path, i, emb[i], w.Embedding[i])
				break
			}
		}
		if e.Size != int64(len(f.bytes[path])) || e.SHA256 != newBlob(f.bytes[path]).sha256 || e.ModTime.IsZero() {
			t.Errorf("%s: record %+v does not describe the file", path, e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func libEmbeddings(t *testing.T, m *blipcuda.Model, files []string) map[string]blipcuda.ImageEncoding {
	var imgs []*blipcuda.Image
	for _, p := range files {
		img, err := m.LoadImage(p)
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	enc, err := m.EncodeImages(context.Background(), imgs, false)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]blipcuda.ImageEncoding{}
	for _, e := range enc {
		want[e.Name] = e
	}
	return want
}

// TestEmbed runs the embed pipeline to index shards and Parquet, and checks
// the embeddings against Model.EncodeImages (what `blipcuda embed`
// computes), the merged index, and the dead letters.
func TestEmbed(t *testing.T) {
	f := newFixture(t, 60)
	out := filepath.Join(f.dir, "out")
	job, bad := embedJob(t, f, out)
	if err := run(t, job.Build); err != nil {
		t.Fatal(err)
	}
	want := libEmbeddings(t, loadLib(t), f.images)

	rows := readRows[EmbeddingRow](t, job.Parquet+"-*-of-00004.parquet")
	if len(rows) != len(want) {
		t.Errorf("%d embedding rows, want %d", len(rows), len(want))
	}
	for _, r := range rows {
		w := want[r.Image]
		if len(r.Embedding) != len(w.Embedding) || r.SHA256 != newBlob(f.bytes[r.Image]).sha256 {
			t.Fatalf("%s: %d values, sha256 %s", r.Image, len(r.Embedding), r.SHA256)
		}
		for i := range r.Embedding {
			if !near(r.Embedding[i], w.Embedding[i]) {
				t.Fatalf("%s: embedding[%d] %.6f, library %.6f", r.Image, i, r.Embedding[i], w.Embedding[i])
			}
		}
	}
	merged, st := mergeShards(t, job.Index)
	if st.Duplicates != 0 {
		t.Errorf("merge found %d duplicates", st.Duplicates)
	}
	checkIndex(t, merged, want, f)
	checkFailures(t, job.Failures, bad)
}

// TestIndexShardsRetry: a worker dies after writing an index shard (the
// runner has not recorded the bundle as done), the job is run again into
// the same directory (every bundle re-executed, as after a worker
// restart), and once more; then two attempts write one shard at once (a
// speculative execution). The shards must merge to one record per image
// with no duplicate, and no temporary directory may stay behind.
func TestIndexShardsRetry(t *testing.T) {
	f := newFixture(t, 24)
	out := filepath.Join(f.dir, "out")
	job, _ := embedJob(t, f, out)
	job.Parquet, job.Failures = "", ""
	crashed := errors.New("worker lost after writing its shard")
	var once sync.Once
	shardWritten = func(string) error {
		err := error(nil)
		once.Do(func() { err = crashed })
		return err
	}
	defer func() { shardWritten = nil }()
	if err := run(t, job.Build); err == nil {
		t.Fatal("the job with a crashed worker succeeded")
	}
	shardWritten = nil
	want := libEmbeddings(t, loadLib(t), f.images)
	for attempt := 0; attempt < 2; attempt++ {
		if err := run(t, job.Build); err != nil {
			t.Fatal(err)
		}
		entries, _ := os.ReadDir(job.Index)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if len(names) != 4 || !slices.IsSorted(names) || names[0] != "shard-00000-of-00004.blipidx" {
			t.Fatalf("attempt %d: the shard directory holds %v, want the 4 shards alone", attempt, names)
		}
		merged, st := mergeShards(t, job.Index)
		if st.Duplicates != 0 {
			t.Errorf("attempt %d: merge found %d duplicates", attempt, st.Duplicates)
		}
		checkIndex(t, merged, want, f)
	}

	// Two attempts at one shard at the same time.
	var all []Embedding
	for path, w := range want {
		all = append(all, Embedding{Ref: path, Embedding: w.Embedding, Size: int64(len(f.bytes[path])), SHA256: newBlob(f.bytes[path]).sha256, ModTime: 1})
	}
	dir := filepath.Join(f.dir, "speculative")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for a := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn := &indexWriteFn{Dir: dir, Shards: 1, Model: testModel}
			i := 0
			errs[a] = fn.ProcessElement(context.Background(), 0, func(e *Embedding) bool {
				if i == len(all) {
					return false
				}
				*e, i = all[i], i+1
				return true
			})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("two attempts at one shard left %d entries", len(entries))
	}
	merged, _ := mergeShards(t, dir)
	checkIndex(t, merged, want, f)
}

// TestSharedModel: DoFn instances of one process share one model, closed
// with the last reference.
func TestSharedModel(t *testing.T) {
	ctx := context.Background()
	spec := Model{Name: tinyModel, Device: "cpu", Threads: 1}
	a, err := acquire(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := acquire(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("two acquisitions loaded two models")
	}
	release(spec)
	if _, err := a.EncodeTexts(ctx, []string{"a dog"}); err != nil {
		t.Fatalf("the model was closed while still referenced: %v", err)
	}
	release(spec)
	if _, err := a.EncodeTexts(ctx, []string{"a dog"}); !errors.Is(err, blipcuda.ErrClosed) {
		t.Fatalf("after the last release: %v, want ErrClosed", err)
	}
	if _, err := acquire(ctx, Model{Name: filepath.Join(t.TempDir(), "nothing")}); err == nil {
		t.Fatal("a missing model loaded")
	}
}
