package ops

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
)

// Rejection tests: bad shapes (ErrShape), tensors of another backend
// (ErrBackend), a closed backend or freed tensor (ErrClosed) and a cancelled
// context, for every Backend method.

// fakeTensor is a Tensor of no backend.
type fakeTensor struct{ shape []int }

func (f fakeTensor) Shape() []int { return f.shape }
func (f fakeTensor) DType() DType { return F32 }
func (f fakeTensor) Len() int     { return prod(f.shape) }

// call is one invocation of a Backend method on tensors made by mk.
type call struct {
	method string
	name   string
	run    func(ctx context.Context, b Backend, mk func(shape ...int) Tensor) error
}

// goodCalls returns one valid call per computing method; each is also used
// with a foreign tensor, on a closed backend and with a cancelled context.
func goodCalls() []call {
	return []call{
		{"Download", "", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Download(ctx, make([]float32, 6), mk(2, 3))
		}},
		{"Linear", "", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Linear(ctx, mk(4, 5), mk(4, 3), mk(5, 3), mk(5), ActGELU)
		}},
		{"Add", "", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Add(ctx, mk(2, 3), mk(2, 3), mk(2, 3))
		}},
		{"LayerNorm", "", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.LayerNorm(ctx, mk(2, 3), mk(2, 3), mk(3), mk(3), 1e-5)
		}},
		{"AddLayerNorm", "", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.AddLayerNorm(ctx, mk(2, 3), mk(2, 3), mk(2, 3), mk(2, 3), mk(3), mk(3), 1e-5)
		}},
		{"GELU", "", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.GELU(ctx, mk(2, 3), mk(2, 3))
		}},
		{"Attention", "", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Attention(ctx, mk(2, 3, 4), mk(2, 3, 4), mk(1, 5, 4), mk(1, 5, 4), mk(2, 5), AttentionParams{Heads: 2, Scale: 0.5})
		}},
		{"PatchEmbed", "", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.PatchEmbed(ctx, mk(1, 5, 3), mk(1, 2, 4, 4), mk(3, 8), mk(3), mk(3), 2)
		}},
		{"Gather", "", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Gather(ctx, mk(2, 3), mk(4, 3), []int32{3, 0})
		}},
		{"AddPositions", "", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.AddPositions(ctx, mk(2, 3, 4), mk(2, 3, 4), mk(5, 4))
		}},
		{"TakeRow", "", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.TakeRow(ctx, mk(2, 4), mk(2, 3, 4), 2)
		}},
		{"CopyRows", "", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.CopyRows(ctx, mk(3, 4), mk(2, 3, 4), 3)
		}},
		{"L2Normalize", "", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.L2Normalize(ctx, mk(2, 3), mk(2, 3))
		}},
	}
}

