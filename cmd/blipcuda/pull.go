package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/blipcuda/blipcuda"
)

var pullCommand = &command{
	name:     "pull",
	synopsis: "[flags] NAME|HUB-ID...",
	summary:  "download models into the Hugging Face cache",
	help: `Downloads models into the local Hugging Face cache (HF_HUB_CACHE), where
transformers finds them too: config, preprocessor and tokenizer files from the
main revision, and the weights as model.safetensors where the Hub has a
conversion (main, or the SFconvertbot pull request refs/pr/N), else
pytorch_model.bin. Files already cached are not downloaded again; an
interrupted download resumes where it stopped. Progress is a bar on a
terminal, plain lines on stderr otherwise, nothing with --quiet.

For each model, prints "NAME<TAB>CONFIG-DIR<TAB>WEIGHTS-FILE" on stdout.`,
	env: hubEnv,
	run: runPull,
}

func runPull(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet("pull")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("name a model to pull: base-coco, base-flickr, large-coco, large-flickr or a Hub id")
	}
	for _, name := range pos {
		if err := checkModelName(name); err != nil {
			return err
		}
	}
	c, err := a.hubClient()
	if err != nil {
		return err
	}
	for _, name := range pos {
		start := time.Now()
		cp, err := blipcuda.Pull(ctx, c, name)
		if err != nil {
			return err
		}
		a.log.Debug("pulled", "model", name, "repo", cp.Repo, "took", time.Since(start).Round(time.Millisecond))
		err = a.writeOutput(ctx, "", func(w io.Writer) error {
			_, err := fmt.Fprintf(w, "%s\t%s\t%s\n", name, cp.Dir, cp.Weights)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}
