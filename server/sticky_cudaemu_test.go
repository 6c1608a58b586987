//go:build cudaemu

package server

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blipcuda/blipcuda"
	"github.com/blipcuda/blipcuda/cuda"
)

// TestReadyAfterStickyError (on the emulated CUDA driver): /readyz is 200
// while the device is healthy, reports the device memory the model holds,
// and turns 503 after a sticky device error (an illegal address), which
// leaves the context unusable; /healthz stays 200.
func TestReadyAfterStickyError(t *testing.T) {
	m, err := blipcuda.Load(context.Background(), filepath.Join("..", "testdata", "models", "tiny-base"), blipcuda.WithDevice("cuda"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := New(Config{Model: m, ModelName: "tiny-base"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ts := newTestServer(t, s)
	if r := get(t, ts, "/readyz"); r.status != 200 {
		t.Fatalf("/readyz before: %d %s", r.status, r.body)
	}
	if r := post(t, ts, "/vectorize", map[string]any{"texts": []string{"a dog"}}); r.status != 200 {
		t.Fatalf("/vectorize: %d %s", r.status, r.body)
	}
	if metrics := string(get(t, ts, "/metrics").body); strings.Contains(metrics, "blipcuda_device_memory_in_use_bytes 0\n") {
		t.Error("device memory in use reads 0 on the CUDA backend")
	}
	cuda.InjectFault(700) // CUDA_ERROR_ILLEGAL_ADDRESS: sticky
	if r := post(t, ts, "/vectorize", map[string]any{"texts": []string{"a cat"}}); r.status < 500 {
		t.Errorf("request hitting the fault: %d %s", r.status, r.body)
	}
	r := get(t, ts, "/readyz")
	if r.status != 503 || !strings.Contains(string(r.body), "unavailable") {
		t.Errorf("/readyz after a sticky error: %d %s", r.status, r.body)
	}
	if r := get(t, ts, "/.well-known/ready"); r.status != 503 {
		t.Errorf("/.well-known/ready after a sticky error: %d", r.status)
	}
	if r := get(t, ts, "/healthz"); r.status != 200 {
		t.Errorf("/healthz: %d", r.status)
	}
}
