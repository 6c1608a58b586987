package bench

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/blipcuda/blipcuda"
	"github.com/blipcuda/blipcuda/index"
	"github.com/blipcuda/blipcuda/model"
)

// Retrieval benchmarks (issue 14, point 5): the ITC top-k pass over stored
// embeddings, opening an index, and what storing costs next to encoding.
// Embeddings are random unit vectors of the real size (256), features
// random values of the base model's shape (577×768); never zeros.

const embedDim = 256

// unitRows returns n random unit vectors of embedDim values.
func unitRows(n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]float32, n*embedDim)
	for i := 0; i < n; i++ {
		row := out[i*embedDim : (i+1)*embedDim]
		var s float64
		for j := range row {
			v := r.NormFloat64()
			row[j] = float32(v)
			s += v * v
		}
		inv := 1 / math.Sqrt(s)
		for j := range row {
			row[j] = float32(float64(row[j]) * inv)
		}
	}
	return out
}

var (
	matrices   = map[int]blipcuda.EmbeddingMatrix{}
	matricesMu sync.Mutex
)

// matrix returns a cached collection of n embeddings, float16 and float32.
func matrix(n int) blipcuda.EmbeddingMatrix {
	matricesMu.Lock()
	defer matricesMu.Unlock()
	if e, ok := matrices[n]; ok {
		return e
	}
	full := unitRows(n, uint64(n))
	e := blipcuda.EmbeddingMatrix{Dim: embedDim, Quant: make([]int8, len(full)), Bounds: make([]float32, 2*n), Full: full}
	blipcuda.QuantizeRows(e.Quant, e.Bounds, full, embedDim)
	matrices[n] = e
	return e
}

// queries returns nq unit queries, each a stored row plus noise, so that
// every query has near neighbours as a real text query does.
func queries(e blipcuda.EmbeddingMatrix, nq int) [][]float32 {
	r := rand.New(rand.NewPCG(99, uint64(nq)))
	noise := unitRows(nq, 5)
	out := make([][]float32, nq)
	for q := range out {
		row := r.IntN(e.Rows())
		v := make([]float32, embedDim)
		var s float64
		for j := range v {
			v[j] = e.Full[row*embedDim+j] + 0.8*noise[q*embedDim+j]
			s += float64(v[j]) * float64(v[j])
		}
		for j := range v {
			v[j] = float32(float64(v[j]) / math.Sqrt(s))
		}
		out[q] = v
	}
	return out
}

// BenchmarkTopK: ITC top-k (k = 128) of text queries over n stored
// embeddings: one int8 pass over the matrix (AVX2/FMA) shared by the
// queries of a call, then the exact float32 rescoring of the candidates
// the error bounds cannot rule out. ms/query is the wall time per query,
// cpu-ms/query the CPU time (both cores).
func BenchmarkTopK(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{100_000, 1_000_000} {
		for _, nq := range []int{1, 16} {
			b.Run(fmt.Sprintf("n=%d/queries=%d", n, nq), func(b *testing.B) {
				e := matrix(n)
				qs := queries(e, nq)
				b.SetBytes(int64(n * embedDim))
				b.ResetTimer()
				c0 := cpuSeconds()
				for b.Loop() {
					hits, err := blipcuda.TopK(ctx, e, qs, 128)
					if err != nil || len(hits[0]) != 128 {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*nq)/1e6, "ms/query")
				b.ReportMetric((cpuSeconds()-c0)*1e3/float64(b.N*nq), "cpu-ms/query")
			})
		}
	}
}