// badCalls returns calls that must fail with ErrShape (or ErrUnsupported
// where marked by a name starting with "unsupported").
func badCalls() []call {
	var nilT Tensor
	return []call{
		{"Download", "dst length", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Download(ctx, make([]float32, 5), mk(2, 3))
		}},
		{"Linear", "K", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Linear(ctx, mk(4, 5), mk(4, 3), mk(5, 2), nil, ActNone)
		}},
		{"Linear", "N", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Linear(ctx, mk(4, 6), mk(4, 3), mk(5, 3), nil, ActNone)
		}},
		{"Linear", "M", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Linear(ctx, mk(3, 5), mk(4, 3), mk(5, 3), nil, ActNone)
		}},
		{"Linear", "bias", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Linear(ctx, mk(4, 5), mk(4, 3), mk(5, 3), mk(4), ActNone)
		}},
		{"Linear", "w rank", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Linear(ctx, mk(4, 5), mk(4, 3), mk(1, 5, 3), nil, ActNone)
		}},
		{"Linear", "nil x", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Linear(ctx, mk(4, 5), nilT, mk(5, 3), nil, ActNone)
		}},
		{"Linear", "unsupported activation", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Linear(ctx, mk(4, 5), mk(4, 3), mk(5, 3), nil, Activation(9))
		}},
		{"Linear", "unsupported alias", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			x := mk(3, 3)
			return b.Linear(ctx, x, x, mk(3, 3), nil, ActNone)
		}},
		{"Add", "shapes", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Add(ctx, mk(2, 3), mk(2, 3), mk(3, 2))
		}},
		{"Add", "out", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Add(ctx, mk(6), mk(2, 3), mk(2, 3))
		}},
		{"LayerNorm", "gamma", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.LayerNorm(ctx, mk(2, 3), mk(2, 3), mk(2), mk(3), 1e-5)
		}},
		{"LayerNorm", "beta", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.LayerNorm(ctx, mk(2, 3), mk(2, 3), mk(3), nilT, 1e-5)
		}},
		{"LayerNorm", "out", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.LayerNorm(ctx, mk(3, 2), mk(2, 3), mk(3), mk(3), 1e-5)
		}},
		{"AddLayerNorm", "residual", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.AddLayerNorm(ctx, nil, mk(2, 3), mk(2, 3), mk(1, 3), mk(3), mk(3), 1e-5)
		}},
		{"AddLayerNorm", "sum", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.AddLayerNorm(ctx, mk(2, 4), mk(2, 3), mk(2, 3), mk(2, 3), mk(3), mk(3), 1e-5)
		}},
		{"AddLayerNorm", "unsupported out=sum", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			s := mk(2, 3)
			return b.AddLayerNorm(ctx, s, s, mk(2, 3), mk(2, 3), mk(3), mk(3), 1e-5)
		}},
		{"GELU", "shape", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.GELU(ctx, mk(2, 3), mk(2, 4))
		}},
		{"Attention", "heads divide", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Attention(ctx, mk(2, 3, 4), mk(2, 3, 4), mk(2, 5, 4), mk(2, 5, 4), nil, AttentionParams{Heads: 3, Scale: 1})
		}},
		{"Attention", "heads zero", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Attention(ctx, mk(2, 3, 4), mk(2, 3, 4), mk(2, 5, 4), mk(2, 5, 4), nil, AttentionParams{Heads: 0, Scale: 1})
		}},
		{"Attention", "kv batch", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Attention(ctx, mk(3, 3, 4), mk(3, 3, 4), mk(2, 5, 4), mk(2, 5, 4), nil, AttentionParams{Heads: 2, Scale: 1})
		}},
		{"Attention", "k vs v", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Attention(ctx, mk(2, 3, 4), mk(2, 3, 4), mk(2, 5, 4), mk(2, 6, 4), nil, AttentionParams{Heads: 2, Scale: 1})
		}},
		{"Attention", "width", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Attention(ctx, mk(2, 3, 4), mk(2, 3, 4), mk(2, 5, 6), mk(2, 5, 6), nil, AttentionParams{Heads: 2, Scale: 1, KCol: 3})
		}},
		{"Attention", "width", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Attention(ctx, mk(2, 3, 4), mk(2, 3, 2), mk(2, 5, 4), mk(2, 5, 4), nil, AttentionParams{Heads: 2, Scale: 1})
		}},
		{"Attention", "width", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Attention(ctx, mk(2, 3, 4), mk(2, 3, 12), mk(2, 5, 4), mk(2, 5, 4), nil, AttentionParams{Heads: 2, Scale: 1, QCol: -1})
		}},

		{"Attention", "mask Lk", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Attention(ctx, mk(2, 3, 4), mk(2, 3, 4), mk(2, 5, 4), mk(2, 5, 4), mk(2, 4), AttentionParams{Heads: 2, Scale: 1})
		}},
		{"Attention", "mask batch", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Attention(ctx, mk(2, 3, 4), mk(2, 3, 4), mk(2, 5, 4), mk(2, 5, 4), mk(3, 5), AttentionParams{Heads: 2, Scale: 1})
		}},
		{"Attention", "out", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Attention(ctx, mk(2, 5, 4), mk(2, 3, 4), mk(2, 5, 4), mk(2, 5, 4), nil, AttentionParams{Heads: 2, Scale: 1})
		}},
		{"Attention", "q rank", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Attention(ctx, mk(3, 4), mk(3, 4), mk(5, 4), mk(5, 4), nil, AttentionParams{Heads: 2, Scale: 1})
		}},
		{"PatchEmbed", "not a multiple", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.PatchEmbed(ctx, mk(1, 5, 3), mk(1, 2, 4, 5), mk(3, 8), mk(3), mk(3), 2)
		}},
		{"PatchEmbed", "w", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.PatchEmbed(ctx, mk(1, 5, 3), mk(1, 2, 4, 4), mk(3, 12), mk(3), mk(3), 2)
		}},
		{"PatchEmbed", "out tokens", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.PatchEmbed(ctx, mk(1, 4, 3), mk(1, 2, 4, 4), mk(3, 8), mk(3), mk(3), 2)
		}},
		{"PatchEmbed", "cls", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.PatchEmbed(ctx, mk(1, 5, 3), mk(1, 2, 4, 4), mk(3, 8), mk(3), mk(2), 2)
		}},
		{"PatchEmbed", "patch", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.PatchEmbed(ctx, mk(1, 5, 3), mk(1, 2, 4, 4), mk(3, 8), mk(3), mk(3), 0)
		}},
		{"Gather", "id range", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Gather(ctx, mk(2, 3), mk(4, 3), []int32{4, 0})
		}},
		{"Gather", "negative id", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Gather(ctx, mk(2, 3), mk(4, 3), []int32{-1, 0})
		}},
		{"Gather", "rows", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.Gather(ctx, mk(3, 3), mk(4, 3), []int32{1, 0})
		}},
		{"AddPositions", "too few positions", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.AddPositions(ctx, mk(2, 3, 4), mk(2, 3, 4), mk(2, 4))
		}},
		{"AddPositions", "D", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.AddPositions(ctx, mk(2, 3, 4), mk(2, 3, 4), mk(5, 3))
		}},
		{"TakeRow", "row", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.TakeRow(ctx, mk(2, 4), mk(2, 3, 4), 3)
		}},
		{"TakeRow", "out", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.TakeRow(ctx, mk(2, 2, 4), mk(2, 3, 4), 0)
		}},
		{"TakeRow", "out", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.TakeRow(ctx, mk(3, 4), mk(2, 3, 4), 0)
		}},
		{"CopyRows", "range", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.CopyRows(ctx, mk(3, 4), mk(2, 3, 4), 4)
		}},
		{"CopyRows", "negative start", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.CopyRows(ctx, mk(3, 4), mk(2, 3, 4), -1)
		}},
		{"CopyRows", "D", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.CopyRows(ctx, mk(3, 3), mk(2, 3, 4), 0)
		}},
		{"L2Normalize", "shape", func(ctx context.Context, b Backend, mk func(...int) Tensor) error {
			return b.L2Normalize(ctx, mk(3, 2), mk(2, 3))
		}},
	}
}

