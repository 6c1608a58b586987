// Package batcher runs concurrent requests to a blipcuda.Model together:
// requests that arrive close together are scored in one call, so that
// images from different requests share one vision batch, texts share text
// batches, and requests that send the same image share its encoding and its
// cross-attention keys and values (blipcuda.Model.MatchMany).
//
// A Batcher has one worker. When it is idle, a request starts a batch at
// once; while it works, requests queue, and the next batch takes every
// queued request (up to MaxBatch). After a batch of more than one request
// (a sign of concurrent callers), the worker also waits up to Wait for more
// requests before it starts the next. A single caller therefore never waits
// for a window that cannot fill, and concurrent callers are batched.
//
// The queue is bounded: a request that finds it full fails at once with
// ErrQueueFull. A request whose context ends while it is queued is dropped
// unrun; a batch whose callers have all gone is cancelled. A request that
// is invalid (an empty text, no images) fails alone; if a batch fails for
// another reason, its requests are run again one by one, so that one bad
// request never fails its batch-mates.
package batcher

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blipcuda/blipcuda"
)

// Errors callers can test for with errors.Is.
var (
	// ErrQueueFull reports that the queue holds Options.QueueSize requests.
	ErrQueueFull = errors.New("batcher: queue full")
	// ErrClosed reports a request made after Close.
	ErrClosed = errors.New("batcher: closed")
)

// Kind names what a batch ran.
type Kind string

// The kinds of batches.
const (
	KindMatch      Kind = "match"
	KindImageEmbed Kind = "embed_images"
	KindTextEmbed  Kind = "embed_texts"
)

// Stats describes one batch run, for metrics.
type Stats struct {
	Kind Kind
	// Requests is the number of requests run together.
	Requests int
	// Images and Texts count the inputs of those requests.
	Images, Texts int
	// Duration is the time the model took.
	Duration time.Duration
	// Err is the batch's error, if the batch as a whole failed.
	Err error
}

// Options configure a Batcher.
type Options struct {
	// Wait is how long the worker waits for more requests after a batch of
	// more than one (default 2ms; negative: never wait).
	Wait time.Duration
	// MaxBatch is the most requests run together (default 32; 1 turns
	// batching off).
	MaxBatch int
	// QueueSize is the most requests waiting (default 256).
	QueueSize int
	// Observe, when set, is called after each batch (from the worker).
	Observe func(Stats)
}

// Batcher batches requests to one model. It is safe for concurrent use.
type Batcher struct {
	m     *blipcuda.Model
	opts  Options
	queue chan *job

	mu     sync.RWMutex // held for reading while sending to queue
	closed bool
	done   chan struct{}
	depth  atomic.Int64 // queued and not yet taken by the worker
}

// job is one request.
type job struct {
	ctx    context.Context
	kind   Kind
	images []*blipcuda.Image
	texts  []string
	reply  chan result // buffered: the worker never blocks on it
}

type result struct {
	scores *blipcuda.Scores
	imgs   []blipcuda.ImageEncoding
	txts   []blipcuda.TextEncoding
	err    error
}

// New starts a Batcher over m. The Batcher does not own m: close the
// Batcher before the model.
func New(m *blipcuda.Model, opts Options) *Batcher {
	if opts.Wait == 0 {
		opts.Wait = 2 * time.Millisecond
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 32
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 256
	}
	b := &Batcher{m: m, opts: opts, queue: make(chan *job, opts.QueueSize), done: make(chan struct{})}
	go b.run()
	return b
}

// Model returns the model the Batcher runs.
func (b *Batcher) Model() *blipcuda.Model { return b.m }

// QueueDepth returns the number of requests waiting for the worker.
func (b *Batcher) QueueDepth() int { return int(b.depth.Load()) }

// Close stops accepting requests, runs those already queued, and returns
// when the worker has stopped. It is safe to call more than once.
func (b *Batcher) Close() error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.queue)
	}
	b.mu.Unlock()
	<-b.done
	return nil
}

// Match scores every text against every image, as blipcuda.Model.Match
// does, batched with concurrent requests.
func (b *Batcher) Match(ctx context.Context, images []*blipcuda.Image, texts []string) (*blipcuda.Scores, error) {
	if len(images) == 0 {
		return nil, errors.New("batcher: no images")
	}
	if err := b.m.CheckTexts(texts); err != nil {
		return nil, err
	}
	r, err := b.do(ctx, &job{kind: KindMatch, images: images, texts: texts})
	return r.scores, err
}

// EncodeImages returns the ITC embeddings of images (without features),
// batched with concurrent requests.
func (b *Batcher) EncodeImages(ctx context.Context, images []*blipcuda.Image) ([]blipcuda.ImageEncoding, error) {
	if len(images) == 0 {
		return nil, errors.New("batcher: no images")
	}
	r, err := b.do(ctx, &job{kind: KindImageEmbed, images: images})
	return r.imgs, err
}

// EncodeTexts returns the ITC embeddings of texts, batched with concurrent
// requests.
func (b *Batcher) EncodeTexts(ctx context.Context, texts []string) ([]blipcuda.TextEncoding, error) {
	if err := b.m.CheckTexts(texts); err != nil {
		return nil, err
	}
	r, err := b.do(ctx, &job{kind: KindTextEmbed, texts: texts})
	return r.txts, err
}

