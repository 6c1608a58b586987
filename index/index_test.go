package index

import (
	"context"
	"errors"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var testModel = Model{Name: "tiny", ID: "tiny", ConfigHash: "0123456789abcdef", Dim: 32, Tokens: 3, Width: 4}

func unit(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	var s float64
	for i := range v {
		v[i] = float32(rng.NormFloat64())
		s += float64(v[i]) * float64(v[i])
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / math.Sqrt(s))
	}
	return v
}

func items(rng *rand.Rand, prefix string, n int) []Item {
	out := make([]Item, n)
	for i := range out {
		feat := make([]float32, testModel.Tokens*testModel.Width)
		for j := range feat {
			feat[j] = float32(rng.NormFloat64())
		}
		out[i] = Item{Entry: Entry{Path: prefix + string(rune('a'+i%26)) + strings.Repeat("x", i/26) + ".png",
			Size: int64(i), ModTime: time.Unix(int64(1e9+i), 0).UTC(), SHA256: "00"}, Embedding: unit(rng, testModel.Dim), Features: feat}
	}
	return out
}

func create(t *testing.T, dir string, features bool) *Index {
	t.Helper()
	ix, err := Open(context.Background(), dir, Options{Write: true, Create: true, Features: features})
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.SetModel(context.Background(), testModel); err != nil {
		t.Fatal(err)
	}
	return ix
}

// bruteForce ranks every live record by its exact cosine with q.
func bruteForce(t *testing.T, ix *Index, q []float32) []Result {
	var all []Result
	err := ix.Entries(context.Background(), func(e Entry) error {
		emb, err := ix.Embedding(e)
		if err != nil {
			return err
		}
		var s float32
		for i, v := range q {
			s += v * emb[i]
		}
		all = append(all, Result{Entry: e, ITC: s})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.SliceStable(all, func(a, b int) bool {
		if all[a].ITC != all[b].ITC {
			return all[a].ITC > all[b].ITC
		}
		return all[a].Slot < all[b].Slot
	})
	return all
}

func TestAddSearchRemove(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewSource(1))
	dir := filepath.Join(t.TempDir(), "x"+Extension)
	ix := create(t, dir, true)
	batch := items(rng, "img/", 100)
	for i := 0; i < len(batch); i += 30 {
		if err := ix.Add(ctx, batch[i:min(i+30, len(batch))]); err != nil {
			t.Fatal(err)
		}
	}
	if ix.Len() != 100 {
		t.Fatalf("Len %d", ix.Len())
	}
	n, err := ix.Remove(ctx, []string{batch[3].Path, batch[50].Path, "not/there.png"})
	if err != nil || n != 2 {
		t.Fatalf("Remove: %d, %v", n, err)
	}
	// A replaced record and a new one reuse the freed slots.
	repl := items(rng, "img/", 1)
	repl[0].Path = batch[7].Path
	more := items(rng, "new/", 2)
	if err := ix.Add(ctx, append(repl, more...)); err != nil {
		t.Fatal(err)
	}
	if st := ix.Stats(); st.Images != 100 || st.Slots != 101 || st.FreeSlots != 1 {
		t.Fatalf("stats %+v", st)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}

	ro, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if m, ok := ro.Model(); !ok || m != testModel {
		t.Fatalf("model %+v %v", m, ok)
	}
	e, ok, err := ro.Lookup(batch[7].Path)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	emb, _ := ro.Embedding(e)
	if !slices.Equal(emb, repl[0].Embedding) {
		t.Error("the replaced record does not hold the new embedding")
	}
	feat, _ := ro.Features(e)
	for i, v := range feat {
		if math.Abs(float64(v-repl[0].Features[i])) > 1e-3*math.Abs(float64(v))+1e-7 {
			t.Fatalf("feature %d: %g, stored %g", i, v, repl[0].Features[i])
		}
	}
	if _, ok, _ := ro.Lookup(batch[3].Path); ok {
		t.Error("a removed record is still there")
	}
	queries := [][]float32{unit(rng, testModel.Dim), unit(rng, testModel.Dim), batch[10].Embedding}
	for _, k := range []int{1, 5, 100, 500} {
		got, err := ro.Search(ctx, queries, k)
		if err != nil {
			t.Fatal(err)
		}
		for q := range queries {
			want := bruteForce(t, ro, queries[q])
			want = want[:min(k, len(want))]
			if !slices.Equal(got[q], want) {
				t.Fatalf("k %d query %d: got %v, want %v", k, q, got[q][:min(3, len(got[q]))], want[:min(3, len(want))])
			}
		}
	}
	if err := ro.Add(ctx, more); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Add on a read-only index: %v", err)
	}
}

