package ratelimit

import (
	"net/http"
	"time"

	"github.com/axon-hs/axon/internal/httpx"
)

// Middleware limits requests by the key that keyFn derives from them. A
// request for which keyFn reports ok == false is not limited (use that for
// exempt or unattributable requests). A refused request gets 429
// M_LIMIT_EXCEEDED with Retry-After (whole seconds, rounded up) and
// retry_after_ms, and next is not called.
//
// If l is nil or disabled, Middleware returns next unchanged.
//
// Placed before the ServeMux, a refusal happens before routing; metrics
// and access logs then see the request as unrouted.
func Middleware(l *Limiter, keyFn func(*http.Request) (key string, ok bool)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if !l.Enabled() {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key, ok := keyFn(r)
			if ok {
				if allowed, retryAfter := l.Allow(key); !allowed {
					httpx.WriteError(w, r, nil, httpx.LimitExceeded("Too many requests", roundUpMillis(retryAfter)))
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// roundUpMillis rounds d up to a whole millisecond, so that retry_after_ms
// (which is truncated to milliseconds) never tells a client to come back
// before it will be admitted.
func roundUpMillis(d time.Duration) time.Duration {
	return (d + time.Millisecond - 1) / time.Millisecond * time.Millisecond
}
