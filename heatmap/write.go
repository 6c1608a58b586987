package heatmap

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
)

// WritePNG encodes img as PNG to path, atomically: it writes a temporary
// file in the same directory, syncs it and renames it over path, so that
// path holds either its old contents or the complete new image, never a
// part. On failure the temporary file is removed. Errors name path.
func WritePNG(path string, img image.Image) (err error) {
	if img == nil {
		return fmt.Errorf("heatmap: write %s: no image", path)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("heatmap: write %s: is a directory", path)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("heatmap: write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(f, 1<<16)
	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("heatmap: write %s: encode PNG: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("heatmap: write %s: %w", path, err)
	}
	// CreateTemp makes the file 0600; a plot is an ordinary file.
	if err := f.Chmod(0o644); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("heatmap: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("heatmap: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("heatmap: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("heatmap: write %s: %w", path, err)
	}
	return nil
}
