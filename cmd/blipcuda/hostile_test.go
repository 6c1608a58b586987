package main

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests below give the command hostile files made by the test itself
// and check the exit status, the message and the memory the process used
// (its peak resident size, with an address-space limit as a safety net so
// that a regression fails the test instead of the machine).

// memLimitMiB is the address space the binary runs under; peakRSSMiB is
// what it may actually use to refuse a hostile input.
const (
	memLimitMiB = 2048
	peakRSSMiB  = 300
)

// runLimited runs the binary under `ulimit -v` and returns its result and
// peak resident size in MiB.
//
// The peak is measured by a probe (this test binary, started afresh with
// rssProbeEnv set) that runs the command and reports its child's peak. On
// Linux a process started straight from this one would not do: it is made
// with vfork semantics, sharing this process's memory until it execs, and
// exec records the peak of the memory it leaves, so the command's reported
// peak could be no less than this test process's own (hundreds of MiB once
// other tests have opened a CUDA device in it). The probe's own memory is
// small when it starts its child.
func runLimited(t *testing.T, o runOpts, args ...string) (result, int64) {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to set a memory limit with")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	peakFile := filepath.Join(t.TempDir(), "peak")
	cmd, stdout, stderr := binCmd(t, o, args...)
	cmd.Path = self
	cmd.Args = append([]string{self, sh, "-c", `ulimit -v ` + strconv.Itoa(memLimitMiB<<10) + ` && exec "$0" "$@"`, binPath}, args...)
	cmd.Env = append(cmd.Env, rssProbeEnv+"="+peakFile)
	r := runCmd(t, cmd, stdout, stderr)
	b, err := os.ReadFile(peakFile)
	if err != nil {
		t.Fatalf("the probe reported no peak: %v\n%v", err, r)
	}
	kib, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return r, kib >> 10
}

// rssProbeEnv names the file where rssProbe writes its child's peak
// resident size (KiB); set, it makes this test binary the probe.
const rssProbeEnv = "BLIPCUDA_TEST_RSS_PROBE"

// rssProbe runs os.Args[1:] with this process's standard streams, writes
// its peak resident size in KiB to the file named by rssProbeEnv, and
// returns its exit status.
func rssProbe() int {
	peakFile := os.Getenv(rssProbeEnv)
	os.Unsetenv(rssProbeEnv)
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		fmt.Fprintln(os.Stderr, "rss probe:", err)
		return 125
	}
	var kib int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		kib = ru.Maxrss // KiB on Linux
	}
	if err := os.WriteFile(peakFile, []byte(strconv.FormatInt(kib, 10)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "rss probe:", err)
		return 125
	}
	return code
}

// modelCopy copies tiny-base to a temporary directory, without the files
// named in skip.
func modelCopy(t *testing.T, skip ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	es, err := os.ReadDir(tinyBase)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if !slices.Contains(skip, e.Name()) {
			copyFile(t, filepath.Join(tinyBase, e.Name()), filepath.Join(dir, e.Name()))
		}
	}
	return dir
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v (no FIFOs here)", err)
	}
}

// withConfig returns a copy of tiny-base whose config.json has the given
// text_config and vision_config fields changed.
func withConfig(t *testing.T, section string, fields map[string]any) string {
	t.Helper()
	dir := modelCopy(t)
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	sec := cfg[section].(map[string]any)
	for k, v := range fields {
		sec[k] = v
	}
	b, _ = json.Marshal(cfg)
	writeFile(t, dir, "config.json", string(b))
	return dir
}

