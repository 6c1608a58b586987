package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/blipcuda/blipcuda"
	"github.com/blipcuda/blipcuda/internal/outfile"
)

var embedCommand = &command{
	name:     "embed",
	synopsis: "[flags] [IMAGE|DIR...] [--text TEXT | --texts FILE]... [-o OUT]",
	summary:  "write ITC embeddings of images and texts: JSON, .npy or .safetensors",
	help: `Writes the 256-d L2-normalised ITC embeddings of images and texts, for a vector
store or numpy; the dot product of an image's and a text's embedding is their
ITC score (match --score itc). With --features, the image encoder's raw
features (tokens × width per image, the input of the multimodal encoder) are
written too.

The format follows --format, else the name given to --output:
  (no --output), x.json  JSON on stdout or in x.json
  x.safetensors          one safetensors file: tensors image_embeds,
                         text_embeds, image_features; names in __metadata__
  x.npy                  one .npy array, when only one is written
  DIR/                   a directory (made if needed) holding
                         image_embeds.npy, text_embeds.npy,
                         image_features.npy and metadata.json (names, model)
Arrays are float32, C order; rows follow the order of the images (files as
given, directories sorted) and texts. Files are written atomically.`,
	env: append(append([]string{}, hubEnv...), "BLIPCUDA_MODEL"),
	run: runEmbed,
}

// embedOutput says where and how embed writes.
type embedOutput struct {
	format string // json, npy, safetensors
	path   string // "" for stdout
	dir    bool   // npy: a directory of .npy files
}

// resolveEmbedOutput picks the format from --format and the --output name.
func resolveEmbedOutput(format, output string) (embedOutput, error) {
	switch format {
	case "", "json", "npy", "safetensors":
	default:
		return embedOutput{}, usagef("--format %q: want json, npy or safetensors", format)
	}
	if output == "" || output == "-" {
		if format == "" || format == "json" {
			return embedOutput{format: "json"}, nil
		}
		return embedOutput{}, usagef("--format %s writes files: give --output (a .%s file%s)", format, format,
			map[bool]string{true: " or a directory ending in /", false: ""}[format == "npy"])
	}
	isDir := strings.HasSuffix(output, "/") || strings.HasSuffix(output, string(filepath.Separator))
	if st, err := os.Stat(output); err == nil && st.IsDir() {
		isDir = true
	}
	byName := ""
	switch strings.ToLower(filepath.Ext(output)) {
	case ".json":
		byName = "json"
	case ".npy":
		byName = "npy"
	case ".safetensors":
		byName = "safetensors"
	}
	switch {
	case isDir:
		if format != "" && format != "npy" {
			return embedOutput{}, usagef("--output %s is a directory, where --format %s writes one file", output, format)
		}
		return embedOutput{format: "npy", path: output, dir: true}, nil
	case format == "":
		if byName == "" {
			return embedOutput{}, usagef("cannot tell the format of --output %s from its name: end it in .json, .npy "+
				"or .safetensors, or in / for a directory of .npy files, or give --format", output)
		}
		return embedOutput{format: byName, path: output}, nil
	case byName != "" && byName != format:
		return embedOutput{}, usagef("--format %s does not match --output %s", format, output)
	case format == "npy" && byName == "":
		return embedOutput{format: "npy", path: output, dir: true}, nil
	}
	return embedOutput{format: format, path: output}, nil
}

