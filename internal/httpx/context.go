package httpx

import (
	"context"
	"log/slog"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	loggerKey
	logStateKey
)

// RequestIDFrom returns the request ID set by [RequestID], or "".
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// WithLogger returns ctx carrying l as the request's logger. [AccessLog]
// does this with its logger annotated with request_id.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey, l)
}

// LoggerFrom returns the request's logger set by [WithLogger] (or
// [AccessLog]), or nil.
func LoggerFrom(ctx context.Context) *slog.Logger {
	l, _ := ctx.Value(loggerKey).(*slog.Logger)
	return l
}

// logState is filled in by inner handlers for the access log, which cannot
// see the *http.Request that ServeMux annotated with its pattern.
type logState struct {
	pattern string
}

func logStateFrom(ctx context.Context) *logState {
	s, _ := ctx.Value(logStateKey).(*logState)
	return s
}
