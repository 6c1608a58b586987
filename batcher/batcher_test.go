package batcher

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/blipcuda/blipcuda"
)

func load(t testing.TB) (*blipcuda.Model, []*blipcuda.Image) {
	t.Helper()
	m, err := blipcuda.Load(context.Background(), filepath.Join("..", "testdata", "models", "tiny-base"),
		blipcuda.WithDevice("cpu"), blipcuda.WithImageBatch(4))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	var ims []*blipcuda.Image
	for _, n := range []string{"scene.png", "blocks.png", "waves_rgba.png"} {
		im, err := m.LoadImage(filepath.Join("..", "testdata", "models", "images", n))
		if err != nil {
			t.Fatal(err)
		}
		ims = append(ims, im)
	}
	return m, ims
}

var captions = []string{"a red square", "two cats on a sofa", "a beach at sunset", "blue and white stripes",
	"a photo of waves", "a dog running in a park with a ball", "an empty room", "blocks of colour"}

// TestConcurrentMatchesSerial: many goroutines, each with its own images and
// texts (some invalid), batched together; every result equals a serial
// Match of the same request and every invalid request fails alone.
func TestConcurrentMatchesSerial(t *testing.T) {
	m, ims := load(t)
	var mu sync.Mutex
	var batches, maxReq int
	b := New(m, Options{Wait: 5 * time.Millisecond, MaxBatch: 16, QueueSize: 1024, Observe: func(s Stats) {
		mu.Lock()
		batches++
		maxReq = max(maxReq, s.Requests)
		mu.Unlock()
	}})
	defer b.Close()
	ctx := context.Background()
	const n = 48
	type req struct {
		images []*blipcuda.Image
		texts  []string
		embedI bool
		embedT bool
	}
	reqs := make([]req, n)
	for i := range reqs {
		r := req{images: []*blipcuda.Image{ims[i%3]}, texts: []string{captions[i%8], captions[(i*3+1)%8]}}
		if i%4 == 1 {
			r.images = append(r.images, ims[(i+1)%3])
		}
		if i%7 == 3 {
			r.texts = append(r.texts, "") // invalid: fails alone
		}
		r.embedI, r.embedT = i%5 == 2, i%5 == 4
		reqs[i] = r
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch {
			case r.embedI:
				got, err := b.EncodeImages(ctx, r.images)
				want, werr := m.EncodeImages(ctx, r.images, false)
				if err != nil || werr != nil || !reflect.DeepEqual(got, want) {
					errs <- fmt.Errorf("request %d: EncodeImages differs (err %v, %v)", i, err, werr)
				}
			case r.embedT:
				got, err := b.EncodeTexts(ctx, r.texts)
				want, werr := m.EncodeTexts(ctx, r.texts)
				if (err == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
					errs <- fmt.Errorf("request %d: EncodeTexts differs (err %v, %v)", i, err, werr)
				}
			default:
				got, err := b.Match(ctx, r.images, r.texts)
				want, werr := m.Match(ctx, r.images, r.texts)
				if (err == nil) != (werr == nil) {
					errs <- fmt.Errorf("request %d: err %v, serial err %v", i, err, werr)
				} else if werr != nil && !errors.Is(err, blipcuda.ErrEmptyText) {
					errs <- fmt.Errorf("request %d: err %v, want ErrEmptyText", i, err)
				} else if !reflect.DeepEqual(got, want) {
					errs <- fmt.Errorf("request %d: batched\n%+v\nserial\n%+v", i, got, want)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d requests in %d batches, at most %d requests per batch", n, batches, maxReq)
	if maxReq < 2 {
		t.Errorf("no batch held more than one request")
	}
}

// blocked returns a Batcher whose worker blocks after its first batch
// until release is closed.
func blocked(t *testing.T, m *blipcuda.Model, queue int) (b *Batcher, entered <-chan struct{}, release chan struct{}, ran *[]Stats) {
	in := make(chan struct{}, 1)
	release = make(chan struct{})
	var mu sync.Mutex
	stats := &[]Stats{}
	b = New(m, Options{MaxBatch: 1, QueueSize: queue, Observe: func(s Stats) {
		mu.Lock()
		*stats = append(*stats, s)
		first := len(*stats) == 1
		mu.Unlock()
		if first {
			in <- struct{}{}
			<-release
		}
	}})
	return b, in, release, stats
}

func TestQueueFullAndCancel(t *testing.T) {
	m, ims := load(t)
	b, entered, release, stats := blocked(t, m, 2)
	ctx := context.Background()
	first := make(chan error, 1)
	go func() { _, err := b.Match(ctx, ims[:1], captions[:1]); first <- err }()
	<-entered // the worker is inside its first batch

	cctx, cancel := context.WithCancel(ctx)
	dropped := make(chan error, 1)
	go func() { _, err := b.Match(cctx, ims[1:2], captions[:2]); dropped <- err }()
	kept := make(chan error, 1)
	go func() { _, err := b.EncodeTexts(ctx, captions[:3]); kept <- err }()
	for b.QueueDepth() < 2 {
		time.Sleep(time.Millisecond)
	}
	if _, err := b.EncodeTexts(ctx, captions[:1]); !errors.Is(err, ErrQueueFull) {
		t.Errorf("third queued request: err %v, want ErrQueueFull", err)
	}
	cancel()
	if err := <-dropped; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled request: err %v", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Error(err)
	}
	if err := <-kept; err != nil {
		t.Error(err)
	}
	b.Close()
	for _, s := range *stats {
		if s.Kind == KindMatch && s.Images == 1 && s.Texts == 2 {
			t.Errorf("the cancelled request was run: %+v", s)
		}
	}
	if len(*stats) != 2 {
		t.Errorf("%d batches ran, want 2 (the cancelled one dropped): %+v", len(*stats), *stats)
	}
	if _, err := b.Match(ctx, ims[:1], captions[:1]); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: err %v", err)
	}
}

// TestCloseDrains: requests queued before Close are answered.
func TestCloseDrains(t *testing.T) {
	m, ims := load(t)
	b, entered, release, _ := blocked(t, m, 8)
	ctx := context.Background()
	errs := make(chan error, 4)
	go func() { _, err := b.EncodeImages(ctx, ims[:1]); errs <- err }()
	<-entered
	for i := 0; i < 3; i++ {
		go func() { _, err := b.Match(ctx, ims[i:i+1], captions[i:i+2]); errs <- err }()
	}
	for b.QueueDepth() < 3 {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	close(release)
	<-closed
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Errorf("queued request after Close: %v", err)
		}
	}
}

