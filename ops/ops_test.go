package ops

import (
	"context"
	"math"
	"testing"
)

// Layer A of the test plan: known values and structural properties of the
// CPU reference ops, on tiny inputs.

var bg = context.Background()

// up uploads data with the given shape or fails the test.
func up(t testing.TB, c *CPU, data []float32, shape ...int) Tensor {
	t.Helper()
	x, err := c.Upload(data, shape...)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// zeros allocates a tensor or fails the test.
func zeros(t testing.TB, c *CPU, shape ...int) Tensor {
	t.Helper()
	x, err := c.New(shape...)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// data returns a CPU tensor's storage or fails the test.
func data(t testing.TB, x Tensor) []float32 {
	t.Helper()
	d, err := CPUData(x)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// near fails unless |got[i] − want[i]| ≤ tol for every i.
func near(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(float64(got[i]) - want[i]); !(d <= tol) {
			t.Fatalf("%s[%d] = %.9g, want %.9g (|diff| %.3g > %.3g)", what, i, got[i], want[i], d, tol)
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestGELUKnownValues checks the exact erf GELU against PyTorch's
// torch.nn.functional.gelu in float32. Tolerance 1 float32 ulp of the value
// (≤ 2.4e-7 here): both sides are correctly rounded up to PyTorch's own
// last-bit error.
func TestGELUKnownValues(t *testing.T) {
	in := []float32{1, -1, 0.5, -0.5, -3, 3, 2, 0}
	want := []float64{0.8413447, -0.15865526, 0.34573123, -0.15426877, -0.0040496886, 2.9959502, 1.9544997, 0}
	c := NewCPU()
	x := up(t, c, in, 2, 4)
	out := zeros(t, c, 2, 4)
	must(t, c.GELU(bg, out, x))
	near(t, "gelu", data(t, out), want, 2.4e-7)
	// In place.
	must(t, c.GELU(bg, x, x))
	near(t, "gelu in place", data(t, x), want, 2.4e-7)
}

// TestSoftmaxKnownValues checks softmaxRow on hand-computed rows. Tolerance
// 1e-7: the float32 rounding of values below 1.
func TestSoftmaxKnownValues(t *testing.T) {
	s := []float32{1, 2, 3, 4}
	softmaxRow(s, 1, nil, true)
	near(t, "softmax", s, []float64{0.0320586, 0.08714432, 0.23688282, 0.64391426}, 1e-7)

	// Large logits: the row maximum is subtracted, so no overflow.
	s = []float32{1000, 1001, 1002}
	softmaxRow(s, 1, nil, true)
	near(t, "softmax big", s, []float64{0.09003057, 0.24472847, 0.66524096}, 1e-7)

	// Scale applies before the mask; -10000 removes a key.
	s = []float32{2, 4, 2}
	softmaxRow(s, 0.5, []float32{0, -10000, 0}, true)
	near(t, "softmax masked", s, []float64{0.5, 0, 0.5}, 1e-7)
}

// TestSoftmaxRowsSumToOne checks the structural property on random rows,
// within the float32 rounding of the sum of n probabilities.
func TestSoftmaxRowsSumToOne(t *testing.T) {
	for _, n := range []int{1, 2, 35, 577} {
		s := randSlice(uint64(n), n)
		for i := range s {
			s[i] *= 30
		}
		softmaxRow(s, 0.125, nil, true)
		var sum float64
		for _, v := range s {
			if v < 0 || v > 1 || math.IsNaN(float64(v)) {
				t.Fatalf("n=%d: probability %v", n, v)
			}
			sum += float64(v)
		}
		if math.Abs(sum-1) > float64(n)*6e-8 {
			t.Fatalf("n=%d: sum %v", n, sum)
		}
	}
}

// TestExpf compares the fast exponential with math.Exp over the softmax
// range (x ≤ 0) and a bit beyond: at most 1 float32 ulp apart.
func TestExpf(t *testing.T) {
	check := func(x float32) {
		got := expf(x)
		want := float32(math.Exp(float64(x)))
		if got == want {
			return
		}
		ulp := math.Abs(float64(math.Nextafter32(want, float32(math.Inf(1))) - want))
		if math.Abs(float64(got-want)) > ulp || math.IsNaN(float64(got)) {
			t.Fatalf("expf(%v) = %v, want %v", x, got, want)
		}
	}
	for x := float32(-110); x <= 90; x += 0.0137 {
		check(x)
	}
	for _, x := range []float32{0, -0, 1e-30, -1e-30, 88.72, -103.9, -87.3} {
		check(x)
	}
	if !math.IsInf(float64(expf(float32(math.Inf(1)))), 1) || expf(float32(math.Inf(-1))) != 0 || !math.IsNaN(float64(expf(float32(math.NaN())))) {
		t.Fatal("expf special values")
	}
}

// TestAttentionKnownValues: one query [1, 0] against keys [1,0], [0,1],
// [0,0] and values [1,2], [3,4], [5,6], scale 1: weights e/(e+2), 1/(e+2),
// 1/(e+2), output computed by hand.
func TestAttentionKnownValues(t *testing.T) {
	c := NewCPU()
	q := up(t, c, []float32{1, 0}, 1, 1, 2)
	k := up(t, c, []float32{1, 0, 0, 1, 0, 0}, 1, 3, 2)
	v := up(t, c, []float32{1, 2, 3, 4, 5, 6}, 1, 3, 2)
	out := zeros(t, c, 1, 1, 2)
	must(t, c.Attention(bg, out, q, k, v, nil, AttentionParams{Heads: 1, Scale: 1}))
	// p0 = e/(e+2) = 0.5761168847658291, p1 = p2 = 1/(e+2) = 0.21194155761708544
	near(t, "attention", data(t, out), []float64{2.2716493457025126, 3.2716493457025126}, 1e-6)

	// Masking the first key leaves the other two with weight 1/2 each.
	mask := up(t, c, []float32{-10000, 0, 0}, 1, 3)
	must(t, c.Attention(bg, out, q, k, v, mask, AttentionParams{Heads: 1, Scale: 1}))
	near(t, "attention masked", data(t, out), []float64{4, 5}, 1e-6)

	// Two heads of width 1 see different columns.
	q2 := up(t, c, []float32{1, 1}, 1, 1, 2)
	k2 := up(t, c, []float32{1000, 0, 0, 1000}, 1, 2, 2)
	v2 := up(t, c, []float32{1, 10, 2, 20}, 1, 2, 2)
	out2 := zeros(t, c, 1, 1, 2)
	must(t, c.Attention(bg, out2, q2, k2, v2, nil, AttentionParams{Heads: 2, Scale: 1}))
	// Head 0 picks key 0 (1000 vs 0): v[0][0] = 1; head 1 picks key 1: v[1][1] = 20.
	near(t, "attention heads", data(t, out2), []float64{1, 20}, 1e-6)
}

// naiveAttention is the float64 reference for Attention, for query rows
// rows (nil: all).
func naiveAttention(q, k, v, mask []float32, B, Lq, Bk, Lk, W, H, Bm int, scale float32, rows []int) []float64 {
	Dh := W / H
	out := make([]float64, B*Lq*W)
	if rows == nil {
		for i := range Lq {
			rows = append(rows, i)
		}
	}
	p := make([]float64, Lk)
	for b := range B {
		bk, bm := b%Bk, 0
		if Bm > 0 {
			bm = b % Bm
		}
		for h := range H {
			for _, i := range rows {
				mx := math.Inf(-1)
				for j := range Lk {
					var s float64
					for d := range Dh {
						s += float64(q[(b*Lq+i)*W+h*Dh+d]) * float64(k[(bk*Lk+j)*W+h*Dh+d])
					}
					s *= float64(scale)
					if mask != nil {
						s += float64(mask[bm*Lk+j])
					}
					p[j] = s
					mx = max(mx, s)
				}
				var sum float64
				for j := range p {
					p[j] = math.Exp(p[j] - mx)
					sum += p[j]
				}
				for d := range Dh {
					var o float64
					for j := range Lk {
						o += p[j] / sum * float64(v[(bk*Lk+j)*W+h*Dh+d])
					}
					out[(b*Lq+i)*W+h*Dh+d] = o
				}
			}
		}
	}
	return out
}

// TestAttentionReference compares Attention with the float64 reference on
// the BLIP shapes (vision self-attention on a few query rows, text
// self-attention with a padding mask, text→image cross-attention with
// shared keys) and awkward ones. Tolerance 2e-5 absolute on outputs of
// magnitude ≤ 1: scores carry the float32 rounding of a 64-term dot product
// (≈ 64·2⁻²⁴·|q||k| ≈ 1e-6 after scaling), which moves each probability by
// the same relative amount, plus the rounding of the Lk-term weighted sum;
// 2e-5 is a few times the worst case seen and far below any real error.
func TestAttentionReference(t *testing.T) {
	cases := []struct {
		name                    string
		B, Lq, Bk, Lk, W, H, Bm int
		maskPad                 int // keys masked with -10000 at the end of each mask row
		rows                    []int
	}{
		{"vision", 1, 577, 1, 577, 768, 12, 0, 0, []int{0, 1, 300, 576}},
		{"text-self-padded", 2, 35, 2, 35, 768, 12, 2, 7, nil},
		{"cross-shared-kv", 3, 35, 1, 577, 768, 12, 0, 0, nil},
		{"mask-broadcast", 2, 5, 2, 9, 12, 3, 1, 2, nil},
		{"tiny-odd", 1, 3, 1, 1, 5, 5, 0, 0, nil},
		{"odd", 2, 7, 1, 33, 18, 2, 2, 5, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if (testing.Short() || raceEnabled) && tc.Lk*tc.Lq > 10000 && tc.rows == nil {
				t.Skip("large")
			}
			c := NewCPU()
			qd := randSlice(1, tc.B*tc.Lq*tc.W)
			kd := randSlice(2, tc.Bk*tc.Lk*tc.W)
			vd := randSlice(3, tc.Bk*tc.Lk*tc.W)
			for i := range qd {
				qd[i] *= 3 // wider score range than uniform [-1, 1]
			}
			q := up(t, c, qd, tc.B, tc.Lq, tc.W)
			k := up(t, c, kd, tc.Bk, tc.Lk, tc.W)
			v := up(t, c, vd, tc.Bk, tc.Lk, tc.W)
			var mask Tensor
			var md []float32
			if tc.Bm > 0 {
				md = make([]float32, tc.Bm*tc.Lk)
				for b := range tc.Bm {
					for j := tc.Lk - tc.maskPad - b; j < tc.Lk; j++ {
						md[b*tc.Lk+j] = -10000
					}
				}
				mask = up(t, c, md, tc.Bm, tc.Lk)
			}
			out := zeros(t, c, tc.B, tc.Lq, tc.W)
			scale := float32(1 / math.Sqrt(float64(tc.W/tc.H)))
			must(t, c.Attention(bg, out, q, k, v, mask, AttentionParams{Heads: tc.H, Scale: scale}))
			want := naiveAttention(qd, kd, vd, md, tc.B, tc.Lq, tc.Bk, tc.Lk, tc.W, tc.H, tc.Bm, scale, tc.rows)
			got := data(t, out)
			rows := tc.rows
			if rows == nil {
				for i := range tc.Lq {
					rows = append(rows, i)
				}
			}
			for b := range tc.B {
				for _, i := range rows {
					for x := range tc.W {
						o := (b*tc.Lq+i)*tc.W + x
						if d := math.Abs(float64(got[o]) - want[o]); d > 2e-5 {
							t.Fatalf("out[%d,%d,%d] = %v, want %v", b, i, x, got[o], want[o])
						}
					}
				}
			}
		})
	}
}

// TestLayerNormKnownValues: a 3×3 case computed by hand (in float64), eps
// 1e-5. Tolerance 2.4e-7: one float32 ulp at these magnitudes.
func TestLayerNormKnownValues(t *testing.T) {
	c := NewCPU()
	x := up(t, c, []float32{1, 2, 3, 2, 2, 2, 0.5, -3, 10}, 3, 3)
	g := up(t, c, []float32{1, 2, 0.5}, 3)
	b := up(t, c, []float32{0, 0.5, -1}, 3)
	out := zeros(t, c, 3, 3)
	must(t, c.LayerNorm(bg, out, x, g, b, 1e-5))
	want := []float64{
		-1.22473569, 0.5, -0.387632157, // (x−2)/sqrt(2/3 + 1e-5)·γ + β
		0, 0.5, -1, // constant row: β
		-0.364138217, -1.50276019, -0.317240843,
	}
	near(t, "layernorm", data(t, out), want, 2.4e-7)

	// AddLayerNorm of (x − r) + r is the same, and sum holds x.
	r := up(t, c, []float32{1, 1, 1, 1, 1, 1, 1, 1, 1}, 3, 3)
	xm := up(t, c, []float32{0, 1, 2, 1, 1, 1, -0.5, -4, 9}, 3, 3)
	sum := zeros(t, c, 3, 3)
	must(t, c.AddLayerNorm(bg, sum, out, xm, r, g, b, 1e-5))
	near(t, "addlayernorm", data(t, out), want, 2.4e-7)
	near(t, "addlayernorm sum", data(t, sum), []float64{1, 2, 3, 2, 2, 2, 0.5, -3, 10}, 0)
}

// TestLayerNormStructure: with γ = 1 the output of every row has mean β
// and (biased) standard deviation ≈ 1 (up to eps), on a real width.
func TestLayerNormStructure(t *testing.T) {
	const rows, D = 5, 768
	c := NewCPU()
	xd := randSlice(5, rows*D)
	for i := range xd {
		xd[i] = xd[i]*10 + 3
	}
	beta := make([]float32, D)
	gamma := make([]float32, D)
	for i := range gamma {
		gamma[i], beta[i] = 1, 0.25
	}
	x := up(t, c, xd, rows, D)
	out := zeros(t, c, rows, D)
	must(t, c.LayerNorm(bg, out, x, up(t, c, gamma, D), up(t, c, beta, D), 1e-12))
	od := data(t, out)
	for r := range rows {
		var s, q float64
		for _, v := range od[r*D : (r+1)*D] {
			s += float64(v)
		}
		mean := s / D
		for _, v := range od[r*D : (r+1)*D] {
			q += (float64(v) - mean) * (float64(v) - mean)
		}
		if math.Abs(mean-0.25) > 1e-6 || math.Abs(math.Sqrt(q/D)-1) > 1e-5 {
			t.Fatalf("row %d: mean %v std %v", r, mean, math.Sqrt(q/D))
		}
	}
	// In place gives the same bits.
	must(t, c.LayerNorm(bg, x, x, up(t, c, gamma, D), up(t, c, beta, D), 1e-12))
	for i, v := range data(t, x) {
		if v != od[i] {
			t.Fatalf("in place differs at %d", i)
		}
	}
}

// TestL2Normalize: [3, 4] → [0.6, 0.8]; a zero row stays zero (divided by
// 1e-12, not by 0).
func TestL2Normalize(t *testing.T) {
	c := NewCPU()
	x := up(t, c, []float32{3, 4, 0, 0}, 2, 2)
	out := zeros(t, c, 2, 2)
	must(t, c.L2Normalize(bg, out, x))
	near(t, "l2", data(t, out), []float64{0.6, 0.8, 0, 0}, 3e-8)
	must(t, c.L2Normalize(bg, x, x))
	near(t, "l2 in place", data(t, x), []float64{0.6, 0.8, 0, 0}, 3e-8)
}

// TestAdd checks elementwise addition, in place too.
func TestAdd(t *testing.T) {
	c := NewCPU()
	a := up(t, c, []float32{1, 2, 3}, 3)
	b := up(t, c, []float32{10, 20, 30}, 3)
	out := zeros(t, c, 3)
	must(t, c.Add(bg, out, a, b))
	near(t, "add", data(t, out), []float64{11, 22, 33}, 0)
	must(t, c.Add(bg, a, a, b))
	near(t, "add in place", data(t, a), []float64{11, 22, 33}, 0)
}

// TestLinearKnownValues: a 2×3 by 3→2 case by hand, with bias, then with
// GELU, leading dims flattened.
func TestLinearKnownValues(t *testing.T) {
	c := NewCPU()
	x := up(t, c, []float32{1, 2, 3, -1, 0, 1}, 1, 2, 3)
	w := up(t, c, []float32{1, 0, 0, 0.5, -1, 0.25}, 2, 3)
	b := up(t, c, []float32{0.5, -1}, 2)
	out := zeros(t, c, 1, 2, 2)
	must(t, c.Linear(bg, out, x, w, b, ActNone))
	// row 0: [1, 0.5−2+0.75] + b = [1.5, −1.75]; row 1: [−1, −0.5+0.25] + b = [−0.5, −1.25]
	near(t, "linear", data(t, out), []float64{1.5, -1.75, -0.5, -1.25}, 0)
	must(t, c.Linear(bg, out, x, w, nil, ActNone))
	near(t, "linear no bias", data(t, out), []float64{1, -0.75, -1, -0.25}, 0)
	must(t, c.Linear(bg, out, x, w, b, ActGELU))
	want := []float64{}
	for _, v := range []float32{1.5, -1.75, -0.5, -1.25} {
		want = append(want, float64(gelu(v)))
	}
	near(t, "linear gelu", data(t, out), want, 0)
}

// TestLinearMatchesComposition: the fused bias+GELU epilogue equals Linear
// without bias, then Add of the broadcast bias, then GELU (the unfused
// composition), bitwise: the same float32 operations in the same order.
func TestLinearMatchesComposition(t *testing.T) {
	const M, K, N = 37, 70, 50
	c := NewCPU(WithWorkers(2))
	x := up(t, c, randSlice(1, M*K), M, K)
	w := up(t, c, randSlice(2, N*K), N, K)
	bd := randSlice(3, N)
	b := up(t, c, bd, N)
	fused := zeros(t, c, M, N)
	must(t, c.Linear(bg, fused, x, w, b, ActGELU))
	plain := zeros(t, c, M, N)
	must(t, c.Linear(bg, plain, x, w, nil, ActNone))
	rep := make([]float32, M*N)
	for i := range rep {
		rep[i] = bd[i%N]
	}
	must(t, c.Add(bg, plain, plain, up(t, c, rep, M, N)))
	must(t, c.GELU(bg, plain, plain))
	for i, v := range data(t, fused) {
		if v != data(t, plain)[i] {
			t.Fatalf("element %d: fused %v, composed %v", i, v, data(t, plain)[i])
		}
	}
}

// TestPatchEmbed compares the im2col + GEMM stem with a direct convolution
// loop in float64 on a tiny image: B=2, C=2, 4×6 pixels, 2×2 patches, D=3.
// Tolerance: the 8-term dot product's float32 rounding (≤ 8·2⁻²⁴·Σ|w·x|).
func TestPatchEmbed(t *testing.T) {
	const B, C, H, W, P, D = 2, 2, 4, 6, 2, 3
	c := NewCPU()
	pd := randSlice(1, B*C*H*W)
	wd := randSlice(2, D*C*P*P)
	bd := []float32{0.1, -0.2, 0.3}
	cd := []float32{7, 8, 9}
	out := zeros(t, c, B, 1+(H/P)*(W/P), D)
	must(t, c.PatchEmbed(bg, out, up(t, c, pd, B, C, H, W), up(t, c, wd, D, C*P*P), up(t, c, bd, D), up(t, c, cd, D), P))
	got := data(t, out)
	T := 1 + (H/P)*(W/P)
	for b := range B {
		for d := range D {
			if got[(b*T)*D+d] != cd[d] {
				t.Fatalf("cls token of image %d: %v", b, got[b*T*D:b*T*D+D])
			}
		}
		for r := range H / P {
			for q := range W / P {
				for d := range D {
					s := float64(bd[d])
					mag := math.Abs(s)
					for ci := range C {
						for y := range P {
							for x := range P {
								pv := float64(pd[((b*C+ci)*H+r*P+y)*W+q*P+x])
								wv := float64(wd[((d*C+ci)*P+y)*P+x])
								s += pv * wv
								mag += math.Abs(pv * wv)
							}
						}
					}
					tok := 1 + r*(W/P) + q
					if g := float64(got[(b*T+tok)*D+d]); math.Abs(g-s) > 10*0x1p-24*mag {
						t.Fatalf("image %d patch (%d,%d) dim %d: %v, want %v", b, r, q, d, g, s)
					}
				}
			}
		}
	}
}

// TestGatherPositionsRows checks the row-copying ops on literals.
func TestGatherPositionsRows(t *testing.T) {
	c := NewCPU()
	table := up(t, c, []float32{0, 1, 10, 11, 20, 21}, 3, 2)
	out := zeros(t, c, 4, 2)
	must(t, c.Gather(bg, out, table, []int32{2, 0, 2, 1}))
	near(t, "gather", data(t, out), []float64{20, 21, 0, 1, 20, 21, 10, 11}, 0)

	x := up(t, c, []float32{1, 1, 2, 2, 3, 3, 4, 4}, 2, 2, 2) // [B=2, L=2, D=2]
	pos := up(t, c, []float32{100, 200, 300, 400, 500, 600}, 3, 2)
	px := zeros(t, c, 2, 2, 2)
	must(t, c.AddPositions(bg, px, x, pos))
	near(t, "addpositions", data(t, px), []float64{101, 201, 302, 402, 103, 203, 304, 404}, 0)
	must(t, c.AddPositions(bg, x, x, pos))
	near(t, "addpositions in place", data(t, x), []float64{101, 201, 302, 402, 103, 203, 304, 404}, 0)

	rows := zeros(t, c, 2, 2)
	must(t, c.TakeRow(bg, rows, x, 1))
	near(t, "takerow", data(t, rows), []float64{302, 402, 304, 404}, 0)

	cr := zeros(t, c, 1, 2, 2)
	must(t, c.CopyRows(bg, cr, x, 2)) // x as [4, 2]: rows 2, 3
	near(t, "copyrows", data(t, cr), []float64{103, 203, 304, 404}, 0)
}

// TestDeterminism runs every computing op twice (and with 1 and 2 workers)
// and requires bitwise-identical outputs.
func TestDeterminism(t *testing.T) {
	run := func(workers int) [][]float32 {
		c := NewCPU(WithWorkers(workers))
		var res [][]float32
		keep := func(x Tensor) { res = append(res, append([]float32(nil), data(t, x)...)) }
		x := up(t, c, randSlice(1, 2*40*96), 2, 40, 96)
		w := up(t, c, randSlice(2, 300*96), 300, 96)
		b := up(t, c, randSlice(3, 300), 300)
		y := zeros(t, c, 2, 40, 300)
		must(t, c.Linear(bg, y, x, w, b, ActGELU))
		keep(y)
		g := up(t, c, randSlice(4, 96), 96)
		be := up(t, c, randSlice(5, 96), 96)
		ln := zeros(t, c, 2, 40, 96)
		must(t, c.LayerNorm(bg, ln, x, g, be, 1e-5))
		keep(ln)
		s := zeros(t, c, 2, 40, 96)
		must(t, c.AddLayerNorm(bg, s, ln, x, ln, g, be, 1e-12))
		keep(ln)
		keep(s)
		kv := up(t, c, randSlice(6, 70*96), 1, 70, 96)
		mask := up(t, c, randSlice(7, 2*70), 2, 70)
		att := zeros(t, c, 2, 40, 96)
		must(t, c.Attention(bg, att, x, kv, kv, mask, AttentionParams{Heads: 6, Scale: 0.25}))
		keep(att)
		must(t, c.L2Normalize(bg, att, att))
		keep(att)
		pe := zeros(t, c, 1, 1+4*4, 8)
		must(t, c.PatchEmbed(bg, pe, up(t, c, randSlice(8, 3*16*16), 1, 3, 16, 16), up(t, c, randSlice(9, 8*48), 8, 48), up(t, c, randSlice(10, 8), 8), up(t, c, randSlice(11, 8), 8), 4))
		keep(pe)
		return res
	}
	ref := run(2)
	for _, workers := range []int{2, 1, 3} {
		got := run(workers)
		for i := range ref {
			for j := range ref[i] {
				if math.Float32bits(ref[i][j]) != math.Float32bits(got[i][j]) {
					t.Fatalf("workers=%d: output %d element %d: %v vs %v", workers, i, j, got[i][j], ref[i][j])
				}
			}
		}
	}
}

// BenchmarkAttention times vision self-attention (B=1, 577×577, 12 heads ×
// 64) and text→image cross-attention, reporting GFLOP/s (4·B·H·Lq·Lk·Dh for
// the two matrix products).
func BenchmarkAttention(b *testing.B) {
	cases := []struct {
		name         string
		Lq, Lk, W, H int
	}{
		{"vision_577x577x12x64", 577, 577, 768, 12},
		{"cross_35x577x12x64", 35, 577, 768, 12},
	}
	for _, tc := range cases {
		for _, workers := range []int{1, 2} {
			b.Run(tc.name+"/workers="+string(rune('0'+workers)), func(b *testing.B) {
				c := NewCPU(WithWorkers(workers))
				q := up(b, c, randSlice(1, tc.Lq*tc.W), 1, tc.Lq, tc.W)
				k := up(b, c, randSlice(2, tc.Lk*tc.W), 1, tc.Lk, tc.W)
				v := up(b, c, randSlice(3, tc.Lk*tc.W), 1, tc.Lk, tc.W)
				out := zeros(b, c, 1, tc.Lq, tc.W)
				p := AttentionParams{Heads: tc.H, Scale: 0.125}
				c0 := cpuSeconds()
				for b.Loop() {
					must(b, c.Attention(bg, out, q, k, v, nil, p))
				}
				reportFlops(b, 4*float64(tc.Lq)*float64(tc.Lk)*float64(tc.W), c0)
			})
		}
	}
}

// BenchmarkLayerNorm times LayerNorm on the vision residual stream
// [577, 768], reporting GB/s (read x, write out).
func BenchmarkLayerNorm(b *testing.B) {
	for _, workers := range []int{1, 2} {
		b.Run("577x768/workers="+string(rune('0'+workers)), func(b *testing.B) {
			c := NewCPU(WithWorkers(workers))
			x := up(b, c, randSlice(1, 577*768), 577, 768)
			g := up(b, c, randSlice(2, 768), 768)
			be := up(b, c, randSlice(3, 768), 768)
			out := zeros(b, c, 577, 768)
			for b.Loop() {
				must(b, c.LayerNorm(bg, out, x, g, be, 1e-5))
			}
			b.ReportMetric(2*4*577*768*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
		})
	}
}

// BenchmarkGELU times the exact erf GELU on the fc1 output [577, 3072],
// values uniform in [-4, 4].
func BenchmarkGELU(b *testing.B) {
	for _, workers := range []int{1, 2} {
		b.Run("577x3072/workers="+string(rune('0'+workers)), func(b *testing.B) {
			c := NewCPU(WithWorkers(workers))
			xd := randSlice(1, 577*3072)
			for i := range xd {
				xd[i] *= 4
			}
			x := up(b, c, xd, 577, 3072)
			out := zeros(b, c, 577, 3072)
			for b.Loop() {
				must(b, c.GELU(bg, out, x))
			}
			b.ReportMetric(577*3072*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
		})
	}
}

// BenchmarkVisionLayer runs one BLIP-base vision encoder layer (pre-LN,
// 577 tokens, width 768, 12 heads, MLP 3072) from the ops, with random
// weights: the unit of a ViT-B/16 image encode (12 layers ≈ 110 GFLOP). q, k
// and v are three Linears, as the model runs them (the fused qkv weight
// uploaded as three row slices). Reports GFLOP/s and ms per 12 layers.
func BenchmarkVisionLayer(b *testing.B) {
	const L, D, F, H = 577, 768, 3072, 12
	for _, workers := range []int{1, 2} {
		b.Run("workers="+string(rune('0'+workers)), func(b *testing.B) {
			c := NewCPU(WithWorkers(workers))
			// Weights uniform in ±0.06 (std 0.035, like a trained ViT's), LN
			// gains near 1: activations of order 1, so GELU and softmax see
			// realistic ranges.
			w := func(seed uint64, shape ...int) Tensor {
				d := randSlice(seed, prod(shape))
				for i := range d {
					d[i] *= 0.06
				}
				return up(b, c, d, shape...)
			}
			gain := func(seed uint64) Tensor {
				d := randSlice(seed, D)
				for i := range d {
					d[i] = 1 + 0.1*d[i]
				}
				return up(b, c, d, D)
			}
			x := up(b, c, randSlice(1, L*D), 1, L, D)
			g1, b1, g2, b2 := gain(2), w(3, D), gain(4), w(5, D)
			wq, wk, wv, wo := w(6, D, D), w(7, D, D), w(8, D, D), w(9, D, D)
			bq, bk, bv, bo := w(10, D), w(11, D), w(12, D), w(13, D)
			w1, bias1, w2, bias2 := w(14, F, D), w(15, F), w(16, D, F), w(17, D)
			h, q, k, v, a, o, x1 := zeros(b, c, 1, L, D), zeros(b, c, 1, L, D), zeros(b, c, 1, L, D), zeros(b, c, 1, L, D), zeros(b, c, 1, L, D), zeros(b, c, 1, L, D), zeros(b, c, 1, L, D)
			f := zeros(b, c, 1, L, F)
			p := AttentionParams{Heads: H, Scale: 0.125}
			c0 := cpuSeconds()
			for b.Loop() {
				must(b, c.LayerNorm(bg, h, x, g1, b1, 1e-5))
				must(b, c.Linear(bg, q, h, wq, bq, ActNone))
				must(b, c.Linear(bg, k, h, wk, bk, ActNone))
				must(b, c.Linear(bg, v, h, wv, bv, ActNone))
				must(b, c.Attention(bg, a, q, k, v, nil, p))
				must(b, c.Linear(bg, o, a, wo, bo, ActNone))
				must(b, c.AddLayerNorm(bg, x1, h, o, x, g2, b2, 1e-5))
				must(b, c.Linear(bg, f, h, w1, bias1, ActGELU))
				must(b, c.Linear(bg, o, f, w2, bias2, ActNone))
				must(b, c.Add(bg, x, x1, o))
			}
			flops := 2*float64(L)*D*(4*D+2*F) + 4*float64(L)*L*D
			reportFlops(b, flops, c0)
			b.ReportMetric(12*b.Elapsed().Seconds()/float64(b.N)*1e3, "ms/12-layers")
		})
	}
}
