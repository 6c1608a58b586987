package blipcuda

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestREADMELibraryExample builds the README's library example as the
// program it claims to be (package main, imports, error handling), through
// a build overlay: nothing is written into the source tree.
func TestREADMELibraryExample(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds a program with the go command")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start := strings.Index(s, "```go\npackage main\n")
	if start < 0 {
		t.Fatal("README.md has no ```go block starting with package main")
	}
	code := s[start+len("```go\n"):]
	code = code[:strings.Index(code, "```")]
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	virtual := filepath.Join(wd, "readme_example_overlay", "main.go")
	ov, _ := json.Marshal(map[string]any{"Replace": map[string]string{virtual: src}})
	overlay := filepath.Join(dir, "overlay.json")
	os.WriteFile(overlay, ov, 0o644)
	cmd := exec.Command(goCmd, "build", "-overlay", overlay, "-o", filepath.Join(dir, "example"), "./readme_example_overlay")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the README's library example does not build: %v\n%s\n%s", err, out, code)
	}
}
