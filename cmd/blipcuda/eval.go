package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/blipcuda/blipcuda"
	"github.com/blipcuda/blipcuda/eval"
	"github.com/blipcuda/blipcuda/index"
	"github.com/blipcuda/blipcuda/internal/outfile"
	"github.com/blipcuda/blipcuda/internal/progress"
)

var evalCommand = &command{
	name:     "eval",
	synopsis: "[flags] ANNOTATIONS.json --images ROOT",
	summary:  "BLIP's retrieval evaluation (recall@1/5/10 of COCO / Flickr30k Karpathy test)",
	help: `Runs BLIP's image-text retrieval evaluation (salesforce/BLIP train_retrieval.py,
evaluation() and itm_eval()) on an annotation file in the Karpathy test layout,
a JSON list of {"image": "val2014/COCO_val2014_….jpg", "caption": ["…", …]}
with image paths relative to --images: every caption cleaned by BLIP's
pre_caption (30 words) and numbered in file order; ITC embeddings of every
image and text; for each image its k texts of highest ITC sim, and for each
text its k images, re-ranked by the ITM match logit + sim (−100 elsewhere);
image→text recall (an image's best-ranked caption) and text→image recall at
1, 5 and 10, their means and r_mean.

The table shows the nine figures, and beside them the BLIP paper's for the
model's architecture when the file is the COCO 5k or Flickr30k 1k Karpathy
test split. --format json writes them under BLIP's key names. --scores writes
the two score matrices (i2t, t2i) as BLIP's evaluation returns them.

k is 256 in BLIP's COCO config and 128 in its Flickr30k one. Progress is shown
per phase. An interrupted run (Ctrl-C, a crash) resumes when the same command
is run again, from a checkpoint file beside the output (--checkpoint); it is
removed when the run completes. A missing or unreadable image is an error
unless --skip-missing leaves it out, with its captions, which the output then
states.

--index NAME.blipidx reuses an index built by 'blipcuda index' with the same
model (the default model is then the index's; another is refused): an image
whose file has the SHA-256 of a record (its own path's, or another's: a moved
dataset) is not encoded; its stored embedding goes to the ITC pass, and its
stored features (float16: the ITM logits differ slightly from a run on the
files) to the re-rank, or, in an index without --features, the image is
encoded again when its re-rank comes. Images not in the index, or changed
since, are encoded from their files, counted in a warning. The index does
not record the device and precision it was built in; the output says so.`,
	env: append(append([]string{}, hubEnv...), "BLIPCUDA_MODEL"),
	run: runEval,
}

// evalFlags are eval's own flags.
type evalFlags struct {
	images, format, output, scores, checkpoint, index string
	k                                                 int
	skipMissing, noCheckpoint                         bool
	wait                                              time.Duration
}

