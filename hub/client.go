package hub

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/blipcuda/blipcuda/internal/bounded"
)

// DefaultEndpoint is the Hub used when no endpoint is configured.
const DefaultEndpoint = "https://huggingface.co"

// DefaultRevision is the revision used when an empty revision is given.
const DefaultRevision = "main"

// Default timeouts, as in huggingface_hub (HF_HUB_ETAG_TIMEOUT and
// HF_HUB_DOWNLOAD_TIMEOUT).
const (
	DefaultMetadataTimeout = 10 * time.Second
	DefaultStallTimeout    = 10 * time.Second
)

// DefaultRetries is how many times a failed request or an interrupted
// transfer is retried before Download gives up.
const DefaultRetries = 4

// Client downloads files from a Hugging Face Hub into a local cache. A Client
// is safe for concurrent use by several goroutines, and several processes may
// share one cache directory.
type Client struct {
	endpoint     *url.URL
	cacheDir     string
	token        string
	offline      bool
	hc           *http.Client // copy of the caller's client that never follows redirects
	progress     Reporter
	log          *slog.Logger
	userAgent    string
	retries      int
	retryBase    time.Duration
	retryMax     time.Duration
	metaTimeout  time.Duration
	stallTimeout time.Duration
	lockPoll     time.Duration

	// openFile opens the .incomplete file for writing; tests replace it to
	// simulate a full disk.
	openFile func(name string, flag int, perm os.FileMode) (writeFile, error)
}

// writeFile is what the download writes blob bytes to.
type writeFile interface {
	io.Writer
	Sync() error
	Close() error
}

func osOpenFile(name string, flag int, perm os.FileMode) (writeFile, error) {
	return os.OpenFile(name, flag, perm)
}

// config collects the options before the Client is built.
type config struct {
	endpoint     string
	cacheDir     string
	token        string
	offline      bool
	hc           *http.Client
	progress     Reporter
	log          *slog.Logger
	userAgent    string
	retries      int
	metaTimeout  time.Duration
	stallTimeout time.Duration
}

// Option configures a Client built by NewClient or FromEnv.
type Option func(*config)

// WithEndpoint sets the Hub base URL, for example https://huggingface.co or a
// mirror. A trailing slash is removed.
func WithEndpoint(endpoint string) Option {
	return func(c *config) { c.endpoint = endpoint }
}

// WithCacheDir sets the cache directory (the equivalent of HF_HUB_CACHE). A
// leading ~ is expanded to the home directory.
func WithCacheDir(dir string) Option {
	return func(c *config) { c.cacheDir = dir }
}

// WithToken sets the access token sent as "Authorization: Bearer" to the
// endpoint host. An empty token sends none.
func WithToken(token string) Option {
	return func(c *config) { c.token = strings.TrimSpace(token) }
}

// WithOffline makes the Client use only the local cache and never touch the
// network, like HF_HUB_OFFLINE=1.
func WithOffline(offline bool) Option {
	return func(c *config) { c.offline = offline }
}

// WithHTTPClient sets the HTTP client. Its transport, jar and timeout are
// used; its redirect policy is not (the Client follows redirects itself so that
// the token never leaves the endpoint host). A whole-request Timeout on it
// also bounds large downloads, so prefer leaving it zero.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) { c.hc = hc }
}

// WithProgress sets the reporter told about each file transfer. Nil reports
// nothing. See [NewBar], [NewLines] and [AutoReporter].
func WithProgress(r Reporter) Option {
	return func(c *config) { c.progress = r }
}

// WithLogger sets the logger for requests, retries and cache fallbacks. Nil
// discards the log.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.log = l }
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option {
	return func(c *config) { c.userAgent = ua }
}

// WithRetries sets how many times a request answered 408, 429 or 5xx, or a
// transfer cut off mid-file, is retried (with backoff, resuming with Range).
// Zero disables retries.
func WithRetries(n int) Option {
	return func(c *config) { c.retries = max(n, 0) }
}

// WithTimeouts sets the metadata (HEAD) timeout, after which the cache is used
// if it has the file, and the stall timeout, after which a transfer that
// received no byte is cut and retried. Zero keeps a value unchanged.
func WithTimeouts(metadata, stall time.Duration) Option {
	return func(c *config) {
		if metadata > 0 {
			c.metaTimeout = metadata
		}
		if stall > 0 {
			c.stallTimeout = stall
		}
	}
}

