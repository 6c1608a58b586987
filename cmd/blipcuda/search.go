package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/blipcuda/blipcuda"
	"github.com/blipcuda/blipcuda/index"
	"github.com/blipcuda/blipcuda/internal/outfile"
)

var searchCommand = &command{
	name: "search",
	synopsis: "--index NAME.blipidx [flags] QUERY...\n" +
		"       blipcuda search [--index NAME.blipidx] --image PHOTO --texts FILE [flags]",
	summary: "retrieve: the images of an index that fit a text, or the texts that fit an image",
	help: `Retrieval as BLIP does it: a fast ITC pass (the cosine of the query's embedding
with every candidate's) keeps the --k best, then the ITM head re-ranks those k
and the --top best are printed.

Text → images: each QUERY (and each --text, and each line of --texts files)
is searched in the index built by 'blipcuda index'. The k images are
re-ranked from their stored features when the index has them (--features),
else by encoding the image files again; an image that has vanished since it
was indexed is skipped with a warning.

Image → texts: with --image, the texts of --text and --texts are the
collection, ranked for each image. The image is encoded once (an index with
--features that holds it unchanged gives its stored embedding and features),
and its cross-attention keys and values are computed once for all the texts.

Scores (--score): blip (the default) ranks by the ITM match logit plus the
ITC cosine, the score of BLIP's own retrieval evaluation; itm by P(match);
itc by the cosine alone (no re-ranking, no image decoding). Every result
shows all three: P(match) is a probability, the cosine is in [-1, 1] and is
not one, and the blip score is neither.

--plot FILE.png draws a contact sheet of the results with thumbnails, rank and
scores; FILE.html writes the same as a self-contained web page.`,
	env: append(append([]string{}, hubEnv...), "BLIPCUDA_MODEL", "NO_COLOR"),
	run: runSearch,
}

// searchResult is what search writes; its JSON form is documented in
// README.md and stable.
type searchResult struct {
	Model, Repo, Protocol, Device, Precision string
	Index                                    string // "" without --index
	Direction                                string // "text-to-image" or "image-to-text"
	Score                                    blipcuda.Ranking
	K, Top, Collection                       int
	Queries                                  []searchQuery
}

// searchQuery is one query's results.
type searchQuery struct {
	Query      string      `json:"query"`
	Truncated  bool        `json:"truncated"`
	Candidates int         `json:"candidates"`
	Results    []searchHit `json:"results"`
	thumbPath  string      // image → text: the query image, for the plot
}

// searchHit is one result. ITM fields are nil with --score itc.
type searchHit struct {
	Rank      int         `json:"rank"`
	Image     string      `json:"image,omitempty"`
	Text      string      `json:"text,omitempty"`
	TextIndex *int        `json:"text_index,omitempty"`
	Score     float32     `json:"score"`
	ITMProb   *float32    `json:"itm_prob"`
	ITMLogits *[2]float32 `json:"itm_logits"`
	ITC       float32     `json:"itc"`
	Truncated bool        `json:"truncated,omitempty"`
	file      string      // the image file, for the plot
}