// TestBadShapes runs every bad call and checks the sentinel; it also
// requires at least one bad case for every computing method of Backend.
func TestBadShapes(t *testing.T) {
	c := NewCPU()
	mk := func(shape ...int) Tensor { return zeros(t, c, shape...) }
	covered := map[string]bool{}
	for _, bc := range badCalls() {
		covered[bc.method] = true
		t.Run(bc.method+"/"+bc.name, func(t *testing.T) {
			err := bc.run(bg, c, mk)
			want := ErrShape
			if strings.HasPrefix(bc.name, "unsupported") {
				want = ErrUnsupported
			}
			if !errors.Is(err, want) {
				t.Fatalf("err = %v, want %v", err, want)
			}
			if !strings.HasPrefix(err.Error(), "ops: ") {
				t.Fatalf("error %q lacks the ops: prefix", err)
			}
		})
	}
	bt := reflect.TypeFor[Backend]()
	for i := range bt.NumMethod() {
		m := bt.Method(i).Name
		switch m {
		case "Name", "New", "Upload", "Free", "Close":
			continue
		}
		if !covered[m] {
			t.Errorf("Backend.%s has no bad-shape case", m)
		}
	}
}

// TestCheckMessage pins the error format the brief asks for.
func TestCheckMessage(t *testing.T) {
	err := CheckLinear(fakeTensor{[]int{577, 3072}}, fakeTensor{[]int{577, 768}}, fakeTensor{[]int{3072, 512}}, nil, ActNone)
	const want = "ops: linear: x [577 768] and w [3072 512] disagree on K (768 vs 512): ops: shape mismatch"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	// A typed nil is reported as nil, not dereferenced.
	var ct *cpuTensor
	if err := CheckGELU(ct, fakeTensor{[]int{2}}); !errors.Is(err, ErrShape) || !strings.Contains(err.Error(), "out is nil") {
		t.Fatalf("typed nil: %v", err)
	}
}

// TestAllocationChecks: New and Upload reject bad shapes; Upload keeps the
// caller's slice.
func TestAllocationChecks(t *testing.T) {
	c := NewCPU()
	if _, err := c.New(); !errors.Is(err, ErrShape) {
		t.Errorf("New(): %v", err)
	}
	if _, err := c.New(2, -1); !errors.Is(err, ErrShape) {
		t.Errorf("New(2, -1): %v", err)
	}
	if _, err := c.Upload(make([]float32, 5), 2, 3); !errors.Is(err, ErrShape) {
		t.Errorf("Upload 5 as [2 3]: %v", err)
	}
	d := []float32{1, 2, 3}
	x := up(t, c, d, 3)
	d[1] = 42
	if data(t, x)[1] != 42 {
		t.Error("Upload copied its data")
	}
	e, err := c.New(0, 4)
	if err != nil || e.Len() != 0 {
		t.Errorf("New(0, 4): %v, %v", e, err)
	}
	if _, err := CPUData(fakeTensor{[]int{1}}); !errors.Is(err, ErrBackend) {
		t.Errorf("CPUData(foreign): %v", err)
	}
}

