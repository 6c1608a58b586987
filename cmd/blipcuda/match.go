package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/blipcuda/blipcuda"
	"github.com/blipcuda/blipcuda/heatmap"
	"github.com/blipcuda/blipcuda/internal/outfile"
)

var matchCommand = &command{
	name:     "match",
	synopsis: "[flags] IMAGE|DIR... (--text TEXT | --texts FILE)...",
	summary:  "score texts against images: ITM P(match) and ITC cosine",
	help: `Scores every text against every image with both heads of the model: the ITM
head's P(match) = softmax(logits)[1], a probability, and the ITC cosine of
the two embeddings, in [-1, 1] and not a probability. Images are files (JPEG,
PNG, GIF, BMP, WebP) or directories of them; texts come from --text and from
--texts files, one per line.

The table (the default) lists, for each image, the texts ranked by P(match)
(by the ITC cosine with --score itc). --format json writes every score as
images × texts matrices; --format csv one row per image and text. --plot
draws the matrix as a PNG heat map with thumbnails of the images.

The model is downloaded into the Hugging Face cache on first use, unless
HF_HUB_OFFLINE is set.`,
	env: append(append([]string{}, hubEnv...), "BLIPCUDA_MODEL", "NO_COLOR", "BLIPCUDA_FONTS"),
	run: runMatch,
}

// matchResult is what match writes: the library's match document, whose
// JSON form is documented in README.md and is also the server's /v1/match
// response.
type matchResult = blipcuda.MatchDocument

func runMatch(ctx context.Context, a *app, args []string) error {
	var (
		mf                 modelFlags
		tf                 textFlags
		score, format      string
		output, plot       string
		top                int
		recursive, skipBad bool
	)
	fs := newFlagSet("match")
	tf.register(fs)
	mf.register(fs)
	fs.str(&score, "score", "s", "both", "itm|itc|both",
		"which scores: itm (P(match) and logits), itc (cosine only; faster, no multimodal encoder) or both")
	fs.str(&format, "format", "f", "", "table|json|csv", "output format (default: from the --output name, .json or .csv, else table)")
	fs.str(&output, "output", "o", "", "FILE", "write the results to FILE (atomically) instead of stdout")
	fs.str(&plot, "plot", "", "", "FILE.png",
		"also draw the images × texts scores as a heat map: P(match) on a fixed 0..1 scale, or the ITC cosine with --score itc")
	fs.integer(&top, "top", "", 0, "N", "table and csv: only the N best texts per image (default, or 0: all)")
	fs.boolean(&recursive, "recursive", "r", "look for images in subdirectories of directories too")
	fs.boolean(&skipBad, "skip-bad", "", "skip images that cannot be read or decoded, with a warning, instead of failing")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	switch score {
	case "itm", "itc", "both":
	default:
		return usagef("--score %q: want itm, itc or both", score)
	}
	if format, err = matchFormat(format, output); err != nil {
		return err
	}
	if top < 0 {
		return usagef("--top %d: want a number of texts ≥ 1, or 0 for all", top)
	}
	if top > 0 && format == "json" {
		a.log.Warn("--top applies to the table and csv formats; the JSON holds every score")
	}
	if plot != "" && !strings.EqualFold(filepath.Ext(plot), ".png") && !writtenDirectly(plot) {
		return usagef("--plot %s: the plot is a PNG file; name it FILE.png", plot)
	}
	if err := mf.validate(); err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("no images: name image files or directories")
	}
	if len(tf.texts) == 0 && len(tf.files) == 0 {
		return usagef("no texts: give --text TEXT or --texts FILE")
	}
	texts, err := tf.collect(a.stdin, mf.protocol)
	if err != nil {
		return err
	}
	paths, err := collectImages(pos, walkOptions{recursive: recursive, skip: func(note string) { a.log.Warn(note) }})
	if err != nil {
		return err
	}
	if err := checkOutputPath("--output", output); err != nil {
		return err
	}
	if err := checkOutputPath("--plot", plot); err != nil {
		return err
	}
	if err := checkClash([]outfile.Use{{Role: "--plot", Path: plot}, {Role: "--output", Path: output}},
		inputUses(paths, tf.files, mf.model)); err != nil {
		return err
	}
	paths, sizes, err := a.checkImages(paths, skipBad)
	if err != nil {
		return err
	}
	var plotOpt heatmap.Options
	if plot != "" {
		if plotOpt, err = a.fitPlot(plot, score, mf.model, paths, sizes, texts); err != nil {
			return err
		}
	}

	run := &imageRun{}
	m, err := a.loadModel(ctx, &mf, run.option())
	if err != nil {
		return err
	}
	defer m.Close()
	doc := blipcuda.NewMatchDocument(m, mf.model, score, texts)
	res := &doc

	w, file, err := a.openOutput(ctx, output)
	if err != nil {
		return err
	}
	defer file.Abort() // after a commit it does nothing
	sw := &streamWriter{w: w, format: format, top: top, color: isStdout(output) && useColor(a.stdoutFile)}
	if isStdout(output) {
		bw := bufio.NewWriterSize(a.stdout, 1<<16)
		sw.w, sw.flush = bw, bw.Flush
	}
	thumbs, err := a.score(ctx, m, res, paths, plot != "", skipBad, run, sw)
	for j, tr := range res.Truncated {
		if tr {
			a.log.Warn(fmt.Sprintf("texts[%d] was cut to the protocol's length (%s)", j, m.TruncationLimit()),
				"text", ellipsis(texts[j], 60))
		}
	}
	if err != nil {
		return a.keepDone(ctx, err, res, sw, file, output)
	}
	if err := sw.finish(res); err != nil {
		return err
	}
	var plotFile *outfile.File
	if plot != "" {
		img, err := heatmap.Render(heatmap.FromFloat32(plotMatrix(res)), thumbs, res.Images, res.Texts, plotOpt)
		if err != nil {
			return fmt.Errorf("--plot %s: %w", plot, err)
		}
		if plotFile, err = outfile.Create(ctx, plot); err != nil {
			return err
		}
		defer plotFile.Abort()
		if err := png.Encode(plotFile, img); err != nil {
			return err
		}
	}
	// The plot and the results file appear together or not at all.
	return a.commitOutputs(plotFile, file)
}

