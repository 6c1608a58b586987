package hub

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestReadEnv(t *testing.T) {
	tmp := t.TempDir()
	home := filepath.Join(tmp, "home")
	hfHome := filepath.Join(tmp, "hfhome")
	if err := os.MkdirAll(hfHome, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hfHome, "token"), []byte("hf_fromfile\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenPath := filepath.Join(tmp, "other-token")
	if err := os.WriteFile(tokenPath, []byte("hf_frompath"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		env  map[string]string
		want Env
	}{
		{"defaults", map[string]string{"HOME": home},
			Env{Endpoint: DefaultEndpoint, Home: filepath.Join(home, ".cache", "huggingface"),
				CacheDir: filepath.Join(home, ".cache", "huggingface", "hub")}},
		{"xdg", map[string]string{"HOME": home, "XDG_CACHE_HOME": filepath.Join(tmp, "xdg")},
			Env{Endpoint: DefaultEndpoint, Home: filepath.Join(tmp, "xdg", "huggingface"),
				CacheDir: filepath.Join(tmp, "xdg", "huggingface", "hub")}},
		{"HF_HOME and its token file", map[string]string{"HOME": home, "HF_HOME": hfHome, "HF_ENDPOINT": "http://mirror.local:8080/"},
			Env{Endpoint: "http://mirror.local:8080", Home: hfHome, CacheDir: filepath.Join(hfHome, "hub"),
				Token: "hf_fromfile", TokenSource: filepath.Join(hfHome, "token")}},
		{"HF_HUB_CACHE wins, HF_TOKEN wins", map[string]string{"HOME": home, "HF_HOME": hfHome,
			"HF_HUB_CACHE": "~/hubcache", "HF_TOKEN": " hf_env ", "HUGGINGFACE_HUB_CACHE": "/legacy"},
			Env{Endpoint: DefaultEndpoint, Home: hfHome, CacheDir: filepath.Join(home, "hubcache"),
				Token: "hf_env", TokenSource: "HF_TOKEN"}},
		{"legacy names", map[string]string{"HOME": home, "HUGGINGFACE_HUB_CACHE": "/legacy", "HUGGING_FACE_HUB_TOKEN": "hf_old",
			"TRANSFORMERS_OFFLINE": "1"},
			Env{Endpoint: DefaultEndpoint, Home: filepath.Join(home, ".cache", "huggingface"), CacheDir: "/legacy",
				Token: "hf_old", TokenSource: "HUGGING_FACE_HUB_TOKEN", Offline: true}},
		{"HF_TOKEN_PATH, offline=yes, timeouts", map[string]string{"HOME": home, "HF_HOME": hfHome, "HF_TOKEN_PATH": tokenPath,
			"HF_HUB_OFFLINE": "yes", "HF_HUB_ETAG_TIMEOUT": "2.5", "HF_HUB_DOWNLOAD_TIMEOUT": "30"},
			Env{Endpoint: DefaultEndpoint, Home: hfHome, CacheDir: filepath.Join(hfHome, "hub"),
				Token: "hf_frompath", TokenSource: tokenPath, Offline: true,
				MetadataTimeout: 2500 * time.Millisecond, StallTimeout: 30 * time.Second}},
		{"implicit token disabled, offline=0", map[string]string{"HOME": home, "HF_HOME": hfHome,
			"HF_HUB_DISABLE_IMPLICIT_TOKEN": "true", "HF_TOKEN": "hf_env", "HF_HUB_OFFLINE": "0"},
			Env{Endpoint: DefaultEndpoint, Home: hfHome, CacheDir: filepath.Join(hfHome, "hub")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readEnv(mapEnv(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if tc.want.MetadataTimeout == 0 {
				tc.want.MetadataTimeout = DefaultMetadataTimeout
			}
			if tc.want.StallTimeout == 0 {
				tc.want.StallTimeout = DefaultStallTimeout
			}
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
	if _, err := readEnv(mapEnv(map[string]string{"HOME": home, "HF_HUB_ETAG_TIMEOUT": "soon"})); err == nil {
		t.Error("a bad HF_HUB_ETAG_TIMEOUT was accepted")
	}
	for _, v := range []string{"1", "true", "TRUE", "on", "Yes"} {
		if !isTrue(v) {
			t.Errorf("isTrue(%q) = false", v)
		}
	}
	for _, v := range []string{"", "0", "false", "no", "2"} {
		if isTrue(v) {
			t.Errorf("isTrue(%q) = true", v)
		}
	}
}

func TestFromEnv(t *testing.T) {
	fh, files := standardHub(t)
	hfHome := t.TempDir()
	if err := os.WriteFile(filepath.Join(hfHome, "token"), []byte(fh.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HF_ENDPOINT", fh.URL+"/")
	t.Setenv("HF_HOME", hfHome)
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HUGGINGFACE_HUB_CACHE", "")
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HUGGING_FACE_HUB_TOKEN", "")
	t.Setenv("HF_TOKEN_PATH", "")
	t.Setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "")
	t.Setenv("HF_HUB_OFFLINE", "")
	t.Setenv("TRANSFORMERS_OFFLINE", "")
	fh.Repo(repoID).Private = true
	c, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.Endpoint() != fh.URL || c.CacheDir() != filepath.Join(hfHome, "hub") || !c.HasToken() || c.Offline() {
		t.Fatalf("client: endpoint %s cache %s token %v offline %v", c.Endpoint(), c.CacheDir(), c.HasToken(), c.Offline())
	}
	p, err := c.Download(context.Background(), repoID, "main", "config.json")
	if err != nil {
		t.Fatal(err)
	}
	checkContent(t, p, files["config.json"].Data)
	if !strings.HasPrefix(p, filepath.Join(hfHome, "hub", "models--Salesforce--blip-itm-base-coco")) {
		t.Errorf("downloaded to %s", p)
	}

	t.Setenv("HF_HUB_OFFLINE", "1")
	cache := t.TempDir()
	t.Setenv("HF_HUB_CACHE", cache)
	c, err = FromEnv(WithToken(""))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Offline() || c.CacheDir() != cache || c.HasToken() {
		t.Fatalf("client: cache %s token %v offline %v", c.CacheDir(), c.HasToken(), c.Offline())
	}
	if _, err := c.Download(context.Background(), repoID, "main", "config.json"); !errors.Is(err, ErrNotCached) {
		t.Errorf("offline with an empty HF_HUB_CACHE: %v", err)
	}
}

func TestNewClientEndpoint(t *testing.T) {
	for _, bad := range []string{"ftp://x", "huggingface.co", "http://", "http://h/?q=1"} {
		if _, err := NewClient(WithEndpoint(bad), WithCacheDir(t.TempDir())); err == nil {
			t.Errorf("endpoint %q accepted", bad)
		}
	}
	c, err := NewClient(WithEndpoint("https://hf-mirror.example/sub/"), WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	got := c.resolveURL(fileRef{repo: repoID, revision: "refs/pr/5", file: "dir/a b#.json"})
	want := "https://hf-mirror.example/sub/Salesforce/blip-itm-base-coco/resolve/refs%2Fpr%2F5/dir/a%20b%23.json"
	if got != want {
		t.Errorf("resolveURL = %s, want %s", got, want)
	}
	u, _ := url.Parse(got)
	if !c.sameOrigin(u) {
		t.Error("endpoint URL not same-origin")
	}
	for _, other := range []string{"https://hf-mirror.example:444/x", "http://hf-mirror.example/x", "https://cdn.hf-mirror.example/x"} {
		o, _ := url.Parse(other)
		if c.sameOrigin(o) {
			t.Errorf("%s treated as the endpoint's origin", other)
		}
	}
}

func TestParseMeta(t *testing.T) {
	u, _ := url.Parse("https://huggingface.co/a/b/resolve/main/f")
	ref := fileRef{repo: "a/b", revision: "main", file: "f"}
	h := http.Header{}
	h.Set("X-Repo-Commit", commit1)
	h.Set("ETag", `W/"0123456789abcdef0123456789abcdef01234567"`)
	h.Set("Content-Length", "42")
	m, err := parseMeta(h, 200, u, ref)
	if err != nil || m.etag != "0123456789abcdef0123456789abcdef01234567" || m.size != 42 || m.commit != commit1 || m.location != u.String() {
		t.Errorf("plain: %+v, %v", m, err)
	}
	// A redirect's Content-Length is not the file's; X-Linked-* win.
	h.Set("Location", "https://cdn.example/blob?sig=1")
	m, err = parseMeta(h, 302, u, ref)
	if err != nil || m.size != -1 || m.location != "https://cdn.example/blob?sig=1" {
		t.Errorf("redirect without X-Linked-Size: %+v, %v", m, err)
	}
	sum := strings.Repeat("ab", 32)
	h.Set("X-Linked-Etag", `"`+sum+`"`)
	h.Set("X-Linked-Size", "895000000")
	m, err = parseMeta(h, 302, u, ref)
	if err != nil || m.etag != sum || m.size != 895000000 {
		t.Errorf("LFS: %+v, %v", m, err)
	}
	h.Set("X-Linked-Size", "-3")
	if _, err := parseMeta(h, 302, u, ref); !errors.Is(err, ErrBadResponse) {
		t.Errorf("negative size: %v", err)
	}
}

func TestProgressReporters(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }

	var bb bytes.Buffer
	b := NewBar(&bb).(*bar)
	b.now = clock
	task := b.Start(Transfer{Repo: repoID, File: "model.safetensors", Size: 2_000_000, Offset: 500_000})
	now = now.Add(time.Second)
	task.Update(1_000_000)
	task.Update(1_100_000) // too soon after the last draw: not drawn
	now = now.Add(time.Second)
	task.Finish(nil)
	out := bb.String()
	for _, w := range []string{"\rmodel.safetensors", " 25% [", " 50% [", "100% [", "2.0 MB / 2.0 MB", "750.0 kB/s", "\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("bar output %q lacks %q", out, w)
		}
	}
	if strings.Contains(out, " 55% [") {
		t.Errorf("bar redrawn faster than 10/s: %q", out)
	}

	var lb bytes.Buffer
	l := NewLines(&lb, 5*time.Second).(*lines)
	l.now = clock
	task = l.Start(Transfer{Repo: repoID, Revision: "refs/pr/5", File: "model.safetensors", Size: 2_000_000, Offset: 1_000_000})
	task.Update(1_200_000)
	now = now.Add(6 * time.Second)
	task.Update(1_500_000)
	task.Finish(nil)
	task.Finish(nil)
	want := "downloading Salesforce/blip-itm-base-coco/model.safetensors @ refs/pr/5 (2.0 MB), resuming at 1.0 MB\n" +
		"model.safetensors: 75% (1.5 MB of 2.0 MB)\n" +
		"downloaded model.safetensors (2.0 MB)\n"
	if lb.String() != want {
		t.Errorf("lines output:\n%s\nwant:\n%s", lb.String(), want)
	}

	if r := AutoReporter(os.Stderr, true); r != nil {
		t.Error("quiet reporter is not nil")
	}
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, ok := AutoReporter(f, false).(*lines); !ok || IsTerminal(f) {
		t.Error("a regular file should get plain lines")
	}
	for n, want := range map[int64]string{999: "999 B", 1000: "1.0 kB", 895_000_000: "895.0 MB", 1_780_000_000: "1.8 GB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
