package blipbeam

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"io"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	// Local paths are always readable; the command registers gs:// and s3://.
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/local"
)

// shardOf is the shard of a record key: a hash of the key, so that a
// record lands in the same shard however the runner bundles or retries the
// work.
func shardOf(key string, n int) int {
	h := fnv.New64a()
	io.WriteString(h, key)
	return int(h.Sum64() % uint64(n))
}

// ShardName is the name of shard i of n: PREFIX-00003-of-00016.EXT, the
// naming of Beam's own sinks.
func ShardName(prefix string, i, n int, ext string) string {
	return fmt.Sprintf("%s-%05d-of-%05d%s", prefix, i, n, ext)
}

// writeFile writes path through Beam's filesystem registry so that no
// reader ever sees it half-written: the data goes to a temporary name
// beside it, which is then renamed over path (local files, and object
// stores whose rename is a copy of a complete object). A retried or
// speculative attempt that writes the same shard replaces it with the same
// content.
func writeFile(ctx context.Context, path string, write func(io.Writer) error) (err error) {
	fsys, err := filesystem.New(ctx, path)
	if err != nil {
		return fmt.Errorf("blipbeam: %s: %w", path, err)
	}
	defer fsys.Close()
	ren, canRename := fsys.(filesystem.Renamer)
	tmp := path
	if canRename {
		var r [8]byte
		rand.Read(r[:])
		tmp = path + ".tmp-" + hex.EncodeToString(r[:])
	}
	w, err := fsys.OpenWrite(ctx, tmp)
	if err != nil {
		return fmt.Errorf("blipbeam: %s: %w", path, err)
	}
	defer func() {
		if err != nil && canRename {
			if rm, ok := fsys.(filesystem.Remover); ok {
				rm.Remove(context.WithoutCancel(ctx), tmp)
			}
		}
	}()
	if err := write(w); err != nil {
		w.Close()
		return fmt.Errorf("blipbeam: writing %s: %w", path, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("blipbeam: writing %s: %w", path, err)
	}
	if canRename {
		if err := ren.Rename(ctx, tmp, path); err != nil {
			return fmt.Errorf("blipbeam: %s: %w", path, err)
		}
	}
	return nil
}
