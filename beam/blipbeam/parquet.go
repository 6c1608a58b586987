package blipbeam

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/fileio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/xitongsys/parquet-go-source/buffer"
	"github.com/xitongsys/parquet-go/common"
	"github.com/xitongsys/parquet-go/reader"
	"github.com/xitongsys/parquet-go/writer"
)

// Column names looked for in an input Parquet file, first match wins
// (case-insensitive): the image reference, the caption and an optional key.
var (
	ImageColumns   = []string{"image", "path", "url", "file", "filepath"}
	CaptionColumns = []string{"caption", "text", "txt"}
	KeyColumns     = []string{"key", "__key__", "id"}
)

// ScoreRow is a row of the scores Parquet files (WriteScoresParquet).
type ScoreRow struct {
	Key       string  `parquet:"name=key, type=BYTE_ARRAY, convertedtype=UTF8"`
	Image     string  `parquet:"name=image, type=BYTE_ARRAY, convertedtype=UTF8"`
	Caption   string  `parquet:"name=caption, type=BYTE_ARRAY, convertedtype=UTF8"`
	ITMProb   float32 `parquet:"name=itm_prob, type=FLOAT"`
	ITMLogit  float32 `parquet:"name=itm_logit, type=FLOAT"`
	ITC       float32 `parquet:"name=itc, type=FLOAT"`
	Truncated bool    `parquet:"name=truncated, type=BOOLEAN"`
	Keep      bool    `parquet:"name=keep, type=BOOLEAN"`
}

// EmbeddingRow is a row of the embeddings Parquet files
// (WriteEmbeddingsParquet).
type EmbeddingRow struct {
	Image     string    `parquet:"name=image, type=BYTE_ARRAY, convertedtype=UTF8"`
	Embedding []float32 `parquet:"name=embedding, type=LIST, valuetype=FLOAT"`
	Size      int64     `parquet:"name=size, type=INT64"`
	SHA256    string    `parquet:"name=sha256, type=BYTE_ARRAY, convertedtype=UTF8"`
}

func init() {
	register.DoFn4x1[context.Context, fileio.ReadableFile, func(Pair), func(Failure), error](&parquetReadFn{})
	register.DoFn3x1[context.Context, int, func(*PairScore) bool, error](&scoresWriteFn{})
	register.DoFn3x1[context.Context, int, func(*Embedding) bool, error](&embParquetWriteFn{})
	register.DoFn1x2[PairScore, int, PairScore](&shardKeyFn{})
	register.DoFn1x2[Embedding, int, Embedding](&embShardKeyFn{})
	register.Iter1[Embedding]()
}

// ReadPairsParquet reads image-text pairs from Parquet files (glob: local
// or any Beam filesystem). The image reference is the first column named
// image, path, url, file or filepath; the caption caption, text or txt; the
// key (optional) key, __key__ or id. Columns may be required or optional
// (as pandas writes them); a row with a null or empty image or caption is
// a Failure. A file without those columns fails the job.
func ReadPairsParquet(s beam.Scope, glob string) (pairs, failures beam.PCollection) {
	s = s.Scope("blipbeam.ReadPairsParquet")
	files := fileio.ReadMatches(s, fileio.MatchFiles(s, glob), fileio.ReadUncompressed())
	return beam.ParDo2(s, &parquetReadFn{}, files)
}

type parquetReadFn struct{}

func (f *parquetReadFn) ProcessElement(ctx context.Context, file fileio.ReadableFile, emit func(Pair), fail func(Failure)) error {
	name := file.Metadata.Path
	data, err := file.Read(ctx)
	if err != nil {
		return fmt.Errorf("blipbeam: parquet %s: %w", name, err)
	}
	pr, err := reader.NewParquetColumnReader(buffer.NewBufferFileFromBytes(data), 1)
	if err != nil {
		return fmt.Errorf("blipbeam: parquet %s: %w", name, err)
	}
	defer pr.ReadStop()
	n := pr.GetNumRows()
	column := func(names []string, required bool) ([]any, error) {
		for _, want := range names {
			for _, in := range pr.SchemaHandler.ValueColumns {
				ex := strings.Split(pr.SchemaHandler.InPathToExPath[in], common.PAR_GO_PATH_DELIMITER)
				if len(ex) != 2 || !strings.EqualFold(ex[1], want) {
					continue
				}
				vals, _, _, err := pr.ReadColumnByPath(in, n)
				if err != nil {
					return nil, fmt.Errorf("blipbeam: parquet %s: column %s: %w", name, ex[1], err)
				}
				if int64(len(vals)) != n {
					return nil, fmt.Errorf("blipbeam: parquet %s: column %s has %d values for %d rows (not a flat string column)", name, ex[1], len(vals), n)
				}
				return vals, nil
			}
		}
		if required {
			return nil, fmt.Errorf("blipbeam: parquet %s has no column named %s", name, strings.Join(names, ", "))
		}
		return nil, nil
	}
	images, err := column(ImageColumns, true)
	if err != nil {
		return err
	}
	captions, err := column(CaptionColumns, true)
	if err != nil {
		return err
	}
	keys, err := column(KeyColumns, false)
	if err != nil {
		return err
	}
	for i := range images {
		p := Pair{Image: str(images[i]), Caption: str(captions[i])}
		if keys != nil {
			p.Key = str(keys[i])
		}
		switch {
		case p.Image == "":
			fail(Failure{Key: p.Key, Caption: p.Caption, Reason: fmt.Sprintf("parquet %s: row %d has no image", name, i)})
		case p.Caption == "":
			fail(Failure{Ref: p.Image, Key: p.Key, Reason: fmt.Sprintf("parquet %s: row %d has no caption", name, i)})
		default:
			emit(p)
		}
	}
	return nil
}

