package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/blipcuda/blipcuda"
)

// The end-to-end tests run the real binary, built once by TestMain.
//
// Set BLIPCUDA_E2E_COVERDIR to a directory to build it with -cover and
// collect the binary's coverage there (go tool covdata percent -i DIR).

const (
	fixtures  = "../../testdata/models"
	tinyBase  = fixtures + "/tiny-base"
	tinyLarge = fixtures + "/tiny-large"
	imagesDir = fixtures + "/images"
	badImages = "../../testdata/images"
)

var binPath string

func TestMain(m *testing.M) {
	if os.Getenv(rssProbeEnv) != "" {
		os.Exit(rssProbe())
	}
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "blipcuda-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "blipcuda")
	if runtime.GOOS == "windows" {
		binPath += ".exe"
	}
	// go test puts its own toolchain's bin directory first on PATH.
	gobin, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "building blipcuda:", err)
		return 1
	}
	args := []string{"build", "-o", binPath}
	if buildTags != "" {
		// The binary must run the same backend as the library the tests
		// compare it with.
		args = append(args, "-tags", buildTags)
	}
	if os.Getenv("BLIPCUDA_E2E_COVERDIR") != "" {
		args = append(args, "-cover", "-coverpkg=github.com/blipcuda/blipcuda/...")
	}
	cmd := exec.Command(gobin, append(args, ".")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building blipcuda:", err)
		return 1
	}
	return m.Run()
}

// cudaAuto reports whether the binary's --device auto finds a CUDA device
// in this test run: the emulated one (-tags cudaemu) or CI's stand-in CUDA
// libraries (BLIPCUDA_CUDA_LIBS, kept in the binary's environment).
func cudaAuto() bool { return buildTags != "" || os.Getenv("BLIPCUDA_CUDA_LIBS") != "" }

// result is what a run of the binary produced.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// runOpts configure one run.
type runOpts struct {
	env   []string  // KEY=VALUE added to (and overriding) the base environment
	stdin io.Reader // nil: empty
	dir   string    // working directory; "" is the package directory
}

// baseEnv is the test process's environment without the variables the
// binary reads, plus a private empty cache and an unreachable Hub, so that
// nothing touches the network or the user's cache by accident.
func baseEnv(t *testing.T) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		// BLIPCUDA_CUDA_LIBS (CI's stand-in CUDA libraries) is kept: the
		// binary must open the same driver as this test process.
		if strings.HasPrefix(k, "HF_") || strings.HasPrefix(k, "HUGGING") || (strings.HasPrefix(k, "BLIPCUDA_") && k != "BLIPCUDA_CUDA_LIBS") ||
			k == "TRANSFORMERS_OFFLINE" || k == "NO_COLOR" || k == "XDG_CACHE_HOME" {
			continue
		}
		env = append(env, kv)
	}
	home := t.TempDir()
	env = append(env,
		"HF_HOME="+home,
		"HF_HUB_CACHE="+filepath.Join(home, "hub"),
		"HF_ENDPOINT=http://127.0.0.1:1", // nothing listens there
		"HF_HUB_DISABLE_IMPLICIT_TOKEN=1",
	)
	if d := os.Getenv("BLIPCUDA_E2E_COVERDIR"); d != "" {
		env = append(env, "GOCOVERDIR="+d)
	}
	return env
}

// merge overrides base with extra (KEY=VALUE; KEY= unsets nothing but sets
// an empty value).
func merge(base, extra []string) []string {
	out := append([]string{}, base...)
	for _, kv := range extra {
		k, _, _ := strings.Cut(kv, "=")
		for i := 0; i < len(out); i++ {
			if ok, _, _ := strings.Cut(out[i], "="); ok == k {
				out = append(out[:i], out[i+1:]...)
				i--
			}
		}
		out = append(out, kv)
	}
	return out
}

// binCmd returns the binary's command for args, not started.
func binCmd(t *testing.T, o runOpts, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = merge(baseEnv(t), o.env)
	cmd.Dir = o.dir
	if o.stdin != nil {
		cmd.Stdin = o.stdin
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return cmd, &stdout, &stderr
}

// run runs the binary and returns its output and exit status.
func run(t *testing.T, o runOpts, args ...string) result {
	t.Helper()
	cmd, stdout, stderr := binCmd(t, o, args...)
	return runCmd(t, cmd, stdout, stderr)
}

// runCmd runs a command made by binCmd and returns its output and exit
// status.
func runCmd(t *testing.T, cmd *exec.Cmd, stdout, stderr *bytes.Buffer) result {
	t.Helper()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("running %v: %v", cmd.Args, err)
	}
	return r
}

// mustRun runs the binary and fails the test unless it exits 0.
func mustRun(t *testing.T, o runOpts, args ...string) result {
	t.Helper()
	r := run(t, o, args...)
	if r.code != 0 {
		t.Fatalf("blipcuda %s: %v", strings.Join(args, " "), r)
	}
	return r
}

// wantFail checks the exit status and that stderr mentions each of want.
func wantFail(t *testing.T, r result, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d\n%v", r.code, code, r)
		return
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr does not mention %q:\n%s", w, r.stderr)
		}
	}
}

// libScores computes what the library gives for the same inputs.
func libScores(t *testing.T, modelDir string, protocol blipcuda.Protocol, images, texts []string) *blipcuda.Scores {
	t.Helper()
	ctx := context.Background()
	m, err := blipcuda.Load(ctx, modelDir, blipcuda.WithProtocol(protocol))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var ims []*blipcuda.Image
	for _, p := range images {
		im, err := m.LoadImage(p)
		if err != nil {
			t.Fatal(err)
		}
		ims = append(ims, im)
	}
	s, err := m.Match(ctx, ims, texts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fixtureImages are the images of imagesDir, in the order a directory
// argument lists them.
func fixtureImages() []string {
	return []string{imagesDir + "/blocks.png", imagesDir + "/scene.png", imagesDir + "/waves_rgba.png"}
}

// writeFile writes a file in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// copyFile copies src to dst.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// listDir returns the names in dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}
