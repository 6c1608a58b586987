package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// served is a running `blipcuda serve`.
type served struct {
	cmd    *exec.Cmd
	url    string
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan struct{} // closed when stderr ends
}

func (s *served) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

var listening = regexp.MustCompile(`listening(?: addr=|".*"addr":")([^"\s]+)`)

// startServe starts `blipcuda serve` on a free loopback port with the tiny
// model and waits until it listens.
func startServe(t *testing.T, args ...string) *served {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("SIGTERM: not on Windows")
	}
	base := []string{"serve", "--device", "cpu", "--addr", "127.0.0.1:0"}
	if !slices.Contains(args, "--index") {
		base = append(base, "--model", filepath.Join(tinyDir(), "tiny-base"))
	}
	cmd, _, _ := binCmd(t, runOpts{}, append(base, args...)...)
	cmd.Stderr = nil
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &served{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			s.mu.Lock()
			s.stderr.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		s.url = "http://" + a
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("serve did not start:\n%s", s.log())
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return s
}

// stop sends SIGTERM and returns the exit status.
func (s *served) stop(t *testing.T) int {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-s.done
	err := s.cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

func tinyDir() string { return filepath.Join("..", "..", "testdata", "models") }

// matchBody is 1 image × 8 captions.
func matchBody(t testing.TB) []byte {
	img, err := os.ReadFile(filepath.Join(tinyDir(), "images", "scene.png"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"images": []string{base64.StdEncoding.EncodeToString(img)},
		"texts": []string{"a red square", "two cats", "a beach at sunset", "blue stripes", "waves", "a dog", "a room", "blocks"}})
	return body
}

// outcome classifies one request sent while the server shuts down.
type outcome int

const (
	answered  outcome = iota // 200 with a complete document
	cancelled                // 503: cancelled by the drain timeout
	notTaken                 // the connection was refused or reset before the server took it
	broken                   // anything else: an accepted request left unanswered
)

func send(client *http.Client, url string, body []byte) (outcome, string) {
	resp, err := client.Post(url+"/v1/match", "application/json", bytes.NewReader(body))
	if err != nil {
		// Refused, reset, or closed before any answer: a connection the
		// kernel queued but the server never accepted ends this way too.
		// Whether the server took it is settled by its access log (see
		// sigtermUnderLoad).
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) {
			return notTaken, ""
		}
		return broken, err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return broken, "reading the answer: " + err.Error()
	}
	switch resp.StatusCode {
	case 200:
		var doc struct {
			ITMProb [][]float32 `json:"itm_prob"`
		}
		if err := json.Unmarshal(b, &doc); err != nil || len(doc.ITMProb) != 1 || len(doc.ITMProb[0]) != 8 {
			return broken, fmt.Sprintf("incomplete answer: %s", b)
		}
		return answered, ""
	case 503:
		return cancelled, ""
	}
	return broken, fmt.Sprintf("status %d: %s", resp.StatusCode, b)
}

// load sends requests from n clients until stop is closed, counting
// outcomes; after stop each client sends nothing more.
func load(url string, n int, body []byte, stop <-chan struct{}) (counts *[4]atomic.Int64, problems chan string, wait func()) {
	counts = new([4]atomic.Int64)
	problems = make(chan string, 1000)
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 60 * time.Second}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				o, why := send(client, url, body)
				counts[o].Add(1)
				if o == broken {
					problems <- why
				}
				if o == notTaken {
					return
				}
			}
		}()
	}
	return counts, problems, wg.Wait
}

