package blipbeam

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	"github.com/blipcuda/blipcuda"
	"github.com/blipcuda/blipcuda/imageproc"
)

// DefaultMaxBytes is the largest image file read when Config.MaxBytes is 0.
const DefaultMaxBytes = 64 << 20

// errData marks a failure of one element's data (unreadable or undecodable
// image, unusable caption): it goes to the dead-letter output. Any other
// error fails the bundle, which the runner retries.
var errData = errors.New("bad input")

// blob is an image's bytes with what the index records of its file.
type blob struct {
	data    []byte
	sha256  string
	modTime time.Time
}

// hasScheme reports whether ref is a URL-like reference (gs://, s3://,
// memfs://…) rather than a local path.
func hasScheme(ref string) bool {
	i := strings.Index(ref, "://")
	return i > 0 && !strings.ContainsAny(ref[:i], `/\`)
}

// readRef reads the file ref names, through Beam's filesystem registry
// (local paths, gs://, s3://, and whatever else the binary registers).
// Failures of the file itself are errData.
func readRef(ctx context.Context, ref string, maxBytes int64) (blob, error) {
	fsys, err := filesystem.New(ctx, ref)
	if err != nil {
		return blob{}, fmt.Errorf("%w: %s: %v", errData, ref, err)
	}
	defer fsys.Close()
	r, err := fsys.OpenRead(ctx, ref)
	if err != nil {
		return blob{}, fmt.Errorf("%w: %s: %v", errData, ref, err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return blob{}, ctx.Err()
		}
		return blob{}, fmt.Errorf("%w: %s: %v", errData, ref, err)
	}
	if int64(len(data)) > maxBytes {
		return blob{}, fmt.Errorf("%w: %s: larger than %d bytes", errData, ref, maxBytes)
	}
	b := newBlob(data)
	if lm, ok := fsys.(filesystem.LastModifiedGetter); ok {
		if t, err := lm.LastModified(ctx, ref); err == nil {
			b.modTime = t
		}
	}
	return b, nil
}

func newBlob(data []byte) blob {
	sum := sha256.Sum256(data)
	return blob{data: data, sha256: hex.EncodeToString(sum[:])}
}

// decode preprocesses an image's bytes for m exactly as Model.LoadImage
// does a file (the same decoder, limits and conversion).
func decode(m *blipcuda.Model, name string, data []byte, maxPixels int) (*blipcuda.Image, error) {
	rgb, err := imageproc.Decode(bytes.NewReader(data), name, maxPixels)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errData, err)
	}
	img, err := m.ImageFromGo(name, rgb)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errData, err)
	}
	return img, nil
}

// absRef makes a local path absolute (workers of a distributed runner do
// not share a working directory); URLs are kept.
func absRef(ref string) (string, error) {
	if ref == "" || hasScheme(ref) {
		return ref, nil
	}
	return filepath.Abs(ref)
}
