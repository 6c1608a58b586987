package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/blipcuda/blipcuda/index"
)

// indexMergeHelp is the help of 'blipcuda index merge'.
const indexMergeHelp = `Combines index shards (written by 'blipcuda index', or by the Beam pipeline's
'blipcuda-beam embed --index DIR' as DIR/shard-SSSSS-of-NNNNN.blipidx) into
one searchable index, creating it or adding to it. A directory argument that
is not itself an index stands for the *.blipidx directories directly inside it.

Every shard must hold the same model's embeddings. Paths are re-expressed for
the merged index (relative to its directory when the file lies below it);
URLs (gs://…) are kept. A path found in two shards is taken from the first
(shards are taken in name order) and counted as a duplicate, so overlapping
shards merge to one record per image; a path already in the output is
replaced. Each batch of records is one transaction: an interrupted merge
leaves the output consistent, and running it again completes it.`

// runIndexMerge is 'blipcuda index merge SHARD... -o OUT'.
func runIndexMerge(ctx context.Context, a *app, args []string) error {
	var (
		out  string
		wait time.Duration
	)
	flags := newFlagSet("index merge")
	flags.str(&out, "output", "o", "", "NAME.blipidx", "the index to create or add to (required)")
	flags.DurationVar(&wait, "wait", time.Second, "how long to wait for another run's lock on an index")
	flags.add("wait", "", "DURATION")
	help := a.cmd
	a.cmd = &command{name: "index merge", synopsis: "SHARD.blipidx|DIR... -o NAME.blipidx", help: indexMergeHelp}
	defer func() { a.cmd = help }()
	pos, err := a.parse(flags, args)
	if err != nil {
		return err
	}
	if out == "" {
		return usagef("index merge: name the merged index with -o NAME.blipidx")
	}
	if len(pos) == 0 {
		return usagef("index merge: name the shards to merge")
	}
	paths, err := shardPaths(pos)
	if err != nil {
		return err
	}
	absOut, _ := filepath.Abs(out)
	var srcs []*index.Index
	defer func() {
		for _, ix := range srcs {
			ix.Close()
		}
	}()
	for _, p := range paths {
		if abs, _ := filepath.Abs(p); abs == absOut {
			return usagef("index merge: %s is both a shard and the output", p)
		}
		ix, err := index.Open(ctx, p, index.Options{Wait: wait})
		if err != nil {
			return err
		}
		srcs = append(srcs, ix)
	}
	features := len(srcs) > 0
	for _, ix := range srcs {
		features = features && ix.HasFeatures()
	}
	dst, err := index.Open(ctx, out, index.Options{Write: true, Create: true, Features: features, Wait: wait})
	if err != nil {
		return err
	}
	st, err := index.Merge(ctx, dst, srcs)
	err = errors.Join(err, dst.Close())
	if err != nil {
		return err
	}
	s := dst.Stats()
	a.log.Info(fmt.Sprintf("index %s: %d images after merging %d shards (%d records added, %d duplicates skipped), %s on disk",
		out, s.Images, len(srcs), st.Added, st.Duplicates, humanBytes(s.Bytes)))
	return nil
}

// shardPaths expands the arguments of index merge: an index directory is
// itself, another directory the indexes inside it, in name order.
func shardPaths(args []string) ([]string, error) {
	var out []string
	for _, arg := range args {
		if _, err := os.Stat(filepath.Join(arg, "index.db")); err == nil || strings.HasSuffix(filepath.Clean(arg), index.Extension) {
			out = append(out, arg)
			continue
		}
		st, err := os.Stat(arg)
		if err != nil {
			return nil, fmt.Errorf("index merge: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("%w: %s is a file", index.ErrNotIndex, arg)
		}
		matches, err := filepath.Glob(filepath.Join(arg, "*"+index.Extension))
		if err != nil {
			return nil, err
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("index merge: %s holds no %s shards", arg, index.Extension)
		}
		sort.Strings(matches)
		out = append(out, matches...)
	}
	return out, nil
}
