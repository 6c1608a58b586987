package server

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// web holds the search page: plain HTML, CSS and JavaScript, no build step.
//
//go:embed web
var web embed.FS

// pageCSP keeps the page to its own scripts, styles and images (and the
// data:/blob: URLs of a dropped photo).
const pageCSP = "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; connect-src 'self'; frame-ancestors 'none'"

func (s *Server) handlePage(w http.ResponseWriter, r *http.Request) error {
	return s.serveAsset(w, r, "web/index.html")
}

func (s *Server) handleStatic(w http.ResponseWriter, r *http.Request) error {
	name := strings.TrimPrefix(r.URL.Path, "/static/")
	if name == "index.html" || !fs.ValidPath(name) {
		return &apiError{status: http.StatusNotFound, msg: "no such file"}
	}
	return s.serveAsset(w, r, "web/"+name)
}

func (s *Server) serveAsset(w http.ResponseWriter, r *http.Request, name string) error {
	data, err := web.ReadFile(name)
	if err != nil {
		return &apiError{status: http.StatusNotFound, msg: "no such file"}
	}
	ct := "text/html; charset=utf-8"
	switch {
	case strings.HasSuffix(name, ".css"):
		ct = "text/css; charset=utf-8"
	case strings.HasSuffix(name, ".js"):
		ct = "text/javascript; charset=utf-8"
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(data)
	}
	return nil
}