// NewClient returns a Client configured only by opts; it reads no environment
// variable. Without WithEndpoint it uses DefaultEndpoint, and without
// WithCacheDir it uses ~/.cache/huggingface/hub.
func NewClient(opts ...Option) (*Client, error) {
	cfg := config{
		endpoint:     DefaultEndpoint,
		retries:      DefaultRetries,
		metaTimeout:  DefaultMetadataTimeout,
		stallTimeout: DefaultStallTimeout,
	}
	for _, o := range opts {
		o(&cfg)
	}
	return newClient(cfg)
}

// FromEnv returns a Client configured from the environment the way
// huggingface_hub reads it, then adjusted by opts (which win over the
// environment):
//
//   - HF_ENDPOINT: the Hub URL (default https://huggingface.co);
//   - HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, where
//     HF_HOME defaults to $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface;
//   - HF_TOKEN, else HUGGING_FACE_HUB_TOKEN, else the file $HF_TOKEN_PATH or
//     $HF_HOME/token; none when HF_HUB_DISABLE_IMPLICIT_TOKEN is true;
//   - HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE = 1, true, yes or on;
//   - HF_HUB_ETAG_TIMEOUT and HF_HUB_DOWNLOAD_TIMEOUT in seconds.
func FromEnv(opts ...Option) (*Client, error) {
	return fromEnv(os.Getenv, opts...)
}

func fromEnv(getenv func(string) string, opts ...Option) (*Client, error) {
	env, err := readEnv(getenv)
	if err != nil {
		return nil, err
	}
	cfg := config{
		endpoint:     env.Endpoint,
		cacheDir:     env.CacheDir,
		token:        env.Token,
		offline:      env.Offline,
		retries:      DefaultRetries,
		metaTimeout:  env.MetadataTimeout,
		stallTimeout: env.StallTimeout,
	}
	for _, o := range opts {
		o(&cfg)
	}
	return newClient(cfg)
}

func newClient(cfg config) (*Client, error) {
	ep, err := parseEndpoint(cfg.endpoint)
	if err != nil {
		return nil, err
	}
	dir := cfg.cacheDir
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("hub: no cache directory given and no home directory: %w", err)
		}
		dir = filepath.Join(home, ".cache", "huggingface", "hub")
	}
	dir, err = expandHome(dir)
	if err != nil {
		return nil, err
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	hc := http.DefaultClient
	if cfg.hc != nil {
		hc = cfg.hc
	}
	noRedirect := *hc
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	logger := cfg.log
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ua := cfg.userAgent
	if ua == "" {
		ua = "blipcuda-hub/1 go/" + strings.TrimPrefix(runtime.Version(), "go")
	}
	mt, st := cfg.metaTimeout, cfg.stallTimeout
	if mt <= 0 {
		mt = DefaultMetadataTimeout
	}
	if st <= 0 {
		st = DefaultStallTimeout
	}
	return &Client{
		endpoint:     ep,
		cacheDir:     dir,
		token:        cfg.token,
		offline:      cfg.offline,
		hc:           &noRedirect,
		progress:     cfg.progress,
		log:          logger,
		userAgent:    ua,
		retries:      cfg.retries,
		retryBase:    500 * time.Millisecond,
		retryMax:     8 * time.Second,
		metaTimeout:  mt,
		stallTimeout: st,
		lockPoll:     100 * time.Millisecond,
		openFile:     osOpenFile,
	}, nil
}

// Endpoint returns the Hub base URL, without a trailing slash.
func (c *Client) Endpoint() string { return c.endpoint.String() }

// CacheDir returns the absolute cache directory (the HF_HUB_CACHE equivalent).
func (c *Client) CacheDir() string { return c.cacheDir }

// Offline reports whether the Client never uses the network.
func (c *Client) Offline() bool { return c.offline }

// HasToken reports whether the Client sends an access token to the endpoint.
func (c *Client) HasToken() bool { return c.token != "" }

func parseEndpoint(s string) (*url.URL, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "/")
	if s == "" {
		s = DefaultEndpoint
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("hub: bad endpoint %q: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("hub: bad endpoint %q: want http(s)://host[:port][/path]", s)
	}
	return u, nil
}

// Env is the Hub configuration read from the environment by [ReadEnv].
type Env struct {
	// Endpoint is HF_ENDPOINT without a trailing slash, or DefaultEndpoint.
	Endpoint string
	// Home is HF_HOME, or $XDG_CACHE_HOME/huggingface, or ~/.cache/huggingface.
	Home string
	// CacheDir is HF_HUB_CACHE, or HUGGINGFACE_HUB_CACHE, or Home/hub.
	CacheDir string
	// Token is HF_TOKEN, HUGGING_FACE_HUB_TOKEN or the token file's content;
	// empty if none (or if HF_HUB_DISABLE_IMPLICIT_TOKEN is true).
	Token string
	// TokenSource says where Token came from: "HF_TOKEN",
	// "HUGGING_FACE_HUB_TOKEN", the token file's path, or "".
	TokenSource string
	// Offline is HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE.
	Offline bool
	// MetadataTimeout is HF_HUB_ETAG_TIMEOUT, StallTimeout
	// HF_HUB_DOWNLOAD_TIMEOUT.
	MetadataTimeout, StallTimeout time.Duration
}

