package heatmap

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"io"

	"github.com/blipcuda/blipcuda/internal/outfile"
)

// WritePNG encodes img as PNG to path. A regular file (or a new path) is
// written atomically: to a temporary file in the directory of the resolved
// path (symbolic links are followed), synced and renamed over it, so that
// it holds either its old contents or the complete new image, never a part;
// on failure the temporary file is removed. A device, FIFO or /dev/fd path
// is written directly. Errors name path.
func WritePNG(path string, img image.Image) error {
	return WritePNGContext(context.Background(), path, img)
}

// WritePNGContext is WritePNG stopped by ctx: once ctx is cancelled the
// write fails and nothing is left at path.
func WritePNGContext(ctx context.Context, path string, img image.Image) error {
	if img == nil {
		return fmt.Errorf("heatmap: write %s: no image", path)
	}
	err := outfile.WriteFile(ctx, path, func(w io.Writer) error {
		if err := png.Encode(w, img); err != nil {
			return fmt.Errorf("writing %s: encode PNG: %w", path, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("heatmap: %w", err)
	}
	return nil
}