func runSearch(ctx context.Context, a *app, args []string) error {
	var (
		mf                   modelFlags
		tf                   textFlags
		indexPath, score     string
		format, output, plot string
		imagePaths           []string
		k, top               int
		wait                 time.Duration
	)
	flags := newFlagSet("search")
	flags.str(&indexPath, "index", "i", "", "NAME.blipidx", "the index to search (made by 'blipcuda index')")
	flags.strs(&imagePaths, "image", "", "PHOTO", "image → texts: rank the texts for this image (repeatable)")
	tf.register(flags)
	flags.integer(&k, "k", "", 128, "N", "how many candidates the ITC pass keeps for the ITM re-rank (BLIP: 128 for Flickr30k, 256 for COCO)")
	flags.integer(&top, "top", "", 10, "N", "how many results to print per query")
	flags.str(&score, "score", "s", "blip", "blip|itm|itc",
		"rank by blip (ITM match logit + ITC cosine, BLIP's evaluation score), itm (P(match)) or itc (cosine only, no re-rank)")
	flags.str(&format, "format", "f", "table", "table|json|csv", "output format")
	flags.str(&output, "output", "o", "", "FILE", "write the results to FILE (atomically) instead of stdout")
	flags.str(&plot, "plot", "", "", "FILE.png|FILE.html", "also draw a contact sheet of the results")
	mf.register(flags)
	modelFromIndex(flags, "")
	waitFlag(flags, &wait)
	pos, err := a.parse(flags, args)
	if err != nil {
		return err
	}
	ranking, err := blipcuda.ParseRanking(score)
	if err != nil {
		return usagef("--score %q: want blip, itm or itc", score)
	}
	switch format {
	case "table", "json", "csv":
	default:
		return usagef("--format %q: want table, json or csv", format)
	}
	if k <= 0 {
		return usagef("--k %d: want a positive number", k)
	}
	if top <= 0 {
		return usagef("--top %d: want a positive number", top)
	}
	if top > k && ranking != blipcuda.RankITC {
		return usagef("--top %d is more than --k %d: only the k re-ranked candidates can be shown", top, k)
	}
	plotKind := ""
	if plot != "" {
		switch strings.ToLower(filepath.Ext(plot)) {
		case ".png":
			plotKind = "png"
		case ".html", ".htm":
			plotKind = "html"
		default:
			return usagef("--plot %s: name it FILE.png or FILE.html", plot)
		}
	}
	if err := mf.validate(); err != nil {
		return err
	}
	imageMode := len(imagePaths) > 0
	var texts []string
	switch {
	case imageMode && len(pos) > 0:
		return usagef("with --image the texts come from --text and --texts, not arguments (%q)", pos[0])
	case imageMode && len(tf.texts)+len(tf.files) == 0:
		return usagef("--image needs texts to rank: give --texts FILE or --text TEXT")
	case !imageMode && indexPath == "":
		return usagef("no index: give --index NAME.blipidx (made by 'blipcuda index'), or --image PHOTO with --texts FILE")
	case !imageMode && len(pos)+len(tf.texts)+len(tf.files) == 0:
		return usagef("no query: give the text to search for")
	}
	for i, q := range pos {
		if err := checkText(q, mf.protocol); err != nil {
			return usagef("query #%d (%q) %v", i+1, q, err)
		}
	}
	if texts, err = tf.collect(a.stdin, mf.protocol); err != nil {
		return err
	}
	if !imageMode {
		texts = append(append([]string{}, pos...), texts...)
	}
	for _, p := range []struct{ flag, path string }{{"--output", output}, {"--plot", plot}} {
		if err := checkOutputPath(p.flag, p.path); err != nil {
			return err
		}
	}
	inputs := []outfile.Use{}
	for _, f := range tf.files {
		inputs = append(inputs, outfile.Use{Role: "--texts", Path: f})
	}
	for _, f := range imagePaths {
		inputs = append(inputs, outfile.Use{Role: "--image", Path: f})
	}
	if err := outfile.Clash([]outfile.Use{{Role: "--output", Path: output}, {Role: "--plot", Path: plot}}, inputs); err != nil {
		return usagef("%v", err)
	}

	var ix *index.Index
	if indexPath != "" {
		if ix, err = openIndexToRead(ctx, indexPath, wait, flags, &mf); err != nil {
			return err
		}
		defer ix.Close()
		if _, ok := ix.Model(); (!ok || ix.Len() == 0) && !imageMode {
			return fmt.Errorf("index %s holds no images yet: run 'blipcuda index' first", indexPath)
		}
	}
	m, err := a.loadModel(ctx, &mf)
	if err != nil {
		return err
	}
	defer m.Close()
	if ix != nil {
		if err := checkIndexModel(ix, m, mf.model); err != nil {
			return err
		}
	}
	info := m.Info()
	res := &searchResult{Model: mf.model, Repo: info.Repo, Protocol: string(info.Protocol), Device: info.Device,
		Precision: info.Precision, Index: indexPath, Score: ranking, K: k, Top: top}
	if imageMode {
		res.Direction = "image-to-text"
		err = a.searchTexts(ctx, m, ix, res, imagePaths, texts)
	} else {
		res.Direction = "text-to-image"
		err = a.searchImages(ctx, m, ix, res, texts)
	}
	if err != nil {
		return err
	}
	write := func(w io.Writer) error {
		switch format {
		case "json":
			return writeSearchJSON(w, res)
		case "csv":
			return writeSearchCSV(w, res)
		}
		return writeSearchTable(w, res, output == "" && useColor(a.stdoutFile))
	}
	var plotWrite func(io.Writer) error
	if plot != "" {
		plotWrite = func(w io.Writer) error { return writeContactSheet(w, plotKind, res) }
	}
	return a.writeSearchOutputs(ctx, output, plot, write, plotWrite)
}

