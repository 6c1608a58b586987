// Command blipcuda-beam runs blipcuda's BLIP image-text matching as Apache
// Beam pipelines: `embed` writes the ITC embeddings of a collection of
// images as index shards (for `blipcuda index merge`) and/or Parquet;
// `filter` scores image-text pairs read from WebDataset shards or Parquet
// files and writes the scores, and optionally the pairs that pass a
// threshold as a WebDataset.
//
// Runners: --runner prism (the default; local, in process), dataflow,
// flink / spark / universal (portable, with --endpoint), and Beam's other
// flags (--project, --region, --temp_location, --worker_harness_container_image,
// --dataflow_service_options, …). See beam/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/gcs"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/local"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/s3"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"

	"github.com/blipcuda/blipcuda/beam/blipbeam"
)

// list is a repeatable string flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

var (
	model     = flag.String("model", "base-coco", "model: family name, Hub id, or a checkpoint directory present on every worker")
	device    = flag.String("device", "auto", "auto, cpu or cuda")
	precision = flag.String("precision", "float32", "float32, float16 or bfloat16 (CUDA)")
	protocol  = flag.String("protocol", "blip", "text protocol: blip or hf")
	download  = flag.Bool("download", false, "let workers pull the model into their Hugging Face cache")
	imgBatch  = flag.Int("image_batch", 0, "images per device batch (library default when 0)")
	batch     = flag.Int("batch", 64, "inputs gathered inside a bundle per model call")
	shards    = flag.Int("shards", 16, "number of output shards (index, Parquet, WebDataset)")
	failures  = flag.String("failures", "", "JSON-lines file of the inputs that failed, with their reasons (default OUTPUT/failures.jsonl)")

	// embed
	images = list{}
	lists  = list{}
	index  = flag.String("index", "", "embed: directory of the index shards (shard-SSSSS-of-NNNNN.blipidx)")
	pq     = flag.String("parquet", "", "embed: prefix of the embeddings Parquet files")

	// filter
	wds       = list{}
	pairsPQ   = list{}
	output    = flag.String("output", "", "filter: output directory (scores-*.parquet, kept-*.tar, failures.jsonl)")
	minITM    = flag.Float64("min_itm", 0.5, "filter: keep pairs with P(match) at least this")
	minITC    = flag.Float64("min_itc", -1, "filter: and ITC cosine at least this")
	writeKept = flag.Bool("write_kept", false, "filter: also write the kept pairs as WebDataset shards OUTPUT/kept-*.tar")
	reshuffle = flag.Bool("reshuffle", false, "filter: spread the pairs of WebDataset shards over the workers")
)

func init() {
	flag.Var(&images, "images", "embed: glob of image files (local, gs://, s3://); repeatable")
	flag.Var(&lists, "list", "embed: file of image references, one per line; repeatable")
	flag.Var(&wds, "webdataset", "filter: glob of WebDataset tar shards; repeatable")
	flag.Var(&pairsPQ, "pairs", "filter: glob of Parquet files with image (or path/url) and caption (or text) columns; repeatable")
}

const usage = `Usage: blipcuda-beam embed|filter [flags]

  blipcuda-beam embed --images 'DIR/*.jpg' --index OUT/shards [--parquet OUT/emb] [--runner prism]
  blipcuda-beam filter --webdataset 'IN/*.tar' --output OUT [--min_itm 0.5] [--write_kept]

Flags (Beam's runner flags too: --runner, --project, --region, --temp_location, …):
`

func main() {
	args := os.Args[1:]
	sub := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	flag.Usage = func() { fmt.Fprint(os.Stderr, usage); flag.PrintDefaults() }
	if err := flag.CommandLine.Parse(args); err != nil {
		os.Exit(2)
	}
	// On a worker (launched with Beam's worker flags and no subcommand),
	// Init runs the harness and does not return.
	if *runners.Runner == "" {
		*runners.Runner = "prism"
	}
	beam.Init()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "blipcuda-beam: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	p, s := beam.NewPipelineWithRoot()
	spec := blipbeam.Model{Name: *model, Device: *device, Precision: *precision, Protocol: *protocol,
		ImageBatch: *imgBatch, Download: *download}
	cfg := blipbeam.Config{Batch: *batch}
	var err error
	switch sub {
	case "embed":
		err = blipbeam.EmbedJob{Images: images, Lists: lists, Model: spec, Config: cfg, Index: *index, Parquet: *pq,
			Shards: *shards, Failures: *failures}.Build(s)
	case "filter":
		if *output == "" {
			err = errors.New("filter: name the output directory with --output")
			break
		}
		out := strings.TrimSuffix(*output, "/") + "/"
		job := blipbeam.FilterJob{WebDataset: wds, Parquet: pairsPQ, Model: spec, Config: cfg,
			Threshold: blipbeam.Threshold{MinITM: float32(*minITM), MinITC: float32(*minITC)},
			Scores:    out + "scores", Shards: *shards, Reshuffle: *reshuffle, Failures: *failures}
		if job.Failures == "" {
			job.Failures = out + "failures.jsonl"
		}
		if *writeKept {
			job.Kept = out + "kept"
		}
		err = job.Build(s)
	case "":
		flag.Usage()
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "blipcuda-beam: unknown command %q (want embed or filter)\n", sub)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "blipcuda-beam: %v\n", err)
		os.Exit(2)
	}
	if err := beamx.Run(context.Background(), p); err != nil {
		fmt.Fprintf(os.Stderr, "blipcuda-beam: %v\n", err)
		os.Exit(1)
	}
}