// sigtermUnderLoad has n clients send requests for d, then sends SIGTERM;
// it fails the test on a request left unanswered or an exit status other
// than 0, and returns the outcomes and the number answered before SIGTERM.
func sigtermUnderLoad(t *testing.T, s *served, n int, d time.Duration) (*[4]atomic.Int64, int64) {
	t.Helper()
	stop := make(chan struct{})
	counts, problems, wait := load(s.url, n, matchBody(t), stop)
	time.Sleep(d)
	before := counts[answered].Load()
	code := s.stop(t)
	close(stop)
	wait()
	close(problems)
	for p := range problems {
		t.Errorf("request left unanswered: %s", p)
	}
	if code != 0 {
		t.Errorf("exit %d after SIGTERM\n%s", code, s.log())
	}
	// Every request the server took is in its access log: as many as the
	// clients received answers for, so none it took went unanswered.
	taken := int64(strings.Count(s.log(), "route=/v1/match status="))
	if got := counts[answered].Load() + counts[cancelled].Load(); taken != got {
		t.Errorf("the server logged %d requests, the clients received %d answers", taken, got)
	}
	return counts, before
}

// TestServeShutdown: SIGTERM while 16 clients keep the server busy: every
// request the server took is answered (the rest are refused at connect),
// and the process exits 0.
func TestServeShutdown(t *testing.T) {
	s := startServe(t, "--drain-timeout", "30s")
	counts, before := sigtermUnderLoad(t, s, 16, 1500*time.Millisecond)
	if before == 0 || counts[answered].Load() <= before {
		t.Errorf("answered %d before SIGTERM, %d in all: no request was in flight at SIGTERM", before, counts[answered].Load())
	}
	if counts[cancelled].Load() != 0 {
		t.Errorf("%d requests cancelled within a 30 s drain", counts[cancelled].Load())
	}
	for _, want := range []string{"shutting down", "stopped", "route=/v1/match status=200"} {
		if !strings.Contains(s.log(), want) {
			t.Errorf("log lacks %q:\n%s", want, s.log())
		}
	}
	t.Logf("answered %d (%d before SIGTERM), refused %d", counts[answered].Load(), before, counts[notTaken].Load())
}

// TestServeDrainTimeout: with a drain timeout too short for the work in
// flight, the requests still running are answered 503 and the process
// still exits 0.
func TestServeDrainTimeout(t *testing.T) {
	s := startServe(t, "--drain-timeout", "1ms", "--max-batch", "1")
	counts, _ := sigtermUnderLoad(t, s, 32, time.Second)
	if counts[cancelled].Load() == 0 {
		t.Errorf("no request was cancelled by a 1 ms drain timeout (answered %d)", counts[answered].Load())
	}
	if !strings.Contains(s.log(), "drain timeout passed") {
		t.Errorf("log lacks the drain timeout:\n%s", s.log())
	}
}

func TestServeFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--max-batch", "0"}, {"--queue", "-1"}, {"--max-body", "lots"}, {"--log-format", "xml"},
		{"--request-timeout", "0s"}, {"--device", "tpu"},
	} {
		r := run(t, runOpts{}, append([]string{"serve", "--model", filepath.Join(tinyDir(), "tiny-base")}, args...)...)
		if r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%v", args, r.code, exitUsage, r)
		}
	}
	// A port in use fails at once, naming it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := run(t, runOpts{}, "serve", "--model", filepath.Join(tinyDir(), "tiny-base"), "--addr", ln.Addr().String())
	wantFail(t, r, exitFailure, "--addr "+ln.Addr().String())
}

// TestServeJSONLog: --log-format json writes one JSON object per line,
// access log lines included, and --api-key guards the routes.
func TestServeJSONLog(t *testing.T) {
	s := startServe(t, "--log-format", "json", "--api-key", "k3y")
	req, _ := http.NewRequest(http.MethodGet, s.url+"/v1/models", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("without the key: %d", resp.StatusCode)
	}
	req.Header.Set("Authorization", "Bearer k3y")
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("with the key: %d", resp.StatusCode)
	}
	if code := s.stop(t); code != 0 {
		t.Errorf("exit %d", code)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(s.log()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("not JSON: %s", line)
			continue
		}
		if rec["msg"] == "request" {
			n++
			if rec["route"] != "/v1/models" || rec["status"] == nil {
				t.Errorf("access log line: %s", line)
			}
		}
	}
	if n != 2 {
		t.Errorf("%d access log lines, want 2:\n%s", n, s.log())
	}
}