// writeSearchOutputs writes the results to output (stdout when "" or "-")
// and, with plotWrite, the contact sheet to plot, through internal/outfile:
// the files appear together, complete, or not at all.
func (a *app) writeSearchOutputs(ctx context.Context, output, plot string, write, plotWrite func(io.Writer) error) error {
	var files []*outfile.File
	fail := func(err error) error {
		for _, f := range files {
			f.Abort()
		}
		return err
	}
	if plotWrite != nil {
		f, err := outfile.Create(ctx, plot)
		if err != nil {
			return err
		}
		files = append(files, f)
		if err := plotWrite(f); err != nil {
			return fail(fmt.Errorf("--plot %s: %w", plot, err))
		}
	}
	if output == "" || output == "-" {
		bw := bufio.NewWriterSize(a.stdout, 1<<16)
		err := write(bw)
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			return fail(fmt.Errorf("writing the results to stdout: %w", err))
		}
	} else {
		f, err := outfile.Create(ctx, output)
		if err != nil {
			return fail(err)
		}
		files = append(files, f)
		if err := write(f); err != nil {
			return fail(err)
		}
	}
	for _, f := range files {
		if err := f.Commit(); err != nil {
			return fail(err)
		}
		a.log.Info("wrote " + f.Path())
	}
	return nil
}

// searchImages runs text → image retrieval for each query in texts.
func (a *app) searchImages(ctx context.Context, m *blipcuda.Model, ix *index.Index, res *searchResult, queries []string) error {
	enc, err := m.EncodeTexts(ctx, queries)
	if err != nil {
		return err
	}
	vecs := make([][]float32, len(enc))
	for i, e := range enc {
		vecs[i] = e.Embedding
	}
	res.Collection = ix.Len()
	if res.K > res.Collection && res.Score != blipcuda.RankITC {
		a.log.Info(fmt.Sprintf("--k %d is more than the %d images of %s: all of them are re-ranked", res.K, res.Collection, ix.Dir()))
	}
	kk := res.K
	if res.Score == blipcuda.RankITC {
		kk = res.Top
	}
	hits, err := ix.Search(ctx, vecs, kk)
	if err != nil {
		return err
	}
	cache := map[string]*blipcuda.Image{} // decoded candidates, shared by the queries
	warned := map[string]bool{}
	for q, text := range queries {
		if enc[q].Truncated {
			a.log.Warn(fmt.Sprintf("query %d was cut to the protocol's length (%s)", q+1, m.TruncationLimit()),
				"query", ellipsis(text, 60))
		}
		sq := searchQuery{Query: text, Truncated: enc[q].Truncated, Candidates: len(hits[q]), Results: []searchHit{}}
		if res.Score == blipcuda.RankITC {
			for i, h := range hits[q] {
				sq.Results = append(sq.Results, searchHit{Rank: i + 1, Image: displayPath(ix.Resolve(h.Path)),
					Score: h.ITC, ITC: h.ITC, file: ix.Resolve(h.Path)})
			}
			res.Queries = append(res.Queries, sq)
			continue
		}
		cands, kept, err := a.candidates(ctx, m, ix, hits[q], cache, warned)
		if err != nil {
			return err
		}
		sq.Candidates = len(cands)
		if len(cands) > 0 {
			scores, err := m.RerankImages(ctx, text, cands)
			if err != nil {
				return err
			}
			blipcuda.SortScores(scores, res.Score)
			for i, s := range scores[:min(res.Top, len(scores))] {
				file := ix.Resolve(kept[s.Index].Path)
				sq.Results = append(sq.Results, hitOf(i, s, res.Score, searchHit{Image: displayPath(file), file: file}))
			}
		}
		res.Queries = append(res.Queries, sq)
	}
	return nil
}

