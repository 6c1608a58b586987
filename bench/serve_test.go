package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blipcuda/blipcuda"
	"github.com/blipcuda/blipcuda/batcher"
	"github.com/blipcuda/blipcuda/model"
	"github.com/blipcuda/blipcuda/server"
	"github.com/blipcuda/blipcuda/tokenizer"
)

// The serving load test: N concurrent clients, each sending one image ×
// eight captions to POST /v1/match of an in-process server on loopback,
// with batching on (--max-batch 32, --batch-wait 2ms) and off
// (--max-batch 1). Each client has its own image (a 320×240 PNG of
// coloured noise and shapes, decoded and resized by the server) and its
// own captions, so nothing is shared by accident. b.N requests are sent in
// all, split over the clients; every answer is checked for a full 1×8
// document.
//
// BLIPCUDA_SERVE_MODEL picks the model: "tiny" (the default: the tiny-base
// test checkpoint, where per-request overheads dominate) or "base" (the
// real base architecture with random weights and the BERT tokenizer of the
// test checkpoint: compute-bound; run it with few requests on a CPU).
// BLIPCUDA_SERVE_CLIENTS lists the client counts (default 1,4,16,64).
//
// Run: go test -run '^$' -bench Serve -benchtime 128x ./bench/
//
// Reported per run: req/s, p50 and p99 latency (ms), the process's CPU
// time per request (user + system, clients included: on a machine shared
// with other work, it says what throughput a dedicated machine would get
// better than wall time does), and the mean requests per batch; the
// batch-size histogram is logged (-v).
func BenchmarkServe(b *testing.B) {
	m := serveModel(b)
	clients := []int{1, 4, 16, 64}
	if v := os.Getenv("BLIPCUDA_SERVE_CLIENTS"); v != "" {
		clients = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				b.Fatalf("BLIPCUDA_SERVE_CLIENTS=%q: want counts like 1,4,16", v)
			}
			clients = append(clients, n)
		}
	}
	for _, n := range clients {
		bodies := make([][]byte, n)
		for i := range bodies {
			bodies[i] = clientBody(b, i)
		}
		for _, batching := range []bool{false, true} {
			name := fmt.Sprintf("clients=%d/batching=%s", n, map[bool]string{true: "on", false: "off"}[batching])
			b.Run(name, func(b *testing.B) { runLoad(b, m, bodies, batching) })
		}
	}
}

func runLoad(b *testing.B, m *blipcuda.Model, bodies [][]byte, batching bool) {
	opts := batcher.Options{MaxBatch: 1, Wait: -1, QueueSize: 4096}
	if batching {
		opts = batcher.Options{MaxBatch: 32, Wait: 2 * time.Millisecond, QueueSize: 4096}
	}
	var (
		mu    sync.Mutex
		sizes = map[int]int{}
	)
	opts.Observe = func(st batcher.Stats) {
		mu.Lock()
		sizes[st.Requests]++
		mu.Unlock()
	}
	srv, err := server.New(server.Config{Model: m, Batch: opts, Limits: server.Limits{RequestTimeout: 10 * time.Minute}})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler()) // 127.0.0.1
	defer func() { ts.Close(); srv.Close() }()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: len(bodies)}}
	var (
		next      atomic.Int64
		latencies = make([]time.Duration, b.N)
		wg        sync.WaitGroup
		failed    atomic.Value
	)
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for c := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					return
				}
				t0 := time.Now()
				if err := matchOnce(client, ts.URL, bodies[c]); err != nil {
					failed.Store(err)
					return
				}
				latencies[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	slices.Sort(latencies)
	q := func(p float64) float64 {
		return float64(latencies[min(len(latencies)-1, int(p*float64(len(latencies))))].Microseconds()) / 1000
	}
	batches, reqs := 0, 0
	var hist []string
	keys := make([]int, 0, len(sizes))
	for k := range sizes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		batches += sizes[k]
		reqs += k * sizes[k]
		hist = append(hist, fmt.Sprintf("%d:%d", k, sizes[k]))
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu_ms/req")
	b.ReportMetric(q(0.50), "p50_ms")
	b.ReportMetric(q(0.99), "p99_ms")
	if batches > 0 {
		b.ReportMetric(float64(reqs)/float64(batches), "req/batch")
	}
	b.Logf("N=%d: batch sizes (requests:batches) %s", b.N, strings.Join(hist, " "))
}

func matchOnce(client *http.Client, url string, body []byte) error {
	resp, err := client.Post(url+"/v1/match", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var doc server.MatchResponse
	if resp.StatusCode != 200 || json.Unmarshal(data, &doc) != nil || len(doc.ITMProb) != 1 || len(doc.ITMProb[0]) != 8 {
		return fmt.Errorf("status %d: %.200s", resp.StatusCode, data)
	}
	return nil
}

var words = strings.Fields("a the red blue green small large dog cat bird car boat house tree beach street " +
	"running sitting standing on in near with under two three people man woman child field water sky snow table")

// clientBody is client i's request: its own image and eight captions.
func clientBody(b *testing.B, i int) []byte {
	r := rand.New(rand.NewPCG(uint64(i), 7))
	img := image.NewRGBA(image.Rect(0, 0, 320, 240))
	for y := 0; y < 240; y++ {
		for x := 0; x < 320; x++ {
			img.Set(x, y, color.RGBA{uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256)), 255})
		}
	}
	for k := 0; k < 6; k++ { // shapes over the noise
		c := color.RGBA{uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256)), 255}
		x0, y0 := r.IntN(280), r.IntN(200)
		for y := y0; y < y0+40; y++ {
			for x := x0; x < x0+40; x++ {
				img.Set(x, y, c)
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		b.Fatal(err)
	}
	texts := make([]string, 8)
	for j := range texts {
		n := 6 + r.IntN(10)
		w := make([]string, n)
		for k := range w {
			w[k] = words[r.IntN(len(words))]
		}
		texts[j] = strings.Join(w, " ")
	}
	body, err := json.Marshal(map[string]any{"images": []string{base64.StdEncoding.EncodeToString(buf.Bytes())}, "texts": texts})
	if err != nil {
		b.Fatal(err)
	}
	return body
}

var (
	serveOnce sync.Once
	served    *blipcuda.Model
	serveErr  error
)

func serveModel(b *testing.B) *blipcuda.Model {
	serveOnce.Do(func() {
		dir := filepath.Join("..", "testdata", "models", "tiny-base")
		switch v := os.Getenv("BLIPCUDA_SERVE_MODEL"); v {
		case "", "tiny":
			served, serveErr = blipcuda.Load(context.Background(), dir)
		case "base":
			cfg := model.BaseConfig()
			tok, err := tokenizer.Load(dir)
			if err != nil {
				serveErr = err
				return
			}
			served, serveErr = blipcuda.New(cfg, model.RandomWeights(cfg, 1), tok)
		default:
			serveErr = fmt.Errorf("BLIPCUDA_SERVE_MODEL=%q: want tiny or base", v)
		}
	})
	if serveErr != nil {
		b.Fatal(serveErr)
	}
	return served
}
