package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/blipcuda/blipcuda/batcher"
	"github.com/blipcuda/blipcuda/index"
	"github.com/blipcuda/blipcuda/server"
)

var serveCommand = &command{
	name:     "serve",
	synopsis: "[flags]",
	summary:  "run an HTTP service: match, embeddings, re-rank, Weaviate vectoriser",
	help: `Loads the model once and serves it over HTTP, running concurrent requests
together: requests that arrive while the model is busy (or within
--batch-wait of a batch of several) are scored in one call, so that images
from different requests share one vision batch and texts share text
batches. Routes: POST /v1/match, /v1/embeddings, /v1/rerank, /vectorize
(Weaviate multi2vec); GET /v1/models, /meta, /healthz, /readyz,
/.well-known/ready, /metrics (Prometheus); with --index also POST
/v1/search, GET /v1/image and a search page at /. README.md documents each
with curl examples. Images are sent as base64, data URLs or multipart uploads;
the server fetches no URLs.

It listens on loopback (127.0.0.1:8080) unless --addr says otherwise; with
--api-key (or BLIPCUDA_API_KEY) every route but the health probes needs
"Authorization: Bearer KEY". On SIGTERM or SIGINT it stops accepting
connections, answers the requests in flight within --drain-timeout
(cancelling those still running then, with 503), and exits 0.

Each request is logged on stderr (method, path, status, bytes, duration).`,
	env: append(append([]string{}, hubEnv...), "BLIPCUDA_MODEL", "BLIPCUDA_API_KEY"),
	run: runServe,
}

// serveFlags are serve's own flags.
type serveFlags struct {
	addr, apiKey, maxBody, logFormat, index string
	batchWait, requestTimeout, drainTimeout time.Duration
	readTimeout                             time.Duration
	maxBatch, queue, maxImages, maxTexts    int
	maxTextBytes                            int
}

