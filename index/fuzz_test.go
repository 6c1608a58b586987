package index

import (
	"context"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpen damages an index's database (beside valid vector files) and
// checks that opening, listing and searching it return an error or a
// result, never a panic or a fault. The fuzz input replaces the start of
// the file (bbolt's two checksummed meta pages) and may cut it short. Damage deep in the B+tree pages is not fuzzed:
// bbolt does not check their structure when it reads them (a page that
// points back to its parent makes a cursor loop), see README.md.
func FuzzOpen(f *testing.F) {
	ctx := context.Background()
	rng := rand.New(rand.NewSource(1))
	seedDir := filepath.Join(f.TempDir(), "seed"+Extension)
	ix, err := Open(ctx, seedDir, Options{Write: true, Create: true})
	if err != nil {
		f.Fatal(err)
	}
	if err := ix.SetModel(ctx, testModel); err != nil {
		f.Fatal(err)
	}
	if err := ix.Add(ctx, items(rng, "p/", 20)); err != nil {
		f.Fatal(err)
	}
	ix.Close()
	db, err := os.ReadFile(filepath.Join(seedDir, dbName))
	if err != nil {
		f.Fatal(err)
	}
	const head = 2 * 4096
	f.Add(db[:head], uint32(len(db)))
	f.Add(db[:head], uint32(len(db)/2))
	f.Add([]byte("not a database"), uint32(len(db)))
	for _, off := range []int{16, 100, 4096 + 64, 4096 + 200} {
		c := append([]byte(nil), db[:head]...)
		c[off] ^= 0xff
		f.Add(c, uint32(len(db)))
	}
	vectors := map[string][]byte{}
	for _, n := range []string{quantName, boundName, fullName} {
		if vectors[n], err = os.ReadFile(filepath.Join(seedDir, n)); err != nil {
			f.Fatal(err)
		}
	}
	q := unit(rng, testModel.Dim)
	f.Fuzz(func(t *testing.T, start []byte, size uint32) {
		data := append([]byte(nil), db...)
		copy(data, start[:min(len(start), head)])
		data = data[:min(int(size), len(data))]
		dir := filepath.Join(t.TempDir(), "f"+Extension)
		os.Mkdir(dir, 0o777)
		os.WriteFile(filepath.Join(dir, dbName), data, 0o666)
		for n, b := range vectors {
			os.WriteFile(filepath.Join(dir, n), b, 0o666)
		}
		ix, err := Open(ctx, dir, Options{})
		if err != nil {
			return
		}
		defer ix.Close()
		ix.Entries(ctx, func(e Entry) error {
			ix.Embedding(e)
			return nil
		})
		ix.Search(ctx, [][]float32{q}, 5)
	})
}
