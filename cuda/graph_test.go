package cuda

import (
	"errors"
	"testing"
)

// TestGraphCaptureReplay: work queued while capturing does not run; each
// Launch replays it on the buffers' current contents; copies from and to the
// host are refused while capturing; an aborted capture leaves the device
// usable; a closed graph cannot be launched.
func TestGraphCaptureReplay(t *testing.T) {
	d := open(t)
	if !d.HasGraphs() {
		t.Skip("driver without CUDA graphs")
	}
	const n = 1000
	a, _ := d.Alloc("a", n*4)
	b, _ := d.Alloc("b", n*4)
	c, _ := d.Alloc("c", n*4)
	z, _ := d.Alloc("z", n*4)
	in := make([]float32, n)
	for i := range in {
		in[i] = float32(i)
	}
	if err := d.WriteFloat32(a, in); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFloat32(b, in); err != nil {
		t.Fatal(err)
	}
	if err := d.Memset(c, 0, n*4); err != nil {
		t.Fatal(err)
	}
	if err := d.BeginCapture(); err != nil {
		t.Fatal(err)
	}
	if err := d.BeginCapture(); !errors.Is(err, ErrCapturing) {
		t.Fatalf("nested capture: %v", err)
	}
	// c = a + b; z = c (copy); a = 0 (memset): order matters on replay.
	if err := d.Launch(bg, "bk_add_f32", Dim3{1, 1, 1}, Dim3{256, 1, 1}, Ptr(c), Ptr(a), Ptr(b), Int(n)); err != nil {
		t.Fatal(err)
	}
	if err := d.Copy(z, c, n*4); err != nil {
		t.Fatal(err)
	}
	if err := d.Memset(a, 0, n*4); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFloat32(a, in); !errors.Is(err, ErrCapturing) {
		t.Fatalf("HtoD while capturing: %v", err)
	}
	if err := d.ReadFloat32(bg, in, a); !errors.Is(err, ErrCapturing) {
		t.Fatalf("DtoH while capturing: %v", err)
	}
	if err := d.Synchronize(bg); !errors.Is(err, ErrCapturing) {
		t.Fatalf("synchronize while capturing: %v", err)
	}
	g, err := d.EndCapture()
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float32, n)
	if err := d.ReadFloat32(bg, got, c); err != nil {
		t.Fatal(err)
	}
	if got[7] != 0 {
		t.Fatalf("captured work ran at capture: c[7] = %v", got[7])
	}
	if err := g.Launch(bg); err != nil {
		t.Fatal(err)
	}
	if err := d.ReadFloat32(bg, got, z); err != nil {
		t.Fatal(err)
	}
	if got[7] != 14 {
		t.Fatalf("after replay z[7] = %v, want 14", got[7])
	}
	// a was zeroed by the replay: the second replay gives c = b.
	if err := g.Launch(bg); err != nil {
		t.Fatal(err)
	}
	if err := d.ReadFloat32(bg, got, z); err != nil {
		t.Fatal(err)
	}
	if got[7] != 7 {
		t.Fatalf("after a second replay z[7] = %v, want 7", got[7])
	}

	// An aborted capture runs nothing and leaves the device usable.
	if err := d.BeginCapture(); err != nil {
		t.Fatal(err)
	}
	if err := d.Memset(z, 0, n*4); err != nil {
		t.Fatal(err)
	}
	d.AbortCapture()
	if err := d.ReadFloat32(bg, got, z); err != nil || got[7] != 7 {
		t.Fatalf("after an aborted capture z[7] = %v (%v), want 7", got[7], err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Launch(bg); !errors.Is(err, ErrClosed) {
		t.Fatalf("launch of a closed graph: %v", err)
	}
	g.Close()
}
