package httpx

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// HandlerFunc is an HTTP handler that returns an error instead of writing
// one. Return an *Error (or an error wrapping one) for a Matrix error
// response; any other error becomes 500 M_UNKNOWN, logged and not shown.
// A handler that returns an error must not have written a response.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Option configures [Handle].
type Option func(*handleConfig)

type handleConfig struct {
	logger *slog.Logger
}

// WithErrorLogger sets the logger Handle uses for internal errors when the
// request context has none (see [LoggerFrom]; [AccessLog] sets one).
func WithErrorLogger(l *slog.Logger) Option {
	return func(c *handleConfig) { c.logger = l }
}

// Handle adapts h to an http.Handler that writes h's error as a Matrix
// standard error response.
//
// Internal errors are logged with the request context's logger, else the
// [WithErrorLogger] logger, else slog.Default().
func Handle(h HandlerFunc, opts ...Option) http.Handler {
	var cfg handleConfig
	for _, o := range opts {
		o(&cfg)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := logStateFrom(r.Context()); s != nil && r.Pattern != "" {
			s.pattern = r.Pattern
		}
		rw := wrapWriter(w)
		err := h(rw, r)
		if err == nil {
			return
		}
		logger := LoggerFrom(r.Context())
		if logger == nil {
			logger = cfg.logger
		}
		if logger == nil {
			logger = slog.Default()
		}
		if rw.wroteHeader {
			logger.LogAttrs(r.Context(), slog.LevelError, "handler returned error after writing response",
				slog.String("request_id", RequestIDFrom(r.Context())), slog.Any("error", err))
			return
		}
		writeError(rw, r, logger, err)
	})
}

// WriteError writes err as a Matrix error response, exactly as [Handle]
// would. It is for code that cannot return an error (middleware); handlers
// should return the error instead. logger may be nil (see Handle).
func WriteError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	if logger == nil {
		logger = LoggerFrom(r.Context())
	}
	if logger == nil {
		logger = slog.Default()
	}
	writeError(w, r, logger, err)
}

// transient is implemented by a dependency's errors that mean "not now"
// rather than "broken" (the store's ErrUnavailable, ErrStatementTimeout,
// ErrTooManyRetries): such a failure is answered 503 M_UNKNOWN with
// Retry-After, which clients retry, instead of 500.
type transient interface {
	error
	Transient() bool
}

// transientRetryAfter is the Retry-After of a transient failure.
const transientRetryAfter = 2 * time.Second

// toError turns any error into the *Error to send, and reports whether it
// was internal (not an *Error the handler chose).
func toError(err error) (*Error, bool) {
	if e, ok := errors.AsType[*Error](err); ok {
		return e, false
	}
	if mb, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return TooLarge("Request body is larger than " + strconv.FormatInt(mb.Limit, 10) + " bytes").WithCause(err), false
	}
	if t, ok := errors.AsType[transient](err); ok && t.Transient() {
		e := Unknown("The server is temporarily unable to handle the request; retry shortly").
			WithStatus(http.StatusServiceUnavailable).WithCause(err)
		e.RetryAfter = transientRetryAfter
		return e, true
	}
	return Unknown("Internal server error").WithCause(err), true
}

func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	ctx := r.Context()
	reqID := RequestIDFrom(ctx)
	e, internal := toError(err)
	switch {
	case internal:
		level := slog.LevelError
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			level = slog.LevelInfo // the client went away
		}
		logger.LogAttrs(ctx, level, "internal error",
			slog.String("request_id", reqID), slog.String("route", r.Pattern), slog.Any("error", err))
		if reqID != "" {
			e.Message += " (request ID " + reqID + ")"
		}
	case e.Status >= 500:
		logger.LogAttrs(ctx, slog.LevelError, "server error response",
			slog.String("request_id", reqID), slog.String("route", r.Pattern),
			slog.String("errcode", e.Code), slog.Any("error", err))
	case e.Err != nil:
		logger.LogAttrs(ctx, slog.LevelDebug, "client error response",
			slog.String("request_id", reqID), slog.String("errcode", e.Code), slog.Any("error", err))
	}
	writeMatrixError(w, e)
}

// writeMatrixError writes e's body, status and Retry-After header.
func writeMatrixError(w http.ResponseWriter, e *Error) {
	body := make(map[string]any, len(e.Extra)+3)
	for k, v := range e.Extra {
		body[k] = v
	}
	code := e.Code
	if code == "" {
		code = CodeUnknown
	}
	body["errcode"] = code
	body["error"] = e.Message
	status := e.Status
	if status == 0 {
		status = StatusFor(code)
	}
	if e.RetryAfter > 0 {
		secs := int64((e.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		if code == CodeLimitExceeded {
			body["retry_after_ms"] = e.RetryAfter.Milliseconds()
		}
	}
	if err := WriteJSON(w, status, body); err != nil {
		// Extra held something unencodable: a bug, but still answer.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"errcode":"M_UNKNOWN","error":"Internal server error"}`))
	}
}