func runEval(ctx context.Context, a *app, args []string) error {
	var (
		mf modelFlags
		ef evalFlags
	)
	fs := newFlagSet("eval")
	fs.str(&ef.images, "images", "i", "", "ROOT", "the directory the annotation file's image paths are relative to (required)")
	fs.integer(&ef.k, "k", "", 256, "N", "candidates re-ranked by ITM per image and per text (BLIP: 256 for COCO, 128 for Flickr30k)")
	fs.str(&ef.index, "index", "", "", "NAME.blipidx",
		"reuse the vectors of an index built by 'blipcuda index' with the same model: its ITC embeddings, and its float16 features "+
			"for the ITM re-rank when it has them; images not in it, or changed since, are encoded from their files")
	waitFlag(fs, &ef.wait)
	mf.register(fs)
	modelFromIndex(fs, "with --index, ")
	fs.str(&ef.format, "format", "f", "table", "table|json", "output format")
	fs.str(&ef.output, "output", "o", "", "FILE", "write the results to FILE (atomically) instead of stdout")
	fs.str(&ef.scores, "scores", "", "", "FILE.safetensors",
		"also write the score matrices i2t [images, texts] and t2i [texts, images], float32, −100 outside each row's top k")
	fs.boolean(&ef.skipMissing, "skip-missing", "", "leave out images that are missing or unreadable (and their captions), with a warning, instead of failing")
	fs.str(&ef.checkpoint, "checkpoint", "", "", "FILE",
		"where progress is kept for resuming (default: blipcuda-eval-HASH.checkpoint beside --output, else --scores, else in the current directory)")
	fs.boolean(&ef.noCheckpoint, "no-checkpoint", "", "keep no checkpoint: an interrupted run starts over")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	switch ef.format {
	case "table", "json":
	default:
		return usagef("--format %q: want table or json", ef.format)
	}
	if ef.k <= 0 {
		return usagef("--k %d: want a positive number of candidates (BLIP: 256 for COCO, 128 for Flickr30k)", ef.k)
	}
	if ef.scores != "" && !strings.EqualFold(filepath.Ext(ef.scores), ".safetensors") {
		return usagef("--scores %s: the score matrices are a safetensors file; name it FILE.safetensors", ef.scores)
	}
	if ef.noCheckpoint && ef.checkpoint != "" {
		return usagef("--checkpoint and --no-checkpoint cannot be used together")
	}
	if err := mf.validate(); err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		return usagef("no annotation file: give the Karpathy-layout JSON file to evaluate")
	case len(pos) > 1:
		return usagef("one annotation file at a time, not %d (%s)", len(pos), strings.Join(pos, ", "))
	case ef.images == "":
		return usagef("--images ROOT is required: the directory the annotation file's image paths are relative to")
	}
	annPath := pos[0]

	// Everything that can be checked before the model loads.
	col, err := eval.ReadAnnotations(annPath)
	if err != nil {
		return err
	}
	if st, err := os.Stat(ef.images); err != nil {
		return fmt.Errorf("images root %s: %w", ef.images, pathError(err))
	} else if !st.IsDir() {
		return fmt.Errorf("images root %s is not a directory", ef.images)
	}
	if missing := eval.CheckImages(col, ef.images); len(missing) > 0 {
		first := missing[0]
		if !ef.skipMissing {
			return fmt.Errorf("%w (%d of %d images are missing; --skip-missing leaves them out)",
				first.Err, len(missing), len(col.Entries))
		}
		if len(missing) == len(col.Entries) {
			return fmt.Errorf("%s: none of the %d images is under %s (first: %v)", annPath, len(col.Entries), ef.images, first.Err)
		}
		a.log.Warn(fmt.Sprintf("%d of %d images are missing and will be left out with their captions (--skip-missing)",
			len(missing), len(col.Entries)), "first", first.Image)
	}
	for _, o := range []struct{ flag, path string }{{"--output", ef.output}, {"--scores", ef.scores}, {"--checkpoint", ef.checkpoint}} {
		if ef.index != "" && o.path != "" && !isStdout(o.path) && within(absPath(ef.index), absPath(o.path)) {
			return usagef("%s %s is inside the index %s, which eval only reads: name another output", o.flag, o.path, ef.index)
		}
		if err := checkOutputPath(o.flag, o.path); err != nil {
			return err
		}
	}
	inputs := []outfile.Use{{Role: "the annotation file", Path: annPath}}
	if err := outfile.Clash([]outfile.Use{{Role: "--output", Path: ef.output}, {Role: "--scores", Path: ef.scores},
		{Role: "--checkpoint", Path: ef.checkpoint}}, inputs); err != nil {
		return usagef("%v", err)
	}

	var ix *index.Index
	if ef.index != "" {
		if ix, err = openIndexToRead(ctx, ef.index, ef.wait, fs, &mf); err != nil {
			return err
		}
		defer ix.Close()
		if _, ok := ix.Model(); !ok || ix.Len() == 0 {
			return fmt.Errorf("index %s holds no images yet: run 'blipcuda index' first", ef.index)
		}
	}

	m, err := a.loadModel(ctx, &mf)
	if err != nil {
		return err
	}
	defer m.Close()
	info := m.Info()

	opts := eval.Options{ImagesRoot: ef.images, K: ef.k, SkipMissing: ef.skipMissing,
		Warn: func(s string) { a.log.Warn(s) }}
	if ix != nil {
		if err := checkIndexModel(ix, m, mf.model); err != nil {
			return err
		}
		store, err := a.newIndexStore(ctx, ix, col, ef.images)
		if err != nil {
			return err
		}
		store.report(a)
		opts.Store = store
	}
	if !ef.noCheckpoint {
		if opts.Checkpoint, err = defaultCheckpoint(m, col, opts, ef); err != nil {
			return err
		}
		if err := outfile.Clash([]outfile.Use{{Role: "--output", Path: ef.output}, {Role: "--scores", Path: ef.scores},
			{Role: "the checkpoint", Path: opts.Checkpoint}}, inputs); err != nil {
			return usagef("%v (choose another with --checkpoint)", err)
		}
		if ef.index != "" && within(absPath(ef.index), absPath(opts.Checkpoint)) {
			return usagef("the checkpoint %s would be inside the index %s, which eval only reads: choose another with --checkpoint",
				opts.Checkpoint, ef.index)
		}
		if _, err := os.Stat(opts.Checkpoint); err == nil {
			a.log.Info("resuming from the checkpoint " + opts.Checkpoint)
		} else {
			a.log.Debug("checkpoint", "path", opts.Checkpoint)
		}
	}
	var prog *phaseProgress
	if !a.quiet {
		prog = newPhaseProgress(a.stderr, a.stderrFile != nil && isTerminal(a.stderrFile))
		opts.Progress = prog.update
	}
	r, err := eval.Evaluate(ctx, m, col, opts)
	if prog != nil {
		prog.done()
	}
	if err != nil {
		if ctx.Err() != nil && opts.Checkpoint != "" {
			if _, serr := os.Stat(opts.Checkpoint); serr == nil {
				a.log.Info("progress is kept in " + opts.Checkpoint + ": run the same command again to resume")
			}
		}
		return err
	}
	if r.KI2T < ef.k || r.KT2I < ef.k {
		a.log.Warn(fmt.Sprintf("--k %d is more than the collection holds: image→text re-ranks %d texts per image, "+
			"text→image %d images per text", ef.k, r.KI2T, r.KT2I))
	}
	if r.Truncated > 0 {
		a.log.Info(fmt.Sprintf("%d of %d texts were cut to the protocol's length (%s), as BLIP's evaluation cuts them",
			r.Truncated, len(r.Collection.Texts), m.TruncationLimit()))
	}
	res := newEvalResult(annPath, mf.model, info, col, r)
	if ix != nil {
		res.Index, res.IndexFeatures = ef.index, ix.HasFeatures()
	}
	if err := a.writeEvalOutputs(ctx, ef, res, r); err != nil {
		return err
	}
	if opts.Checkpoint != "" {
		if err := os.Remove(opts.Checkpoint); err != nil && !errors.Is(err, os.ErrNotExist) {
			a.log.Warn("could not remove the checkpoint", "path", opts.Checkpoint, "err", err)
		}
	}
	return nil
}