// withNaN returns a copy of tiny-base whose itm_head.bias[1] is NaN.
func withNaN(t *testing.T) string {
	t.Helper()
	dir := modelCopy(t)
	p := filepath.Join(dir, "model.safetensors")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	var info struct {
		DType   string `json:"dtype"`
		Offsets []int  `json:"data_offsets"`
	}
	if err := json.Unmarshal(hdr["itm_head.bias"], &info); err != nil || info.DType != "F32" {
		t.Fatalf("itm_head.bias: %v %+v", err, info)
	}
	binary.LittleEndian.PutUint32(b[8+int(n)+info.Offsets[0]+4:], math.Float32bits(float32(math.NaN())))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestHostileModelFiles: every file of a checkpoint directory that is
// hostile (explosive config, special file, huge file, non-finite weights)
// gives exit 1 with a message naming it, quickly and in little memory.
func TestHostileModelFiles(t *testing.T) {
	img := imagesDir + "/scene.png"
	cases := []struct {
		name  string
		model func(t *testing.T) string
		want  []string
	}{
		{"a million layers", func(t *testing.T) string {
			return withConfig(t, "text_config", map[string]any{"num_hidden_layers": 1048576})
		}, []string{"config.json", "text_config.num_hidden_layers = 1048576"}},
		{"4096-pixel images", func(t *testing.T) string {
			return withConfig(t, "vision_config", map[string]any{"image_size": 4096, "patch_size": 16})
		}, []string{"config.json", "vision attention scores", "budget"}},
		{"config is an array", func(t *testing.T) string {
			dir := modelCopy(t)
			writeFile(t, dir, "config.json", "[1,2,3]")
			return dir
		}, []string{"config.json", "a JSON array, not an object"}},
		{"config is /dev/zero", func(t *testing.T) string {
			dir := modelCopy(t, "config.json")
			if err := os.Symlink("/dev/zero", filepath.Join(dir, "config.json")); err != nil {
				t.Skip(err)
			}
			return dir
		}, []string{"config.json", "a character device, not a regular file"}},
		{"config is a FIFO", func(t *testing.T) string {
			dir := modelCopy(t, "config.json")
			mkfifo(t, filepath.Join(dir, "config.json"))
			return dir
		}, []string{"config.json", "FIFO"}},
		{"config is 3 GB", func(t *testing.T) string {
			dir := modelCopy(t)
			if err := os.Truncate(filepath.Join(dir, "config.json"), 3<<30); err != nil {
				t.Skip(err)
			}
			return dir
		}, []string{"config.json", "too large"}},
		{"tokenizer.json is a FIFO", func(t *testing.T) string {
			dir := modelCopy(t, "tokenizer.json")
			mkfifo(t, filepath.Join(dir, "tokenizer.json"))
			return dir
		}, []string{"tokenizer.json", "FIFO"}},
		{"preprocessor config is a FIFO", func(t *testing.T) string {
			dir := modelCopy(t, "preprocessor_config.json")
			mkfifo(t, filepath.Join(dir, "preprocessor_config.json"))
			return dir
		}, []string{"preprocessor_config.json", "FIFO"}},
		{"weights are a directory", func(t *testing.T) string {
			dir := modelCopy(t, "model.safetensors")
			os.Mkdir(filepath.Join(dir, "model.safetensors"), 0o755)
			return dir
		}, []string{"model.safetensors is a directory"}},
		{"weights are a FIFO", func(t *testing.T) string {
			dir := modelCopy(t, "model.safetensors")
			mkfifo(t, filepath.Join(dir, "model.safetensors"))
			return dir
		}, []string{"model.safetensors is a FIFO"}},
		{"NaN weight", withNaN, []string{"itm_head.bias", "NaN", "corrupt"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := c.model(t)
			start := time.Now()
			r, rss := runLimited(t, runOpts{}, "match", img, "-t", "a dog", "-m", dir, "--device", "cpu")
			wantFail(t, r, exitFailure, c.want...)
			if strings.Contains(r.stderr, "runtime") || strings.Contains(r.stderr, "goroutine") {
				t.Errorf("Go runtime text in the message:\n%s", r.stderr)
			}
			if rss > peakRSSMiB {
				t.Errorf("peak RSS %d MiB, want ≤ %d", rss, peakRSSMiB)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

// TestSpecialImageFiles: an image argument that is a FIFO is refused by
// name; a FIFO named like an image in a directory is skipped with a note.
func TestSpecialImageFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.png")
	mkfifo(t, fifo)
	r, _ := runLimited(t, runOpts{}, "match", fifo, "-t", "a dog", "-m", tinyBase, "--device", "cpu")
	wantFail(t, r, exitFailure, "image "+fifo, "a FIFO, not a regular file")

	imgs := filepath.Join(dir, "imgs")
	copyFile(t, imagesDir+"/scene.png", filepath.Join(imgs, "a.png"))
	mkfifo(t, filepath.Join(imgs, "b.png"))
	r = mustRun(t, runOpts{}, "match", imgs, "-t", "a dog", "-m", tinyBase, "--device", "cpu", "--format", "csv")
	if !strings.Contains(r.stderr, "skipping "+filepath.Join(imgs, "b.png")) || !strings.Contains(r.stderr, "FIFO") {
		t.Errorf("no note about the skipped FIFO:\n%s", r.stderr)
	}
	if !strings.Contains(r.stdout, "a.png") || strings.Contains(r.stdout, "b.png") {
		t.Errorf("output:\n%s", r.stdout)
	}
}

// TestSignalStopsStuckCommand: a command blocked in a system call (here
// opening a FIFO nobody writes to, as --texts <(cmd) can) exits 130 within
// the grace period of the first SIGTERM or SIGINT.
func TestSignalStopsStuckCommand(t *testing.T) {
	for _, sig := range []os.Signal{syscall.SIGTERM, os.Interrupt} {
		t.Run(sig.String(), func(t *testing.T) {
			fifo := filepath.Join(t.TempDir(), "texts")
			mkfifo(t, fifo)
			cmd, _, stderr := binCmd(t, runOpts{}, "match", imagesDir+"/scene.png", "--texts", fifo, "-m", tinyBase, "--device", "cpu")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Let it install its handlers and block in the open (a signal
			// before the handlers are in place would kill it outright).
			time.Sleep(time.Second)
			sent := time.Now()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
					t.Errorf("exit: %v, want status %d\n%s", err, exitInterrupted, stderr)
				}
				if !strings.Contains(stderr.String(), "interrupted") {
					t.Errorf("stderr:\n%s", stderr)
				}
				if d := time.Since(sent); d > shutdownGrace+5*time.Second {
					t.Errorf("exited %v after the signal", d)
				}
			case <-time.After(shutdownGrace + 20*time.Second):
				cmd.Process.Kill()
				t.Fatalf("still running %v after %v\n%s", shutdownGrace+20*time.Second, sig, stderr)
			}
		})
	}
}

// TestLongInputsQuotedShort: a 1 MB bad line is quoted at 80 characters in
// the message, not whole.
func TestLongInputsQuotedShort(t *testing.T) {
	dir := t.TempDir()
	texts := writeFile(t, dir, "texts.txt", "a dog\n"+strings.Repeat("x", 1<<20)+"\xe9\n")
	r := run(t, runOpts{}, "match", imagesDir+"/scene.png", "--texts", texts, "-m", tinyBase, "--device", "cpu")
	wantFail(t, r, exitFailure, "line 2", `"xxxxxxxx`, "…", "UTF-8")
	if len(r.stderr) > 400 {
		t.Errorf("a %d-byte message for a 1 MB line", len(r.stderr))
	}
	r = run(t, runOpts{}, "match", imagesDir+"/scene.png", "--text", strings.Repeat("~", 100_000), "-m", tinyBase, "--device", "cpu")
	wantFail(t, r, exitUsage, "--text #1", "…")
	if len(r.stderr) > 400 {
		t.Errorf("a %d-byte message for a 100 KB --text", len(r.stderr))
	}
}

// forgedTerabyteBin rewrites tiny-large's pytorch_model.bin so that every
// float storage claims 2^38 elements (1 TiB) in the pickle and in the zip
// directory alike: the two attacker-controlled sizes agree, the file stays
// small. (The pickle is protocol 2, without frames, so an opcode can be
// replaced by a longer one.)
func forgedTerabyteBin(t *testing.T, dst string) {
	t.Helper()
	src, err := zip.OpenReader(filepath.Join(tinyLarge, "pytorch_model.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	const numel = uint64(1) << 38
	var pkl []byte
	forged := map[string]bool{}
	for _, f := range src.File {
		if strings.HasSuffix(f.Name, "/data.pkl") {
			rc, _ := f.Open()
			pkl, _ = io.ReadAll(rc)
			rc.Close()
		}
	}
	var out []byte
	marker := []byte("ctorch\nFloatStorage\n")
	for {
		i := bytes.Index(pkl, marker)
		if i < 0 {
			out = append(out, pkl...)
			break
		}
		j := i + len(marker)
		skipPut := func() {
			switch pkl[j] {
			case 'q':
				j += 2
			case 'r':
				j += 5
			}
		}
		skipPut()
		if pkl[j] != 'X' {
			t.Fatalf("unexpected pickle at %d", j)
		}
		n := int(binary.LittleEndian.Uint32(pkl[j+1:]))
		forged[string(pkl[j+5:j+5+n])] = true
		j += 5 + n
		skipPut()
		if !bytes.HasPrefix(pkl[j:], []byte("X\x03\x00\x00\x00cpu")) {
			t.Fatalf("unexpected pickle at %d", j)
		}
		j += 8
		skipPut()
		out = append(out, pkl[:j]...)
		switch pkl[j] { // the element count
		case 'K':
			j += 2
		case 'M':
			j += 3
		case 'J':
			j += 5
		default:
			t.Fatalf("unexpected count opcode %q", pkl[j])
		}
		out = binary.LittleEndian.AppendUint64(append(out, 0x8a, 8), numel)
		pkl = pkl[j:]
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range src.File {
		rc, _ := f.Open()
		data, _ := io.ReadAll(rc)
		rc.Close()
		if strings.HasSuffix(f.Name, "/data.pkl") {
			data = out
		}
		if forged[path.Base(f.Name)] && strings.Contains(f.Name, "/data/") {
			w, err := zw.CreateRaw(&zip.FileHeader{Name: f.Name, Method: zip.Store, CRC32: crc32.ChecksumIEEE(data),
				CompressedSize64: 4 * numel, UncompressedSize64: 4 * numel})
			if err != nil {
				t.Fatal(err)
			}
			w.Write(data)
			continue
		}
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: f.Name, Method: zip.Store})
		w.Write(data)
	}
	zw.Close()
	if len(forged) == 0 {
		t.Fatal("no float storage found to forge")
	}
	if err := os.WriteFile(dst, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestForgedCheckpointBounded: the 1 TiB storage of the issue (zip
// directory and pickle agreeing) gives exit 1 naming the file and the
// storage, in little memory — it was a Go fatal error (exit 2).
func TestForgedCheckpointBounded(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "model")
	for _, f := range []string{"config.json", "preprocessor_config.json", "vocab.txt"} {
		copyFile(t, filepath.Join(tinyLarge, f), filepath.Join(dir, f))
	}
	forgedTerabyteBin(t, filepath.Join(dir, "pytorch_model.bin"))
	r, rss := runLimited(t, runOpts{}, "match", imagesDir+"/scene.png", "-t", "a dog", "-m", dir, "--device", "cpu")
	wantFail(t, r, exitFailure, filepath.Join(dir, "pytorch_model.bin"), "274877906944 elements", "parameters of the whole configuration")
	if rss > peakRSSMiB {
		t.Errorf("peak RSS %d MiB, want ≤ %d", rss, peakRSSMiB)
	}
}
