package blipbeam

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/fileio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/textio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

func init() {
	register.Function1x2[Failure, string, error](failureJSON)
	register.Function1x1[fileio.FileMetadata, string](metadataPath)
	register.Function2x0[string, func(string)](refLine)
	register.DoFn2x0[PairScore, func(PairScore)](&filterFn{})
}

// ImageRefs lists image references: the files matching each glob (local
// or any Beam filesystem), and the lines of each list file (one reference
// per line; blank lines and lines starting with # skipped).
func ImageRefs(s beam.Scope, globs, lists []string) beam.PCollection {
	s = s.Scope("blipbeam.ImageRefs")
	var cols []beam.PCollection
	for _, g := range globs {
		cols = append(cols, beam.ParDo(s, metadataPath, fileio.MatchFiles(s, g)))
	}
	for _, l := range lists {
		cols = append(cols, beam.ParDo(s, refLine, textio.Read(s, l)))
	}
	if len(cols) == 0 {
		return beam.CreateList(s, []string{})
	}
	return beam.Flatten(s, cols...)
}

func metadataPath(m fileio.FileMetadata) string { return m.Path }

func refLine(line string, emit func(string)) {
	line = strings.TrimSpace(line)
	if line != "" && !strings.HasPrefix(line, "#") {
		emit(line)
	}
}

// Filter keeps the scored pairs that pass th.
func Filter(s beam.Scope, th Threshold, scores beam.PCollection) beam.PCollection {
	return beam.ParDo(s.Scope("blipbeam.Filter"), &filterFn{Threshold: th}, scores)
}

type filterFn struct {
	Threshold Threshold `json:"threshold"`
}

func (f *filterFn) ProcessElement(p PairScore, emit func(PairScore)) {
	if f.Threshold.Keep(p) {
		emit(p)
	}
}

// WriteFailures writes dead-letter records as JSON lines (ref, key,
// caption, reason) to path. Nothing is written when there are none.
func WriteFailures(s beam.Scope, path string, failures beam.PCollection) {
	s = s.Scope("blipbeam.WriteFailures")
	textio.Write(s, path, beam.ParDo(s, failureJSON, failures))
}

func failureJSON(f Failure) (string, error) {
	b, err := json.Marshal(f)
	return string(b), err
}

// EmbedJob is the embed pipeline of blipcuda-beam.
type EmbedJob struct {
	// Images are globs of image files; Lists are files of references.
	Images, Lists []string
	Model         Model
	Config        Config
	// Index, when set, is the directory of the index shards; Parquet, when
	// set, the prefix of the embeddings Parquet files.
	Index, Parquet string
	// Shards is the number of index shards and of Parquet files.
	Shards int
	// Failures, when set, is the JSON-lines file of the dead letters.
	Failures string
}

// Build adds the job to s.
func (j EmbedJob) Build(s beam.Scope) error {
	if len(j.Images)+len(j.Lists) == 0 {
		return fmt.Errorf("blipbeam: embed: no images (give globs or list files)")
	}
	if j.Index == "" && j.Parquet == "" {
		return fmt.Errorf("blipbeam: embed: no output (an index directory or a Parquet prefix)")
	}
	if j.Shards <= 0 {
		return fmt.Errorf("blipbeam: embed: %d shards: want a positive number", j.Shards)
	}
	// Reshuffle spreads the images over the workers: a glob's matches
	// arrive as one bundle.
	refs := beam.Reshuffle(s, ImageRefs(s, j.Images, j.Lists))
	emb, failed := EmbedImages(s, j.Model, j.Config, refs)
	if j.Index != "" {
		WriteIndexShards(s, j.Index, j.Shards, j.Model, emb)
	}
	if j.Parquet != "" {
		WriteEmbeddingsParquet(s, j.Parquet, j.Shards, emb)
	}
	if j.Failures != "" {
		WriteFailures(s, j.Failures, failed)
	}
	return nil
}

// FilterJob is the filter pipeline of blipcuda-beam: pairs from WebDataset
// shards or Parquet files scored, written with their scores, and the pairs
// that pass the threshold optionally written as a WebDataset.
type FilterJob struct {
	// WebDataset and Parquet are globs of input files (either or both).
	WebDataset, Parquet []string
	Model               Model
	Config              Config
	Threshold           Threshold
	// Scores is the prefix of the scores Parquet files (every pair, with
	// its keep column); Kept, when set, the prefix of the WebDataset
	// shards of the kept pairs.
	Scores, Kept string
	Shards       int
	// Reshuffle spreads the pairs read from WebDataset shards over the
	// workers (their images move with them); without it each input shard is
	// scored where it is read. Pairs read from Parquet are always spread.
	Reshuffle bool
	// Failures, when set, is the JSON-lines file of the dead letters.
	Failures string
}

// Build adds the job to s.
func (j FilterJob) Build(s beam.Scope) error {
	if len(j.WebDataset)+len(j.Parquet) == 0 {
		return fmt.Errorf("blipbeam: filter: no input (WebDataset or Parquet globs)")
	}
	if j.Scores == "" && j.Kept == "" {
		return fmt.Errorf("blipbeam: filter: no output (a scores prefix or a kept-WebDataset prefix)")
	}
	if j.Shards <= 0 {
		return fmt.Errorf("blipbeam: filter: %d shards: want a positive number", j.Shards)
	}
	var pairs, failed []beam.PCollection
	for _, g := range j.WebDataset {
		p, f := ReadWebDataset(s, g, j.Config)
		if j.Reshuffle {
			p = beam.Reshuffle(s, p)
		}
		pairs, failed = append(pairs, p), append(failed, f)
	}
	for _, g := range j.Parquet {
		p, f := ReadPairsParquet(s, g)
		pairs, failed = append(pairs, beam.Reshuffle(s, p)), append(failed, f)
	}
	scores, f := ScorePairs(s, j.Model, j.Config, beam.Flatten(s, pairs...))
	failed = append(failed, f)
	if j.Scores != "" {
		WriteScoresParquet(s, j.Scores, j.Shards, j.Threshold, scores)
	}
	if j.Kept != "" {
		WriteWebDataset(s, j.Kept, j.Shards, j.Config, Filter(s, j.Threshold, scores))
	}
	if j.Failures != "" {
		WriteFailures(s, j.Failures, beam.Flatten(s, failed...))
	}
	return nil
}