func runEmbed(ctx context.Context, a *app, args []string) error {
	var (
		mf                  modelFlags
		tf                  textFlags
		format, output      string
		features, recursive bool
		skipBad             bool
	)
	fs := newFlagSet("embed")
	tf.register(fs)
	mf.register(fs)
	fs.str(&output, "output", "o", "", "FILE|DIR/", "where to write: FILE.json, FILE.npy, FILE.safetensors or DIR/ (default: JSON on stdout)")
	fs.str(&format, "format", "f", "", "json|npy|safetensors", "output format (default: from the --output name, else json)")
	fs.boolean(&features, "features", "", "also write the image features (tokens × width per image; 1.8 MB per image for base models)")
	fs.boolean(&recursive, "recursive", "r", "look for images in subdirectories of directories too")
	fs.boolean(&skipBad, "skip-bad", "", "skip images that cannot be read or decoded, with a warning, instead of failing")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	out, err := resolveEmbedOutput(format, output)
	if err != nil {
		return err
	}
	if err := mf.validate(); err != nil {
		return err
	}
	if len(pos) == 0 && len(tf.texts) == 0 && len(tf.files) == 0 {
		return usagef("nothing to embed: name image files or directories, or give --text or --texts")
	}
	if features && len(pos) == 0 {
		return usagef("--features needs images")
	}
	if out.format == "npy" && !out.dir {
		var arrays []string
		for _, a := range []struct {
			on   bool
			name string
		}{{len(pos) > 0, "image embeddings"}, {len(tf.texts)+len(tf.files) > 0, "text embeddings"}, {features, "image features"}} {
			if a.on {
				arrays = append(arrays, a.name)
			}
		}
		if len(arrays) > 1 {
			return usagef("--output %s holds one array, and this writes %d: %s; "+
				"give a directory (--output DIR/) or a .safetensors file", out.path, len(arrays), strings.Join(arrays, ", "))
		}
	}
	texts, err := tf.collect(a.stdin, mf.protocol)
	if err != nil {
		return err
	}
	var paths []string
	if len(pos) > 0 {
		if paths, err = collectImages(pos, recursive, func(note string) { a.log.Warn(note) }); err != nil {
			return err
		}
	}
	outputs := []outfile.Use{{Role: "--output", Path: out.path}}
	if out.dir {
		if st, err := os.Stat(out.path); err == nil && !st.IsDir() {
			return fmt.Errorf("--output %s is a file, not a directory", out.path)
		}
		outputs = nil
		for _, name := range []string{"image_embeds.npy", "text_embeds.npy", "image_features.npy", "metadata.json"} {
			outputs = append(outputs, outfile.Use{Role: "--output", Path: filepath.Join(out.path, name)})
		}
	} else if err := checkOutputPath("--output", out.path); err != nil {
		return err
	}
	if err := checkClash(outputs, inputUses(paths, tf.files, mf.model)); err != nil {
		return err
	}
	if len(paths) > 0 {
		if paths, _, err = a.checkImages(paths, skipBad); err != nil {
			return err
		}
	}

	run := &imageRun{}
	m, err := a.loadModel(ctx, &mf, run.option())
	if err != nil {
		return err
	}
	defer m.Close()
	info := m.Info()
	res := &embedResult{Model: mf.model, Repo: info.Repo, Protocol: string(info.Protocol), Device: info.Device,
		Precision: info.Precision, Dim: info.Config.ImageTextHiddenSize, Texts: append([]string{}, texts...), Images: []string{},
		ImageEmbeds: [][]float32{}, TextEmbeds: [][]float32{}, TextTokens: [][]int32{}, Truncated: []bool{}}
	if features {
		res.ImageFeatures = [][]float32{}
		res.FeatureShape = [2]int{info.Config.NumImageTokens(), info.Config.Vision.HiddenSize}
	}
	err = a.forImages(ctx, m, paths, false, skipBad, run, func(ds []decoded) error {
		ims := make([]*blipcuda.Image, len(ds))
		for i, d := range ds {
			ims[i] = d.img
		}
		enc, err := m.EncodeImages(ctx, ims, features)
		if err != nil {
			return err
		}
		for _, d := range ds {
			res.Images = append(res.Images, d.name)
		}
		for _, e := range enc {
			res.ImageEmbeds = append(res.ImageEmbeds, e.Embedding)
			if features {
				res.ImageFeatures = append(res.ImageFeatures, e.Features)
			}
		}
		return nil
	})
	// An image that failed part way: the images before it are kept (with
	// the texts), where the run was not interrupted.
	imageErr := err
	if err != nil && (ctx.Err() != nil || len(res.Images) == 0) {
		return err
	}
	if len(texts) > 0 {
		enc, err := m.EncodeTexts(ctx, texts)
		if err != nil {
			return err
		}
		for j, e := range enc {
			res.TextEmbeds = append(res.TextEmbeds, e.Embedding)
			res.TextTokens = append(res.TextTokens, e.Tokens)
			res.Truncated = append(res.Truncated, e.Truncated)
			if e.Truncated {
				a.log.Warn(fmt.Sprintf("texts[%d] was cut to the protocol's length (%s)", j, m.TruncationLimit()),
					"text", ellipsis(e.Text, 60))
			}
		}
	}
	if err := a.writeEmbeddings(ctx, out, res); err != nil {
		return err
	}
	if imageErr != nil {
		where := "stdout"
		if !isStdout(out.path) {
			where = out.path
		}
		return fmt.Errorf("%w; the embeddings of the %d images before it are in %s", imageErr, len(res.Images), where)
	}
	return nil
}

// embedResult is what embed writes; its forms are documented in README.md.
type embedResult struct {
	Model, Repo, Protocol, Device, Precision string
	Dim                                      int
	Images                                   []string
	Texts                                    []string
	Truncated                                []bool
	TextTokens                               [][]int32
	ImageEmbeds                              [][]float32
	TextEmbeds                               [][]float32
	ImageFeatures                            [][]float32 // nil without --features; each tokens × width
	FeatureShape                             [2]int
}

// embedSchemaVersion is the version of embed's JSON and metadata.
const embedSchemaVersion = 1