// isTerminal reports whether f is a terminal that can redraw a line.
func isTerminal(f *os.File) bool { return os.Getenv("TERM") != "dumb" && progress.IsTerminal(f) }

// defaultCheckpoint returns --checkpoint, else blipcuda-eval-HASH.checkpoint
// (HASH naming the run) beside --output, else beside --scores, else in the
// current directory.
func defaultCheckpoint(m *blipcuda.Model, col *eval.Collection, o eval.Options, ef evalFlags) (string, error) {
	if ef.checkpoint != "" {
		return ef.checkpoint, nil
	}
	fp, err := eval.Fingerprint(m, col, o)
	if err != nil {
		return "", err
	}
	dir := "."
	switch {
	case ef.output != "" && ef.output != "-":
		dir = filepath.Dir(ef.output)
	case ef.scores != "":
		dir = filepath.Dir(ef.scores)
	}
	return filepath.Join(dir, "blipcuda-eval-"+fp[:16]+".checkpoint"), nil
}

// evalResult is what eval writes; the JSON form is documented in README.md.
type evalResult struct {
	Annotations string
	Model       string
	Info        blipcuda.Info
	Split       *eval.Split
	Published   *eval.Published
	FineTuned   string // "coco", "flickr30k" or "" (unknown), from the model's name
	// Index is --index ("" without), IndexFeatures whether it stores
	// features.
	Index         string
	IndexFeatures bool
}

func newEvalResult(ann, model string, info blipcuda.Info, full *eval.Collection, r *eval.Result) *evalResult {
	res := &evalResult{Annotations: ann, Model: model, Info: info}
	if s, ok := eval.RecogniseSplit(full); ok {
		res.Split = &s
		if p, ok := eval.PublishedFor(s.Dataset, info.Config.Vision.HiddenSize); ok {
			res.Published = &p
		}
	}
	name := strings.ToLower(model + " " + info.Repo)
	switch {
	case strings.Contains(name, "coco"):
		res.FineTuned = "coco"
	case strings.Contains(name, "flickr"):
		res.FineTuned = "flickr30k"
	}
	return res
}

// evalSchemaVersion is the version of eval's JSON.
const evalSchemaVersion = 1

