package eval

import (
	"container/heap"
	"context"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
)

// candidates are one row's top k by ITC: columns ascending, with their
// sims.
type candidates struct {
	cols []int32
	sims []float32
}

// sim is the ITC score of an image and a text embedding, both unit
// vectors: their dot product, accumulated in float64 and rounded once, so
// that it does not depend on how the work is split.
func sim(a, b []float32) float32 {
	var s0, s1, s2, s3 float64
	n := min(len(a), len(b))
	k := 0
	for ; k+4 <= n; k += 4 {
		s0 += float64(a[k]) * float64(b[k])
		s1 += float64(a[k+1]) * float64(b[k+1])
		s2 += float64(a[k+2]) * float64(b[k+2])
		s3 += float64(a[k+3]) * float64(b[k+3])
	}
	for ; k < n; k++ {
		s0 += float64(a[k]) * float64(b[k])
	}
	return float32((s0 + s1) + (s2 + s3))
}

// entry is a candidate column in a top-k heap.
type entry struct {
	col int32
	sim float32
}

// worse orders candidates: a lower sim is worse, and among equal sims the
// higher column (the first k by sim, ties to the lower column, are kept).
func worse(a, b entry) bool {
	if a.sim != b.sim {
		return a.sim < b.sim
	}
	return a.col > b.col
}

// minHeap keeps the k best entries with the worst on top.
type minHeap []entry

func (h minHeap) Len() int           { return len(h) }
func (h minHeap) Less(i, j int) bool { return worse(h[i], h[j]) }
func (h minHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *minHeap) Push(x any)        { *h = append(*h, x.(entry)) }
func (h *minHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// topK returns the k columns of highest sim of query against keys
// (ties to the lower column), columns ascending.
func topK(query []float32, keys [][]float32, k int) candidates {
	h := make(minHeap, 0, k)
	for j, key := range keys {
		e := entry{int32(j), sim(query, key)}
		if len(h) < k {
			heap.Push(&h, e)
		} else if worse(h[0], e) {
			h[0] = e
			heap.Fix(&h, 0)
		}
	}
	sort.Slice(h, func(a, b int) bool { return h[a].col < h[b].col })
	c := candidates{cols: make([]int32, len(h)), sims: make([]float32, len(h))}
	for i, e := range h {
		c.cols[i], c.sims[i] = e.col, e.sim
	}
	return c
}

// itcTopK is the ITC stage: for every query row, its k candidates among
// keys, computed in parallel. done is called with the number of rows
// finished since the last call.
func itcTopK(ctx context.Context, queries, keys [][]float32, k int, done func(int)) ([]candidates, error) {
	out := make([]candidates, len(queries))
	var next atomic.Int64
	var wg sync.WaitGroup
	workers := max(1, min(runtime.GOMAXPROCS(0), len(queries)))
	var mu sync.Mutex
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(queries) {
					return
				}
				out[i] = topK(queries[i], keys, k)
				mu.Lock()
				done(1)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
