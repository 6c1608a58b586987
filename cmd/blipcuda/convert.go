package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/blipcuda/blipcuda/hub"
	"github.com/blipcuda/blipcuda/internal/outfile"
	"github.com/blipcuda/blipcuda/model"
)

var convertCommand = &command{
	name:     "convert",
	synopsis: "[flags] pytorch_model.bin|DIR",
	summary:  "convert pytorch_model.bin to model.safetensors (float32, float16, bfloat16)",
	help: `Converts a checkpoint's pytorch_model.bin (or a DIR holding it) to
model.safetensors, the format transformers and blipcuda load without running a
pickle, in float32, float16 or bfloat16 (rounded to nearest, ties to even).
The architecture comes from the config.json next to the input, or --config.
Tensors are written in the model's parameter order with the names and the
{"format": "pt"} metadata transformers writes. The output (default:
model.safetensors next to the input) is written atomically and not
overwritten without --force. A model.safetensors input is converted to
another precision the same way.

Prints the path written on stdout.`,
	run: runConvert,
}

func runConvert(ctx context.Context, a *app, args []string) error {
	var dtype, config, output string
	var force bool
	fs := newFlagSet("convert")
	fs.str(&dtype, "dtype", "d", "float32", "float32|float16|bfloat16", "precision of the weights written")
	fs.str(&config, "config", "c", "", "FILE", "the checkpoint's config.json (default: next to the input)")
	fs.str(&output, "output", "o", "", "FILE", "where to write (default: model.safetensors next to the input)")
	fs.boolean(&force, "force", "", "overwrite the output if it exists")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("convert takes one input, pytorch_model.bin or its directory (got %d arguments)", len(pos))
	}
	if _, err := model.SafetensorsDType(dtype); err != nil {
		return usagef("--dtype %q: want float32, float16 or bfloat16", dtype)
	}
	input := pos[0]
	st, err := os.Stat(input)
	if err != nil {
		return fmt.Errorf("input %s: %w", input, pathError(err))
	}
	if st.IsDir() {
		input = filepath.Join(input, model.PyTorchFile)
		if _, err := os.Stat(input); err != nil {
			return fmt.Errorf("directory %s has no %s", pos[0], model.PyTorchFile)
		}
	}
	if config == "" {
		config = filepath.Join(filepath.Dir(input), "config.json")
		if _, err := os.Stat(config); err != nil {
			return fmt.Errorf("no config.json next to %s: give the checkpoint's config with --config", input)
		}
	}
	if output == "" {
		output = filepath.Join(filepath.Dir(input), model.SafetensorsFile)
	}
	if err := checkClash([]outfile.Use{{Role: "--output", Path: output}},
		[]outfile.Use{{Role: "the input", Path: input}, {Role: "--config", Path: config}}); err != nil {
		return err
	}
	if t, err := outfile.Resolve(output); err == nil && t.Exists && t.Mode == outfile.Replace && !force {
		return fmt.Errorf("%s exists; add --force to overwrite it", output)
	}
	if err := checkOutputPath("--output", output); err != nil {
		return err
	}
	cfg, err := model.LoadConfig(config)
	if err != nil {
		return err
	}
	start := time.Now()
	w, err := model.OpenWeightsFile(input, cfg)
	if err != nil {
		return err
	}
	defer w.Close()
	a.log.Debug("read weights", "file", input, "took", time.Since(start).Round(time.Millisecond))
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := model.WriteSafetensors(ctx, output, w, cfg, dtype, nil); err != nil {
		return err
	}
	var size int64
	if fi, err := os.Stat(output); err == nil {
		size = fi.Size()
	}
	a.log.Info(fmt.Sprintf("wrote %s (%s, %d tensors, %s) in %v", output, dtype, len(cfg.Params()), hub.HumanBytes(size),
		time.Since(start).Round(time.Millisecond)))
	return a.writeOutput(ctx, "", func(w io.Writer) error {
		_, err := fmt.Fprintln(w, output)
		return err
	})
}