func runServe(ctx context.Context, a *app, args []string) error {
	var (
		mf modelFlags
		sf serveFlags
	)
	fs := newFlagSet("serve")
	mf.register(fs)
	fs.str(&sf.addr, "addr", "", "127.0.0.1:8080", "HOST:PORT", "where to listen (port 0: any free port, logged)")
	fs.str(&sf.index, "index", "", "", "NAME.blipidx",
		"serve this index (built by 'blipcuda index'): POST /v1/search and the search page at /; --model defaults to the index's model")
	fs.str(&sf.apiKey, "api-key", "", "", "KEY", "require Authorization: Bearer KEY (default $BLIPCUDA_API_KEY; prefer the variable: a flag shows in ps)")
	duration(fs, &sf.batchWait, "batch-wait", 2*time.Millisecond, "after a batch of several requests, wait this long for more before the next")
	fs.integer(&sf.maxBatch, "max-batch", "", 32, "N", "the most requests run together (1: no batching)")
	fs.integer(&sf.queue, "queue", "", 256, "N", "the most requests waiting; more are refused with 429 and Retry-After")
	fs.str(&sf.maxBody, "max-body", "", "32MiB", "SIZE", "the largest request body (413 beyond)")
	fs.integer(&sf.maxImages, "max-images", "", server.DefaultLimits.MaxImages, "N", "the most images per request")
	fs.integer(&sf.maxTexts, "max-texts", "", server.DefaultLimits.MaxTexts, "N", "the most texts per request")
	fs.integer(&sf.maxTextBytes, "max-text-bytes", "", server.DefaultLimits.MaxTextBytes, "N", "the longest text, in bytes")
	duration(fs, &sf.requestTimeout, "request-timeout", server.DefaultLimits.RequestTimeout, "each request's deadline (504 beyond; its queued work is dropped)")
	duration(fs, &sf.readTimeout, "read-timeout", 30*time.Second, "the longest a client may take to send a request (slow clients are cut off)")
	duration(fs, &sf.drainTimeout, "drain-timeout", 30*time.Second, "on SIGTERM, how long requests in flight have to finish")
	fs.str(&sf.logFormat, "log-format", "", "text", "text|json", "stderr log lines as text or as JSON objects (slog)")
	if _, err := a.parse(fs, args); err != nil {
		return err
	}
	if err := mf.validate(); err != nil {
		return err
	}
	maxBody, err := parseSize(sf.maxBody)
	if err != nil {
		return usagef("--max-body %q: %v", sf.maxBody, err)
	}
	switch {
	case sf.maxBatch <= 0:
		return usagef("--max-batch %d: want at least 1", sf.maxBatch)
	case sf.queue <= 0:
		return usagef("--queue %d: want at least 1", sf.queue)
	case sf.maxImages <= 0 || sf.maxTexts <= 0 || sf.maxTextBytes <= 0:
		return usagef("--max-images, --max-texts and --max-text-bytes want positive numbers")
	case sf.batchWait < 0 || sf.requestTimeout <= 0 || sf.readTimeout <= 0 || sf.drainTimeout < 0:
		return usagef("durations want positive values (--batch-wait and --drain-timeout may be 0)")
	}
	switch sf.logFormat {
	case "text":
	case "json":
		level := slog.LevelInfo
		if a.verbose {
			level = slog.LevelDebug
		} else if a.quiet {
			level = slog.LevelError
		}
		a.log = slog.New(slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: level}))
	default:
		return usagef("--log-format %q: want text or json", sf.logFormat)
	}
	if sf.apiKey == "" {
		sf.apiKey = strings.TrimSpace(os.Getenv("BLIPCUDA_API_KEY"))
	}
	// After a signal, the drain (and the cancellation after it) may take
	// longer than other commands are given.
	commandGrace.Store(int64(sf.drainTimeout + 10*time.Second))
	// Listen before loading the model: a busy port fails at once.
	ln, err := net.Listen("tcp", sf.addr)
	if err != nil {
		return fmt.Errorf("--addr %s: %w", sf.addr, err)
	}
	defer ln.Close()
	if host, _, _ := net.SplitHostPort(sf.addr); !isLoopback(host) && sf.apiKey == "" {
		a.log.Warn("listening beyond loopback without --api-key: anyone who can reach " + sf.addr + " can use the model")
	}

	var ix *index.Index
	if sf.index != "" {
		if ix, err = openIndexToRead(ctx, sf.index, 0, fs, &mf); err != nil {
			return err
		}
		defer ix.Close()
		if _, ok := ix.Model(); !ok || ix.Len() == 0 {
			return fmt.Errorf("index %s holds no images yet: run 'blipcuda index' first", sf.index)
		}
	}
	m, err := a.loadModel(ctx, &mf)
	if err != nil {
		return err
	}
	defer m.Close()
	if ix != nil {
		if err := checkIndexModel(ix, m, mf.model); err != nil {
			return err
		}
	}
	wait := sf.batchWait
	if wait == 0 {
		wait = -1 // batcher: never wait
	}
	srv, err := server.New(server.Config{
		Model:     m,
		ModelName: mf.model,
		Batch:     batcher.Options{Wait: wait, MaxBatch: sf.maxBatch, QueueSize: sf.queue},
		Limits: server.Limits{MaxBodyBytes: maxBody, MaxImages: sf.maxImages, MaxTexts: sf.maxTexts,
			MaxTextBytes: sf.maxTextBytes, RequestTimeout: sf.requestTimeout},
		APIKey: sf.apiKey,
		Index:  ix,
		Log:    a.log,
	})
	if err != nil {
		return err
	}
	base, cancelBase := context.WithCancelCause(context.Background())
	defer cancelBase(nil)
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: min(sf.readTimeout, 10*time.Second),
		ReadTimeout:       sf.readTimeout,
		WriteTimeout:      sf.readTimeout + sf.requestTimeout + 5*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	a.log.Info("listening", "addr", ln.Addr().String(), "model", mf.model, "device", m.Info().Device,
		"batch_wait", sf.batchWait.String(), "max_batch", sf.maxBatch)

	select {
	case err := <-served:
		srv.Close()
		return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	// Drain: refuse new connections, let requests in flight finish.
	a.log.Info("shutting down: finishing requests in flight", "drain_timeout", sf.drainTimeout.String())
	srv.SetDraining()
	dctx, cancel := context.WithTimeout(context.Background(), sf.drainTimeout)
	defer cancel()
	err = hs.Shutdown(dctx)
	if errors.Is(err, context.DeadlineExceeded) {
		a.log.Warn("drain timeout passed: cancelling the requests still running", "drain_timeout", sf.drainTimeout.String())
		cancelBase(server.ErrShutdown)
		// Their handlers answer 503 as soon as the batcher lets them go.
		gctx, gcancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = hs.Shutdown(gctx)
		gcancel()
		if err != nil {
			hs.Close()
		}
	}
	srv.Close()
	a.log.Info("stopped")
	return nil
}

// duration declares a time.Duration flag.
func duration(fs *flagSet, p *time.Duration, long string, def time.Duration, usage string) {
	fs.DurationVar(p, long, def, usage)
	fs.add(long, "", "DURATION")
}

// parseSize reads a byte count: a number with an optional KiB, MiB or GiB
// (or K, M, G, KB, MB, GB: powers of 1024 all) suffix.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, errors.New("want a positive size such as 32MiB")
	}
	return n * mult, nil
}

// isLoopback reports whether host names only this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