// do queues j and waits for its result or for ctx to end.
func (b *Batcher) do(ctx context.Context, j *job) (result, error) {
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	j.ctx, j.reply = ctx, make(chan result, 1)
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return result{}, ErrClosed
	}
	select {
	case b.queue <- j:
		b.depth.Add(1)
	default:
		b.mu.RUnlock()
		return result{}, ErrQueueFull
	}
	b.mu.RUnlock()
	select {
	case r := <-j.reply:
		return r, r.err
	case <-ctx.Done():
		// The worker drops the job if it has not started it, and cancels
		// its batch if every caller in it has gone.
		return result{}, ctx.Err()
	}
}

// run is the worker.
func (b *Batcher) run() {
	defer close(b.done)
	wait := false
	for {
		j, ok := <-b.queue
		if !ok {
			return
		}
		b.depth.Add(-1)
		jobs := []*job{j}
		jobs, open := b.collect(jobs, wait)
		wait = len(jobs) > 1 && b.opts.Wait > 0
		b.runBatch(jobs)
		if !open {
			// Drain what is left after Close.
			for j := range b.queue {
				b.depth.Add(-1)
				b.runBatch([]*job{j})
			}
			return
		}
	}
}

// collect adds queued jobs to jobs, up to MaxBatch, waiting up to Wait for
// more when wait is set. open is false when the queue was closed.
func (b *Batcher) collect(jobs []*job, wait bool) (_ []*job, open bool) {
	var timer <-chan time.Time
	if wait {
		t := time.NewTimer(b.opts.Wait)
		defer t.Stop()
		timer = t.C
	}
	for len(jobs) < b.opts.MaxBatch {
		var (
			j  *job
			ok bool
		)
		select {
		case j, ok = <-b.queue: // whatever is queued already
		default:
			if timer == nil {
				return jobs, true
			}
			select {
			case j, ok = <-b.queue:
			case <-timer:
				return jobs, true
			}
		}
		if !ok {
			return jobs, false
		}
		b.depth.Add(-1)
		jobs = append(jobs, j)
	}
	return jobs, true
}

// runBatch runs jobs, grouped by kind, and replies to each.
func (b *Batcher) runBatch(jobs []*job) {
	byKind := map[Kind][]*job{}
	for _, j := range jobs {
		if err := j.ctx.Err(); err != nil {
			j.reply <- result{err: err} // dropped unrun
			continue
		}
		byKind[j.kind] = append(byKind[j.kind], j)
	}
	for _, k := range []Kind{KindMatch, KindImageEmbed, KindTextEmbed} {
		if js := byKind[k]; len(js) > 0 {
			b.runKind(k, js)
		}
	}
}

// runKind runs jobs of one kind together; if that fails as a whole (and
// not because every caller has gone), each job is run again alone.
func (b *Batcher) runKind(k Kind, jobs []*job) {
	ctx, stop := batchContext(jobs)
	defer stop()
	res, err := b.call(ctx, k, jobs)
	if err != nil && len(jobs) > 1 && ctx.Err() == nil {
		for _, j := range jobs {
			one, stop1 := batchContext([]*job{j})
			r, err := b.call(one, k, []*job{j})
			stop1()
			if err != nil {
				r = []result{{err: err}}
			}
			j.reply <- r[0]
		}
		return
	}
	for i, j := range jobs {
		if err != nil {
			j.reply <- result{err: err}
		} else {
			j.reply <- res[i]
		}
	}
}

// batchContext returns a context that ends when every job's context has
// ended.
func batchContext(jobs []*job) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var live atomic.Int64
	live.Store(int64(len(jobs)))
	stops := make([]func() bool, len(jobs))
	for i, j := range jobs {
		stops[i] = context.AfterFunc(j.ctx, func() {
			if live.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, s := range stops {
			s()
		}
		cancel()
	}
}

// call runs one batch of one kind and splits the results per job. A panic
// in the model is returned as an error.
func (b *Batcher) call(ctx context.Context, k Kind, jobs []*job) (res []result, err error) {
	st := Stats{Kind: k, Requests: len(jobs)}
	for _, j := range jobs {
		st.Images += len(j.images)
		st.Texts += len(j.texts)
	}
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("batcher: %s batch panicked: %v", k, p)
		}
		st.Duration, st.Err = time.Since(start), err
		if b.opts.Observe != nil {
			b.opts.Observe(st)
		}
	}()
	res = make([]result, len(jobs))
	switch k {
	case KindMatch:
		qs := make([]blipcuda.MatchQuery, len(jobs))
		for i, j := range jobs {
			qs[i] = blipcuda.MatchQuery{Images: j.images, Texts: j.texts}
		}
		scores, errs, err := b.m.MatchMany(ctx, qs)
		if err != nil {
			return nil, err
		}
		for i := range jobs {
			res[i] = result{scores: scores[i], err: errs[i]}
		}
	case KindImageEmbed:
		var all []*blipcuda.Image
		for _, j := range jobs {
			all = append(all, j.images...)
		}
		enc, err := b.m.EncodeImages(ctx, all, false)
		if err != nil {
			return nil, err
		}
		for i, j := range jobs {
			res[i].imgs, enc = enc[:len(j.images):len(j.images)], enc[len(j.images):]
		}
	case KindTextEmbed:
		var all []string
		for _, j := range jobs {
			all = append(all, j.texts...)
		}
		enc, err := b.m.EncodeTexts(ctx, all)
		if err != nil {
			return nil, err
		}
		for i, j := range jobs {
			res[i].txts, enc = enc[:len(j.texts):len(j.texts)], enc[len(j.texts):]
		}
	}
	return res, nil
}
