package eval

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blipcuda/blipcuda"
)

// tinyFixture is the tiny model and testdata/eval's annotations.
func tinyFixture(t *testing.T) (*blipcuda.Model, *Collection) {
	t.Helper()
	c, err := ReadAnnotations(annotations)
	if err != nil {
		t.Fatal(err)
	}
	return tiny(t), c
}

// mapStore is an ImageStore in memory: the vectors of some images, encoded
// by the model, with the calls counted.
type mapStore struct {
	id       string
	vecs     map[string]blipcuda.ImageEncoding
	features map[string]bool // which images it has features of
	broken   map[string]bool // Features fails for these

	mu                  sync.Mutex
	embCalls, featCalls int
}

func (s *mapStore) ID() string { return s.id }

func (s *mapStore) Has(path string) (bool, bool) {
	_, ok := s.vecs[path]
	return ok, ok && s.features[path]
}

func (s *mapStore) Embedding(_ context.Context, path string) ([]float32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.embCalls++
	return s.vecs[path].Embedding, nil
}

func (s *mapStore) Features(_ context.Context, path string) ([]float32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.featCalls++
	if s.broken[path] {
		return nil, errors.New("record replaced since it was read")
	}
	return s.vecs[path].Features, nil
}

// newMapStore encodes the images of c's entries in hold (indices) into a
// store; those in withFeatures keep their features.
func newMapStore(t *testing.T, m *blipcuda.Model, c *Collection, hold, withFeatures []int) *mapStore {
	t.Helper()
	s := &mapStore{id: "test store", vecs: map[string]blipcuda.ImageEncoding{}, features: map[string]bool{}, broken: map[string]bool{}}
	enc, _, err := encodeImages(context.Background(), m, c, hold, Options{ImagesRoot: fixtureDir, ImageBatch: 8}, nil, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range hold {
		p := ImagePath(fixtureDir, c.Entries[i].Image)
		s.vecs[p] = enc[i]
		s.features[p] = slices.Contains(withFeatures, i)
	}
	return s
}

// TestStore: with a store holding some images (with features or without),
// the evaluation takes their embeddings and features from it, encodes the
// rest, and gives the result of a run on the files exactly (the store's
// vectors are the model's own here); a store that fails to give an image's
// features makes it encode that image, with a warning.
func TestStore(t *testing.T) {
	m, c := tinyFixture(t)
	ref, err := Evaluate(context.Background(), m, c, Options{ImagesRoot: fixtureDir, K: 12})
	if err != nil {
		t.Fatal(err)
	}
	var hold, feats []int
	for i := range c.Entries {
		if i%4 != 3 { // three in four held
			hold = append(hold, i)
			if i%2 == 0 { // half of all with features
				feats = append(feats, i)
			}
		}
	}
	s := newMapStore(t, m, c, hold, feats)
	broken := ImagePath(fixtureDir, c.Entries[feats[1]].Image)
	s.broken[broken] = true
	var warnings []string
	var encodedImages int
	r, err := Evaluate(context.Background(), m, c, Options{ImagesRoot: fixtureDir, K: 12, Store: s,
		Warn: func(w string) { warnings = append(warnings, w) },
		Progress: func(p Phase, done, total int) {
			if p == PhaseImages {
				encodedImages = done
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	sameResult(t, r, ref)
	if r.FromStore != len(hold) || r.FeaturesFromStore != len(feats)-1 {
		t.Errorf("%d embeddings and %d features from the store, want %d and %d", r.FromStore, r.FeaturesFromStore, len(hold), len(feats)-1)
	}
	if s.embCalls != len(hold) || s.featCalls != len(feats) {
		t.Errorf("store asked for %d embeddings and %d features, want %d and %d", s.embCalls, s.featCalls, len(hold), len(feats))
	}
	if encodedImages != len(c.Entries) {
		t.Errorf("image phase ended at %d of %d", encodedImages, len(c.Entries))
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], broken) || !strings.Contains(warnings[0], "record replaced") {
		t.Errorf("warnings %q", warnings)
	}

	// A store that holds nothing current is never read.
	none := &mapStore{id: "empty"}
	if r, err = Evaluate(context.Background(), m, c, Options{ImagesRoot: fixtureDir, K: 12, Store: none}); err != nil {
		t.Fatal(err)
	}
	sameResult(t, r, ref)
	if r.FromStore != 0 || r.FeaturesFromStore != 0 || none.embCalls+none.featCalls != 0 {
		t.Errorf("empty store: %d/%d from it, %d calls", r.FromStore, r.FeaturesFromStore, none.embCalls+none.featCalls)
	}
}

// TestStoreVectorsUsed: the store's vectors are the ones scored (here an
// image's are another's, as a stale index would give): its row follows
// them, not the file.
func TestStoreVectorsUsed(t *testing.T) {
	m, c := tinyFixture(t)
	c = c.Subset([]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	all := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	s := newMapStore(t, m, c, all, all)
	p0, p1 := ImagePath(fixtureDir, c.Entries[0].Image), ImagePath(fixtureDir, c.Entries[1].Image)
	orig := s.vecs[p0]
	s.vecs[p0] = s.vecs[p1]
	r, err := Evaluate(context.Background(), m, c, Options{ImagesRoot: fixtureDir, K: 10, Store: s})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.I2T[0].Cols, r.I2T[1].Cols) || !slices.Equal(r.I2T[0].Scores, r.I2T[1].Scores) {
		t.Errorf("image 0 was not scored from the store's vectors:\n%v\n%v", r.I2T[0], r.I2T[1])
	}

	// A wrong-sized vector is not used: the image is encoded.
	ref, err := Evaluate(context.Background(), m, c, Options{ImagesRoot: fixtureDir, K: 10})
	if err != nil {
		t.Fatal(err)
	}
	s.vecs[p0] = blipcuda.ImageEncoding{Embedding: []float32{1, 0}, Features: orig.Features}
	var warnings []string
	r, err = Evaluate(context.Background(), m, c, Options{ImagesRoot: fixtureDir, K: 10, Store: s,
		Warn: func(w string) { warnings = append(warnings, w) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], p0) || !strings.Contains(warnings[0], "2 values where the model has") {
		t.Errorf("warnings %q", warnings)
	}
	if r.FromStore != 9 {
		t.Errorf("%d embeddings from the store, want 9", r.FromStore)
	}
	sameResult(t, r, ref)
}

// TestStoreFingerprint: a run with a store has another fingerprint than
// one without, or with another store, so that a checkpoint is never
// resumed by the other; a store run resumes its own, with the store's
// features for the images left.
func TestStoreFingerprint(t *testing.T) {
	m, c := tinyFixture(t)
	o := Options{ImagesRoot: fixtureDir, K: 12}
	plain, err := Fingerprint(m, c, o)
	if err != nil {
		t.Fatal(err)
	}
	all := make([]int, len(c.Entries))
	for i := range all {
		all[i] = i
	}
	s := newMapStore(t, m, c, all, all)
	o.Store = s
	withStore, err := Fingerprint(m, c, o)
	if err != nil {
		t.Fatal(err)
	}
	o.Store = &mapStore{id: "another store"}
	other, err := Fingerprint(m, c, o)
	if err != nil {
		t.Fatal(err)
	}
	o.Store = &mapStore{}
	emptyID, err := Fingerprint(m, c, o)
	if err != nil {
		t.Fatal(err)
	}
	if plain == withStore || withStore == other || plain == emptyID {
		t.Errorf("fingerprints: without a store %s, with %s, with another %s, with an empty ID %s", plain, withStore, other, emptyID)
	}
	// An image file rewritten since (here: only its modification time)
	// makes another run: the checkpoint is not resumed with its vectors.
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(fixtureDir)); err != nil {
		t.Fatal(err)
	}
	o = Options{ImagesRoot: root, K: 12}
	before, err := Fingerprint(m, c, o)
	if err != nil {
		t.Fatal(err)
	}
	img := ImagePath(root, c.Entries[3].Image)
	st, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(img, st.ModTime(), st.ModTime().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if after, err := Fingerprint(m, c, o); err != nil || after == before {
		t.Errorf("an image file changed and the fingerprint did not (%v)", err)
	}

	ref, err := Evaluate(context.Background(), m, c, Options{ImagesRoot: fixtureDir, K: 12})
	if err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(t.TempDir(), "run.checkpoint")
	ctx, cancel := context.WithCancel(context.Background())
	_, err = Evaluate(ctx, m, c, Options{ImagesRoot: fixtureDir, K: 12, Checkpoint: ckpt, Store: s,
		Progress: func(p Phase, done, total int) {
			if p == PhaseITM && done > total/2 {
				cancel()
			}
		}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	// Without the store, the checkpoint is another run's.
	var warnings []string
	b, err := os.ReadFile(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ckpt+".copy", b, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Evaluate(context.Background(), m, c, Options{ImagesRoot: fixtureDir, K: 12, Checkpoint: ckpt + ".copy",
		Warn: func(w string) { warnings = append(warnings, w) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "another run") || r.ResumedEmbeddings || r.FromStore != 0 {
		t.Errorf("a store run's checkpoint resumed without it: warnings %q, resumed %v", warnings, r.ResumedEmbeddings)
	}
	// With it, resumed.
	s.embCalls, s.featCalls = 0, 0
	r, err = Evaluate(context.Background(), m, c, Options{ImagesRoot: fixtureDir, K: 12, Checkpoint: ckpt, Store: s})
	if err != nil {
		t.Fatal(err)
	}
	if !r.ResumedEmbeddings || r.Resumed == 0 || s.embCalls != 0 || s.featCalls != len(c.Entries)-r.Resumed {
		t.Errorf("resumed %v, %d images' ITM; the store gave %d embeddings and %d features", r.ResumedEmbeddings, r.Resumed, s.embCalls, s.featCalls)
	}
	if r.FromStore != len(c.Entries) || r.FeaturesFromStore != len(c.Entries) {
		t.Errorf("%d embeddings and %d features counted from the store, want all %d", r.FromStore, r.FeaturesFromStore, len(c.Entries))
	}
	sameResult(t, r, ref)
}