// matchFormat is the output format: --format, else the --output name's
// extension (.json, .csv), else table. A --format that contradicts the
// name is a usage error.
func matchFormat(format, output string) (string, error) {
	switch format {
	case "", "table", "json", "csv":
	default:
		return "", usagef("--format %q: want table, json or csv", format)
	}
	byName := ""
	if !isStdout(output) {
		switch strings.ToLower(filepath.Ext(output)) {
		case ".json":
			byName = "json"
		case ".csv":
			byName = "csv"
		}
	}
	switch {
	case format == "" && byName == "":
		return "table", nil
	case format == "":
		return byName, nil
	case byName != "" && byName != format:
		return "", usagef("--format %s does not match --output %s: leave --format out to write %s, or name the file for its format",
			format, output, byName)
	}
	return format, nil
}

// plotMatrix is the matrix --plot draws.
func plotMatrix(res *matchResult) [][]float32 {
	if res.Score == "itc" {
		return res.ITC
	}
	return res.ITMProb
}

// fitPlot lays the --plot heat map out before any work, from the images'
// sizes and the texts, and refuses one that cannot be drawn legibly.
func (a *app) fitPlot(plot, score, modelName string, paths []string, sizes []image.Point, texts []string) (heatmap.Options, error) {
	if miss := heatmap.MissingGlyphs(append(append([]string{}, texts...), paths...)...); len(miss) > 0 {
		a.log.Warn(fmt.Sprintf("--plot %s: no font found has %d of the characters of the texts or image names (%s); "+
			"they will be drawn as boxes. Install a font that has them (Debian: fonts-noto-cjk for Chinese, Japanese "+
			"and Korean), or name one in %s", plot, len(miss), ellipsis(string(miss), 12), heatmap.FontEnv))
	}
	metric, lo, hi := "P(match)", 0.0, 1.0
	if score == "itc" {
		metric, lo, hi = "ITC cosine", 0, 0
	}
	title := modelName
	if _, err := os.Stat(title); err == nil {
		title = filepath.Base(filepath.Clean(title)) // a checkpoint directory
	}
	opt, err := heatmap.Fit(len(paths), sizes, paths, texts, heatmap.Options{
		Title: "blipcuda match · " + title, Metric: metric, Min: lo, Max: hi, ShowValues: true})
	if errors.Is(err, heatmap.ErrTooLarge) {
		return opt, usagef("--plot %s cannot be drawn legibly: %s. Plot fewer images or texts (at most %d images, "+
			"%d texts, and fewer of both together: 100 × 500 or 200 × 250 fit), or leave --plot out",
			plot, strings.TrimPrefix(err.Error(), heatmap.ErrTooLarge.Error()+": "), heatmap.MaxImages, heatmap.MaxTexts)
	}
	if err != nil {
		return opt, fmt.Errorf("--plot %s: %w", plot, err)
	}
	return opt, nil
}

