package imageproc

import "sync"

// decodeBudget bounds the pixels being decoded at once, across all
// goroutines: the per-image limit (maxPixels) alone would let N workers
// hold N images' worth of decoder memory (about 10 bytes per pixel: the
// decoded image, its RGB conversion and the decoder's buffers).
var decodeBudget = newPixelSemaphore(DefaultMaxPixels)

// SetDecodeBudget sets how many pixels (width·height as the headers
// declare them) Decode may be decoding at once across goroutines, and
// returns the previous budget. A decode waits until its image fits; an
// image larger than the whole budget waits until it is alone. The default
// is DefaultMaxPixels: one image at the largest default size, about 0.9 GB
// of decoder memory. pixels ≤ 0 restores the default.
func SetDecodeBudget(pixels int64) int64 {
	if pixels <= 0 {
		pixels = DefaultMaxPixels
	}
	return decodeBudget.resize(pixels)
}

// pixelSemaphore is a weighted semaphore served in arrival order, so that
// a large image is not starved by a stream of small ones.
type pixelSemaphore struct {
	mu      sync.Mutex
	size    int64
	used    int64
	peak    int64 // the most ever held, for tests
	waiters []*pixelWaiter
}

type pixelWaiter struct {
	n     int64
	ready chan struct{}
}

func newPixelSemaphore(size int64) *pixelSemaphore { return &pixelSemaphore{size: size} }

// acquire waits for n pixels (at most the whole budget) and returns the
// amount held, to pass to release.
func (s *pixelSemaphore) acquire(n int64) int64 {
	s.mu.Lock()
	n = max(0, min(n, s.size))
	if len(s.waiters) == 0 && s.used+n <= s.size {
		s.take(n)
		s.mu.Unlock()
		return n
	}
	w := &pixelWaiter{n: n, ready: make(chan struct{})}
	s.waiters = append(s.waiters, w)
	s.mu.Unlock()
	<-w.ready
	return n
}

func (s *pixelSemaphore) take(n int64) {
	s.used += n
	s.peak = max(s.peak, s.used)
}

// release returns n pixels and wakes the waiters that now fit, in order.
func (s *pixelSemaphore) release(n int64) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	s.used -= n
	s.wake()
	s.mu.Unlock()
}

func (s *pixelSemaphore) wake() {
	for len(s.waiters) > 0 {
		w := s.waiters[0]
		// A waiter larger than a budget shrunk since it queued runs alone.
		if s.used+w.n > s.size && s.used > 0 {
			return
		}
		s.take(w.n)
		close(w.ready)
		s.waiters = s.waiters[1:]
	}
}

func (s *pixelSemaphore) resize(size int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.size
	s.size = size
	s.wake()
	return old
}
