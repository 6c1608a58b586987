package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // DecodeConfig: the size of an upload before it is decoded
	_ "image/jpeg"
	_ "image/png"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/webp"

	"github.com/blipcuda/blipcuda"
)

// decodeRequest reads r's body, JSON or multipart/form-data, into dst (a
// pointer to a request struct). Unknown fields are rejected and named;
// type errors name the field.
func decodeRequest(r *http.Request, dst any) error {
	ct, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "", "application/json", "application/x-www-form-urlencoded":
		// The last is what curl -d sends unless told otherwise; a form body
		// is not JSON and fails as such, naming where.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return bodyError(err)
		}
		if !utf8.Valid(body) {
			return badField(fieldAt(body), "not valid UTF-8 (JSON is UTF-8)")
		}
		return decodeJSON(bytes.NewReader(body), dst)
	case "multipart/form-data":
		body, err := multipartJSON(multipart.NewReader(r.Body, params["boundary"]))
		if err != nil {
			return err
		}
		return decodeJSON(bytes.NewReader(body), dst)
	}
	return &apiError{status: http.StatusUnsupportedMediaType,
		msg: fmt.Sprintf("Content-Type %q: send application/json or multipart/form-data", ct)}
}

// bodyError classifies an error reading the body: the body limit (kept
// as is for classify), a read timeout (408), or a body cut short (400).
func bodyError(err error) error {
	var (
		mbe *http.MaxBytesError
		ne  net.Error
	)
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.As(err, &ne) && ne.Timeout():
		return &apiError{status: http.StatusRequestTimeout, msg: "the request body was not received in time (server limit --read-timeout)", err: err}
	}
	return &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf("reading the body: %v", err), err: err}
}

// decodeJSON decodes exactly one JSON value from rd into dst.
func decodeJSON(rd io.Reader, dst any) error {
	dec := json.NewDecoder(rd)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badField("", "the body holds more than one JSON value")
	}
	return nil
}

// jsonError names the field of a decoding error.
func jsonError(err error) error {
	var (
		te  *json.UnmarshalTypeError
		se  *json.SyntaxError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, io.EOF):
		return badField("", "empty body: send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badField("", "malformed JSON: the body ends early")
	case errors.As(err, &se):
		return badField("", "malformed JSON at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return badField("", "want a JSON object, got %s", te.Value)
		}
		return badField(field, "wrong type: got %s, want %s", te.Value, jsonType(te.Type.String()))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		return badField(name, "unknown field")
	}
	return badField("", "invalid JSON: %v", err)
}

// jsonType names a Go type as JSON.
func jsonType(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "an array"
	case t == "string", strings.HasSuffix(t, "imageString"):
		return "a string"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "float"):
		return "a number"
	case t == "bool":
		return "true or false"
	}
	return t
}

// listFields are multipart fields that may repeat; numberFields are sent
// as numbers.
var (
	listFields   = map[string]bool{"texts": true, "images": true, "documents": true}
	numberFields = map[string]bool{"top_n": true, "top_k": true, "k": true}
)

// multipartJSON turns a multipart form into the JSON a request would send:
// repeated fields (texts, images, documents) become arrays, files are
// base64-encoded, top_n/top_k become numbers.
func multipartJSON(mr *multipart.Reader) ([]byte, error) {
	obj := map[string]any{}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			if e := bodyError(err); e != err {
				if ae, ok := e.(*apiError); ok && ae.status == http.StatusBadRequest {
					return nil, badField("", "malformed multipart body: %v", err)
				}
				return nil, e
			}
			return nil, err
		}
		name := p.FormName()
		data, err := io.ReadAll(p)
		if err != nil {
			return nil, bodyError(err)
		}
		var v any = string(data)
		if p.FileName() == "" && !utf8.Valid(data) {
			return nil, badField(name, "not valid UTF-8")
		}
		switch {
		case p.FileName() != "":
			// A data URL carrying the file's name, which names the image.
			v = "data:application/octet-stream;name=" + url.PathEscape(p.FileName()) + ";base64," + base64.StdEncoding.EncodeToString(data)
		case numberFields[name]:
			n, err := strconv.Atoi(strings.TrimSpace(string(data)))
			if err != nil {
				return nil, badField(name, "want a whole number, got %q", quote(string(data)))
			}
			v = n
		}
		if listFields[name] {
			l, _ := obj[name].([]any)
			obj[name] = append(l, v)
		} else if _, dup := obj[name]; dup {
			return nil, badField(name, "given more than once")
		} else {
			obj[name] = v
		}
	}
	return json.Marshal(obj)
}