// arrays returns the non-empty arrays, flattened.
func (r *embedResult) arrays() []array {
	var out []array
	flat := func(rows [][]float32) []float32 {
		n := 0
		for _, r := range rows {
			n += len(r)
		}
		d := make([]float32, 0, n)
		for _, r := range rows {
			d = append(d, r...)
		}
		return d
	}
	if len(r.ImageEmbeds) > 0 {
		out = append(out, array{"image_embeds", []int{len(r.ImageEmbeds), r.Dim}, flat(r.ImageEmbeds)})
	}
	if len(r.TextEmbeds) > 0 {
		out = append(out, array{"text_embeds", []int{len(r.TextEmbeds), r.Dim}, flat(r.TextEmbeds)})
	}
	if len(r.ImageFeatures) > 0 {
		out = append(out, array{"image_features", []int{len(r.ImageFeatures), r.FeatureShape[0], r.FeatureShape[1]},
			flat(r.ImageFeatures)})
	}
	return out
}

// header returns the fields every form of the output shares.
func (r *embedResult) header() []jsonField {
	return []jsonField{
		{"schema_version", embedSchemaVersion},
		{"model", r.Model},
		{"repo", r.Repo},
		{"protocol", r.Protocol},
		{"device", r.Device},
		{"precision", r.Precision},
		{"dim", r.Dim},
		{"images", rowsOf(r.Images)},
		{"texts", rowsOf(r.Texts)},
		{"truncated", r.Truncated},
		{"text_tokens", rowsOf(r.TextTokens)},
	}
}

// featureRows splits each image's features into rows, for JSON.
func (r *embedResult) featureRows() [][][]float32 {
	out := make([][][]float32, len(r.ImageFeatures))
	w := r.FeatureShape[1]
	for i, f := range r.ImageFeatures {
		for t := 0; t+w <= len(f); t += w {
			out[i] = append(out[i], f[t:t+w])
		}
	}
	return out
}

func (a *app) writeEmbeddings(ctx context.Context, out embedOutput, r *embedResult) error {
	switch {
	case out.format == "json":
		return a.writeOutput(ctx, out.path, func(w io.Writer) error {
			fields := append(r.header(),
				jsonField{"image_embeds", rowsOf(r.ImageEmbeds)},
				jsonField{"text_embeds", rowsOf(r.TextEmbeds)})
			if r.ImageFeatures != nil {
				fields = append(fields, jsonField{"image_features", rowsOf(r.featureRows())})
			}
			return writeJSONObject(w, fields)
		})
	case out.format == "safetensors":
		meta := map[string]string{"format": "np", "schema_version": strconv.Itoa(embedSchemaVersion)}
		for _, f := range r.header()[1:] {
			if s, ok := f.value.(string); ok {
				meta[f.key] = s
				continue
			}
			b, err := json.Marshal(f.value)
			if err != nil {
				return err
			}
			meta[f.key] = string(b)
		}
		return a.writeOutput(ctx, out.path, func(w io.Writer) error {
			return writeSafetensorsArrays(w, r.arrays(), meta)
		})
	case !out.dir:
		arrays := r.arrays()
		if len(arrays) != 1 {
			return fmt.Errorf("--output %s holds one array, and there are %d", out.path, len(arrays))
		}
		return a.writeOutput(ctx, out.path, func(w io.Writer) error { return writeNPY(w, arrays[0]) })
	}
	return a.writeNPYDir(ctx, out.path, r)
}

// writeNPYDir writes one .npy file per array and metadata.json into dir,
// all or none: each is written to a temporary file first, and they are
// renamed into place only when all are complete.
func (a *app) writeNPYDir(ctx context.Context, dir string, r *embedResult) (err error) {
	created := false
	if _, serr := os.Stat(dir); serr != nil {
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return fmt.Errorf("--output %s: %w", dir, pathError(err))
		}
		created = true
	}
	var files []*outfile.File
	defer func() {
		if err != nil {
			outfile.AbortAll(files...)
			if created {
				os.Remove(dir) // only if still empty
			}
		}
	}()
	type arrayInfo struct {
		File  string `json:"file"`
		Shape []int  `json:"shape"`
	}
	index := map[string]arrayInfo{}
	for _, arr := range r.arrays() {
		f, err := outfile.Create(ctx, filepath.Join(dir, arr.name+".npy"))
		if err != nil {
			return err
		}
		files = append(files, f)
		if err := writeNPY(f, arr); err != nil {
			return err
		}
		index[arr.name] = arrayInfo{File: arr.name + ".npy", Shape: arr.shape}
	}
	f, err := outfile.Create(ctx, filepath.Join(dir, "metadata.json"))
	if err != nil {
		return err
	}
	files = append(files, f)
	if err := writeJSONObject(f, append(r.header(), jsonField{"arrays", index})); err != nil {
		return err
	}
	return a.commitOutputs(files...)
}
