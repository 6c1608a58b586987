package cuda

import (
	"fmt"
	"runtime"
	"sort"
)

// arenaAlign is the alignment of every arena allocation (cuMemAlloc gives
// 256 bytes; keeps float4 paths and cuBLAS happy).
const arenaAlign = 256

// Arena sub-allocates device memory out of a few large cuMemAlloc chunks,
// first fit with coalescing of freed ranges, so a steady state of
// allocations and frees (one forward pass after another) calls the driver
// no more. When every allocation has been freed and the arena holds more
// than one chunk, the chunks are merged into one of their total size (the
// high-water mark), so growth happens between calls, not inside them.
// Safe for concurrent use.
type Arena struct {
	d      *Device
	name   string
	grow   uint64
	chunks []*chunk
	live   map[DevicePtr]liveSpan
	inUse  uint64
	peak   uint64
	grows  int
	closed bool
}

type liveSpan struct {
	c    *chunk
	off  uint64
	size uint64
}

type chunk struct {
	base DevicePtr
	size uint64
	free []span // sorted by off, coalesced
}

type span struct{ off, size uint64 }

// NewArena returns an empty arena that grows by at least chunk bytes.
func (d *Device) NewArena(name string, chunk uint64) *Arena {
	return &Arena{d: d, name: name, grow: max(chunk, 1<<20), live: map[DevicePtr]liveSpan{}}
}

// ArenaStats describes an arena.
type ArenaStats struct {
	Reserved uint64 // bytes held from the driver
	InUse    uint64 // bytes allocated
	Peak     uint64 // most bytes allocated at once
	Chunks   int    // cuMemAlloc chunks held
	Grows    int    // times the arena asked the driver for memory
	Live     int    // allocations not yet freed
}

// Stats returns the arena's counters.
func (a *Arena) Stats() ArenaStats {
	a.d.mu.Lock()
	defer a.d.mu.Unlock()
	s := ArenaStats{InUse: a.inUse, Peak: a.peak, Chunks: len(a.chunks), Grows: a.grows, Live: len(a.live)}
	for _, c := range a.chunks {
		s.Reserved += c.size
	}
	return s
}

func roundUp(n uint64) uint64 { return (max(n, 1) + arenaAlign - 1) &^ (arenaAlign - 1) }

// Alloc returns bytes of device memory (not zeroed), 256-byte aligned.
func (a *Arena) Alloc(bytes uint64) (DevicePtr, error) {
	n := roundUp(bytes)
	done, err := a.d.enter("arena " + a.name)
	if err != nil {
		return 0, err
	}
	defer done()
	if a.closed {
		return 0, fmt.Errorf("cuda: arena %s: %w", a.name, ErrClosed)
	}
	for _, c := range a.chunks {
		if p, ok := a.take(c, n); ok {
			return p, nil
		}
	}
	size := max(n, a.grow)
	base, err := a.d.allocLocked("arena "+a.name, size)
	if err != nil && size > n {
		size = n // the chunk may not fit where the request does
		base, err = a.d.allocLocked("arena "+a.name, size)
	}
	if err != nil {
		return 0, err
	}
	c := &chunk{base: base, size: size, free: []span{{0, size}}}
	a.chunks = append(a.chunks, c)
	a.grows++
	p, _ := a.take(c, n)
	return p, nil
}

// take carves n bytes out of c's first free span that fits.
func (a *Arena) take(c *chunk, n uint64) (DevicePtr, bool) {
	for i, s := range c.free {
		if s.size < n {
			continue
		}
		if s.size == n {
			c.free = append(c.free[:i], c.free[i+1:]...)
		} else {
			c.free[i] = span{s.off + n, s.size - n}
		}
		p := c.base.Add(int64(s.off))
		a.live[p] = liveSpan{c, s.off, n}
		a.inUse += n
		a.peak = max(a.peak, a.inUse)
		return p, true
	}
	return 0, false
}

// Free returns an allocation to the arena. Freeing 0 or an unknown pointer
// does nothing.
func (a *Arena) Free(p DevicePtr) {
	a.d.mu.Lock()
	defer a.d.mu.Unlock()
	ls, ok := a.live[p]
	if !ok {
		return
	}
	delete(a.live, p)
	a.inUse -= ls.size
	c := ls.c
	i := sort.Search(len(c.free), func(i int) bool { return c.free[i].off > ls.off })
	c.free = append(c.free, span{})
	copy(c.free[i+1:], c.free[i:])
	c.free[i] = span{ls.off, ls.size}
	// Coalesce with the neighbours.
	if i+1 < len(c.free) && c.free[i].off+c.free[i].size == c.free[i+1].off {
		c.free[i].size += c.free[i+1].size
		c.free = append(c.free[:i+1], c.free[i+2:]...)
	}
	if i > 0 && c.free[i-1].off+c.free[i-1].size == c.free[i].off {
		c.free[i-1].size += c.free[i].size
		c.free = append(c.free[:i], c.free[i+1:]...)
	}
	if len(a.live) == 0 && len(a.chunks) > 1 && !a.d.closed && a.d.poison == nil {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if a.d.drv.makeCurrent() == 0 {
			a.mergeLocked()
		}
	}
}

// mergeLocked replaces several empty chunks by one of their total size.
func (a *Arena) mergeLocked() {
	var total uint64
	for _, c := range a.chunks {
		total += c.size
	}
	for _, c := range a.chunks {
		_ = a.d.freeLocked(c.base)
	}
	a.chunks = nil
	base, err := a.d.allocLocked("arena "+a.name, total)
	if err != nil {
		return // the next Alloc grows again
	}
	a.chunks = []*chunk{{base: base, size: total, free: []span{{0, total}}}}
	a.grows++
}

// Reserve makes sure the arena can hand out bytes more without growing
// (call it between calls, e.g. with a plan's activation high-water mark).
func (a *Arena) Reserve(bytes uint64) error {
	p, err := a.Alloc(bytes)
	if err != nil {
		return err
	}
	a.Free(p)
	return nil
}

// Close frees the arena's chunks; its allocations become invalid.
func (a *Arena) Close() error {
	a.d.mu.Lock()
	defer a.d.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	var first error
	for _, c := range a.chunks {
		if a.d.bufs != nil {
			if err := a.d.freeLocked(c.base); err != nil && first == nil {
				first = err
			}
		}
	}
	a.chunks, a.live, a.inUse = nil, nil, 0
	return first
}