// keepDone ends a run that failed part way: what is done is written where
// the output can hold it (the table and csv were streamed already; the
// JSON is written with the images done), and the error says which image
// failed and how to go on.
func (a *app) keepDone(ctx context.Context, err error, res *matchResult, sw *streamWriter, file *outfile.File, output string) error {
	if ctx.Err() != nil || len(res.Images) == 0 {
		return err
	}
	if werr := sw.finish(res); werr != nil {
		return err
	}
	if file != nil {
		if werr := a.commitOutputs(file); werr != nil {
			return err
		}
	}
	where := "stdout"
	if !isStdout(output) {
		where = output
	}
	return fmt.Errorf("%w; the results of the %d images before it are in %s", err, len(res.Images), where)
}

// streamWriter writes match's results as they come: the table and csv
// image by image, the JSON at the end.
type streamWriter struct {
	w      io.Writer
	flush  func() error // stdout's buffer, flushed after each chunk
	format string
	top    int
	color  bool
	done   int // images written
	err    error
}

// images writes the images of res not yet written (table, csv).
func (sw *streamWriter) images(res *matchResult) error {
	if sw.err != nil || sw.format == "json" {
		return sw.err
	}
	for ; sw.done < len(res.Images) && sw.err == nil; sw.done++ {
		if sw.format == "csv" {
			if sw.done == 0 {
				sw.err = writeMatchCSVHeader(sw.w)
			}
			if sw.err == nil {
				sw.err = writeMatchCSVImage(sw.w, res, sw.done, sw.top)
			}
			continue
		}
		sw.err = writeMatchTableImage(sw.w, res, sw.done, sw.top, sw.color)
	}
	if sw.err == nil && sw.flush != nil {
		sw.err = sw.flush()
	}
	return sw.err
}

// finish writes what is left: the JSON document, or the table's rest.
func (sw *streamWriter) finish(res *matchResult) error {
	if sw.format != "json" {
		return sw.images(res)
	}
	if sw.err == nil {
		sw.err = writeMatchJSON(sw.w, res)
	}
	if sw.err == nil && sw.flush != nil {
		sw.err = sw.flush()
	}
	return sw.err
}

