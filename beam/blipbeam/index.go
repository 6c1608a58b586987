package blipbeam

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/blipcuda/blipcuda/index"
)

// indexBatch is how many images one index transaction adds.
const indexBatch = 1024

func init() {
	register.DoFn3x1[context.Context, int, func(*Embedding) bool, error](&indexWriteFn{})
}

// WriteIndexShards writes embeddings as shards of the blipcuda index
// format, DIR/shard-SSSSS-of-NNNNN.blipidx, which `blipcuda index merge`
// combines into one searchable index. An image's shard follows from its
// reference and each shard holds its images sorted by reference, one record
// per reference, so a retried bundle rewrites the same shard with the same
// content: a local shard is built in a temporary directory beside it and
// renamed into place (replacing an earlier attempt's), a shard on an object
// store is uploaded file by file with index.db last. The model recorded in
// the shards is model's.
func WriteIndexShards(s beam.Scope, dir string, shards int, model Model, embeddings beam.PCollection) {
	checkShards("WriteIndexShards", shards)
	s = s.Scope("blipbeam.WriteIndexShards")
	keyed := beam.ParDo(s, &embShardKeyFn{Shards: shards}, embeddings)
	beam.ParDo0(s, &indexWriteFn{Dir: dir, Shards: shards, Model: model}, beam.GroupByKey(s, keyed))
}

type indexWriteFn struct {
	Dir    string `json:"dir"`
	Shards int    `json:"shards"`
	Model  Model  `json:"model"`
}

func (f *indexWriteFn) ProcessElement(ctx context.Context, shard int, iter func(*Embedding) bool) error {
	var all []Embedding
	var e Embedding
	for iter(&e) {
		all = append(all, e)
	}
	slices.SortFunc(all, func(a, b Embedding) int { return strings.Compare(a.Ref, b.Ref) })
	all = slices.CompactFunc(all, func(a, b Embedding) bool { return a.Ref == b.Ref })

	m, err := acquire(ctx, f.Model)
	if err != nil {
		return err
	}
	im := index.ModelOf(m, f.Model.Name)
	if err := release(f.Model); err != nil {
		return err
	}

	name := ShardName("shard", shard, f.Shards, index.Extension)
	if hasScheme(f.Dir) {
		tmp, err := os.MkdirTemp("", "blipbeam-shard-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		local := filepath.Join(tmp, name)
		if err := buildShard(ctx, local, im, all); err != nil {
			return err
		}
		return upload(ctx, local, strings.TrimSuffix(f.Dir, "/")+"/"+name)
	}
	if err := os.MkdirAll(f.Dir, 0o777); err != nil {
		return fmt.Errorf("blipbeam: index shards: %w", err)
	}
	final := filepath.Join(f.Dir, name)
	tmp, err := os.MkdirTemp(f.Dir, "."+name+".tmp-")
	if err != nil {
		return fmt.Errorf("blipbeam: index shards: %w", err)
	}
	defer os.RemoveAll(tmp)
	local := filepath.Join(tmp, name)
	if err := buildShard(ctx, local, im, all); err != nil {
		return err
	}
	if err := replaceDir(local, final); err != nil {
		return err
	}
	if shardWritten != nil {
		return shardWritten(final)
	}
	return nil
}

// shardWritten, when set (by tests), is called after a local shard is in
// place; an error fails the bundle as a worker lost at that point would.
var shardWritten func(path string) error

// buildShard writes an index at dir holding all.
func buildShard(ctx context.Context, dir string, m index.Model, all []Embedding) (err error) {
	ix, err := index.Open(ctx, dir, index.Options{Write: true, Create: true})
	if err != nil {
		return fmt.Errorf("blipbeam: %w", err)
	}
	defer func() { err = errors.Join(err, ix.Close()) }()
	if err := ix.SetModel(ctx, m); err != nil {
		return fmt.Errorf("blipbeam: %w", err)
	}
	for len(all) > 0 {
		n := min(len(all), indexBatch)
		items := make([]index.Item, n)
		for i, e := range all[:n] {
			items[i] = index.Item{Entry: index.Entry{Path: e.Ref, Size: e.Size, SHA256: e.SHA256}, Embedding: e.Embedding}
			if e.ModTime != 0 {
				items[i].ModTime = time.Unix(0, e.ModTime)
			}
		}
		if err := ix.Add(ctx, items); err != nil {
			return fmt.Errorf("blipbeam: %w", err)
		}
		all = all[n:]
	}
	return nil
}

// replaceDir renames the complete directory src to dst, replacing what an
// earlier attempt left there.
func replaceDir(src, dst string) error {
	err := os.Rename(src, dst)
	if err == nil {
		return nil
	}
	if _, serr := os.Stat(dst); serr != nil {
		return fmt.Errorf("blipbeam: %w", err)
	}
	old := src + ".old"
	if err := os.Rename(dst, old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blipbeam: replacing %s: %w", dst, err)
	}
	if err := os.Rename(src, dst); err != nil {
		return fmt.Errorf("blipbeam: replacing %s: %w", dst, err)
	}
	return os.RemoveAll(old)
}

// upload copies a local index directory to dst on a Beam filesystem, its
// database last: a shard without index.db is incomplete.
func upload(ctx context.Context, local, dst string) error {
	entries, err := os.ReadDir(local)
	if err != nil {
		return err
	}
	slices.SortFunc(entries, func(a, b os.DirEntry) int {
		return cmpBool(a.Name() == "index.db", b.Name() == "index.db")
	})
	for _, e := range entries {
		src := filepath.Join(local, e.Name())
		err := writeFile(ctx, strings.TrimSuffix(dst, "/")+"/"+e.Name(), func(w io.Writer) error {
			r, err := os.Open(src)
			if err != nil {
				return err
			}
			defer r.Close()
			_, err = io.Copy(w, r)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
