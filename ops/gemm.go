package ops

import (
	"context"
	"sync"
)

// The matrix multiply behind Linear, PatchEmbed and Attention.
//
// gemm computes C = A·op(B) (+ bias, then an optional activation) in float32
// with the GotoBLAS/BLIS structure:
//
//   - B is packed into panels of gemmNR columns, stored k-major ("for every
//     k, the gemmNR values of op(B)'s row k") and zero-padded at the right
//     edge, one K block of gemmKC at a time, so the micro-kernel reads it
//     sequentially whatever B's layout was.
//   - A is read in place: the micro-kernel takes a row stride and a k stride,
//     so it reads gemmMR rows of a row-major A directly. Only a partial last
//     row panel is copied, into a zero-padded buffer. Not packing A matters
//     for attention, whose A (the probabilities) is used once.
//   - C is cut into tasks of about gemmMC rows × gemmNC columns which run in
//     parallel. A task walks its K blocks in order; inside a K block it keeps
//     one gemmKC×gemmNR panel of B in L1 while it streams its rows of A
//     (gemmMC×gemmKC, in L2) through the micro-kernel.
//   - The micro-kernel (kernelFunc) computes one gemmMR×gemmNR tile over one K
//     block, storing the block's sum into C for the first block and adding it
//     for the others. Edge tiles go through a small buffer.
//
// Every element of C is summed in the same order (K blocks in order, the
// kernel's order inside a block) whatever the number of workers and the task
// split, so results are bitwise reproducible and independent of parallelism.

const (
	gemmMR = 6   // rows of the micro-kernel tile
	gemmNR = 16  // columns of the micro-kernel tile (two AVX registers)
	gemmKC = 256 // K block: one B panel is gemmKC·gemmNR·4 = 16 KiB (L1)
	gemmMC = 96  // target rows per task: gemmMC·gemmKC·4 = 96 KiB of A (L2)
	gemmNC = 256 // target columns per task
)

// kernelFunc computes one gemmMR×gemmNR tile of C over k steps:
//
//	t[i][j] = Σ_{p<k} a[i·rs + p·ks] · b[p·gemmNR + j]   (p in order)
//	c[i·ldc + j] = t[i][j]                 (acc false)
//	c[i·ldc + j] = c[i·ldc + j] + t[i][j]  (acc true)
//
// a holds gemmMR rows of A with row stride rs and k stride ks (rs = lda,
// ks = 1 for a row-major matrix; rs = 1, ks = gemmMR for a packed panel);
// b is a packed panel of B (see packB); k ≥ 1.
type kernelFunc func(k int, a []float32, rs, ks int, b, c []float32, ldc int, acc bool)

// kernelGo is the portable micro-kernel and the specification of the
// assembly one.
func kernelGo(k int, a []float32, rs, ks int, b, c []float32, ldc int, acc bool) {
	var t [gemmMR][gemmNR]float32
	b = b[:k*gemmNR]
	for p := 0; p < k; p++ {
		bp := b[p*gemmNR : p*gemmNR+gemmNR]
		for i := range gemmMR {
			ai := a[i*rs+p*ks]
			ti := &t[i]
			for j := range gemmNR {
				ti[j] += ai * bp[j]
			}
		}
	}
	for i := range gemmMR {
		ci := c[i*ldc : i*ldc+gemmNR]
		for j := range gemmNR {
			if acc {
				ci[j] += t[i][j]
			} else {
				ci[j] = t[i][j]
			}
		}
	}
}

// gemmArgs describes C = A·op(B) + bias, then act, for row-major operands
// given as slices with leading dimensions:
//
//	A[i, p]     = a[i·lda + p]                       i < m, p < k
//	op(B)[p, j] = b[j·ldb + p] if bT (B is [n, k], PyTorch's weight layout)
//	            = b[p·ldb + j] otherwise (B is [k, n])
//	C[i, j]     = c[i·ldc + j]                       j < n
type gemmArgs struct {
	m, n, k int
	a       []float32
	lda     int
	b       []float32
	ldb     int
	bT      bool
	c       []float32
	ldc     int
	bias    []float32 // nil or n values added to every row of C
	act     Activation
}

