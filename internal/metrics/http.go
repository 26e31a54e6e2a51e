package metrics

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DurationBuckets returns the bucket bounds, in seconds, of
// axon_http_request_duration_seconds: 1 ms to 60 s, dense enough below a
// second for latency SLOs, with 20, 30 and 35 s to tell long-polls that
// ended early, on time and late apart. Other Axon latency histograms may
// use them too.
func DurationBuckets() []float64 {
	return []float64{
		0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
		1, 2.5, 5, 10, 20, 30, 35, 60,
	}
}

// HTTP instruments the HTTP servers of one listener. See the package
// documentation for the metrics it records.
type HTTP struct {
	requests *prometheus.CounterVec // method, route, code
	duration prometheus.ObserverVec // method, route
	inFlight prometheus.Gauge
}

// NewHTTP registers the HTTP metrics on reg (nil: not registered) and
// returns the instrumentation for the listener called listener ("client",
// "federation", "admin" …), which becomes the listener label. The metric
// names are fixed; several listeners share them in one registry, so
// calling NewHTTP again on the same registry reuses the registered
// metrics. It panics if listener is empty or registration fails for
// another reason, like prometheus.MustRegister.
func NewHTTP(reg prometheus.Registerer, listener string) *HTTP {
	if listener == "" {
		panic("metrics: NewHTTP with empty listener name")
	}
	requests := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "axon",
		Subsystem: "http",
		Name:      "requests_total",
		Help:      "HTTP requests completed, by listener, method, matched route pattern and status code.",
	}, []string{"listener", "method", "route", "code"}))
	duration := register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "axon",
		Subsystem: "http",
		Name:      "request_duration_seconds",
		Help:      "Time to serve HTTP requests, by listener, method and matched route pattern.",
		Buckets:   DurationBuckets(),
	}, []string{"listener", "method", "route"}))
	inFlight := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "axon",
		Subsystem: "http",
		Name:      "requests_in_flight",
		Help:      "HTTP requests being served, including long-polls, by listener.",
	}, []string{"listener"}))
	l := prometheus.Labels{"listener": listener}
	return &HTTP{
		requests: requests.MustCurryWith(l),
		duration: duration.MustCurryWith(l),
		inFlight: inFlight.With(l),
	}
}

// register registers c on reg, or returns the equal collector that is
// already registered.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic(fmt.Errorf("metrics: %w", err))
}

// Middleware records every request that passes through it. Put it outside
// the middleware whose time should count (typically right after
// httpx.RequestID) and wrap the ServeMux in [CaptureRoute] so the matched
// route reaches it.
func (m *HTTP) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		m.inFlight.Inc()
		r, rs := withRouteState(r)
		sw := &statusWriter{ResponseWriter: w}
		done := false
		defer func() {
			m.inFlight.Dec()
			code := sw.status
			if code == 0 {
				code = http.StatusOK // nothing written: net/http sends 200
				if !done {
					code = http.StatusInternalServerError // panicked
				}
			}
			method, route := methodLabel(r.Method), routeLabel(r, rs)
			m.requests.WithLabelValues(method, route, strconv.Itoa(code)).Inc()
			m.duration.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(sw, r)
		done = true
	})
}

// methodLabel bounds the method label: a client can send any token.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}
