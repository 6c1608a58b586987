package main

import (
	"encoding/binary"
	"encoding/json"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nlpodyssey/safetensors"
)

// evalScores reads the i2t and t2i matrices of an eval --scores file.
func evalScores(t *testing.T, path string) map[string][][]float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := safetensors.Deserialize(b)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][][]float32{}
	for _, name := range []string{"i2t", "t2i"} {
		tv, ok := st.Tensor(name)
		if !ok || tv.DType() != safetensors.F32 || len(tv.Shape()) != 2 {
			t.Fatalf("%s: %s: %v", path, name, tv)
		}
		rows, cols, d := int(tv.Shape()[0]), int(tv.Shape()[1]), tv.Data()
		m := make([][]float32, rows)
		for i := range m {
			m[i] = make([]float32, cols)
			for j := range m[i] {
				m[i][j] = math.Float32frombits(binary.LittleEndian.Uint32(d[4*(i*cols+j):]))
			}
		}
		out[name] = m
	}
	return out
}

// compareScores reports whether two runs' score matrices have the same
// top-k cells (−100 in the same places) and returns the largest difference
// of the scores in them.
func compareScores(t *testing.T, what string, got, want map[string][][]float32) float64 {
	t.Helper()
	worst := 0.0
	for name, w := range want {
		g := got[name]
		if len(g) != len(w) {
			t.Fatalf("%s: %s has %d rows, want %d", what, name, len(g), len(w))
		}
		for i := range w {
			for j := range w[i] {
				if (g[i][j] == -100) != (w[i][j] == -100) {
					t.Errorf("%s: %s[%d][%d] = %g, want %g: another top-k set", what, name, i, j, g[i][j], w[i][j])
					continue
				}
				worst = max(worst, math.Abs(float64(g[i][j]-w[i][j])))
			}
		}
	}
	return worst
}

// evalJSON is what the index tests read of eval's JSON.
type evalJSON struct {
	Recall        map[string]any
	Model         string  `json:"model"`
	Index         *string `json:"index"`
	IndexImages   int     `json:"index_images"`
	IndexFeatures bool    `json:"index_features"`
	IndexEncoded  int     `json:"index_encoded"`
	IndexNote     *string `json:"index_note"`
}

func readEvalJSON(t *testing.T, path string) evalJSON {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var e evalJSON
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &e.Recall); err != nil {
		t.Fatal(err)
	}
	for k := range e.Recall {
		if !strings.HasPrefix(k, "txt_r") && !strings.HasPrefix(k, "img_r") && k != "r_mean" {
			delete(e.Recall, k)
		}
	}
	return e
}

// featureBound bounds how far an eval --index run on an index with
// features may score from a run on the image files with the tiny models:
// the features are stored in float16 (a relative rounding of 2⁻¹¹), which
// moves the ITM logits. Measured on testdata/eval: 7.2e-5 (see README).
const featureBound = 1e-3

