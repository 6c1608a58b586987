package hub

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// repoFolderName is huggingface_hub's repo_folder_name for a model:
// "models--" + the repo id with "/" replaced by "--".
func repoFolderName(repo string) string {
	return "models--" + strings.ReplaceAll(repo, "/", "--")
}

// repoFromFolder inverts repoFolderName; ok is false for non-model folders.
func repoFromFolder(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, "models--")
	if !ok || rest == "" {
		return "", false
	}
	return strings.ReplaceAll(rest, "--", "/"), true
}

// validateRepo accepts "name" or "org/name" made of letters, digits, '-', '_'
// and '.', without "--" or ".." (the Hub's own rule) and at most 96 bytes a
// part.
func validateRepo(repo string) error {
	bad := func(why string) error {
		return fmt.Errorf("hub: repository id %q: %s: %w", repo, why, ErrInvalidName)
	}
	if repo == "" {
		return bad("empty")
	}
	parts := strings.Split(repo, "/")
	if len(parts) > 2 {
		return bad(`want "org/name"`)
	}
	for _, p := range parts {
		if p == "" || len(p) > 96 {
			return bad("empty or too long part")
		}
		if strings.Contains(p, "--") || strings.Contains(p, "..") {
			return bad(`"--" and ".." are not allowed`)
		}
		if p[0] == '.' || p[0] == '-' || p[len(p)-1] == '.' || p[len(p)-1] == '-' {
			return bad("a part may not start or end with '.' or '-'")
		}
		for i := 0; i < len(p); i++ {
			if !isNameByte(p[i]) {
				return bad(fmt.Sprintf("character %q is not allowed", p[i]))
			}
		}
	}
	return nil
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

// validatePath checks a '/'-separated relative path that becomes a path under
// the cache (a file name in a repo, a revision under refs/): no empty, "." or
// ".." component, no backslash, no control character, no leading '/'.
func validatePath(kind, p string) error {
	bad := func(why string) error {
		return fmt.Errorf("hub: %s %q: %s: %w", kind, p, why, ErrInvalidName)
	}
	if p == "" {
		return bad("empty")
	}
	if len(p) > 1024 {
		return bad("too long")
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' || c == ':' && kind == "revision" {
			return bad(fmt.Sprintf("character %q is not allowed", c))
		}
	}
	for _, part := range strings.Split(p, "/") {
		switch part {
		case "":
			return bad("empty path component (leading, trailing or double '/')")
		case ".", "..":
			return bad(`"." and ".." are not allowed`)
		}
		if len(part) > 255 {
			return bad("path component too long")
		}
	}
	return nil
}

// isCommitHash reports whether rev is a full 40-hex git commit id, which
// huggingface_hub uses directly as the snapshot folder name.
func isCommitHash(rev string) bool {
	if len(rev) != 40 {
		return false
	}
	for i := 0; i < len(rev); i++ {
		if !isLowerHex(rev[i]) {
			return false
		}
	}
	return true
}

// isSHA256 reports whether s is 64 lower-case hex digits (an LFS etag).
func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isLowerHex(s[i]) {
			return false
		}
	}
	return true
}

func isLowerHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }

// safeComponent reports whether s can be used as one file name in the cache
// (an etag as blob name, a commit as snapshot folder): 1 to 200 bytes of
// letters, digits, '.', '_', '-', '+', '=', starting with a letter or digit,
// and not ending in ".incomplete" or ".lock".
func safeComponent(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isNameByte(c) && c != '+' && c != '=' {
			return false
		}
	}
	c := s[0]
	if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
		return false
	}
	return !strings.HasSuffix(s, ".incomplete") && !strings.HasSuffix(s, ".lock")
}

// normalizeETag is huggingface_hub's _normalize_etag: drop a weak "W/" prefix
// and surrounding quotes. ok is false when the result is not usable as a blob
// file name.
func normalizeETag(raw string) (string, bool) {
	s := strings.TrimSpace(raw)
	s = strings.TrimPrefix(s, "W/")
	s = strings.Trim(s, `"`)
	if !safeComponent(s) {
		return "", false
	}
	return s, true
}

// parseRef reads the content of a refs/ file: a commit id, possibly followed
// by white space (Python writes none, editors may add a newline).
func parseRef(b []byte) (string, bool) {
	s := strings.TrimSpace(string(b))
	if !safeComponent(s) {
		return "", false
	}
	return s, true
}

// fromSlash turns a validated '/'-separated path into a local one.
func fromSlash(p string) string { return filepath.FromSlash(p) }

// escapePath escapes each '/'-separated component of a file name for a URL,
// keeping the slashes (Python's quote(filename)).
func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}