// String describes e without revealing the token.
func (e Env) String() string {
	tok := "none"
	if e.Token != "" {
		tok = "set (from " + e.TokenSource + ")"
	}
	return fmt.Sprintf("endpoint=%s home=%s cache=%s token=%s offline=%v metadata-timeout=%v stall-timeout=%v",
		e.Endpoint, e.Home, e.CacheDir, tok, e.Offline, e.MetadataTimeout, e.StallTimeout)
}

// ReadEnv reads the Hub environment variables (see [FromEnv]) without building
// a Client, for a command that wants to show where the cache and token are.
func ReadEnv() (Env, error) { return readEnv(os.Getenv) }

func readEnv(getenv func(string) string) (Env, error) {
	var e Env
	e.Endpoint = strings.TrimRight(strings.TrimSpace(getenv("HF_ENDPOINT")), "/")
	if e.Endpoint == "" {
		e.Endpoint = DefaultEndpoint
	}
	home := getenv("HF_HOME")
	if home == "" {
		xdg := getenv("XDG_CACHE_HOME")
		if xdg == "" {
			xdg = "~/.cache"
		}
		home = filepath.Join(xdg, "huggingface")
	}
	var err error
	if e.Home, err = expandHomeEnv(home, getenv); err != nil {
		return e, err
	}
	cache := getenv("HF_HUB_CACHE")
	if cache == "" {
		cache = getenv("HUGGINGFACE_HUB_CACHE")
	}
	if cache == "" {
		cache = filepath.Join(e.Home, "hub")
	}
	if e.CacheDir, err = expandHomeEnv(cache, getenv); err != nil {
		return e, err
	}
	if !isTrue(getenv("HF_HUB_DISABLE_IMPLICIT_TOKEN")) {
		switch {
		case strings.TrimSpace(getenv("HF_TOKEN")) != "":
			e.Token, e.TokenSource = strings.TrimSpace(getenv("HF_TOKEN")), "HF_TOKEN"
		case strings.TrimSpace(getenv("HUGGING_FACE_HUB_TOKEN")) != "":
			e.Token, e.TokenSource = strings.TrimSpace(getenv("HUGGING_FACE_HUB_TOKEN")), "HUGGING_FACE_HUB_TOKEN"
		default:
			path := getenv("HF_TOKEN_PATH")
			if path == "" {
				path = filepath.Join(e.Home, "token")
			}
			if path, err = expandHomeEnv(path, getenv); err != nil {
				return e, err
			}
			b, err := bounded.ReadFile(path, bounded.SmallLimit)
			switch {
			case err == nil:
				if t := strings.TrimSpace(string(b)); t != "" {
					e.Token, e.TokenSource = t, path
				}
			case errors.Is(err, os.ErrNotExist):
			default:
				return e, fmt.Errorf("hub: reading token file: %w", err)
			}
		}
	}
	e.Offline = OfflineVariable(getenv) != ""
	if e.MetadataTimeout, err = envSeconds(getenv, "HF_HUB_ETAG_TIMEOUT", DefaultMetadataTimeout); err != nil {
		return e, err
	}
	if e.StallTimeout, err = envSeconds(getenv, "HF_HUB_DOWNLOAD_TIMEOUT", DefaultStallTimeout); err != nil {
		return e, err
	}
	return e, nil
}

func envSeconds(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 || f > 1e6 {
		return 0, fmt.Errorf("hub: %s=%q: want a positive number of seconds", name, v)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// isTrue is huggingface_hub's _is_true: 1, on, yes or true in any case.
func isTrue(v string) bool {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}

func expandHome(p string) (string, error) { return expandHomeEnv(p, os.Getenv) }

// expandHomeEnv expands a leading ~ like Python's os.path.expanduser (HOME
// first, then the user database).
func expandHomeEnv(p string, getenv func(string) string) (string, error) {
	if p != "~" && !strings.HasPrefix(p, "~/") && !strings.HasPrefix(p, "~"+string(filepath.Separator)) {
		return p, nil
	}
	home := getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", fmt.Errorf("hub: expanding %q: %w", p, err)
		}
	}
	return filepath.Join(home, p[1:]), nil
}