// TestLocking: one writer at a time; readers alongside the writer, seeing
// each batch once it is committed; a writer's commit waits for a reader
// that holds the database.
func TestLocking(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewSource(9))
	dir := filepath.Join(t.TempDir(), "x"+Extension)
	ix := create(t, dir, false)
	defer ix.Close()
	start := time.Now()
	_, err := Open(ctx, dir, Options{Write: true, Wait: 200 * time.Millisecond})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir) {
		t.Errorf("second writer: %v", err)
	}
	if time.Since(start) < 150*time.Millisecond {
		t.Error("the second writer did not wait")
	}
	r1, err := Open(ctx, dir, Options{Wait: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("reader during a write: %v", err)
	}
	defer r1.Close()
	q := unit(rng, testModel.Dim)
	all := items(rng, "w/", 30)
	for n := 10; n <= 30; n += 10 {
		if err := ix.Add(ctx, all[n-10:n]); err != nil {
			t.Fatal(err)
		}
		res, err := r1.Search(ctx, [][]float32{q}, 100)
		if err != nil || len(res[0]) != n {
			t.Fatalf("reader after %d images committed: %d results, %v", n, len(res[0]), err)
		}
	}
	if n, _ := ix.Remove(ctx, []string{all[0].Path}); n != 1 {
		t.Fatal("remove")
	}
	if res, _ := r1.Search(ctx, [][]float32{q}, 100); len(res[0]) != 29 || r1.Len() != 29 {
		t.Fatalf("reader after a removal: %d results, Len %d", len(res[0]), r1.Len())
	}
	// A record read before it was replaced is refused, not misread.
	e, _, _ := r1.Lookup(all[1].Path)
	repl := items(rng, "w/", 1)
	repl[0].Path = all[1].Path
	if err := ix.Add(ctx, repl); err != nil {
		t.Fatal(err)
	}
	if _, err := r1.Embedding(e); err == nil {
		t.Error("Embedding of a replaced record")
	}
	// A reader holding the database delays a commit; it does not break it.
	done := make(chan error, 1)
	first := true
	err = r1.Entries(ctx, func(Entry) error {
		if first {
			first = false
			go func() { done <- ix.Add(ctx, items(rng, "late/", 1)) }()
			time.Sleep(300 * time.Millisecond)
			select {
			case err := <-done:
				t.Errorf("the commit did not wait for the reader: %v", err)
			default:
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the commit after the reader: %v", err)
	}
	ix.Close()
	r2, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatalf("two readers: %v", err)
	}
	defer r2.Close()
	if r2.Len() != 30 {
		t.Errorf("after the late commit: %d images", r2.Len())
	}
}

func TestBadIndexes(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewSource(2))
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file.blipidx")
	os.WriteFile(file, []byte("hello"), 0o666)
	empty := filepath.Join(tmp, "empty.blipidx")
	os.Mkdir(empty, 0o777)
	junk := filepath.Join(tmp, "junk.blipidx")
	os.Mkdir(junk, 0o777)
	os.WriteFile(filepath.Join(junk, dbName), []byte(strings.Repeat("not a database ", 1000)), 0o666)
	other := filepath.Join(tmp, "other.blipidx")
	os.Mkdir(other, 0o777)
	db, err := bolt.Open(filepath.Join(other, dbName), 0o666, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("something")); return err })
	db.Close()
	for _, c := range []struct {
		dir  string
		want error
	}{
		{file, ErrNotIndex}, {empty, ErrNotIndex}, {junk, ErrNotIndex}, {other, ErrNotIndex},
		{filepath.Join(tmp, "missing.blipidx"), os.ErrNotExist},
	} {
		_, err := Open(ctx, c.dir, Options{})
		if !errors.Is(err, c.want) && !(c.want == os.ErrNotExist && err != nil && strings.Contains(err.Error(), "no such file")) {
			t.Errorf("%s: %v, want %v", c.dir, err, c.want)
		} else if err == nil || !strings.Contains(err.Error(), c.dir) {
			t.Errorf("%s: error %v does not name it", c.dir, err)
		}
	}

	// Newer format, truncated vectors, another model.
	dir := filepath.Join(tmp, "good.blipidx")
	ix := create(t, dir, false)
	if err := ix.Add(ctx, items(rng, "", 10)); err != nil {
		t.Fatal(err)
	}
	ix.Close()
	ix, err = Open(ctx, dir, Options{Write: true})
	if err != nil {
		t.Fatal(err)
	}
	other2 := testModel
	other2.ID = "another"
	if err := ix.SetModel(ctx, other2); !errors.Is(err, ErrModel) || !strings.Contains(err.Error(), "--model tiny") {
		t.Errorf("another model: %v", err)
	}
	ix.Close()
	db, _ = bolt.Open(filepath.Join(dir, dbName), 0o666, nil)
	db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put(kFormat, []byte("2")) })
	db.Close()
	if _, err := Open(ctx, dir, Options{}); !errors.Is(err, ErrNewerFormat) {
		t.Errorf("newer format: %v", err)
	}
	db, _ = bolt.Open(filepath.Join(dir, dbName), 0o666, nil)
	db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put(kFormat, []byte("1")) })
	db.Close()
	if err := os.Truncate(filepath.Join(dir, quantName), 5*int64(testModel.Dim)+7); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, dir, Options{}); !errors.Is(err, ErrTruncated) {
		t.Errorf("truncated: %v", err)
	}
	// A truncated database file, at several lengths.
	for _, size := range []int64{0, 100, 4096, 4096 * 3, 4096 * 5} {
		dir := filepath.Join(tmp, "db"+strconv.FormatInt(size, 10)+Extension)
		ix := create(t, dir, false)
		if err := ix.Add(ctx, items(rng, "", 300)); err != nil {
			t.Fatal(err)
		}
		ix.Close()
		os.Truncate(filepath.Join(dir, dbName), size)
		ix, err := Open(ctx, dir, Options{})
		if err == nil {
			_, err = ix.Search(ctx, [][]float32{unit(rng, testModel.Dim)}, 5)
			ix.Close()
		}
		if !errors.Is(err, ErrNotIndex) {
			t.Errorf("database truncated to %d bytes: %v", size, err)
		}
	}
}

