package httpx

import (
	"net/http"
	"strings"
)

// NotFoundHandler answers 404 M_UNRECOGNIZED: no such endpoint.
func NotFoundHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeMatrixError(w, Unrecognized("Unrecognized request"))
	})
}

// MethodNotAllowedHandler answers 405 M_UNRECOGNIZED with an Allow header
// listing allow: the endpoint exists but not with this method.
func MethodNotAllowedHandler(allow ...string) http.Handler {
	allowHeader := strings.Join(allow, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if allowHeader != "" {
			w.Header().Set("Allow", allowHeader)
		}
		writeMatrixError(w, UnrecognizedMethod("Method "+r.Method+" is not allowed for this endpoint"))
	})
}

// WrapMux serves mux, replacing its plain-text fallbacks with the
// spec's M_UNRECOGNIZED JSON: 404 when no pattern matches the path, 405
// (keeping ServeMux's Allow header) when one matches with another method.
// ServeMux's redirects (trailing slash, path cleaning) are kept.
func WrapMux(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" || r.RequestURI == "*" {
			mux.ServeHTTP(w, r)
			return
		}
		// ServeMux's own fallback: find out which by running it against a
		// writer that only keeps the status and headers.
		probe := &probeWriter{header: make(http.Header)}
		h.ServeHTTP(probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			MethodNotAllowedHandler(probe.header.Values("Allow")...).ServeHTTP(w, r)
			return
		}
		NotFoundHandler().ServeHTTP(w, r)
	})
}

type probeWriter struct {
	header http.Header
	status int
}

func (p *probeWriter) Header() http.Header { return p.header }

func (p *probeWriter) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}

func (p *probeWriter) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return len(b), nil
}