// buildIndex writes a synthetic index of n images (random embeddings, in
// batches of 1000) into dir.
func buildIndex(b *testing.B, dir string, n int) {
	ctx := context.Background()
	ix, err := index.Open(ctx, dir, index.Options{Write: true, Create: true})
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	cfg := model.BaseConfig()
	if err := ix.SetModel(ctx, index.Model{Name: "base-coco", ID: "Salesforce/blip-itm-base-coco", ConfigHash: "synthetic",
		Dim: embedDim, Tokens: cfg.NumImageTokens(), Width: cfg.Vision.HiddenSize}); err != nil {
		b.Fatal(err)
	}
	const batch = 1000
	for first := 0; first < n; first += batch {
		emb := unitRows(batch, uint64(first))
		items := make([]index.Item, min(batch, n-first))
		for i := range items {
			items[i] = index.Item{Entry: index.Entry{Path: fmt.Sprintf("photos/%03d/img_%07d.jpg", (first+i)/1000, first+i),
				Size: 123456, ModTime: time.Unix(1.7e9, 0), SHA256: fmt.Sprintf("%064x", first+i)},
				Embedding: emb[i*embedDim : (i+1)*embedDim]}
		}
		if err := ix.Add(ctx, items); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIndexOpen: opening a 100,000-image index read-only (the lock,
// the database, its metadata and free list, the memory maps) and closing
// it; /search adds a first text query (k = 128) with its records. It also
// reports the index's size on disk per image (paths like
// photos/042/img_0042123.jpg).
func BenchmarkIndexOpen(b *testing.B) {
	ctx := context.Background()
	dir := filepath.Join(b.TempDir(), "synthetic.blipidx")
	buildIndex(b, dir, 100_000)
	q := unitRows(1, 42)
	for _, search := range []bool{false, true} {
		name := "open"
		if search {
			name = "open+search"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				ix, err := index.Open(ctx, dir, index.Options{})
				if err != nil {
					b.Fatal(err)
				}
				if ix.Len() != 100_000 {
					b.Fatalf("%d images", ix.Len())
				}
				if search {
					if res, err := ix.Search(ctx, [][]float32{q}, 128); err != nil || len(res[0]) != 128 {
						b.Fatal(err)
					}
				}
				st := ix.Stats()
				ix.Close()
				b.ReportMetric(float64(st.Bytes)/float64(st.Images), "bytes/image")
			}
		})
	}
}

// BenchmarkIndexStore: what `blipcuda index` does per image beyond what
// `blipcuda embed` does (both decode and encode every image): hash the
// file (a 200 kB JPEG-sized file here) and store the image's record and
// vectors, in transactions of 64 images synced to disk; with /features
// also the base model's 577×768 features in float16. ms/image compares
// with BenchmarkImageEncode/base (the encode both commands pay).
func BenchmarkIndexStore(b *testing.B) {
	ctx := context.Background()
	cfg := model.BaseConfig()
	feat := cfg.NumImageTokens() * cfg.Vision.HiddenSize
	tmp := b.TempDir()
	file := filepath.Join(tmp, "photo.jpg")
	data := make([]byte, 200_000)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		b.Fatal(err)
	}
	const batch = 64
	emb := unitRows(batch, 3)
	features := make([]float32, feat)
	for i := range features {
		features[i] = float32(r.NormFloat64())
	}
	for _, withFeatures := range []bool{false, true} {
		b.Run(fmt.Sprintf("features=%v", withFeatures), func(b *testing.B) {
			dir := filepath.Join(b.TempDir(), "x.blipidx")
			ix, err := index.Open(ctx, dir, index.Options{Write: true, Create: true, Features: withFeatures})
			if err != nil {
				b.Fatal(err)
			}
			defer ix.Close()
			if err := ix.SetModel(ctx, index.Model{Name: "base", ID: "base", ConfigHash: "x", Dim: embedDim,
				Tokens: cfg.NumImageTokens(), Width: cfg.Vision.HiddenSize}); err != nil {
				b.Fatal(err)
			}
			n := 0
			for b.Loop() {
				items := make([]index.Item, batch)
				for i := range items {
					f, err := os.Open(file)
					if err != nil {
						b.Fatal(err)
					}
					h := sha256.New()
					io.Copy(h, f)
					f.Close()
					items[i] = index.Item{Entry: index.Entry{Path: fmt.Sprintf("img_%08d.jpg", n), Size: 200_000,
						ModTime: time.Unix(1.7e9, 0), SHA256: fmt.Sprintf("%x", h.Sum(nil))}, Embedding: emb[i*embedDim : (i+1)*embedDim]}
					if withFeatures {
						items[i].Features = features
					}
					n++
				}
				if err := ix.Add(ctx, items); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch)/1e6, "ms/image")
		})
	}
}

// cpuSeconds returns the CPU time (user + system) this process has used:
// on a shared machine, the work done next to the wall time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