// runner runs fn(0), …, fn(n-1), possibly in parallel, and returns the
// context's error if it stopped early.
type runner func(ctx context.Context, n int, fn func(i int)) error

// serial is the runner that runs every task in the calling goroutine,
// checking the context every 16 tasks.
func serial(ctx context.Context, n int, fn func(i int)) error {
	done := ctx.Done()
	for i := 0; i < n; i++ {
		if done != nil && i%16 == 0 {
			select {
			case <-done:
				return ctx.Err()
			default:
			}
		}
		fn(i)
	}
	return nil
}

// gemmScratch holds the packed copy of B; reused between calls.
type gemmScratch struct {
	pb []float32
}

var gemmScratchPool = sync.Pool{New: func() any { return new(gemmScratch) }}

// grow returns s[:n], reallocating if s is too short.
func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }

// split cuts n items into about n/target blocks of a multiple of unit items,
// at least minBlocks where possible, and returns the block size and count.
func split(n, unit, target, minBlocks int) (size, count int) {
	units := (n + unit - 1) / unit
	count = (n + target - 1) / target
	if count < minBlocks {
		count = minBlocks
	}
	if count > units {
		count = units
	}
	if count < 1 {
		count = 1
	}
	size = (units + count - 1) / count * unit
	count = (n + size - 1) / size
	return size, count
}

// gemm computes g with kernel kern, running its tasks through run. s holds
// the packing buffer (nil: one from a pool). workers is a hint used to cut
// enough tasks.
func gemm(ctx context.Context, run runner, workers int, kern kernelFunc, g *gemmArgs, s *gemmScratch) error {
	m, n, k := g.m, g.n, g.k
	if m == 0 || n == 0 {
		return nil
	}
	if k == 0 {
		for i := range m {
			clear(g.c[i*g.ldc : i*g.ldc+n])
		}
		epilogue(g, 0, m, 0, n)
		return nil
	}
	if s == nil {
		s = gemmScratchPool.Get().(*gemmScratch)
		defer gemmScratchPool.Put(s)
	}
	nPad := roundUp(n, gemmNR)
	s.pb = grow(s.pb, nPad*k)
	pb := s.pb

	// Pack B, one panel per task.
	if err := run(ctx, nPad/gemmNR, func(t int) { packB(pb, nPad, g, t) }); err != nil {
		return err
	}

	// Multiply, one block of C per task.
	rows, rowBlocks := split(m, gemmMR, gemmMC, 1)
	minCol := 1
	if workers > 1 {
		minCol = (4*workers + rowBlocks - 1) / rowBlocks
	}
	cols, colBlocks := split(n, gemmNR, gemmNC, minCol)
	// Consecutive tasks share a column block of B, which then stays in cache
	// while the row blocks pass by.
	return run(ctx, rowBlocks*colBlocks, func(t int) {
		i0 := (t % rowBlocks) * rows
		j0 := (t / rowBlocks) * cols
		gemmBlock(kern, g, pb, nPad, i0, min(i0+rows, m), j0, min(j0+cols, n))
	})
}

