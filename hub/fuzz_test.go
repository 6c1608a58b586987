package hub

import (
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// A usable etag or commit must stay one plain file name inside its folder.
func checkComponent(t *testing.T, s string) {
	t.Helper()
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, `/\`+"\x00") ||
		strings.HasSuffix(s, ".incomplete") || strings.HasSuffix(s, ".lock") {
		t.Fatalf("unsafe component %q accepted", s)
	}
	if filepath.Base(s) != s {
		t.Fatalf("component %q is not a base name", s)
	}
}

func FuzzNormalizeETag(f *testing.F) {
	for _, s := range []string{
		`"d7edf6bd2a681fb0175f7735299831ee1b22b812"`,
		`W/"403450e234d65943a7dcf7e05a771ce3c92faa84dd07db4ac20f592037a1e4bd"`,
		`"5f3c-123abc"`, `W/"x"`, `""`, `"../../etc/passwd"`, "abc.incomplete", "\x00", `W/W/"a"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		tag, ok := normalizeETag(raw)
		if !ok {
			return
		}
		checkComponent(t, tag)
		if again, ok2 := normalizeETag(tag); !ok2 || again != tag {
			t.Fatalf("normalizeETag not idempotent: %q → %q → %q, %v", raw, tag, again, ok2)
		}
	})
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{commit1, commit1 + "\n", "", " \n", "../x", "a/b", strings.Repeat("f", 300)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		commit, ok := parseRef(b)
		if ok {
			checkComponent(t, commit)
		}
	})
}

func FuzzParseMeta(f *testing.F) {
	f.Add(commit1, `"abc"`, "", "", "12", 200)
	f.Add(commit1, `"x"`, `"`+strings.Repeat("0", 64)+`"`, "895", "", 302)
	f.Add("", "", "", "-1", "x", 307)
	f.Fuzz(func(t *testing.T, commit, etag, linked, linkedSize, contentLength string, status int) {
		h := http.Header{}
		h.Set("X-Repo-Commit", commit)
		h.Set("ETag", etag)
		h.Set("X-Linked-Etag", linked)
		h.Set("X-Linked-Size", linkedSize)
		h.Set("Content-Length", contentLength)
		h.Set("Location", "/a/b")
		u, _ := url.Parse("https://huggingface.co/a/b/resolve/main/f")
		m, err := parseMeta(h, status, u, fileRef{repo: "a/b", revision: "main", file: "f"})
		if err != nil {
			return
		}
		checkComponent(t, m.commit)
		checkComponent(t, m.etag)
		if m.size < -1 {
			t.Fatalf("size %d", m.size)
		}
		if _, err := url.Parse(m.location); err != nil {
			t.Fatalf("location %q: %v", m.location, err)
		}
	})
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-9/10", "bytes 5-9/*", "bytes */10", "bytes 9-5/10", "bytes 0-9/9", "items 0-1/2", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		first, last, total, ok := parseContentRange(s)
		if !ok {
			return
		}
		if first < 0 || last < first || (total != -1 && total <= last) {
			t.Fatalf("%q → %d-%d/%d", s, first, last, total)
		}
	})
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "120", "-1", "Wed, 21 Oct 2015 07:28:00 GMT", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, ok := parseRetryAfter(s); ok && (d < 0 || d.Hours() > 24) {
			t.Fatalf("%q → %v", s, d)
		}
	})
}

// Names accepted for the repo, revision and file never lead outside the
// repository's folder.
func FuzzNames(f *testing.F) {
	f.Add("Salesforce/blip-itm-base-coco", "refs/pr/5", "sub/config.json")
	f.Add("a", "main", "x")
	f.Add("../a", "../../b", "../../../c")
	f.Add("a/b", "refs//x", "/abs")
	f.Add("a/b", "..", `a\..\..\x`)
	f.Fuzz(func(t *testing.T, repo, rev, file string) {
		if validateRepo(repo) != nil || validatePath("revision", rev) != nil || validatePath("file name", file) != nil {
			return
		}
		root := filepath.Join(string(filepath.Separator), "cache")
		dir := filepath.Join(root, repoFolderName(repo))
		if filepath.Dir(dir) != root {
			t.Fatalf("repo folder %s escapes %s", dir, root)
		}
		if back, ok := repoFromFolder(filepath.Base(dir)); !ok || back != repo {
			t.Fatalf("repo folder %s does not map back to %q (got %q)", dir, repo, back)
		}
		for _, p := range []string{refPath(dir, rev), pointerPath(dir, commit1, file), noExistPath(dir, commit1, file)} {
			if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
				t.Fatalf("%s escapes %s", p, dir)
			}
		}
	})
}