// TestServeSlowClient: a client that stops sending mid-body is cut off by
// --read-timeout, and the server keeps serving.
func TestServeSlowClient(t *testing.T) {
	s := startServe(t, "--read-timeout", "500ms")
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "POST /v1/match HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"texts\": [")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	reply, _ := io.ReadAll(conn) // ends when the server closes the connection
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a stalled body held the connection %v", d)
	}
	if len(reply) > 0 && !strings.HasPrefix(string(reply), "HTTP/1.1 408") {
		t.Errorf("answer to a stalled body: %.200s", reply)
	}
	resp, err := http.Get(s.url + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after a slow client: %v %v", resp, err)
	}
	resp.Body.Close()
	if code := s.stop(t); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestServeIndex: an index built by `blipcuda index` served by `serve
// --index` (the model taken from the index): POST /v1/search gives the
// images, order and scores `blipcuda search` gives, the images are served,
// and the page is at /.
func TestServeIndex(t *testing.T) {
	tmp := t.TempDir()
	genImages(t, filepath.Join(tmp, "photos"), 12, 3)
	idx := filepath.Join(tmp, "photos.blipidx")
	mustRun(t, runOpts{}, "index", filepath.Join(tmp, "photos"), "-o", idx, "--model", tinyBase)
	const q = "a red square on a blue field"
	var cli struct {
		Queries []struct {
			Results []struct {
				Image string  `json:"image"`
				Score float32 `json:"score"`
				ITC   float32 `json:"itc"`
			} `json:"results"`
		} `json:"queries"`
	}
	r := mustRun(t, runOpts{}, "search", "--index", idx, "--format", "json", "--top", "5", q)
	if err := json.Unmarshal([]byte(r.stdout), &cli); err != nil || len(cli.Queries) != 1 {
		t.Fatalf("search JSON: %v\n%s", err, r.stdout)
	}

	s := startServe(t, "--index", idx) // no --model: the index's
	body, _ := json.Marshal(map[string]any{"query": q, "top_k": 5})
	resp, err := http.Post(s.url+"/v1/search", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Results []struct {
			Path     string  `json:"path"`
			ImageURL string  `json:"image_url"`
			Score    float32 `json:"score"`
			ITC      float32 `json:"itc"`
		} `json:"results"`
	}
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(got.Results) != 5 {
		t.Fatalf("/v1/search: %d %v %+v", resp.StatusCode, err, got)
	}
	// The same scores, to the tolerances TestSearchEndToEnd holds search to
	// against Match: bit-identical on the CPU, but on a CUDA backend the
	// server's batches (its query encoded with the batcher's text batch)
	// take other GEMM paths than the command's, which differ in the last
	// bits (here ~1e-6 on the ITM logit, ~1e-8 on the cosine).
	for i, g := range got.Results {
		c := cli.Queries[0].Results[i]
		if filepath.Base(g.Path) != filepath.Base(c.Image) || !near(g.Score, c.Score, 1e-5) || !near(g.ITC, c.ITC, 1e-6) {
			t.Errorf("result %d: serve %s %v %v, search %s %v %v", i, g.Path, g.Score, g.ITC, c.Image, c.Score, c.ITC)
		}
	}
	for _, u := range []string{got.Results[0].ImageURL, "/"} {
		resp, err := http.Get(s.url + u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", u, resp.StatusCode)
		}
	}
	if code := s.stop(t); code != 0 {
		t.Errorf("exit %d", code)
	}
	// A missing index is refused at start, naming it.
	wantFail(t, run(t, runOpts{}, "serve", "--index", filepath.Join(tmp, "none.blipidx"), "--model", tinyBase, "--addr", "127.0.0.1:0"), exitFailure, "none.blipidx")
}