// TestForeignTensors: every computing method rejects a tensor of another
// backend (a fake type, and a tensor of another CPU instance) with
// ErrBackend.
func TestForeignTensors(t *testing.T) {
	c, other := NewCPU(), NewCPU()
	for _, gc := range goodCalls() {
		for _, kind := range []string{"fake", "other-cpu"} {
			t.Run(gc.method+"/"+kind, func(t *testing.T) {
				// The last operand made is an input in every call.
				total := 0
				must(t, gc.run(bg, c, func(shape ...int) Tensor { total++; return zeros(t, c, shape...) }))
				n := 0
				mk := func(shape ...int) Tensor {
					n++
					if n == total {
						if kind == "fake" {
							return fakeTensor{shape}
						}
						return zeros(t, other, shape...)
					}
					return zeros(t, c, shape...)
				}
				if err := gc.run(bg, c, mk); !errors.Is(err, ErrBackend) {
					t.Fatalf("err = %v, want ErrBackend", err)
				}
			})
		}
	}
}

// TestGoodCallsPass guards the other tests: the valid calls succeed.
func TestGoodCallsPass(t *testing.T) {
	c := NewCPU()
	for _, gc := range goodCalls() {
		if err := gc.run(bg, c, func(shape ...int) Tensor { return zeros(t, c, shape...) }); err != nil {
			t.Errorf("%s: %v", gc.method, err)
		}
	}
}

// TestClosed: after Close every method fails with ErrClosed; a freed tensor
// too.
func TestClosed(t *testing.T) {
	c := NewCPU()
	var ts []Tensor
	mk := func(shape ...int) Tensor {
		x := zeros(t, c, shape...)
		ts = append(ts, x)
		return x
	}
	// Freed tensor: build the call's tensors, free the second, run again.
	for _, gc := range goodCalls() {
		ts = ts[:0]
		must(t, gc.run(bg, c, mk))
		n := 0
		keep := append([]Tensor(nil), ts...)
		c.Free(keep[len(keep)-1])
		c.Free(keep[len(keep)-1]) // twice is fine
		err := gc.run(bg, c, func(shape ...int) Tensor { n++; return keep[n-1] })
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s with a freed tensor: %v", gc.method, err)
		}
	}
	c.Free(nil)
	c.Free(fakeTensor{[]int{1}})

	live := func(shape ...int) Tensor { return zeros(t, c, shape...) }
	tensors := map[string][]Tensor{}
	for _, gc := range goodCalls() {
		var mine []Tensor
		must(t, gc.run(bg, c, func(shape ...int) Tensor { x := live(shape...); mine = append(mine, x); return x }))
		tensors[gc.method] = mine
	}
	must(t, c.Close())
	must(t, c.Close())
	for _, gc := range goodCalls() {
		n := 0
		err := gc.run(bg, c, func(shape ...int) Tensor { n++; return tensors[gc.method][n-1] })
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v", gc.method, err)
		}
	}
	if _, err := c.New(1); !errors.Is(err, ErrClosed) {
		t.Errorf("New after Close: %v", err)
	}
	if _, err := c.Upload([]float32{1}, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Upload after Close: %v", err)
	}
}

// TestCancelled: every computing method returns the context's error when
// the context is already cancelled, and a long Linear stops when cancelled
// midway.
func TestCancelled(t *testing.T) {
	c := NewCPU()
	ctx, cancel := context.WithCancel(bg)
	cancel()
	for _, gc := range goodCalls() {
		err := gc.run(ctx, c, func(shape ...int) Tensor { return zeros(t, c, shape...) })
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v", gc.method, err)
		}
	}

	// Cancellation seen inside the parallel loop.
	for _, workers := range []int{1, 2} {
		c := NewCPU(WithWorkers(workers))
		ctx, cancel := context.WithCancel(bg)
		var calls atomic.Int64
		err := c.parallel(ctx, 1000, func(i int) {
			calls.Add(1)
			if i == 20 {
				cancel()
			}
		})
		if !errors.Is(err, context.Canceled) || calls.Load() >= 1000 {
			t.Errorf("workers=%d: err %v after %d tasks", workers, err, calls.Load())
		}
	}
}

// TestOverlappingUploads: storage shared through Upload is caught like the
// same tensor passed twice.
func TestOverlappingUploads(t *testing.T) {
	c := NewCPU()
	buf := make([]float32, 16)
	x := up(t, c, buf[:12], 4, 3)
	out := up(t, c, buf[4:16], 4, 3)
	w := up(t, c, make([]float32, 9), 3, 3)
	if err := c.Linear(bg, out, x, w, nil, ActNone); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Linear on overlapping storage: %v", err)
	}
	if err := c.GELU(bg, out, x); !errors.Is(err, ErrUnsupported) {
		t.Errorf("GELU on partly overlapping storage: %v", err)
	}
	same := up(t, c, buf[:12], 4, 3)
	if err := c.GELU(bg, same, x); err != nil {
		t.Errorf("GELU on identical storage: %v", err)
	}
}
