//go:build cgo && cudaemu

package cuda

import (
	"errors"
	"strings"
	"testing"
)

func TestStickyErrorPoisons(t *testing.T) {
	d := open(t)
	p, _ := d.Alloc("x", 1024)
	InjectFault(cudaErrorIllegalAddress)
	err := d.Launch(bg, "bk_add_f32", Dim3{1, 1, 1}, Dim3{256, 1, 1}, Ptr(p), Ptr(p), Ptr(p), Int(4))
	var ce *Error
	if !errors.As(err, &ce) || ce.Code != cudaErrorIllegalAddress || !ce.Sticky || !strings.Contains(err.Error(), "launch bk_add_f32") {
		t.Fatalf("injected fault: %v", err)
	}
	err2 := d.Launch(bg, "bk_add_f32", Dim3{1, 1, 1}, Dim3{256, 1, 1}, Ptr(p), Ptr(p), Ptr(p), Int(4))
	if !errors.As(err2, &ce) || ce.Code != cudaErrorIllegalAddress || !strings.Contains(err2.Error(), "earlier error") {
		t.Fatalf("launch after a sticky error: %v", err2)
	}
	if _, err := d.Alloc("y", 4); !errors.Is(err, d.Err()) {
		t.Fatalf("alloc after a sticky error: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("close of a poisoned device: %v", err)
	}
}

func TestMarshallingChecked(t *testing.T) {
	d := open(t)
	err := d.Launch(bg, "bk_add_f32", Dim3{1, 1, 1}, Dim3{256, 1, 1}, Ptr(0), Ptr(0), Ptr(0), Int64(4))
	if err == nil || !strings.Contains(err.Error(), "argument 3 has 8 bytes") {
		t.Fatalf("wrong argument size: %v", err)
	}
	err = d.Launch(bg, "bk_add_f32", Dim3{1, 1, 1}, Dim3{256, 1, 1}, Ptr(0))
	if err == nil || !strings.Contains(err.Error(), "1 arguments for 4") {
		t.Fatalf("wrong argument count: %v", err)
	}
}
