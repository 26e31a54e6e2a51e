package httpx

import (
	"net/http"
	"time"
)

// InFlight bounds the requests a listener serves at once, so that overload
// is answered quickly instead of stacking up until memory or file handles
// run out (DESIGN.md "No unbounded anything"). Requests beyond the bound
// get 503 M_LIMIT_EXCEEDED with Retry-After at once, without running the
// endpoint. Long-polls (isLongPoll) have a bound of their own, since they
// hold their slot for up to a minute while costing almost nothing.
// A bound of 0 disables that bound.
func InFlight(max, maxLongPoll int, isLongPoll func(*http.Request) bool) Middleware {
	var short, long chan struct{}
	if max > 0 {
		short = make(chan struct{}, max)
	}
	if maxLongPoll > 0 {
		long = make(chan struct{}, maxLongPoll)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			slots := short
			if isLongPoll != nil && isLongPoll(r) {
				slots = long
			}
			if slots == nil {
				next.ServeHTTP(w, r)
				return
			}
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
				next.ServeHTTP(w, r)
			default:
				e := LimitExceeded("the server is busy; retry shortly", time.Second).WithStatus(http.StatusServiceUnavailable)
				WriteError(w, r, nil, e)
			}
		})
	}
}