// TestEvalIndex runs `blipcuda eval --index` as documented on a copy of
// the fixture, with indexes built by `blipcuda index` of its images:
//   - with --features: the ITC top-k sets and the recall figures are those
//     of a run on the files, the scores within featureBound (float16
//     features), and the JSON and table say what was reused;
//   - without features: the same scores, exactly on the CPU (the
//     embeddings are the model's own on this device; every image is
//     encoded for the re-rank);
//   - a checkpoint that would fall inside the index is refused;
//   - the model recorded in the index is the default; another one is
//     refused, naming both;
//   - an image changed since it was indexed, and images not in the index,
//     are encoded from their files (the result is a run on the files'),
//     with a warning that counts them;
//   - an image indexed under another path is found by its content.
func TestEvalIndex(t *testing.T) {
	tmp := t.TempDir()
	ev := filepath.Join(tmp, "ev")
	copyFile(t, evalAnn, filepath.Join(ev, "annotations.json"))
	imgs, err := filepath.Glob(filepath.Join(evalDir, "images", "*.png"))
	if err != nil || len(imgs) != 36 {
		t.Fatalf("fixture images: %v %v", imgs, err)
	}
	for _, p := range imgs {
		copyFile(t, p, filepath.Join(ev, "images", filepath.Base(p)))
	}
	ann, model := filepath.Join(ev, "annotations.json"), abs(t, tinyBase)
	feat, plain := filepath.Join(tmp, "feat.blipidx"), filepath.Join(tmp, "plain.blipidx")
	mustRun(t, runOpts{}, "index", filepath.Join(ev, "images"), "-o", feat, "--features", "-m", model)
	mustRun(t, runOpts{}, "index", filepath.Join(ev, "images"), "-o", plain, "-m", model)

	evalRun := func(name string, args ...string) (result, evalJSON, map[string][][]float32) {
		t.Helper()
		out, scores := filepath.Join(tmp, name+".json"), filepath.Join(tmp, name+".safetensors")
		r := mustRun(t, runOpts{dir: tmp}, append([]string{"eval", ann, "--images", ev, "--k", "16", "-f", "json",
			"-o", out, "--scores", scores}, args...)...)
		return r, readEvalJSON(t, out), evalScores(t, scores)
	}
	// Without features, the scores are a run on the files' exactly on the
	// CPU (an image's encoding does not depend on its batch); on a GPU the
	// index's batches of 64 and eval's of 32 may take other kernels.
	exact := 0.0
	if cudaAuto() {
		exact = 1e-4
	}
	_, ref, refScores := evalRun("files", "-m", model)
	if ref.Index != nil || ref.IndexImages != 0 || ref.IndexFeatures || ref.IndexEncoded != 0 || ref.IndexNote != nil {
		t.Errorf("a run without --index reports an index: %+v", ref)
	}

	// With features; the model is the index's.
	r, got, scores := evalRun("feat", "--index", feat)
	if got.Model != model {
		t.Errorf("model %q, want the index's %q", got.Model, model)
	}
	if d := compareScores(t, "--index with features", scores, refScores); d > featureBound {
		t.Errorf("scores differ by up to %.3g from a run on the files (bound %g)", d, featureBound)
	} else {
		t.Logf("features: scores within %.3g of a run on the files", d)
	}
	if !maps.Equal(got.Recall, ref.Recall) {
		t.Errorf("recall %v, a run on the files %v", got.Recall, ref.Recall)
	}
	if got.Index == nil || *got.Index != feat || got.IndexImages != 36 || !got.IndexFeatures || got.IndexEncoded != 0 ||
		got.IndexNote == nil || !strings.Contains(*got.IndexNote, "float16") || !strings.Contains(*got.IndexNote, "does not record the device") {
		t.Errorf("json %+v", got)
	}
	if !strings.Contains(r.stderr, "reusing the ITC embeddings and float16 features of 36 of 36 images") || strings.Contains(r.stderr, "warning") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
	tr := mustRun(t, runOpts{dir: tmp}, "eval", ann, "--images", ev, "--k", "16", "--index", feat)
	if !strings.Contains(tr.stdout, "index "+feat+": ITC embeddings of 36 of 36 images, float16 features of 36 for the ITM re-rank") ||
		!strings.Contains(tr.stdout, "does not record the device and precision") {
		t.Errorf("table:\n%s", tr.stdout)
	}

	// Run from inside the index, the default checkpoint would be written
	// there: refused; the index is left as it was.
	before := listDir(t, feat)
	wantFail(t, run(t, runOpts{dir: feat}, "eval", ann, "--images", ev, "--k", "16", "--index", "."),
		exitUsage, "the checkpoint", "inside the index", "--checkpoint")
	if after := listDir(t, feat); !slices.Equal(after, before) {
		t.Errorf("the index directory held %v, now %v", before, after)
	}

	// Without features: the run on the files' numbers.
	_, got, scores = evalRun("plain", "--index", plain, "-m", model)
	if d := compareScores(t, "--index without features", scores, refScores); d > exact {
		t.Errorf("scores differ by up to %.3g from a run on the files", d)
	}
	if got.IndexImages != 36 || got.IndexFeatures || got.IndexEncoded != 0 {
		t.Errorf("json %+v", got)
	}

	// Another model is refused, naming both.
	wantFail(t, run(t, runOpts{dir: tmp}, "eval", ann, "--images", ev, "--k", "16", "--index", feat, "-m", abs(t, tinyLarge)),
		exitFailure, "index "+feat, "built with another model", "tiny-base", "tiny-large")

	// An image changed since it was indexed (another picture), and four
	// moved to another directory; an index of the fixture's first 30
	// images leaves six out.
	part := filepath.Join(tmp, "part.blipidx")
	mustRun(t, runOpts{}, append([]string{"index", "-o", part, "-m", model}, filesOf(ev, imgs[:30])...)...)
	other := genImages(t, filepath.Join(tmp, "other"), 1, 7)[0]
	copyFile(t, other, filepath.Join(ev, "images", "img_03.png"))
	b, err := os.ReadFile(ann)
	if err != nil {
		t.Fatal(err)
	}
	moved := strings.NewReplacer(`"images/img_05.png"`, `"moved/img_05.png"`, `"images/img_06.png"`, `"moved/img_06.png"`,
		`"images/img_07.png"`, `"moved/img_07.png"`, `"images/img_08.png"`, `"moved/img_08.png"`).Replace(string(b))
	if err := os.WriteFile(ann, []byte(moved), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(ev, "moved"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"img_05.png", "img_06.png", "img_07.png", "img_08.png"} {
		if err := os.Rename(filepath.Join(ev, "images", n), filepath.Join(ev, "moved", n)); err != nil {
			t.Fatal(err)
		}
	}
	_, _, changedRef := evalRun("files-changed", "-m", model)
	r, got, scores = evalRun("part", "--index", part)
	if d := compareScores(t, "--index with changed and absent images", scores, changedRef); d > exact {
		t.Errorf("scores differ by up to %.3g from a run on the files: stale vectors used?", d)
	}
	if got.IndexImages != 29 || got.IndexEncoded != 7 {
		t.Errorf("json %+v, want 29 images from the index and 7 encoded", got)
	}
	for _, w := range []string{"7 of 36 images will be encoded from their files: 6 not in the index (e.g. ",
		"1 changed since they were indexed (e.g. " + filepath.Join(ev, "images", "img_03.png"),
		"4 image(s) found under another path by their content (SHA-256), e.g. " + filepath.Join(ev, "moved", "img_05.png"),
		"reusing the ITC embeddings of 29 of 36 images; it stores no features"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
		}
	}
	tr = mustRun(t, runOpts{dir: tmp}, "eval", ann, "--images", ev, "--k", "16", "--index", part)
	if !strings.Contains(tr.stdout, "index "+part+": ITC embeddings of 29 of 36 images (it stores no features: the ITM re-rank "+
		"encoded the images again); 7 encoded from their files") {
		t.Errorf("table:\n%s", tr.stdout)
	}

	// An index of other images: none found, said so.
	unrelated := filepath.Join(tmp, "unrelated.blipidx")
	mustRun(t, runOpts{}, "index", "-o", unrelated, "-m", model, genImages(t, filepath.Join(tmp, "another"), 1, 8)[0])
	r = mustRun(t, runOpts{dir: tmp}, "eval", ann, "--images", ev, "--k", "16", "--index", unrelated, "-f", "json")
	if !strings.Contains(r.stderr, "36 of 36 images will be encoded from their files: 36 not in the index") ||
		!strings.Contains(r.stderr, "none of the images is in the index: is it the index of these files? (it holds 1 image(s)") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
}

// filesOf returns the paths under dir of the fixture images named by imgs.
func filesOf(dir string, imgs []string) []string {
	out := make([]string, len(imgs))
	for i, p := range imgs {
		out[i] = filepath.Join(dir, "images", filepath.Base(p))
	}
	return out
}