// TestBadRequestAlone: an image preprocessed for another model fails the
// batch as a whole; its batch-mates are rerun alone and succeed.
func TestBadRequestAlone(t *testing.T) {
	m, ims := load(t)
	b, entered, release, _ := blocked(t, m, 8)
	defer b.Close()
	ctx := context.Background()
	go func() { b.EncodeTexts(ctx, captions[:1]) }()
	<-entered
	b.opts.MaxBatch = 8 // the worker is blocked: no race
	good := make(chan error, 2)
	bad := make(chan error, 1)
	go func() { _, err := b.EncodeImages(ctx, ims[:1]); good <- err }()
	for b.QueueDepth() < 1 {
		time.Sleep(time.Millisecond)
	}
	go func() { _, err := b.EncodeImages(ctx, []*blipcuda.Image{{Name: "hollow"}}); bad <- err }()
	for b.QueueDepth() < 2 {
		time.Sleep(time.Millisecond)
	}
	go func() { _, err := b.EncodeImages(ctx, ims[1:3]); good <- err }()
	for b.QueueDepth() < 3 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	for i := 0; i < 2; i++ {
		if err := <-good; err != nil {
			t.Errorf("batch-mate of a bad request: %v", err)
		}
	}
	if err := <-bad; err == nil {
		t.Error("bad request succeeded")
	}
}

// TestBatchContext: a batch's context ends when, and only when, every
// caller in it has gone.
func TestBatchContext(t *testing.T) {
	c1, cancel1 := context.WithCancel(context.Background())
	c2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	ctx, stop := batchContext([]*job{{ctx: c1}, {ctx: c2}})
	defer stop()
	cancel1()
	time.Sleep(10 * time.Millisecond)
	if ctx.Err() != nil {
		t.Fatal("the batch ended while a caller remained")
	}
	cancel2()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the batch outlived its callers")
	}
}
