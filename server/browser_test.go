package server

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds a Chromium or Chrome binary: $BLIPCUDA_CHROMIUM, else the
// usual names on PATH (Debian's package installs /usr/bin/chromium).
func chromium(t *testing.T) string {
	if p := os.Getenv("BLIPCUDA_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium: install it (Debian: apt-get install chromium) or set BLIPCUDA_CHROMIUM; .ci/run installs it")
	return ""
}

// TestBrowser drives the search page in headless Chromium: the page loads
// and names the model, a typed query shows a grid of thumbnails whose first
// is the image the library ranks first, the thumbnails load, and choosing
// a photo ranks the captions against it. With BLIPCUDA_SCREENSHOT=FILE.png
// the page is saved there after the search.
func TestBrowser(t *testing.T) {
	bin := chromium(t)
	if testing.Short() {
		t.Skip("starts a browser; not in -short")
	}
	ix, keys := buildIndex(t, false)
	ts, _ := start(t, Config{Index: ix})
	const q = "a red square on a blue background"
	want := wantOrder(t, ix, keys, q)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.WindowSize(1200, 900), chromedp.Flag("disable-gpu", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	// eval runs one action and fails the test on an error.
	eval := func(what string, a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(ctx, a)
		if err != nil {
			t.Fatalf("browser: %s: %v", what, err)
		}
		return v
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(ts.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("q")),
		chromedp.Poll[chromedp.Void](`document.getElementById("about").textContent.includes("tiny-base")`),
		chromedp.SendKeys(chromedp.ID("q"), q),
		chromedp.Click(chromedp.CSS("#search button")),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("figure.result").length >= 8`),
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll("figure.result img")].slice(0, 3).every(i => i.complete && i.naturalWidth > 0)`),
	); err != nil {
		t.Fatalf("browser: %v", err)
	}
	first := eval("first result", chromedp.Evaluate[string](`document.querySelector("figure.result").dataset.path`))
	count, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("figure.result").length`))
	if err != nil {
		t.Fatal(err)
	}
	status := eval("status", chromedp.Text(chromedp.ID("status")))
	if first != want[0] || count != len(keys) {
		t.Errorf("first result %q of %d, want %q of %d (status %q)", first, count, want[0], len(keys), status)
	}
	if !strings.Contains(status, "8 of 8 images") {
		t.Errorf("status line %q", status)
	}
	if p := os.Getenv("BLIPCUDA_SCREENSHOT"); p != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Choosing a photo ranks the captions against it and finds it first
	// among the similar images.
	photo, _ := filepath.Abs(filepath.Join("..", "testdata", "models", "images", "blocks.png"))
	if err := chromedp.Do(ctx,
		chromedp.SetUploadFiles(chromedp.ID("file"), []string{photo}),
		chromedp.Poll[chromedp.Void](`!document.getElementById("captions-out").hidden && document.querySelectorAll("#caption-list li").length == 6`),
		chromedp.Poll[chromedp.Void](`document.getElementById("status").textContent.includes("blocks.png")`),
	); err != nil {
		t.Fatalf("photo: %v", err)
	}
	captions, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#caption-list li").length`))
	if err != nil {
		t.Fatal(err)
	}
	first = eval("first similar image", chromedp.Evaluate[string](`document.querySelector("figure.result").dataset.path`))
	if captions != 6 || first != keys[1] {
		t.Errorf("photo: %d captions ranked, first similar image %q (want %q)", captions, first, keys[1])
	}
	if p := os.Getenv("BLIPCUDA_SCREENSHOT"); p != "" {
		if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
			os.WriteFile(strings.TrimSuffix(p, ".png")+"-photo.png", png, 0o644)
		}
	}
}