// hitOf fills h from a re-rank score.
func hitOf(i int, s blipcuda.RerankScore, r blipcuda.Ranking, h searchHit) searchHit {
	p, l := s.ITMProb, s.ITMLogits
	h.Rank, h.Score, h.ITMProb, h.ITMLogits, h.ITC = i+1, s.Score(r), &p, &l, s.ITC
	return h
}

// maxCachedImages bounds the decoded images kept for later queries of the
// same call (1.7 MB each at 384×384: about 450 MB).
const maxCachedImages = 256

// candidates turns the ITC hits of one query into re-rank candidates:
// stored features and embeddings, or the image decoded again. Images that
// cannot be read any more are skipped with a warning (once per run).
func (a *app) candidates(ctx context.Context, m *blipcuda.Model, ix *index.Index, hits []index.Result,
	cache map[string]*blipcuda.Image, warned map[string]bool) ([]blipcuda.ImageCandidate, []index.Result, error) {
	var cands []blipcuda.ImageCandidate
	var kept []index.Result
	var toDecode []string
	for _, h := range hits {
		if _, ok := cache[h.Path]; !ok && !ix.HasFeatures() {
			toDecode = append(toDecode, ix.Resolve(h.Path))
		}
	}
	decodedBy := map[string]decoded{}
	for _, d := range decodeImages(ctx, m, toDecode, false) {
		decodedBy[d.name] = d
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	for _, h := range hits {
		file := ix.Resolve(h.Path)
		emb, err := ix.Embedding(h.Entry)
		if err != nil {
			return nil, nil, err
		}
		c := blipcuda.ImageCandidate{Name: file, Embedding: emb}
		if ix.HasFeatures() {
			if c.Features, err = ix.Features(h.Entry); err != nil {
				return nil, nil, err
			}
		} else if im, ok := cache[h.Path]; ok {
			c.Image = im
		} else if d := decodedBy[file]; d.err != nil {
			if !warned[h.Path] {
				why := errorText(d.err)
				if errors.Is(d.err, fs.ErrNotExist) {
					why = "image " + file + " has vanished since it was indexed"
				}
				a.log.Warn("skipping " + why + " (not re-ranked)")
				warned[h.Path] = true
			}
			continue
		} else {
			if st, err := os.Stat(file); err == nil && (st.Size() != h.Size || !st.ModTime().Equal(h.ModTime)) && !warned[h.Path] {
				a.log.Warn(fmt.Sprintf("image %s changed since it was indexed: ITM scores the file as it is now, "+
					"ITC the indexed version (run 'blipcuda index' again)", file))
				warned[h.Path] = true
			}
			c.Image = d.img
			if len(cache) < maxCachedImages {
				cache[h.Path] = d.img
			}
		}
		cands = append(cands, c)
		kept = append(kept, h)
	}
	return cands, kept, nil
}

// searchTexts runs image → text retrieval: texts ranked for each image.
func (a *app) searchTexts(ctx context.Context, m *blipcuda.Model, ix *index.Index, res *searchResult, images, texts []string) error {
	tenc, err := m.EncodeTexts(ctx, texts)
	if err != nil {
		return err
	}
	dim := len(tenc[0].Embedding)
	mat := blipcuda.EmbeddingMatrix{Dim: dim, Quant: make([]int8, len(texts)*dim), Bounds: make([]float32, 2*len(texts)),
		Full: make([]float32, 0, len(texts)*dim)}
	for _, e := range tenc {
		mat.Full = append(mat.Full, e.Embedding...)
	}
	blipcuda.QuantizeRows(mat.Quant, mat.Bounds, mat.Full, dim)
	res.Collection = len(texts)
	if res.K > len(texts) && res.Score != blipcuda.RankITC {
		a.log.Info(fmt.Sprintf("--k %d is more than the %d texts: all of them are re-ranked", res.K, len(texts)))
	}
	for j, e := range tenc {
		if e.Truncated {
			a.log.Warn(fmt.Sprintf("texts[%d] was cut to the protocol's length (%s)", j, m.TruncationLimit()),
				"text", ellipsis(e.Text, 60))
		}
	}
	for _, path := range images {
		cand, err := a.queryImage(ctx, m, ix, path)
		if err != nil {
			return err
		}
		kk := res.K
		if res.Score == blipcuda.RankITC {
			kk = res.Top
		}
		hits, err := blipcuda.TopK(ctx, mat, [][]float32{cand.Embedding}, kk)
		if err != nil {
			return err
		}
		sq := searchQuery{Query: path, Candidates: len(hits[0]), Results: []searchHit{}, thumbPath: path}
		if res.Score == blipcuda.RankITC {
			for i, h := range hits[0] {
				j := h.Row
				sq.Results = append(sq.Results, searchHit{Rank: i + 1, Text: texts[j], TextIndex: &j, Score: h.ITC, ITC: h.ITC,
					Truncated: tenc[j].Truncated})
			}
			res.Queries = append(res.Queries, sq)
			continue
		}
		sub := make([]string, len(hits[0]))
		for i, h := range hits[0] {
			sub[i] = texts[h.Row]
		}
		scores, err := m.RerankTexts(ctx, cand, sub)
		if err != nil {
			return err
		}
		blipcuda.SortScores(scores, res.Score)
		for i, s := range scores[:min(res.Top, len(scores))] {
			j := hits[0][s.Index].Row
			sq.Results = append(sq.Results, hitOf(i, s, res.Score, searchHit{Text: texts[j], TextIndex: &j, Truncated: s.Truncated}))
		}
		res.Queries = append(res.Queries, sq)
	}
	return nil
}

// queryImage returns an image query's embedding and features: stored in
// the index when it holds the file unchanged, else encoded once.
func (a *app) queryImage(ctx context.Context, m *blipcuda.Model, ix *index.Index, path string) (blipcuda.ImageCandidate, error) {
	st, err := os.Stat(path)
	if err != nil {
		return blipcuda.ImageCandidate{}, fmt.Errorf("image %s: %w", path, pathError(err))
	}
	if ix != nil && ix.HasFeatures() {
		if key, err := ix.Key(path); err == nil {
			if e, ok, err := ix.Lookup(key); err == nil && ok && e.Size == st.Size() && e.ModTime.Equal(st.ModTime()) {
				emb, err1 := ix.Embedding(e)
				feat, err2 := ix.Features(e)
				if err1 == nil && err2 == nil {
					a.log.Debug("using the index's features", "image", path)
					return blipcuda.ImageCandidate{Name: path, Embedding: emb, Features: feat}, nil
				}
			}
		}
	}
	d := decodeImage(m, path, false)
	if d.err != nil {
		return blipcuda.ImageCandidate{}, d.err
	}
	enc, err := m.EncodeImages(ctx, []*blipcuda.Image{d.img}, true)
	if err != nil {
		return blipcuda.ImageCandidate{}, err
	}
	return blipcuda.ImageCandidate{Name: path, Embedding: enc[0].Embedding, Features: enc[0].Features}, nil
}

// displayPath shows a file relative to the working directory when it lies
// below it, else absolute.
func displayPath(file string) string {
	wd, err := os.Getwd()
	if err != nil {
		return file
	}
	if abs, err := filepath.Abs(file); err == nil && within(wd, abs) {
		if rel, err := filepath.Rel(wd, abs); err == nil {
			return rel
		}
	}
	return file
}

// scoreNote says what the score column is.
func scoreNote(r blipcuda.Ranking) string {
	switch r {
	case blipcuda.RankITM:
		return "ranked by ITM P(match)"
	case blipcuda.RankITC:
		return "ranked by ITC cosine (no re-rank)"
	}
	return "score = ITM match logit + ITC cosine (BLIP's retrieval score)"
}

func writeSearchTable(w io.Writer, r *searchResult, color bool) error {
	ew := &errWriter{w: w}
	what := "image"
	if r.Direction == "image-to-text" {
		what = "text"
	}
	for qi, q := range r.Queries {
		if qi > 0 {
			ew.printf("\n")
		}
		title := display(q.Query)
		if color {
			title = "\x1b[1m" + title + "\x1b[0m"
		}
		ew.printf("%s\n  %d of %d %ss %s; %s\n", title, len(q.Results), r.Collection, what,
			map[bool]string{true: "by ITC", false: fmt.Sprintf("(top %d by ITC re-ranked by ITM)", q.Candidates)}[r.Score == blipcuda.RankITC],
			scoreNote(r.Score))
		if r.Score == blipcuda.RankITC {
			ew.printf("  %4s  %7s  %s\n", "rank", "ITC", what)
		} else {
			ew.printf("  %4s  %8s  %8s  %7s  %s\n", "rank", "score", "P(match)", "ITC", what)
		}
		for _, h := range q.Results {
			name := display(h.Image + h.Text)
			if h.Truncated {
				name += " [truncated]"
			}
			if h.ITMProb == nil {
				ew.printf("  %4d  %7.4f  %s\n", h.Rank, h.ITC, name)
			} else {
				ew.printf("  %4d  %8.4f  %8.4f  %7.4f  %s\n", h.Rank, h.Score, *h.ITMProb, h.ITC, name)
			}
		}
		if len(q.Results) == 0 {
			ew.printf("  (no results)\n")
		}
	}
	return ew.err
}

func writeSearchCSV(w io.Writer, r *searchResult) error {
	cw := csv.NewWriter(w)
	what := "image"
	if r.Direction == "image-to-text" {
		what = "text"
	}
	_ = cw.Write([]string{"query_index", "query", "rank", what, "text_index", "score", "itm_prob",
		"itm_logit_no_match", "itm_logit_match", "itc"})
	for qi, q := range r.Queries {
		for _, h := range q.Results {
			row := []string{strconv.Itoa(qi), q.Query, strconv.Itoa(h.Rank), h.Image + h.Text, "",
				formatFloat(h.Score), "", "", "", formatFloat(h.ITC)}
			if h.TextIndex != nil {
				row[4] = strconv.Itoa(*h.TextIndex)
			}
			if h.ITMProb != nil {
				row[6], row[7], row[8] = formatFloat(*h.ITMProb), formatFloat(h.ITMLogits[0]), formatFloat(h.ITMLogits[1])
			}
			if err := cw.Write(row); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// searchSchemaVersion is the version of search's JSON document.
const searchSchemaVersion = 1

func writeSearchJSON(w io.Writer, r *searchResult) error {
	var idx any
	if r.Index != "" {
		idx = r.Index
	}
	return writeJSONObject(w, []jsonField{
		{"schema_version", searchSchemaVersion},
		{"model", r.Model},
		{"repo", r.Repo},
		{"protocol", r.Protocol},
		{"device", r.Device},
		{"precision", r.Precision},
		{"index", idx},
		{"direction", r.Direction},
		{"score", string(r.Score)},
		{"k", r.K},
		{"top", r.Top},
		{"collection", r.Collection},
		{"queries", rowsOf(r.Queries)},
	})
}
