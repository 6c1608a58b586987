package main

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nlpodyssey/safetensors"

	"github.com/blipcuda/blipcuda"
	"github.com/blipcuda/blipcuda/eval"
)

const (
	evalDir = "../../testdata/eval"
	evalAnn = evalDir + "/annotations.json"
)

// evalExpected is testdata/eval/expected.json (make_fixture.py).
type evalExpected struct {
	K      int            `json:"k"`
	Texts  []string       `json:"texts"`
	Recall map[string]any `json:"recall"`
	I2T    []evalRow      `json:"i2t"`
	T2I    []evalRow      `json:"t2i"`
}

type evalRow struct {
	Cols   []int     `json:"cols"`
	Scores []float32 `json:"scores"`
}

func readEvalExpected(t *testing.T) *evalExpected {
	t.Helper()
	b, err := os.ReadFile(evalDir + "/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var e evalExpected
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	return &e
}

// TestEvalFixture runs `blipcuda eval` as documented on the fixture made by
// transformers and an independent implementation of BLIP's procedure
// (testdata/eval/make_fixture.py): the JSON's nine figures equal the
// reference's, and the --scores matrices hold the same top-k cells (within
// 1e-4) and −100 everywhere else.
func TestEvalFixture(t *testing.T) {
	want := readEvalExpected(t)
	dir := t.TempDir()
	scores := filepath.Join(dir, "scores.safetensors")
	out := filepath.Join(dir, "result.json")
	r := mustRun(t, runOpts{}, "eval", evalAnn, "--images", evalDir, "-m", tinyBase, "--k", "16",
		"--format", "json", "-o", out, "--scores", scores)
	if strings.Contains(r.stderr, "warning") {
		t.Errorf("warnings: %s", r.stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for k, v := range want.Recall {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	device := "cpu"
	if cudaAuto() {
		device = "cuda"
	}
	for k, v := range map[string]any{"images": 36.0, "texts": float64(len(want.Texts)), "k": 16.0, "model": tinyBase,
		"protocol": "blip", "device": device, "precision": "float32", "split": nil, "published": nil} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if left := listDir(t, dir); !slices.Equal(left, []string{"result.json", "scores.safetensors"}) {
		t.Errorf("left in the output directory: %v (the checkpoint must go once the run is complete)", left)
	}

	got2 := evalScores(t, scores)
	nImg, nTxt := len(want.I2T), len(want.T2I)
	for _, m := range []struct {
		name string
		rows []evalRow
		n    int
	}{{"i2t", want.I2T, nTxt}, {"t2i", want.T2I, nImg}} {
		g := got2[m.name]
		if len(g) != len(m.rows) || len(g[0]) != m.n {
			t.Fatalf("%s: %d×%d, want %d×%d", m.name, len(g), len(g[0]), len(m.rows), m.n)
		}
		for i, row := range m.rows {
			for j, v := range g[i] {
				k := slices.Index(row.Cols, j)
				switch {
				case k < 0 && v != -100:
					t.Errorf("%s[%d][%d] = %g, want -100 (not in the top k)", m.name, i, j, v)
				case k >= 0 && math.Abs(float64(v-row.Scores[k])) > 1e-4:
					t.Errorf("%s[%d][%d] = %g, want %g", m.name, i, j, v, row.Scores[k])
				}
			}
		}
	}
	sb, err := os.ReadFile(scores)
	if err != nil {
		t.Fatal(err)
	}
	_, meta, err := safetensors.ReadMetadata(sb)
	if err != nil {
		t.Fatal(err)
	}
	md := meta.Metadata()
	var texts []string
	if err := json.Unmarshal([]byte(md["texts"]), &texts); err != nil || !slices.Equal(texts, want.Texts) {
		t.Errorf("metadata texts %.80q", md["texts"])
	}
	if md["protocol"] != "blip" || md["k"] != "16" {
		t.Errorf("metadata %v", md)
	}
}

// TestEvalTable: the table's figures, and the k clamped to the collection
// with a warning.
func TestEvalTable(t *testing.T) {
	r := mustRun(t, runOpts{dir: t.TempDir()}, "eval", abs(t, evalAnn), "--images", abs(t, evalDir), "-m", abs(t, tinyBase))
	for _, w := range []string{"36 images, 183 texts", "k 256 (clamped to the collection: 183 texts per image, 36 images per text)",
		"image→text (txt_r)", "text→image (img_r)", "r_mean"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("table lacks %q:\n%s", w, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "warning: --k 256 is more than the collection holds") {
		t.Errorf("no clamp warning:\n%s", r.stderr)
	}
}

func abs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestEvalResume: a checkpoint left by an interrupted run (here made by
// the library, cancelled half-way through the ITM phase) is picked up by
// the command, which says so, gives the uninterrupted figures, and removes
// it.
func TestEvalResume(t *testing.T) {
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "run.checkpoint")
	m, err := blipcuda.Load(context.Background(), tinyBase, blipcuda.WithDevice("cpu"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	col, err := eval.ReadAnnotations(evalAnn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	_, err = eval.Evaluate(ctx, m, col, eval.Options{ImagesRoot: evalDir, K: 16, Checkpoint: ckpt,
		Progress: func(p eval.Phase, done, total int) {
			if p == eval.PhaseITM && done > total/3 {
				cancel()
			}
		}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	r := mustRun(t, runOpts{}, "eval", evalAnn, "--images", evalDir, "-m", tinyBase, "--k", "16", "--device", "cpu",
		"--format", "json", "--checkpoint", ckpt)
	if !strings.Contains(r.stderr, "resuming from the checkpoint "+ckpt) {
		t.Errorf("no word of resuming:\n%s", r.stderr)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	for k, v := range readEvalExpected(t).Recall {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if _, err := os.Stat(ckpt); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("checkpoint left after a complete run: %v", err)
	}
}

// TestEvalSkipMissing: a missing image is an error naming it and its
// entry; --skip-missing leaves it out and the output says so.
func TestEvalSkipMissing(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(evalAnn)
	if err != nil {
		t.Fatal(err)
	}
	var ann []map[string]any
	if err := json.Unmarshal(b, &ann); err != nil {
		t.Fatal(err)
	}
	ann = ann[:12]
	ann[4]["image"] = "images/gone.png"
	b, _ = json.Marshal(ann)
	annPath := writeFile(t, dir, "ann.json", string(b))
	root := abs(t, evalDir)
	r := run(t, runOpts{dir: dir}, "eval", annPath, "--images", root, "-m", abs(t, tinyBase), "--k", "10")
	wantFail(t, r, exitFailure, "ann.json, entry 5", "gone.png", "1 of 12 images are missing", "--skip-missing")
	r = mustRun(t, runOpts{dir: dir}, "eval", annPath, "--images", root, "-m", abs(t, tinyBase), "--k", "10", "--skip-missing")
	if !strings.Contains(r.stdout, "SKIPPED 1 missing") || !strings.Contains(r.stdout, "11 images") {
		t.Errorf("the table does not state the skipped image:\n%s", r.stdout)
	}
	r = mustRun(t, runOpts{dir: dir}, "eval", annPath, "--images", root, "-m", abs(t, tinyBase), "--k", "10", "--skip-missing", "-f", "json")
	var got struct {
		Images  int `json:"images"`
		Skipped []struct {
			Entry int    `json:"entry"`
			Image string `json:"image"`
		} `json:"skipped"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	if got.Images != 11 || len(got.Skipped) != 1 || got.Skipped[0].Entry != 5 || got.Skipped[0].Image != "images/gone.png" {
		t.Errorf("json %+v", got)
	}
	if left := listDir(t, dir); !slices.Equal(left, []string{"ann.json"}) {
		t.Errorf("left behind: %v", left)
	}
}

// TestEvalBadInput: each mistake gets a message naming the file and entry
// (or flag), the README's status, and nothing is written.
func TestEvalBadInput(t *testing.T) {
	dir := t.TempDir()
	good := abs(t, evalAnn)
	root := abs(t, evalDir)
	notJSON := writeFile(t, dir, "notjson.json", "[{\"image\": \"a.jpg\",\n \"caption\": [\"x\"]")
	object := writeFile(t, dir, "object.json", `{"images": []}`)
	noCaption := writeFile(t, dir, "nocap.json", `[{"image": "images/img_00.png", "caption": ["a"]}, {"image": "images/img_01.png"}]`)
	capNumber := writeFile(t, dir, "capnum.json", `[{"image": "images/img_00.png", "caption": ["a dog", 3]}]`)
	emptyCaps := writeFile(t, dir, "emptycaps.json", `[{"image": "images/img_00.png", "caption": []}]`)
	dup := writeFile(t, dir, "dup.json", `[{"image": "images/img_00.png", "caption": ["a"]}, {"image": "images/img_00.png", "caption": ["b"]}]`)
	notImage := writeFile(t, dir, "notimage.json", `[{"image": "images/img_00.png", "caption": ["a"]}, {"image": "annotations.json", "caption": ["b"]}]`)
	out := filepath.Join(dir, "out.json")
	m := []string{"-m", abs(t, tinyBase), "--images", root}
	for _, c := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"no annotation file", []string{"eval", "--images", root}, exitUsage, []string{"no annotation file"}},
		{"two annotation files", []string{"eval", good, good, "--images", root}, exitUsage, []string{"one annotation file"}},
		{"no images root", []string{"eval", good}, exitUsage, []string{"--images ROOT is required"}},
		{"k zero", append([]string{"eval", good, "--k", "0"}, m...), exitUsage, []string{"--k 0"}},
		{"k negative", append([]string{"eval", good, "--k", "-5"}, m...), exitUsage, []string{"--k -5"}},
		{"bad format", append([]string{"eval", good, "--format", "csv"}, m...), exitUsage, []string{`--format "csv"`}},
		{"scores not safetensors", append([]string{"eval", good, "--scores", filepath.Join(dir, "s.npy")}, m...), exitUsage,
			[]string{"--scores", "FILE.safetensors"}},
		{"output is the annotation file", append([]string{"eval", good, "-o", good}, m...), exitUsage, []string{"same file"}},
		{"missing annotation file", append([]string{"eval", filepath.Join(dir, "none.json")}, m...), exitFailure,
			[]string{"annotation file", "none.json", "no such file"}},
		{"images root missing", []string{"eval", good, "-m", abs(t, tinyBase), "--images", filepath.Join(dir, "coco")}, exitFailure,
			[]string{"images root", "coco", "no such file"}},
		{"images root a file", []string{"eval", good, "-m", abs(t, tinyBase), "--images", good}, exitFailure,
			[]string{"images root", "not a directory"}},
		{"not JSON", append([]string{"eval", notJSON}, m...), exitFailure, []string{"notjson.json", "not JSON", "line 2"}},
		{"not the layout", append([]string{"eval", object}, m...), exitFailure, []string{"object.json", "JSON object", "Karpathy layout"}},
		{"no caption", append([]string{"eval", noCaption}, m...), exitFailure, []string{"nocap.json", "entry 2", `no "caption"`}},
		{"caption not a string", append([]string{"eval", capNumber}, m...), exitFailure, []string{"capnum.json", "entry 1", "caption 2 is a number"}},
		{"empty caption list", append([]string{"eval", emptyCaps}, m...), exitFailure, []string{"emptycaps.json", "entry 1", "caption list is empty"}},
		{"duplicate images", append([]string{"eval", dup}, m...), exitFailure, []string{"dup.json", "entry 2", "already entry 1"}},
		{"unreadable image", append([]string{"eval", notImage}, m...), exitFailure, []string{"entry 2", "annotations.json"}},
		{"index missing", append([]string{"eval", good, "--index", filepath.Join(dir, "none.blipidx")}, m...), exitFailure,
			[]string{"index", "none.blipidx", "no such file"}},
		{"index not an index", append([]string{"eval", good, "--index", good}, m...), exitFailure,
			[]string{"not a blipcuda index", "annotations.json is a file"}},
		{"output inside the index", append([]string{"eval", good, "--index", filepath.Join(dir, "x.blipidx"),
			"-o", filepath.Join(dir, "x.blipidx", "index.db")}, m...), exitUsage, []string{"--output", "inside the index", "x.blipidx"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := c.args
			if !slices.Contains(args, "-o") {
				args = append(args, "-o", out)
			}
			r := run(t, runOpts{dir: dir}, args...)
			wantFail(t, r, c.code, c.want...)
			if !strings.HasPrefix(r.stderr, "blipcuda eval: ") && !strings.Contains(r.stderr, "\nblipcuda eval: ") {
				t.Errorf("message does not start with the command: %s", r.stderr)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("an output was written")
			}
			for _, f := range listDir(t, dir) {
				if strings.HasSuffix(f, ".checkpoint") {
					t.Errorf("checkpoint %s left behind", f)
				}
			}
		})
	}
}

// TestEvalTablePublished: with a recognised split and a known
// architecture, the paper's figures are printed beside the results, with
// their source, the caveat about the checkpoint mapping, and a note when
// the model was fine-tuned on the other dataset.
func TestEvalTablePublished(t *testing.T) {
	col := &eval.Collection{}
	for i := range 1000 {
		col.Entries = append(col.Entries, eval.Entry{Image: "flickr30k-images/" + strings.Repeat("x", i%7) + ".jpg"})
	}
	var info blipcuda.Info
	info.Config.Vision.HiddenSize = 768
	info.Protocol, info.Device, info.Precision, info.Repo = blipcuda.ProtocolBLIP, "cuda", "float16", "Salesforce/blip-itm-base-coco"
	r := &eval.Result{Collection: &eval.Collection{Entries: make([]eval.Entry, 1000), Texts: make([]string, 5000)},
		K: 128, KI2T: 128, KT2I: 128, Recall: eval.Recall{TxtR1: 97.1, TxtR5: 99.8, TxtR10: 100, ImgR1: 87.0}}
	res := newEvalResult("flickr30k_test.json", "base-coco", info, col, r)
	var b strings.Builder
	if err := writeEvalTable(&b, res, r); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"Flickr30k 1k Karpathy test", "k 128 (BLIP's k_test for flickr30k)",
		"97.3    99.9   100.0", "87.3    97.6    98.9",
		"arXiv:2201.12086", "BLIP ViT-B (129M images)", "do not say which row", "fine-tuned on coco",
		"cuda, float16", "97.10"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("table lacks %q:\n%s", w, b.String())
		}
	}
	var j strings.Builder
	if err := writeEvalJSON(&j, res, r); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(j.String()), &got); err != nil {
		t.Fatal(err)
	}
	pub, _ := got["published"].(map[string]any)
	if got["split"] != "Flickr30k 1k Karpathy test" || pub["txt_r1"] != 97.3 || pub["img_r10"] != 98.9 || got["txt_r1"] != 97.1 {
		t.Errorf("json %v", got)
	}
}
