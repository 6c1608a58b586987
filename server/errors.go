package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/blipcuda/blipcuda"
	"github.com/blipcuda/blipcuda/batcher"
	"github.com/blipcuda/blipcuda/imageproc"
)

// apiError is an error with its HTTP status and the request field at fault.
type apiError struct {
	status int
	param  string // the field, e.g. "texts[2]"; "" when none
	msg    string
	err    error
}

func (e *apiError) Error() string {
	if e.param != "" {
		return e.param + ": " + e.msg
	}
	return e.msg
}

func (e *apiError) Unwrap() error { return e.err }

// badField is a 400 naming param.
func badField(param, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, param: param, msg: fmt.Sprintf(format, args...)}
}

// tooMany is a 413 naming param and the limit.
func tooMany(param string, n, limit int, flag string) *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, param: param,
		msg: fmt.Sprintf("%d items; at most %d per request (server limit %s)", n, limit, flag)}
}

// errorBody is the JSON of an error: the shape of the common embeddings
// APIs ({"error": {"message", "type", "param", "code"}}).
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Param   string `json:"param,omitempty"`
	Code    int    `json:"code"`
}

// classify turns any error into an apiError.
func classify(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return &apiError{status: http.StatusRequestEntityTooLarge,
			msg: fmt.Sprintf("request body exceeds %d bytes (server limit --max-body)", mbe.Limit), err: err}
	case errors.Is(err, batcher.ErrQueueFull):
		return &apiError{status: http.StatusTooManyRequests, msg: "the server's queue is full; retry later", err: err}
	case errors.Is(err, batcher.ErrClosed), errors.Is(err, blipcuda.ErrClosed):
		return &apiError{status: http.StatusServiceUnavailable, msg: "the server is shutting down", err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{status: http.StatusGatewayTimeout, msg: "the request passed its deadline (server limit --request-timeout)", err: err}
	case errors.Is(err, context.Canceled):
		return &apiError{status: 499, msg: "the client closed the request", err: err}
	case errors.Is(err, blipcuda.ErrEmptyText), errors.Is(err, blipcuda.ErrInvalidText):
		return &apiError{status: http.StatusBadRequest, msg: err.Error(), err: err}
	case errors.Is(err, imageproc.ErrTooLarge):
		return &apiError{status: http.StatusRequestEntityTooLarge, msg: err.Error(), err: err}
	case errors.Is(err, imageproc.ErrNotImage), errors.Is(err, imageproc.ErrTruncated),
		errors.Is(err, imageproc.ErrCorrupt), errors.Is(err, imageproc.ErrUnsupported):
		return &apiError{status: http.StatusBadRequest, msg: err.Error(), err: err}
	case errors.Is(err, blipcuda.ErrUnavailable):
		return &apiError{status: http.StatusServiceUnavailable, msg: err.Error(), err: err}
	}
	return &apiError{status: http.StatusInternalServerError, msg: err.Error(), err: err}
}

// ErrShutdown is the cause to cancel the requests' base context with
// (http.Server.BaseContext) when a drain timeout passes: their requests
// are answered 503 instead of 499.
var ErrShutdown = errors.New("server: shutting down")

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(context.Cause(r.Context()), ErrShutdown) {
		err = &apiError{status: http.StatusServiceUnavailable, msg: "the server is shutting down", err: err}
	}
	ae := classify(err)
	typ := "invalid_request_error"
	switch {
	case ae.status == http.StatusTooManyRequests:
		typ = "rate_limit_error"
		w.Header().Set("Retry-After", "1")
	case ae.status == http.StatusUnauthorized:
		typ = "authentication_error"
	case ae.status >= 500 || ae.status == 499:
		typ = "server_error"
	}
	if ae.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, ae.status, errorBody{Error: errorDetail{Message: ae.Error(), Type: typ, Param: ae.param, Code: ae.status}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}