// TestFullDisk fails the writes of a batch midway and checks that the
// index is as it was before the batch, and that the next batch succeeds.
func TestFullDisk(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewSource(3))
	dir := filepath.Join(t.TempDir(), "x"+Extension)
	ix := create(t, dir, true)
	defer ix.Close()
	first := items(rng, "a/", 20)
	if err := ix.Add(ctx, first); err != nil {
		t.Fatal(err)
	}
	q := unit(rng, testModel.Dim)
	before, _ := ix.Search(ctx, [][]float32{q}, 100)
	writes := 0
	writeHook = func(string) error {
		if writes++; writes > 7 {
			return errors.New("no space left on device")
		}
		return nil
	}
	defer func() { writeHook = nil }()
	second := items(rng, "b/", 20)
	second[0].Path = first[0].Path // a replacement too
	err := ix.Add(ctx, second)
	if err == nil || !strings.Contains(err.Error(), "no space left") || !strings.Contains(err.Error(), "as before") {
		t.Fatalf("full disk: %v", err)
	}
	writeHook = nil
	ix.Close()
	ix, err = Open(ctx, dir, Options{Write: true})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := ix.Search(ctx, [][]float32{q}, 100)
	if ix.Len() != 20 || !slices.Equal(before[0], after[0]) {
		t.Fatalf("after a failed batch: %d images, search changed: %v", ix.Len(), !slices.Equal(before[0], after[0]))
	}
	if err := ix.Add(ctx, second); err != nil {
		t.Fatal(err)
	}
	if ix.Len() != 39 {
		t.Fatalf("Len %d after the retry", ix.Len())
	}
}

// TestConcurrentReaders searches from several goroutines while another
// adds batches.
func TestConcurrentReaders(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewSource(4))
	ix := create(t, filepath.Join(t.TempDir(), "x"+Extension), false)
	defer ix.Close()
	all := items(rng, "c/", 200)
	if err := ix.Add(ctx, all[:20]); err != nil {
		t.Fatal(err)
	}
	q := unit(rng, testModel.Dim)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				res, err := ix.Search(ctx, [][]float32{q}, 10)
				if err != nil || len(res[0]) != 10 {
					errs <- err
					return
				}
			}
		}()
	}
	for i := 20; i < 200; i += 20 {
		if err := ix.Add(ctx, all[i:i+20]); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestKeys(t *testing.T) {
	tmp := t.TempDir()
	ix := create(t, filepath.Join(tmp, "x"+Extension), false)
	defer ix.Close()
	k, _ := ix.Key(filepath.Join(tmp, "photos", "a.jpg"))
	if k != "photos/a.jpg" || ix.Resolve(k) != filepath.Join(tmp, "photos", "a.jpg") {
		t.Errorf("below the index: %q → %q", k, ix.Resolve(k))
	}
	k, _ = ix.Key("/elsewhere/b.jpg")
	if k != "/elsewhere/b.jpg" || ix.Resolve(k) != k {
		t.Errorf("outside: %q", k)
	}
	k, _ = ix.Key(filepath.Join(tmp, "..dots", "c.jpg"))
	if k != "..dots/c.jpg" {
		t.Errorf("a name starting with dots: %q", k)
	}
}
