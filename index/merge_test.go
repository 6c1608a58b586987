package index

import (
	"context"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestMerge merges three shards, two overlapping and one holding URLs and
// a relative path, and checks that the merged index holds each path once
// with its embedding and features, that search over it equals brute force,
// and that a shard of another model is refused.
func TestMerge(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(3))
	all := items(rng, filepath.Join(dir, "img", "a"), 40)
	all[30].Path, all[31].Path = "gs://bucket/x.jpg", "s3://bucket/y.jpg"
	shardItems := [][]Item{all[:20], all[15:30], all[30:]}
	var shards []*Index
	if err := os.Mkdir(filepath.Join(dir, "shards"), 0o777); err != nil {
		t.Fatal(err)
	}
	for i, its := range shardItems {
		ix := create(t, filepath.Join(dir, "shards", "s"+string(rune('0'+i))+Extension), true)
		if err := ix.Add(ctx, its); err != nil {
			t.Fatal(err)
		}
		shards = append(shards, ix)
		defer ix.Close()
	}
	out := create(t, filepath.Join(dir, "merged"+Extension), true)
	defer out.Close()
	st, err := Merge(ctx, out, shards)
	if err != nil {
		t.Fatal(err)
	}
	if st.Added != 40 || st.Duplicates != 5 || out.Len() != 40 {
		t.Fatalf("merge: %+v, %d records; want 40 added, 5 duplicates, 40 records", st, out.Len())
	}
	for _, it := range all {
		key := it.Path
		if !IsURL(key) {
			if key, err = out.Key(it.Path); err != nil {
				t.Fatal(err)
			}
			if filepath.IsAbs(key) {
				t.Errorf("%s stored as %s, want relative to the merged index", it.Path, key)
			}
		}
		e, ok, err := out.Lookup(key)
		if err != nil || !ok {
			t.Fatalf("%s (%s) missing after merge: %v", it.Path, key, err)
		}
		emb, err := out.Embedding(e)
		if err != nil {
			t.Fatal(err)
		}
		feat, err := out.Features(e)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(emb, it.Embedding) || len(feat) != len(it.Features) || e.SHA256 != it.SHA256 || e.Size != it.Size {
			t.Errorf("%s: record or vectors differ after merge", key)
		}
	}
	q := unit(rng, testModel.Dim)
	got, err := out.Search(ctx, [][]float32{q}, 5)
	if err != nil {
		t.Fatal(err)
	}
	want := bruteForce(t, out, q)[:5]
	for i := range want {
		if got[0][i].Path != want[i].Path {
			t.Fatalf("search over the merged index: rank %d is %s, brute force %s", i, got[0][i].Path, want[i].Path)
		}
	}

	other := testModel
	other.ConfigHash = "fedcba9876543210"
	bad, err := Open(ctx, filepath.Join(dir, "other"+Extension), Options{Write: true, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := bad.SetModel(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := bad.Add(ctx, items(rng, "z", 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := Merge(ctx, out, []*Index{bad}); !errors.Is(err, ErrModel) {
		t.Fatalf("merging a shard of another model: %v, want ErrModel", err)
	}
}
