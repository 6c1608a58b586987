package ops

import (
	"context"
	"strings"
	"testing"
)

// TestCUDAProfile: every operation run while profiling appears once per
// call under its shape, operations inside a capture do not, and stopping
// ends it.
func TestCUDAProfile(t *testing.T) {
	c := newTestCUDA(t)
	ctx := context.Background()
	x, _ := c.New(35, 64)
	w, _ := c.New(96, 64)
	b, _ := c.New(96)
	y, _ := c.New(35, 96)
	q, _ := c.New(2, 35, 64)
	a, _ := c.New(2, 35, 64)
	c.StartProfile()
	for range 3 {
		if err := c.Linear(ctx, y, x, w, b, ActGELU); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Attention(ctx, a, q, q, q, nil, AttentionParams{Heads: 1, Scale: 0.125}); err != nil {
		t.Fatal(err)
	}
	rep, err := c.Capture(ctx, func() error { return c.GELU(ctx, y, y) })
	if err != nil {
		t.Fatal(err)
	}
	defer rep.Close()
	times, err := c.StopProfile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, o := range times {
		t.Logf("%-50s %3d calls %8.3f ms", o.Op, o.Calls, o.Millis)
		got[strings.Fields(o.Op)[0]] += o.Calls
		if o.Millis < 0 {
			t.Errorf("%s: negative time", o.Op)
		}
	}
	if got["linear"] != 3 || got["attention"] != 1 || got["gelu"] != 0 || len(times) != 2 {
		t.Fatalf("profile %v, want 3 linear and 1 attention calls (none from the capture)", times)
	}
	if times, _ := c.StopProfile(ctx); times != nil {
		t.Fatal("StopProfile twice returned times")
	}
}