// fieldAt guesses the JSON field holding the first invalid UTF-8 byte of
// body: the last object key before it ("" if none).
func fieldAt(body []byte) string {
	bad := 0
	for bad < len(body) {
		r, n := utf8.DecodeRune(body[bad:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		bad += n
	}
	head := body[:bad]
	end := bytes.LastIndex(head, []byte(`":`))
	if end < 0 {
		return ""
	}
	start := bytes.LastIndexByte(head[:end], '"')
	if start < 0 {
		return ""
	}
	return string(head[start+1 : end])
}

// quote shortens s for an error message.
func quote(s string) string {
	if len(s) > 60 {
		s = s[:60]
		for !utf8.ValidString(s) && len(s) > 0 {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return s
}

// checkTexts enforces the text limits and validates each text, naming it
// as param[i].
func (s *Server) checkTexts(param string, texts []string, required bool) error {
	if len(texts) == 0 {
		if required {
			return badField(param, "no texts: give at least one")
		}
		return nil
	}
	if len(texts) > s.lim.MaxTexts {
		return tooMany(param, len(texts), s.lim.MaxTexts, "--max-texts")
	}
	for i, t := range texts {
		p := fmt.Sprintf("%s[%d]", param, i)
		if len(t) > s.lim.MaxTextBytes {
			return &apiError{status: http.StatusRequestEntityTooLarge, param: p,
				msg: fmt.Sprintf("text of %d bytes; at most %d (server limit --max-text-bytes)", len(t), s.lim.MaxTextBytes)}
		}
		if err := s.m.CheckTexts([]string{t}); err != nil {
			msg := "empty or whitespace-only text, or no words left after the protocol's cleaning"
			if errors.Is(err, blipcuda.ErrInvalidText) {
				msg = "not valid UTF-8"
			}
			return &apiError{status: http.StatusBadRequest, param: p, msg: msg, err: err}
		}
	}
	return nil
}

// decodeImages decodes base64 or data-URL images, naming each as param[i].
func (s *Server) decodeImages(ctx context.Context, param string, list []string, required bool) ([]*blipcuda.Image, error) {
	if len(list) == 0 {
		if required {
			return nil, badField(param, "no images: give at least one")
		}
		return nil, nil
	}
	if len(list) > s.lim.MaxImages {
		return nil, tooMany(param, len(list), s.lim.MaxImages, "--max-images")
	}
	out := make([]*blipcuda.Image, len(list))
	for i, v := range list {
		im, err := s.decodeImage(ctx, fmt.Sprintf("%s[%d]", param, i), v)
		if err != nil {
			return nil, err
		}
		out[i] = im
	}
	return out, nil
}

// decodeImage decodes one image, within the decode budget.
// The image is named by its data URL's name parameter (a multipart
// upload's file name) when it has one, else by name.
func (s *Server) decodeImage(ctx context.Context, name, v string) (*blipcuda.Image, error) {
	data, filename, err := imageBytes(v)
	if err != nil {
		return nil, badField(name, "%v", err)
	}
	display := name
	if filename != "" {
		display = filename
	}
	// Wait for this image's share of the decode budget: its declared
	// pixels (an image over the model's limit is refused from its header
	// by DecodeImage, and a header that does not parse costs 1).
	weight := int64(1)
	if cfg, _, err := image.DecodeConfig(bytes.NewReader(data)); err == nil && cfg.Width > 0 && cfg.Height > 0 &&
		int64(cfg.Width)*int64(cfg.Height) <= int64(s.m.MaxPixels()) {
		weight = min(int64(cfg.Width)*int64(cfg.Height), s.lim.DecodePixels)
	}
	if err := s.decode.Acquire(ctx, weight); err != nil {
		return nil, err
	}
	defer s.decode.Release(weight)
	im, err := s.m.DecodeImage(display, bytes.NewReader(data))
	if err != nil {
		ae := classify(err)
		msg := strings.TrimPrefix(err.Error(), "blipcuda: image "+display+": ")
		msg = strings.TrimPrefix(strings.TrimPrefix(msg, "imageproc: "), display+": ")
		if display != name {
			msg = quote(display) + ": " + msg
		}
		return nil, &apiError{status: ae.status, param: name, msg: msg, err: err}
	}
	return im, nil
}

// imageBytes decodes an image given as base64 (standard or URL alphabet,
// padded or not) or as a data URL (data:image/png;base64,..., with an
// optional name=FILE parameter, percent-encoded, returned as filename).
// URLs are refused: the server fetches nothing.
func imageBytes(v string) (data []byte, filename string, err error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, "", errors.New("empty image")
	}
	lower := strings.ToLower(v[:min(len(v), 16)])
	if strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") || strings.HasPrefix(lower, "file:") {
		return nil, "", errors.New("URLs are not fetched: send the image's bytes (base64, a data URL or a multipart upload)")
	}
	if strings.HasPrefix(lower, "data:") {
		meta, payload, ok := strings.Cut(v[5:], ",")
		if !ok {
			return nil, "", errors.New("data URL without a comma")
		}
		if !strings.HasSuffix(strings.ToLower(meta), ";base64") {
			return nil, "", errors.New("data URL is not base64 (want data:image/...;base64,...)")
		}
		for _, p := range strings.Split(meta, ";") {
			if n, ok := strings.CutPrefix(p, "name="); ok {
				if f, err := url.PathUnescape(n); err == nil && utf8.ValidString(f) && f != "" {
					filename = quote(f)
				}
			}
		}
		v = payload
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(v); err == nil {
			if len(b) == 0 {
				return nil, "", errors.New("empty image")
			}
			return b, filename, nil
		}
	}
	return nil, "", errors.New("not base64 (send the image as base64 or a data URL)")
}