func (a *app) writeEvalOutputs(ctx context.Context, ef evalFlags, res *evalResult, r *eval.Result) error {
	write := func(w io.Writer) error {
		if ef.format == "json" {
			return writeEvalJSON(w, res, r)
		}
		return writeEvalTable(w, res, r)
	}
	var files []*outfile.File
	defer func() { outfile.AbortAll(files...) }()
	if ef.scores != "" {
		f, err := outfile.Create(ctx, ef.scores)
		if err != nil {
			return err
		}
		files = append(files, f)
		if err := writeEvalScores(f, res, r); err != nil {
			return err
		}
	}
	toStdout := ef.output == "" || ef.output == "-"
	if !toStdout {
		f, err := outfile.Create(ctx, ef.output)
		if err != nil {
			return err
		}
		files = append(files, f)
		if err := write(f); err != nil {
			return err
		}
	}
	if err := outfile.CommitAll(files...); err != nil {
		return err
	}
	for _, f := range files {
		a.log.Info("wrote " + f.Path())
	}
	files = nil
	if toStdout {
		return a.writeOutput(ctx, "", write)
	}
	return nil
}

// header is what the JSON and the scores file's metadata share.
func (res *evalResult) header(r *eval.Result) []jsonField {
	var split, published any
	if res.Split != nil {
		split = res.Split.Name
	}
	if res.Published != nil {
		p := res.Published
		published = map[string]any{"model": p.Model, "source": p.Source,
			"txt_r1": p.TR[0], "txt_r5": p.TR[1], "txt_r10": p.TR[2], "img_r1": p.IR[0], "img_r5": p.IR[1], "img_r10": p.IR[2],
			"note": "the Hub model cards do not say which row of the paper's table each checkpoint reproduces: these are the paper's figures for this architecture"}
	}
	var idx, note any
	encoded := 0
	if res.Index != "" {
		idx, note, encoded = res.Index, indexNote(res.IndexFeatures && r.FeaturesFromStore > 0), len(r.Collection.Entries)-r.FromStore
	}
	skipped := make([]map[string]any, len(r.Skipped))
	for i, s := range r.Skipped {
		skipped[i] = map[string]any{"entry": s.Entry, "image": s.Image, "error": errorText(s.Err)}
	}
	return []jsonField{
		{"images", len(r.Collection.Entries)},
		{"texts", len(r.Collection.Texts)},
		{"k", r.K},
		{"k_i2t", r.KI2T},
		{"k_t2i", r.KT2I},
		{"model", res.Model},
		{"repo", res.Info.Repo},
		{"protocol", string(res.Info.Protocol)},
		{"device", res.Info.Device},
		{"precision", res.Info.Precision},
		{"annotations", res.Annotations},
		{"split", split},
		{"published", published},
		{"skipped", skipped},
		{"truncated_texts", r.Truncated},
		{"itm_pairs", r.Pairs},
		{"index", idx},
		{"index_images", r.FromStore},
		{"index_features", r.FeaturesFromStore > 0},
		{"index_encoded", encoded},
		{"index_note", note},
		{"schema_version", evalSchemaVersion},
	}
}

func writeEvalJSON(w io.Writer, res *evalResult, r *eval.Result) error {
	rc := r.Recall
	fields := []jsonField{
		{"txt_r1", rc.TxtR1}, {"txt_r5", rc.TxtR5}, {"txt_r10", rc.TxtR10}, {"txt_r_mean", rc.TxtRMean},
		{"img_r1", rc.ImgR1}, {"img_r5", rc.ImgR5}, {"img_r10", rc.ImgR10}, {"img_r_mean", rc.ImgRMean},
		{"r_mean", rc.RMean},
	}
	return writeJSONObject(w, append(fields, res.header(r)...))
}

