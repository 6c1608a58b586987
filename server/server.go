// Package server is blipcuda's HTTP service: image-text matching,
// embeddings, re-ranking and a Weaviate multi2vec-compatible vectoriser
// over one model, with concurrent requests batched onto it by a
// batcher.Batcher.
//
// Routes (JSON over HTTP; images as base64, data URLs or multipart uploads,
// never fetched from URLs):
//
//	POST /v1/match        images × texts → itm_prob, itm_logits, itc
//	POST /v1/embeddings   texts and/or images → 256-d ITC embeddings
//	GET  /v1/models       the model served
//	POST /v1/rerank       one text + images, or one image + texts, ranked
//	POST /v1/search       with an index: text → images (ITC top-k, ITM re-rank), image → images
//	GET  /v1/image?path=  with an index: an indexed image
//	GET  /                with an index: the search page
//	POST /vectorize       Weaviate multi2vec: {texts, images} → {textVectors, imageVectors}
//	GET  /meta            Weaviate multi2vec: the model's description
//	GET  /.well-known/ready, /.well-known/live   Weaviate readiness probes (204)
//	GET  /healthz         the process is up
//	GET  /readyz          the model is loaded and its device healthy
//	GET  /metrics         Prometheus metrics
//
// Every error is a JSON body {"error": {"message", "type", "param"}} whose
// param names the offending field (texts[2], images[0], input, ...).
package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/semaphore"

	"github.com/blipcuda/blipcuda"
	"github.com/blipcuda/blipcuda/batcher"
	"github.com/blipcuda/blipcuda/imageproc"
	"github.com/blipcuda/blipcuda/index"
)

// Limits bound what one request may ask. Every limit is named in the error
// of a request that passes it. The zero value means the defaults.
type Limits struct {
	// MaxBodyBytes is the largest request body (default 32 MiB).
	MaxBodyBytes int64
	// MaxImages is the most images per request (default 32).
	MaxImages int
	// MaxTexts is the most texts per request (default 256).
	MaxTexts int
	// MaxTextBytes is the longest text, in bytes (default 4096).
	MaxTextBytes int
	// DecodePixels bounds the pixels decoded and preprocessed at once
	// across all requests (default imageproc.DefaultMaxPixels, the size of
	// the library's own decode budget, so that a request waits here, where
	// its context can cancel the wait, rather than inside the decoder).
	DecodePixels int64
	// RequestTimeout is each request's deadline (default 60 s).
	RequestTimeout time.Duration
}

// DefaultLimits are the limits used where Limits fields are zero.
var DefaultLimits = Limits{
	MaxBodyBytes:   32 << 20,
	MaxImages:      32,
	MaxTexts:       256,
	MaxTextBytes:   4096,
	RequestTimeout: 60 * time.Second,
}

func (l *Limits) normalize() {
	d := DefaultLimits
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = d.MaxBodyBytes
	}
	if l.MaxImages <= 0 {
		l.MaxImages = d.MaxImages
	}
	if l.MaxTexts <= 0 {
		l.MaxTexts = d.MaxTexts
	}
	if l.MaxTextBytes <= 0 {
		l.MaxTextBytes = d.MaxTextBytes
	}
	if l.DecodePixels <= 0 {
		l.DecodePixels = imageproc.DefaultMaxPixels
	}
	if l.RequestTimeout <= 0 {
		l.RequestTimeout = d.RequestTimeout
	}
}

// Config configures a Server.
type Config struct {
	// Model is the model served; required. The server does not close it.
	Model *blipcuda.Model
	// Batch configures the batcher the server runs the model through
	// (its Observe is called after the server's metrics are updated).
	Batch batcher.Options
	// ModelName is the name the model is served as (in /v1/models and
	// responses); default the model's Info().Name.
	ModelName string
	// Limits bound each request.
	Limits Limits
	// APIKey, when set, is required as "Authorization: Bearer KEY" on every
	// route but the health probes.
	APIKey string
	// Log receives one access log line per request (default: discarded).
	Log *slog.Logger
	// Index, when set, enables POST /v1/search, GET /v1/image?path=PATH (the
	// indexed images) and the search page at /. The server does not close
	// it.
	Index *index.Index
	// Registry receives the metrics (default: a new registry, served at
	// /metrics together with the Go runtime and process collectors).
	Registry *prometheus.Registry
}

// Server is the HTTP service. Handler returns its routes.
type Server struct {
	b        *batcher.Batcher
	m        *blipcuda.Model
	name     string
	lim      Limits
	key      [32]byte // sha256 of the API key
	hasKey   bool
	log      *slog.Logger
	metrics  *metrics
	decode   *semaphore.Weighted
	ix       *index.Index
	draining atomic.Bool
	mux      *http.ServeMux
}