// score fills res with the scores of every image in paths against
// res.Texts, imageChunk images at a time, streams each chunk's results to
// sw, and returns the images' thumbnails when asked for them (for --plot).
func (a *app) score(ctx context.Context, m *blipcuda.Model, res *matchResult, paths []string, thumbs, skipBad bool,
	run *imageRun, sw *streamWriter) ([]image.Image, error) {
	var out []image.Image
	var textEnc []blipcuda.TextEncoding
	if res.Score == "itc" {
		var err error
		if textEnc, err = m.EncodeTexts(ctx, res.Texts); err != nil {
			return nil, err
		}
		res.AddITC(nil, textEnc) // the truncation flags, before any image
	}
	err := a.forImages(ctx, m, paths, thumbs, skipBad, run, func(ds []decoded) error {
		ims := make([]*blipcuda.Image, len(ds))
		for i, d := range ds {
			ims[i] = d.img
		}
		if res.Score == "itc" {
			enc, err := m.EncodeImages(ctx, ims, false)
			if err != nil {
				return err
			}
			res.AddITC(enc, textEnc)
		} else {
			s, err := m.Match(ctx, ims, res.Texts)
			if err != nil {
				return err
			}
			res.AddScores(s)
		}
		for _, d := range ds {
			out = append(out, d.thumb)
		}
		return sw.images(res)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ranking orders the texts for image i: by ITM margin (logit[1] −
// logit[0], which orders as P(match) does without saturating at 1), then
// by ITC; by ITC alone with --score itc.
func ranking(r *matchResult, i int) []int {
	idx := make([]int, len(r.Texts))
	for j := range idx {
		idx[j] = j
	}
	sort.SliceStable(idx, func(a, b int) bool {
		ja, jb := idx[a], idx[b]
		if r.ITMLogits != nil {
			la, lb := r.ITMLogits[i][ja], r.ITMLogits[i][jb]
			ma, mb := float64(la[1])-float64(la[0]), float64(lb[1])-float64(lb[0])
			if ma != mb {
				return ma > mb
			}
		}
		if r.ITC != nil {
			return r.ITC[i][ja] > r.ITC[i][jb]
		}
		return false
	})
	return idx
}

// display makes a text fit on one line of the table.
func display(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

func ellipsis(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// writeMatchTableImage writes image i's block of the table.
func writeMatchTableImage(w io.Writer, r *matchResult, i, top int, color bool) error {
	bw := &errWriter{w: w}
	name := r.Images[i]
	if i > 0 {
		bw.printf("\n")
	}
	if color {
		bw.printf("\x1b[1m%s\x1b[0m\n", display(name))
	} else {
		bw.printf("%s\n", display(name))
	}
	switch {
	case r.ITMProb != nil && r.ITC != nil:
		bw.printf("  %4s  %8s  %7s  %s\n", "rank", "P(match)", "ITC", "text")
	case r.ITMProb != nil:
		bw.printf("  %4s  %8s  %s\n", "rank", "P(match)", "text")
	default:
		bw.printf("  %4s  %7s  %s\n", "rank", "ITC", "text")
	}
	for k, j := range ranking(r, i) {
		if top > 0 && k >= top {
			break
		}
		text := display(r.Texts[j])
		if r.Truncated[j] {
			text += " [truncated]"
		}
		switch {
		case r.ITMProb != nil && r.ITC != nil:
			bw.printf("  %4d  %8.4f  %7.4f  %s\n", k+1, r.ITMProb[i][j], r.ITC[i][j], text)
		case r.ITMProb != nil:
			bw.printf("  %4d  %8.4f  %s\n", k+1, r.ITMProb[i][j], text)
		default:
			bw.printf("  %4d  %7.4f  %s\n", k+1, r.ITC[i][j], text)
		}
	}
	return bw.err
}

// errWriter remembers the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

func formatFloat(v float32) string { return strconv.FormatFloat(float64(v), 'g', -1, 32) }

func writeMatchCSVHeader(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"image_index", "image", "text_index", "text", "rank",
		"itm_prob", "itm_logit_no_match", "itm_logit_match", "itc", "truncated"})
	cw.Flush()
	return cw.Error()
}

// writeMatchCSVImage writes image i's rows, in rank order.
func writeMatchCSVImage(w io.Writer, r *matchResult, i, top int) error {
	cw := csv.NewWriter(w)
	for k, j := range ranking(r, i) {
		if top > 0 && k >= top {
			break
		}
		row := []string{strconv.Itoa(i), r.Images[i], strconv.Itoa(j), r.Texts[j], strconv.Itoa(k + 1), "", "", "", "",
			strconv.FormatBool(r.Truncated[j])}
		if r.ITMProb != nil {
			row[5] = formatFloat(r.ITMProb[i][j])
			row[6] = formatFloat(r.ITMLogits[i][j][0])
			row[7] = formatFloat(r.ITMLogits[i][j][1])
		}
		if r.ITC != nil {
			row[8] = formatFloat(r.ITC[i][j])
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// writeMatchJSON writes the match document, one member per line and the
// rows of its lists one per line (lists of booleans on one line), its
// members in the order of blipcuda.MatchDocument's fields and under their
// JSON names: the same document as the server's, written so that it stays
// readable for large matrices.
func writeMatchJSON(w io.Writer, r *matchResult) error {
	v := reflect.ValueOf(*r)
	var fields []jsonField
	for i := range v.NumField() {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
		f := v.Field(i)
		value := f.Interface()
		if f.Kind() == reflect.Slice && f.Type().Elem().Kind() != reflect.Bool {
			if f.IsNil() {
				value = nil
			} else {
				rows := make(jsonRows, f.Len())
				for k := range rows {
					rows[k] = f.Index(k).Interface()
				}
				value = rows
			}
		}
		fields = append(fields, jsonField{name, value})
	}
	return writeJSONObject(w, fields)
}

// jsonField is one member of a JSON object written by writeJSONObject.
type jsonField struct {
	key   string
	value any
}

// jsonRows is a list written one element per line.
type jsonRows []any

// rowsOf converts a slice for writeJSONObject; nil stays nil (null).
func rowsOf[T any](s []T) any {
	if s == nil {
		return nil
	}
	rows := make(jsonRows, len(s))
	for i, v := range s {
		rows[i] = v
	}
	return rows
}

// writeJSONObject writes the fields in order, one per line, lists of rows
// one row per line: readable, and still small for large matrices.
func writeJSONObject(w io.Writer, fields []jsonField) error {
	ew := &errWriter{w: w}
	ew.printf("{\n")
	for k, f := range fields {
		key, _ := json.Marshal(f.key)
		ew.printf("  %s: ", key)
		if rows, ok := f.value.(jsonRows); ok {
			if len(rows) == 0 {
				ew.printf("[]")
			} else {
				ew.printf("[\n")
				for i, row := range rows {
					b, err := json.Marshal(row)
					if err != nil {
						return fmt.Errorf("%s: %w", f.key, err)
					}
					sep := ","
					if i == len(rows)-1 {
						sep = ""
					}
					ew.printf("    %s%s\n", b, sep)
				}
				ew.printf("  ]")
			}
		} else {
			b, err := json.Marshal(f.value)
			if err != nil {
				return fmt.Errorf("%s: %w", f.key, err)
			}
			ew.printf("%s", b)
		}
		if k < len(fields)-1 {
			ew.printf(",")
		}
		ew.printf("\n")
	}
	ew.printf("}\n")
	return ew.err
}
