package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blipcuda/blipcuda/index"
)

// TestIndexMerge merges two overlapping indexes through the command, given
// as a directory of shards, and checks the merged index against the images,
// then the refusals: no output, output among the shards, a missing shard.
func TestIndexMerge(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "p")
	imgs := genImages(t, dir, 6, 2)
	shards := filepath.Join(tmp, "shards")
	if err := os.Mkdir(shards, 0o777); err != nil {
		t.Fatal(err)
	}
	mustRun(t, runOpts{}, "index", imgs[0], imgs[1], imgs[2], imgs[3], "-o", filepath.Join(shards, "a.blipidx"), "--model", tinyBase)
	mustRun(t, runOpts{}, "index", imgs[3], imgs[4], imgs[5], "-o", filepath.Join(shards, "b.blipidx"), "--model", tinyBase)
	out := filepath.Join(tmp, "merged.blipidx")
	r := mustRun(t, runOpts{}, "index", "merge", shards, "-o", out)
	if !strings.Contains(r.stderr, "6 images after merging 2 shards (6 records added, 1 duplicates skipped)") {
		t.Errorf("merge: %s", r.stderr)
	}
	ix, err := index.Open(context.Background(), out, index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	for _, p := range imgs {
		rel, _ := filepath.Rel(tmp, p)
		e, ok, err := ix.Lookup(filepath.ToSlash(rel))
		if err != nil || !ok || e.SHA256 != mustHash(t, p) {
			t.Errorf("%s after merge: %+v %v %v", p, e, ok, err)
		}
	}
	mustRun(t, runOpts{}, "search", "--index", out, "a dog")
	wantFail(t, run(t, runOpts{}, "index", "merge", shards), 2, "-o")
	wantFail(t, run(t, runOpts{}, "index", "merge", filepath.Join(shards, "a.blipidx"), "-o", filepath.Join(shards, "a.blipidx")), 2, "both a shard and the output")
	wantFail(t, run(t, runOpts{}, "index", "merge", filepath.Join(tmp, "none.blipidx"), "-o", out), 1, "none.blipidx")
}