// str is a Parquet value as a string: BYTE_ARRAY columns read as strings,
// integer keys are formatted, null is "".
func str(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

// Threshold decides which scored pairs a filter keeps: ITM probability and
// ITC cosine at least the minimums.
type Threshold struct {
	MinITM float32 `json:"min_itm"`
	MinITC float32 `json:"min_itc"`
}

// Keep reports whether p passes.
func (t Threshold) Keep(p PairScore) bool { return p.ITMProb >= t.MinITM && p.ITC >= t.MinITC }

// WriteScoresParquet writes every scored pair to Parquet files
// PREFIX-SSSSS-of-NNNNN.parquet (columns key, image, caption, itm_prob,
// itm_logit, itc, truncated, keep), rows sorted by key; keep is th.Keep.
// A pair's shard follows from its key, so a retried write produces the
// same file.
func WriteScoresParquet(s beam.Scope, prefix string, shards int, th Threshold, scores beam.PCollection) {
	checkShards("WriteScoresParquet", shards)
	s = s.Scope("blipbeam.WriteScoresParquet")
	keyed := beam.ParDo(s, &shardKeyFn{Shards: shards}, scores)
	beam.ParDo0(s, &scoresWriteFn{Prefix: prefix, Shards: shards, Threshold: th}, beam.GroupByKey(s, keyed))
}

type shardKeyFn struct {
	Shards int `json:"shards"`
}

func (f *shardKeyFn) ProcessElement(p PairScore) (int, PairScore) {
	return shardOf(sampleKey(p)+"\x00"+p.Caption, f.Shards), p
}

type embShardKeyFn struct {
	Shards int `json:"shards"`
}

func (f *embShardKeyFn) ProcessElement(e Embedding) (int, Embedding) {
	return shardOf(e.Ref, f.Shards), e
}

type scoresWriteFn struct {
	Prefix    string    `json:"prefix"`
	Shards    int       `json:"shards"`
	Threshold Threshold `json:"threshold"`
}

func (f *scoresWriteFn) ProcessElement(ctx context.Context, shard int, iter func(*PairScore) bool) error {
	var rows []ScoreRow
	var p PairScore
	for iter(&p) {
		rows = append(rows, ScoreRow{Key: p.Key, Image: p.Image, Caption: p.Caption, ITMProb: p.ITMProb,
			ITMLogit: p.ITMLogit, ITC: p.ITC, Truncated: p.Truncated, Keep: f.Threshold.Keep(p)})
	}
	slices.SortFunc(rows, func(a, b ScoreRow) int {
		return cmpStrings(a.Key, b.Key, a.Image, b.Image, a.Caption, b.Caption)
	})
	return writeParquet(ctx, ShardName(f.Prefix, shard, f.Shards, ".parquet"), new(ScoreRow), rows)
}

// WriteEmbeddingsParquet writes embeddings to Parquet files
// PREFIX-SSSSS-of-NNNNN.parquet (columns image, embedding (list of
// float), size, sha256), rows sorted by image.
func WriteEmbeddingsParquet(s beam.Scope, prefix string, shards int, embeddings beam.PCollection) {
	checkShards("WriteEmbeddingsParquet", shards)
	s = s.Scope("blipbeam.WriteEmbeddingsParquet")
	keyed := beam.ParDo(s, &embShardKeyFn{Shards: shards}, embeddings)
	beam.ParDo0(s, &embParquetWriteFn{Prefix: prefix, Shards: shards}, beam.GroupByKey(s, keyed))
}

type embParquetWriteFn struct {
	Prefix string `json:"prefix"`
	Shards int    `json:"shards"`
}

func (f *embParquetWriteFn) ProcessElement(ctx context.Context, shard int, iter func(*Embedding) bool) error {
	var rows []EmbeddingRow
	var e Embedding
	for iter(&e) {
		rows = append(rows, EmbeddingRow{Image: e.Ref, Embedding: e.Embedding, Size: e.Size, SHA256: e.SHA256})
	}
	slices.SortFunc(rows, func(a, b EmbeddingRow) int { return strings.Compare(a.Image, b.Image) })
	rows = slices.CompactFunc(rows, func(a, b EmbeddingRow) bool { return a.Image == b.Image })
	return writeParquet(ctx, ShardName(f.Prefix, shard, f.Shards, ".parquet"), new(EmbeddingRow), rows)
}

// writeParquet writes rows (of the type schema points to) to path.
func writeParquet[T any](ctx context.Context, path string, schema *T, rows []T) error {
	return writeFile(ctx, path, func(w io.Writer) error {
		pw, err := writer.NewParquetWriterFromWriter(w, schema, 1)
		if err != nil {
			return err
		}
		for i := range rows {
			if err := pw.Write(rows[i]); err != nil {
				return err
			}
		}
		return pw.WriteStop()
	})
}

// cmpStrings compares pairs of strings in turn: cmpStrings(a1, b1, a2, b2…).
func cmpStrings(pairs ...string) int {
	for i := 0; i+1 < len(pairs); i += 2 {
		if c := strings.Compare(pairs[i], pairs[i+1]); c != 0 {
			return c
		}
	}
	return 0
}