// New returns a Server over cfg.Model, with its batcher started; Close
// stops it.
func New(cfg Config) (*Server, error) {
	if cfg.Model == nil {
		return nil, errors.New("server: no model")
	}
	m := cfg.Model
	s := &Server{m: m, name: cfg.ModelName, lim: cfg.Limits, log: cfg.Log, ix: cfg.Index}
	if s.name == "" {
		s.name = m.Info().Name
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.lim.normalize()
	s.decode = semaphore.NewWeighted(s.lim.DecodePixels)
	if cfg.APIKey != "" {
		s.key, s.hasKey = sha256.Sum256([]byte(cfg.APIKey)), true
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	}
	var err error
	if s.metrics, err = newMetrics(reg, s); err != nil {
		return nil, err
	}
	bo := cfg.Batch
	next := bo.Observe
	bo.Observe = func(st batcher.Stats) {
		s.metrics.observeBatch(st)
		if next != nil {
			next(st)
		}
	}
	s.b = batcher.New(m, bo)
	s.mux = http.NewServeMux()
	s.route("/v1/match", http.MethodPost, s.handleMatch)
	s.route("/v1/embeddings", http.MethodPost, s.handleEmbeddings)
	s.route("/v1/models", http.MethodGet, s.handleModels)
	s.route("/v1/rerank", http.MethodPost, s.handleRerank)
	s.route("/v1/search", http.MethodPost, s.handleSearch)
	s.route("/v1/image", http.MethodGet, s.handleImage)
	s.route("/vectorize", http.MethodPost, s.handleVectorize)
	s.route("/meta", http.MethodGet, s.handleMeta)
	s.route("/.well-known/ready", http.MethodGet, s.handleWellKnownReady)
	s.route("/.well-known/live", http.MethodGet, func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	s.route("/healthz", http.MethodGet, func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return nil
	})
	s.route("/readyz", http.MethodGet, s.handleReady)
	metricsHandler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	s.route("/metrics", http.MethodGet, func(w http.ResponseWriter, r *http.Request) error {
		metricsHandler.ServeHTTP(w, r)
		return nil
	})
	if s.ix != nil {
		s.mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, "/", http.MethodGet, s.handlePage) })
		s.mux.HandleFunc("/static/", func(w http.ResponseWriter, r *http.Request) {
			s.serve(w, r, "/static/", http.MethodGet, s.handleStatic)
		})
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, "other", "", func(w http.ResponseWriter, r *http.Request) error {
			return &apiError{status: http.StatusNotFound, msg: fmt.Sprintf("no route %s %s", r.Method, r.URL.Path)}
		})
	})
	return s, nil
}

// Close stops the batcher after the requests it holds are answered. Call
// it after the HTTP server has shut down; it does not close the model.
func (s *Server) Close() error { return s.b.Close() }

// Handler returns the routes.
func (s *Server) Handler() http.Handler { return s.mux }

// SetDraining marks the server as shutting down: /readyz and
// /.well-known/ready answer 503 so that load balancers stop sending work.
func (s *Server) SetDraining() { s.draining.Store(true) }

// handlerFunc is a route's handler; a returned error is written as JSON.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// open routes need no API key.
var open = map[string]bool{"/": true, "/static/": true, "/healthz": true, "/readyz": true, "/.well-known/ready": true, "/.well-known/live": true}

func (s *Server) route(path, method string, h handlerFunc) {
	s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, path, method, h)
	})
}

// serve wraps h with the method check, authentication, the request's
// deadline and body limit, panic recovery, metrics and the access log.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, route, method string, h handlerFunc) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w}
	ctx, cancel := context.WithTimeout(r.Context(), s.lim.RequestTimeout)
	defer cancel()
	r = r.WithContext(ctx)
	r.Body = http.MaxBytesReader(rec, r.Body, s.lim.MaxBodyBytes)
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("panic in handler", "route", route, "panic", fmt.Sprint(p))
				err = &apiError{status: http.StatusInternalServerError, msg: "internal error"}
			}
		}()
		if method != "" && r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
			rec.Header().Set("Allow", method)
			return &apiError{status: http.StatusMethodNotAllowed, msg: fmt.Sprintf("%s takes %s, not %s", route, method, r.Method)}
		}
		if s.hasKey && !open[route] && !s.authorized(r) {
			rec.Header().Set("WWW-Authenticate", `Bearer realm="blipcuda"`)
			return &apiError{status: http.StatusUnauthorized, msg: "missing or wrong API key (Authorization: Bearer KEY)"}
		}
		return h(rec, r)
	}()
	if err != nil {
		s.writeError(rec, r, err)
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	d := time.Since(start)
	s.metrics.observeRequest(route, status, d)
	attrs := []any{"method", r.Method, "path", r.URL.Path, "route", route, "status", status,
		"bytes", rec.bytes, "duration_ms", float64(d.Microseconds()) / 1000, "remote", r.RemoteAddr}
	if err != nil {
		attrs = append(attrs, "err", err.Error())
	}
	s.log.Info("request", attrs...)
}

// authorized compares the bearer token in constant time (of fixed-length
// digests, so that its length does not leak either).
func (s *Server) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(sum[:], s.key[:]) == 1
}

// recorder remembers the status and size of a response.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) error {
	if err := s.readiness(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

func (s *Server) handleWellKnownReady(w http.ResponseWriter, r *http.Request) error {
	if s.readiness() != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		return nil
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// readiness is nil when the server can take work.
func (s *Server) readiness() error {
	if s.draining.Load() {
		return errors.New("shutting down")
	}
	return s.m.Health()
}
