package index

import (
	"context"
	"fmt"
	"strings"
)

// mergeBatch is how many records one transaction of Merge adds.
const mergeBatch = 1024

// MergeStats counts what Merge did.
type MergeStats struct {
	// Added is the number of records added or replaced.
	Added int
	// Duplicates is the number of records skipped because an earlier
	// source of the same merge held the same path.
	Duplicates int
}

// IsURL reports whether a stored path is a URL (gs://bucket/x.jpg, as
// written by the Beam pipeline) rather than a file path: it is kept as it
// is rather than resolved against the index's directory.
func IsURL(key string) bool {
	i := strings.Index(key, "://")
	return i > 0 && !strings.ContainsAny(key[:i], `/\`)
}

// Merge adds the records of srcs, in order, to ix (opened for writing),
// with their embeddings and, where both store them, their raw features:
// the shards written by a distributed job into one searchable index. Every
// source must have been built with the same model as ix (recorded from
// the first source when ix is new). Paths are re-expressed for ix: a file
// path relative to its source's directory becomes relative to ix's
// directory (or absolute), a URL is kept. A path held by two sources is
// taken from the first and counted as a duplicate, so shards that overlap
// (a retried task that wrote its records twice) merge to one record per
// image; a path ix already held is replaced. Each batch of records is one
// transaction of ix, so an interrupted merge leaves ix consistent and a
// rerun completes it. If ix stores features, every source must too.
func Merge(ctx context.Context, ix *Index, srcs []*Index) (MergeStats, error) {
	var st MergeStats
	seen := map[string]bool{}
	for _, src := range srcs {
		m, ok := src.Model()
		if !ok {
			continue // an empty index: nothing recorded, nothing to add
		}
		if err := ix.SetModel(ctx, m); err != nil {
			return st, fmt.Errorf("merging %s into %s: %w", src.Dir(), ix.Dir(), err)
		}
		if ix.HasFeatures() && !src.HasFeatures() {
			return st, fmt.Errorf("merging %s into %s: %s stores raw features and %s does not", src.Dir(), ix.Dir(), ix.Dir(), src.Dir())
		}
		var entries []Entry
		if err := src.Entries(ctx, func(e Entry) error { entries = append(entries, e); return nil }); err != nil {
			return st, err
		}
		for first := 0; first < len(entries); first += mergeBatch {
			var items []Item
			for _, e := range entries[first:min(first+mergeBatch, len(entries))] {
				key := e.Path
				if !IsURL(key) {
					k, err := ix.Key(src.Resolve(key))
					if err != nil {
						return st, fmt.Errorf("merging %s: %s: %w", src.Dir(), e.Path, err)
					}
					key = k
				}
				if seen[key] {
					st.Duplicates++
					continue
				}
				seen[key] = true
				it := Item{Entry: e}
				it.Path = key
				var err error
				if it.Embedding, err = src.Embedding(e); err != nil {
					return st, err
				}
				if ix.HasFeatures() {
					if it.Features, err = src.Features(e); err != nil {
						return st, err
					}
				}
				items = append(items, it)
			}
			if len(items) == 0 {
				continue
			}
			if err := ix.Add(ctx, items); err != nil {
				return st, err
			}
			st.Added += len(items)
		}
	}
	return st, nil
}