func writeEvalTable(w io.Writer, res *evalResult, r *eval.Result) error {
	ew := &errWriter{w: w}
	info := res.Info
	ew.printf("BLIP retrieval evaluation of %s\n", res.Annotations)
	ew.printf("  %d images, %d texts", len(r.Collection.Entries), len(r.Collection.Texts))
	if res.Split != nil {
		ew.printf("; %s (recognised by its %s)", res.Split.Name, res.Split.Why)
	}
	ew.printf("\n  model %s", res.Model)
	if info.Repo != "" && info.Repo != res.Model {
		ew.printf(" (%s)", info.Repo)
	}
	ew.printf(", protocol %s, %s, %s\n", info.Protocol, info.Device, info.Precision)
	ew.printf("  k %d", r.K)
	if r.KI2T < r.K || r.KT2I < r.K {
		ew.printf(" (clamped to the collection: %d texts per image, %d images per text)", r.KI2T, r.KT2I)
	}
	switch {
	case res.Split != nil && res.Split.K == r.K:
		ew.printf(" (BLIP's k_test for %s)", res.Split.Dataset)
	case res.Split != nil:
		ew.printf(" (BLIP's k_test for %s is %d)", res.Split.Dataset, res.Split.K)
	default:
		ew.printf(" (BLIP's k_test: 256 for COCO, 128 for Flickr30k)")
	}
	ew.printf("\n")
	if res.Index != "" {
		n := len(r.Collection.Entries)
		ew.printf("  index %s: ITC embeddings of %d of %d images", res.Index, r.FromStore, n)
		switch {
		case r.FeaturesFromStore > 0:
			ew.printf(", float16 features of %d for the ITM re-rank", r.FeaturesFromStore)
		case !res.IndexFeatures:
			ew.printf(" (it stores no features: the ITM re-rank encoded the images again)")
		}
		if r.FromStore < n {
			ew.printf("; %d encoded from their files", n-r.FromStore)
		}
		ew.printf("\n    (%s)\n", indexNote(r.FeaturesFromStore > 0))
	}
	if n := len(r.Skipped); n > 0 {
		ew.printf("  SKIPPED %d missing or unreadable image(s) and their captions (--skip-missing): the figures are over "+
			"the rest and not comparable with a full run\n", n)
	}
	rc := r.Recall
	ew.printf("\n%-22s %7s %7s %7s %7s\n", "", "R@1", "R@5", "R@10", "mean")
	row := func(name string, v [4]float64) {
		ew.printf("%-22s %7.2f %7.2f %7.2f %7.2f\n", name, v[0], v[1], v[2], v[3])
	}
	pub := func(v [3]float64) { ew.printf("%-22s %7.1f %7.1f %7.1f\n", "  published", v[0], v[1], v[2]) }
	row("image→text (txt_r)", [4]float64{rc.TxtR1, rc.TxtR5, rc.TxtR10, rc.TxtRMean})
	if res.Published != nil {
		pub(res.Published.TR)
	}
	row("text→image (img_r)", [4]float64{rc.ImgR1, rc.ImgR5, rc.ImgR10, rc.ImgRMean})
	if res.Published != nil {
		pub(res.Published.IR)
	}
	ew.printf("%-22s %7.2f\n", "r_mean", rc.RMean)
	if p := res.Published; p != nil {
		ew.printf("\npublished: %s,\n%s. The Hub model cards do not say which row of that table each\n"+
			"checkpoint reproduces: these are the paper's figures for this architecture, not a claim about\n"+
			"this checkpoint.\n", p.Source, p.Model)
		if res.FineTuned != "" && res.FineTuned != res.Split.Dataset {
			ew.printf("This model's name says it was fine-tuned on %s; the figures are for models fine-tuned on %s.\n",
				res.FineTuned, res.Split.Dataset)
		}
		if info.Protocol != blipcuda.ProtocolBLIP {
			ew.printf("They were measured with BLIP's text handling (--protocol blip), not %s.\n", info.Protocol)
		}
	}
	return ew.err
}

// indexNote is the caveat of scores computed from an index's vectors.
func indexNote(features bool) string {
	s := "the index does not record the device and precision its vectors were computed in: from another, they differ slightly from this run's own"
	if features {
		s += "; its features are float16, so the ITM logits differ slightly from a run on the image files"
	}
	return s
}

// writeEvalScores writes BLIP's two score matrices as safetensors, with
// the images, texts and run in the metadata.
func writeEvalScores(w io.Writer, res *evalResult, r *eval.Result) error {
	nImg, nTxt := len(r.Collection.Entries), len(r.Collection.Texts)
	meta := map[string]string{"format": "np"}
	if err := addMetadata(meta, res.header(r)); err != nil {
		return err
	}
	images := make([]string, nImg)
	for i, e := range r.Collection.Entries {
		images[i] = e.Image
	}
	// As embed's: the row and column names, here the images and the
	// cleaned texts; txt2img maps each text to its image's row.
	for key, v := range map[string]any{"images": images, "texts": r.Collection.Texts,
		"txt2img": r.Collection.TextImage, "recall": r.Recall} {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		meta[key] = string(b)
	}
	return writeSafetensorsArrays(w, []array{
		{"i2t", []int{nImg, nTxt}, eval.Dense(r.I2T, nTxt)},
		{"t2i", []int{nTxt, nImg}, eval.Dense(r.T2I, nImg)},
	}, meta)
}
