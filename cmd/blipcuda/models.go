package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/blipcuda/blipcuda"
	"github.com/blipcuda/blipcuda/hub"
	"github.com/blipcuda/blipcuda/model"
)

var modelsCommand = &command{
	name:     "models",
	synopsis: "[flags]",
	summary:  "list the BLIP ITM models and whether each is in the local cache",
	help: `Lists the BLIP image-text matching models: name, image encoder, the data set
the retrieval model was fine-tuned on, Hub id, parameters, download size, and
whether it is in the local Hugging Face cache (HF_HUB_CACHE): "yes" when a
complete checkpoint is there (config, vocabulary, weights), "partial" when
only some files are or a download was interrupted (its bytes are counted).
Nothing is downloaded.`,
	env: []string{"HF_HOME", "HF_HUB_CACHE"},
	run: runModels,
}

// modelRow is one model of the listing; its JSON form is documented in
// README.md.
type modelRow struct {
	Name          string `json:"name"`
	Architecture  string `json:"architecture"`
	TrainingSet   string `json:"training_set"`
	HubID         string `json:"hub_id"`
	Parameters    int64  `json:"parameters"`
	DownloadBytes int64  `json:"download_bytes"`
	Cached        bool   `json:"cached"`
	Partial       bool   `json:"partial"`
	CacheBytes    int64  `json:"cache_bytes"`
	Dir           string `json:"dir"`
	Weights       string `json:"weights"`
}

func runModels(ctx context.Context, a *app, args []string) error {
	var format string
	fs := newFlagSet("models")
	fs.str(&format, "format", "f", "table", "table|json", "output format")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("models takes no arguments (got %q)", pos[0])
	}
	if format != "table" && format != "json" {
		return usagef("--format %q: want table or json", format)
	}
	c, err := a.hubClient()
	if err != nil {
		return err
	}
	scanned, err := c.Scan(ctx)
	if err != nil {
		return err
	}
	var rows []modelRow
	for _, v := range model.Family() {
		r := modelRow{Name: v.Name, Architecture: v.Architecture, TrainingSet: v.TrainingSet, HubID: v.HubID,
			Parameters: v.NumParams(), DownloadBytes: v.WeightsSize}
		if cp, ok := blipcuda.CachedCheckpoint(ctx, c, v.HubID); ok {
			r.Cached, r.Dir, r.Weights = true, cp.Dir, cp.Weights
		}
		for _, s := range scanned {
			if s.Repo == v.HubID {
				// Partial downloads (*.incomplete blobs) count: they are
				// on disk, and a pull resumes them.
				r.CacheBytes = s.Size + s.Incomplete
				r.Partial = !r.Cached && (s.Complete() || s.Incomplete > 0)
			}
		}
		rows = append(rows, r)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return a.writeOutput(ctx, "", func(w io.Writer) error {
		if format == "json" {
			return writeJSONObject(w, []jsonField{
				{"cache_dir", c.CacheDir()},
				{"models", rowsOf(rows)},
			})
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tARCHITECTURE\tTRAINED ON\tHUB ID\tPARAMETERS\tDOWNLOAD\tCACHED")
		for _, r := range rows {
			cached := "no"
			switch {
			case r.Cached:
				cached = "yes (" + hub.HumanBytes(r.CacheBytes) + ")"
			case r.Partial:
				cached = "partial (" + hub.HumanBytes(r.CacheBytes) + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.0fM\t%s\t%s\n", r.Name, r.Architecture, r.TrainingSet, r.HubID,
				float64(r.Parameters)/1e6, hub.HumanBytes(r.DownloadBytes), cached)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		_, err := fmt.Fprintf(w, "\ncache: %s\n", c.CacheDir())
		return err
	})
}
