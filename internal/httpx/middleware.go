package httpx

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"
)

// Middleware wraps an http.Handler.
type Middleware = func(http.Handler) http.Handler

// Chain composes middleware; the first is outermost. The recommended order
// is RequestID, AccessLog, Recover, CORS, BodyLimit, so that the access log
// has the request ID and sees the 500 that Recover writes.
func Chain(mw ...Middleware) Middleware {
	return func(h http.Handler) http.Handler {
		for i := len(mw) - 1; i >= 0; i-- {
			h = mw[i](h)
		}
		return h
	}
}

// RequestIDHeader carries the request ID in and out.
const RequestIDHeader = "X-Request-Id"

// RequestID gives every request an ID: the incoming X-Request-Id if it is
// a plausible one (1–64 characters of [A-Za-z0-9._-], so it cannot inject
// into logs), else a fresh random one. It is echoed in the response header
// and available from [RequestIDFrom].
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID(id) {
			id = rand.Text()
		}
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// AccessLog logs one line per request at Info (Warn for 5xx) with method,
// route (the ServeMux pattern, when the request reached a [Handle]d route),
// path (never the query string, which may hold access_token), status,
// bytes, duration and request_id. Headers are never logged, so neither is
// Authorization. It also puts logger, annotated with request_id, into the
// request context for [Handle] and [LoggerFrom].
func AccessLog(logger *slog.Logger) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			reqID := RequestIDFrom(r.Context())
			reqLogger := logger
			if reqID != "" {
				reqLogger = logger.With(slog.String("request_id", reqID))
			}
			state := &logState{}
			ctx := context.WithValue(WithLogger(r.Context(), reqLogger), logStateKey, state)
			r2 := r.WithContext(ctx)
			rw := wrapWriter(w)
			defer func() {
				route := r2.Pattern
				if route == "" {
					route = state.pattern
				}
				status := rw.statusOrOK()
				level := slog.LevelInfo
				if status >= 500 {
					level = slog.LevelWarn
				}
				logger.LogAttrs(ctx, level, "http request",
					slog.String("method", r.Method),
					slog.String("route", route),
					slog.String("path", r.URL.EscapedPath()),
					slog.Int("status", status),
					slog.Int64("bytes", rw.bytes),
					slog.Duration("duration", time.Since(start)),
					slog.String("request_id", reqID),
				)
			}()
			next.ServeHTTP(rw, r2)
		})
	}
}

// Recover turns a panic in next into a logged 500 M_UNKNOWN. If the
// response had already started it cannot be replaced, so the connection is
// aborted (http.ErrAbortHandler) rather than leaving a truncated body that
// looks complete. http.ErrAbortHandler itself is passed through unlogged.
func Recover(logger *slog.Logger) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rw := wrapWriter(w)
			defer func() {
				p := recover()
				if p == nil {
					return
				}
				if p == http.ErrAbortHandler {
					panic(p)
				}
				logger.LogAttrs(r.Context(), slog.LevelError, "panic in handler",
					slog.String("request_id", RequestIDFrom(r.Context())),
					slog.String("method", r.Method),
					slog.String("path", r.URL.EscapedPath()),
					slog.String("panic", fmt.Sprint(p)),
					slog.String("stack", string(debug.Stack())),
				)
				if rw.wroteHeader {
					panic(http.ErrAbortHandler)
				}
				e := Unknown("Internal server error")
				if id := RequestIDFrom(r.Context()); id != "" {
					e.Message += " (request ID " + id + ")"
				}
				writeMatrixError(rw, e)
			}()
			next.ServeHTTP(rw, r)
		})
	}
}

// CORS adds the spec's recommended CORS headers ("Web Browser Clients") to
// every response and answers every OPTIONS request itself with 200 and an
// empty JSON object, without running the endpoint's logic or auth.
func CORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "X-Requested-With, Content-Type, Authorization")
		if r.Method == http.MethodOptions {
			_ = WriteJSON(w, http.StatusOK, struct{}{})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// BodyLimit bounds request bodies to n bytes: a declared Content-Length
// over n is refused at once with 413 M_TOO_LARGE; otherwise the body is
// wrapped in http.MaxBytesReader, so reading past n fails with
// *http.MaxBytesError ([DecodeJSON] and [Handle] turn it into 413
// M_TOO_LARGE). Media upload routes need their own, larger limit: apply
// BodyLimit per route rather than globally if they share a listener.
func BodyLimit(n int64) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > n {
				writeMatrixError(w, TooLarge(fmt.Sprintf("Request body is larger than %d bytes", n)))
				return
			}
			if r.Body != nil && r.Body != http.NoBody {
				r2 := *r
				r2.Body = http.MaxBytesReader(w, r.Body, n)
				r = &r2
			}
			next.ServeHTTP(w, r)
		})
	}
}
