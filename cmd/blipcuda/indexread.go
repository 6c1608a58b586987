package main

import (
	"context"
	"fmt"
	"time"

	"github.com/blipcuda/blipcuda"
	"github.com/blipcuda/blipcuda/index"
)

// What the commands that use an index built by 'blipcuda index' share
// (index, search, eval --index).

// modelFromIndex notes in --model's help that the model recorded in an
// index is the default (when is "" or says when an index is used).
func modelFromIndex(flags *flagSet, when string) {
	if f := flags.Lookup("model"); f != nil {
		f.Usage += "; default: " + when + "the model recorded in the index, else " + f.DefValue
		f.DefValue = ""
	}
}

// waitFlag registers --wait, how long a reader of an index waits for its
// database while an index run commits a batch.
func waitFlag(flags *flagSet, wait *time.Duration) {
	flags.DurationVar(wait, "wait", time.Second, "how long to wait for the index's database while an index run commits a batch")
	flags.add("wait", "", "DURATION")
}

// openIndexToRead opens an index for reading (it is never written), wait
// being how long each read may wait for a commit in progress (0: the
// index's default, 1 s), and, when it has recorded its model and holds
// images and --model was not given, makes that model mf's.
func openIndexToRead(ctx context.Context, path string, wait time.Duration, flags *flagSet, mf *modelFlags) (*index.Index, error) {
	ix, err := index.Open(ctx, path, index.Options{Wait: wait})
	if err != nil {
		return nil, err
	}
	if recorded, ok := ix.Model(); ok && ix.Len() > 0 && !flagGiven(flags, "model") {
		mf.model = recorded.Name
	}
	return ix, nil
}

// checkIndexModel refuses an index built with a model other than m (loaded
// as name), naming both.
func checkIndexModel(ix *index.Index, m *blipcuda.Model, name string) error {
	if recorded, ok := ix.Model(); ok {
		if err := recorded.Check(index.ModelOf(m, name)); err != nil {
			return fmt.Errorf("index %s: %w", ix.Dir(), err)
		}
	}
	return nil
}
