package ops

import (
	"math"
	"testing"
)

func TestFloat16ToFloat32Known(t *testing.T) {
	cases := map[uint16]float32{0x0000: 0, 0x3c00: 1, 0xc000: -2, 0x7bff: 65504, 0x0001: 5.9604645e-08, 0x3555: 0.33325195, 0x7c00: float32(math.Inf(1))}
	for h, want := range cases {
		if got := Float16ToFloat32(h); got != want {
			t.Errorf("Float16ToFloat32(%#04x) = %g, want %g", h, got, want)
		}
	}
	if got := Float16ToFloat32(0x8000); got != 0 || !math.Signbit(float64(got)) {
		t.Errorf("Float16ToFloat32(0x8000) = %g, want -0", got)
	}
}

// TestHalfRoundTrip: every non-NaN 16-bit pattern converts to float32 and
// back to itself, in both formats, and Round is idempotent on it.
func TestHalfRoundTrip(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		if f := Float16ToFloat32(h); !math.IsNaN(float64(f)) {
			if back := Float32ToFloat16(f); back != h {
				t.Fatalf("f16 %#04x → %g → %#04x", h, f, back)
			}
			if F16.Round(f) != f {
				t.Fatalf("F16.Round(%g) = %g", f, F16.Round(f))
			}
		}
		if f := BFloat16ToFloat32(h); !math.IsNaN(float64(f)) {
			if back := Float32ToBFloat16(f); back != h {
				t.Fatalf("bf16 %#04x → %g → %#04x", h, f, back)
			}
		}
	}
	if F32.Round(0.1) != 0.1 {
		t.Error("F32.Round changed a value")
	}
	if got := BF16.Round(1 + 1.0/256); got != 1 { // a tie rounds to even
		t.Errorf("BF16.Round(1+2⁻⁸) = %g, want 1", got)
	}
}