// packB packs columns [jp·gemmNR, jp·gemmNR+gemmNR) of op(B) for every K
// block. Block k0 of width kc starts at pb[k0·nPad]; the panel inside it at
// jp·gemmNR·kc, holding op(B)[k0+p, j0+j] at p·gemmNR + j (0 beyond n).
func packB(pb []float32, nPad int, g *gemmArgs, jp int) {
	j0 := jp * gemmNR
	w := min(gemmNR, g.n-j0) // valid columns in this panel
	for k0 := 0; k0 < g.k; k0 += gemmKC {
		kc := min(gemmKC, g.k-k0)
		dst := pb[k0*nPad+jp*gemmNR*kc : k0*nPad+(jp+1)*gemmNR*kc]
		if g.bT {
			// B is [n, k]: a transpose. Four rows of B at a time, so each
			// store of four values into a packed row needs one bounds check.
			j := 0
			for ; j+4 <= w; j += 4 {
				off := (j0+j)*g.ldb + k0
				r0 := g.b[off : off+kc]
				r1 := g.b[off+g.ldb : off+g.ldb+kc]
				r2 := g.b[off+2*g.ldb : off+2*g.ldb+kc]
				r3 := g.b[off+3*g.ldb : off+3*g.ldb+kc]
				for p := range r0 {
					d := dst[p*gemmNR+j : p*gemmNR+j+4 : p*gemmNR+j+4]
					d[0], d[1], d[2], d[3] = r0[p], r1[p], r2[p], r3[p]
				}
			}
			for ; j < gemmNR; j++ {
				if j >= w {
					for p := range kc {
						dst[p*gemmNR+j] = 0
					}
					continue
				}
				src := g.b[(j0+j)*g.ldb+k0 : (j0+j)*g.ldb+k0+kc]
				for p, v := range src {
					dst[p*gemmNR+j] = v
				}
			}
			continue
		}
		for p := range kc {
			row := dst[p*gemmNR : p*gemmNR+gemmNR]
			off := (k0+p)*g.ldb + j0
			copy(row, g.b[off:off+w])
			clear(row[w:])
		}
	}
}

// gemmBlock computes rows [i0, i1) × columns [j0, j1) of C; i0 and j0 are
// multiples of gemmMR and gemmNR.
func gemmBlock(kern kernelFunc, g *gemmArgs, pb []float32, nPad, i0, i1, j0, j1 int) {
	var (
		tmp   []float32 // an edge tile of C
		edgeA []float32 // a partial last row panel of A, packed, zero-padded
	)
	whole := i0 + (i1-i0)/gemmMR*gemmMR // rows [i0, whole) form whole panels
	c, ldc := g.c, g.ldc
	for k0 := 0; k0 < g.k; k0 += gemmKC {
		kc := min(gemmKC, g.k-k0)
		acc := k0 > 0
		if whole < i1 {
			if edgeA == nil {
				edgeA = make([]float32, gemmMR*gemmKC)
			}
			for i := range gemmMR {
				for p := range kc {
					v := float32(0)
					if whole+i < i1 {
						v = g.a[(whole+i)*g.lda+k0+p]
					}
					edgeA[p*gemmMR+i] = v
				}
			}
		}
		pbK := pb[k0*nPad:]
		for j := j0; j < j1; j += gemmNR {
			bp := pbK[j*kc : (j+gemmNR)*kc]
			for i := i0; i < i1; i += gemmMR {
				a, rs, ks := g.a[i*g.lda+k0:], g.lda, 1
				if i >= whole {
					a, rs, ks = edgeA, 1, gemmMR
				}
				if i+gemmMR <= i1 && j+gemmNR <= j1 {
					kern(kc, a, rs, ks, bp, c[i*ldc+j:], ldc, acc)
					continue
				}
				if tmp == nil {
					tmp = make([]float32, gemmMR*gemmNR)
				}
				kern(kc, a, rs, ks, bp, tmp, gemmNR, false)
				for ii := 0; ii < min(gemmMR, i1-i); ii++ {
					ci := c[(i+ii)*ldc+j : (i+ii)*ldc+min(j+gemmNR, j1)]
					ti := tmp[ii*gemmNR:]
					for jj := range ci {
						if acc {
							ci[jj] += ti[jj]
						} else {
							ci[jj] = ti[jj]
						}
					}
				}
			}
		}
	}
	epilogue(g, i0, i1, j0, j1)
}

// epilogue adds the bias and applies the activation to rows [i0, i1) ×
// columns [j0, j1) of C.
func epilogue(g *gemmArgs, i0, i1, j0, j1 int) {
	if g.bias == nil && g.act == ActNone {
		return
	}
	for i := i0; i < i1; i++ {
		ci := g.c[i*g.ldc+j0 : i*g.ldc+j1]
		if g.bias != nil {
			for j, bv := range g.bias[j0:j1] {
				ci[j] += bv
			}
		}
		if g.act == ActGELU {
			for j, v := range ci {
				ci[j] = gelu(v)
			}
		}
	}
}
