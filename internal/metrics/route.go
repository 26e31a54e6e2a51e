package metrics

import (
	"context"
	"net/http"
	"sync"
)

// unmatched is the route label of requests no ServeMux pattern matched.
const unmatched = "unmatched"

// CaptureRoute wraps the http.ServeMux (directly, or as wrapped by
// httpx.WrapMux) so that [HTTP.Middleware] learns the pattern that matched.
//
// ServeMux stores the pattern in the Pattern field of the *http.Request it
// was given. The metrics middleware sees that field only if it handed the
// mux that same pointer; any middleware in between that calls
// r.WithContext (httpx.RequestID and httpx.AccessLog do) gives the mux a
// copy, and the middleware would see no pattern. CaptureRoute copies the
// pattern into per-request state that the middleware put in the context,
// which survives such copies. It also records the route of a request whose
// handler panics.
func CaptureRoute(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if rs, ok := r.Context().Value(routeKey{}).(*routeState); ok && r.Pattern != "" {
				rs.set(r.Pattern)
			}
		}()
		mux.ServeHTTP(w, r)
	})
}

type routeKey struct{}

// routeState carries the matched pattern out from [CaptureRoute]. It is
// locked because a handler may outlive the middleware (http.TimeoutHandler
// runs it in another goroutine).
type routeState struct {
	mu      sync.Mutex
	pattern string
}

func (s *routeState) set(p string) {
	s.mu.Lock()
	s.pattern = p
	s.mu.Unlock()
}

func (s *routeState) get() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pattern
}

func withRouteState(r *http.Request) (*http.Request, *routeState) {
	rs := &routeState{}
	return r.WithContext(context.WithValue(r.Context(), routeKey{}, rs)), rs
}

// routeLabel is the pattern that ServeMux matched for r: from r itself if
// the mux was handed r, else from [CaptureRoute].
//
// CONNECT requests are always unmatched: for them ServeMux may report the
// request's own path as the pattern (its trailing-slash redirect), which a
// client controls.
func routeLabel(r *http.Request, rs *routeState) string {
	if r.Method == http.MethodConnect {
		return unmatched
	}
	p := r.Pattern
	if p == "" {
		p = rs.get()
	}
	if p == "" {
		return unmatched
	}
	return p
}
