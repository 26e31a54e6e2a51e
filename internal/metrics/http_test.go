package metrics

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/axon-hs/axon/internal/httpx"
)

const sendPattern = "PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}"

func testMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle(sendPattern, httpx.Handle(func(w http.ResponseWriter, r *http.Request) error {
		return httpx.WriteJSON(w, http.StatusOK, map[string]string{"event_id": "$e"})
	}))
	mux.Handle("GET /_matrix/client/v3/rooms/{roomId}/state", httpx.Handle(func(w http.ResponseWriter, r *http.Request) error {
		return httpx.Forbidden("not in room")
	}))
	mux.HandleFunc("GET /_matrix/client/v3/panic", func(w http.ResponseWriter, r *http.Request) {
		panic("boom")
	})
	mux.HandleFunc("GET /_matrix/media/v3/download/", func(w http.ResponseWriter, r *http.Request) {})
	return mux
}

// series returns axon_http_requests_total's samples as "method route code"
// → count, for listener.
func series(t *testing.T, reg *prometheus.Registry, listener string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "axon_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := labels(m)
			if l["listener"] == listener {
				out[l["method"]+" "+l["route"]+" "+l["code"]] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

func labels(m *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

func TestRouteLabel(t *testing.T) {
	const sendPath = "/_matrix/client/v3/rooms/!abc:example.org/send/m.room.message/txn1"
	requestID := httpx.RequestID // copies the request (WithContext)
	tests := []struct {
		name   string
		build  func(m *HTTP, mux *http.ServeMux) http.Handler
		method string
		path   string
		want   string // "method route code"
	}{
		{
			"middleware directly around the mux sees r.Pattern",
			func(m *HTTP, mux *http.ServeMux) http.Handler { return m.Middleware(mux) },
			"PUT", sendPath, "PUT " + sendPattern + " 200",
		},
		{
			"httpx.WrapMux passes the same request to the mux",
			func(m *HTTP, mux *http.ServeMux) http.Handler { return m.Middleware(httpx.WrapMux(mux)) },
			"PUT", sendPath, "PUT " + sendPattern + " 200",
		},
		{
			// Go sets Pattern on the request the mux receives, which is a
			// copy here: this is why CaptureRoute exists.
			"a request copy in between hides r.Pattern",
			func(m *HTTP, mux *http.ServeMux) http.Handler { return m.Middleware(requestID(mux)) },
			"PUT", sendPath, "PUT unmatched 200",
		},
		{
			"CaptureRoute recovers the pattern through copies",
			func(m *HTTP, mux *http.ServeMux) http.Handler {
				return httpx.Chain(requestID, m.Middleware, requestID, httpx.CORS)(CaptureRoute(httpx.WrapMux(mux)))
			},
			"PUT", sendPath, "PUT " + sendPattern + " 200",
		},
		{
			"error status",
			func(m *HTTP, mux *http.ServeMux) http.Handler {
				return m.Middleware(requestID(CaptureRoute(httpx.WrapMux(mux))))
			},
			"GET", "/_matrix/client/v3/rooms/!abc:example.org/state", "GET GET /_matrix/client/v3/rooms/{roomId}/state 403",
		},
		{
			"not found is unmatched",
			func(m *HTTP, mux *http.ServeMux) http.Handler { return m.Middleware(CaptureRoute(httpx.WrapMux(mux))) },
			"GET", "/_matrix/client/v3/nope/12345", "GET unmatched 404",
		},
		{
			"wrong method is unmatched",
			func(m *HTTP, mux *http.ServeMux) http.Handler { return m.Middleware(CaptureRoute(httpx.WrapMux(mux))) },
			"DELETE", sendPath, "DELETE unmatched 405",
		},
		{
			"answered before routing is unmatched",
			func(m *HTTP, mux *http.ServeMux) http.Handler {
				return m.Middleware(httpx.CORS(CaptureRoute(httpx.WrapMux(mux))))
			},
			"OPTIONS", sendPath, "OPTIONS unmatched 200",
		},
		{
			"unknown method is other",
			func(m *HTTP, mux *http.ServeMux) http.Handler { return m.Middleware(CaptureRoute(httpx.WrapMux(mux))) },
			"BREW", "/_matrix/client/v3/coffee", "other unmatched 404",
		},
		{
			"path-cleaning redirect is labelled with the pattern, not the path",
			func(m *HTTP, mux *http.ServeMux) http.Handler { return m.Middleware(CaptureRoute(mux)) },
			"PUT", "/_matrix/client/v3/rooms/!abc:example.org/x/../send/m.room.message/txn1", "PUT " + sendPattern + " 307",
		},
		{
			"trailing-slash redirect is labelled with the pattern, not the path",
			func(m *HTTP, mux *http.ServeMux) http.Handler { return m.Middleware(CaptureRoute(mux)) },
			"GET", "/_matrix/media/v3/download", "GET GET /_matrix/media/v3/download/ 307",
		},
		{
			"subtree pattern",
			func(m *HTTP, mux *http.ServeMux) http.Handler { return m.Middleware(CaptureRoute(mux)) },
			"GET", "/_matrix/media/v3/download/example.org/abcdef", "GET GET /_matrix/media/v3/download/ 200",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			h := tt.build(NewHTTP(reg, "client"), testMux())
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, strings.NewReader("{}")))
			got := series(t, reg, "client")
			if len(got) != 1 || got[tt.want] != 1 {
				t.Fatalf("series = %v, want {%q: 1} (response %d %s)", got, tt.want, rec.Code, rec.Body)
			}
			if n := testutil.CollectAndCount(reg, "axon_http_request_duration_seconds"); n != 1 {
				t.Fatalf("%d duration series", n)
			}
		})
	}
}

func TestConnectIsUnmatched(t *testing.T) {
	// For CONNECT, ServeMux reports the redirect target path as the
	// pattern; that must not become a label.
	reg := prometheus.NewRegistry()
	mux := http.NewServeMux()
	mux.HandleFunc("/tunnel/{id}/", func(w http.ResponseWriter, r *http.Request) {})
	h := NewHTTP(reg, "client").Middleware(mux)
	r := httptest.NewRequest("CONNECT", "/tunnel/attacker-chosen-123", nil)
	if _, p := mux.Handler(r); p != "/tunnel/attacker-chosen-123/" {
		t.Logf("ServeMux no longer reports the path for CONNECT (pattern %q)", p)
	}
	h.ServeHTTP(httptest.NewRecorder(), r)
	got := series(t, reg, "client")
	if _, ok := got["other unmatched 307"]; !ok || len(got) != 1 {
		t.Fatalf("series = %v", got)
	}
}

func TestInFlightAndPanic(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewHTTP(reg, "client")
	var during float64
	mux := testMux()
	mux.HandleFunc("GET /inside", func(w http.ResponseWriter, r *http.Request) {
		during = testutil.ToFloat64(m.inFlight)
		w.WriteHeader(http.StatusAccepted)
	})
	h := m.Middleware(CaptureRoute(mux))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/inside", nil))
	if during != 1 {
		t.Fatalf("in flight during request = %v", during)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic swallowed")
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/_matrix/client/v3/panic", nil))
	}()
	if v := testutil.ToFloat64(m.inFlight); v != 0 {
		t.Fatalf("in flight after = %v", v)
	}
	got := series(t, reg, "client")
	if got["GET GET /inside 202"] != 1 || got["GET GET /_matrix/client/v3/panic 500"] != 1 {
		t.Fatalf("series = %v", got)
	}
}

func TestListenersShareRegistry(t *testing.T) {
	reg := NewRegistry()
	client, fed := NewHTTP(reg, "client"), NewHTTP(reg, "federation")
	again := NewHTTP(reg, "client") // reuses, does not panic
	mux := testMux()
	for _, m := range []*HTTP{client, fed, again} {
		m.Middleware(mux).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/nope", nil))
	}
	if got := series(t, reg, "client"); got["GET unmatched 404"] != 2 {
		t.Fatalf("client series = %v", got)
	}
	if got := series(t, reg, "federation"); got["GET unmatched 404"] != 1 {
		t.Fatalf("federation series = %v", got)
	}
	const want = `
		# HELP axon_http_requests_in_flight HTTP requests being served, including long-polls, by listener.
		# TYPE axon_http_requests_in_flight gauge
		axon_http_requests_in_flight{listener="client"} 0
		axon_http_requests_in_flight{listener="federation"} 0
	`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "axon_http_requests_in_flight"); err != nil {
		t.Fatal(err)
	}
}

func TestNewHTTPConflictPanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "axon_http_requests_total", Help: "other"}))
	defer func() {
		if recover() == nil {
			t.Fatal("no panic on conflicting registration")
		}
	}()
	NewHTTP(reg, "client")
}

func TestNewHTTPNilRegisterer(t *testing.T) {
	m := NewHTTP(nil, "client")
	m.Middleware(testMux()).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
}

func TestDurationObserved(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := NewHTTP(reg, "client").Middleware(CaptureRoute(testMux()))
	for range 3 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/_matrix/client/v3/rooms/!r:x/state", nil))
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "axon_http_request_duration_seconds" {
			continue
		}
		hist := mf.GetMetric()[0].GetHistogram()
		if hist.GetSampleCount() != 3 || len(hist.GetBucket()) != len(DurationBuckets()) {
			t.Fatalf("histogram = %v", hist)
		}
		if l := labels(mf.GetMetric()[0]); l["route"] != "GET /_matrix/client/v3/rooms/{roomId}/state" || l["method"] != "GET" || l["listener"] != "client" {
			t.Fatalf("labels = %v", l)
		}
		return
	}
	t.Fatal("no duration histogram")
}

func TestDurationBuckets(t *testing.T) {
	b := DurationBuckets()
	if b[0] != 0.001 || b[len(b)-1] != 60 {
		t.Fatalf("buckets %v", b)
	}
	for i := 1; i < len(b); i++ {
		if b[i] <= b[i-1] {
			t.Fatalf("not increasing: %v", b)
		}
	}
	b[0] = 42
	if DurationBuckets()[0] != 0.001 {
		t.Fatal("DurationBuckets returns shared state")
	}
}

func TestStatusWriter(t *testing.T) {
	tests := []struct {
		name string
		h    http.HandlerFunc
		want int
	}{
		{"nothing written", func(w http.ResponseWriter, r *http.Request) {}, 200},
		{"write implies 200", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("x")) }, 200},
		{"explicit", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(429) }, 429},
		{"informational then final", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(204)
		}, 204},
		{"flush through ResponseController", func(w http.ResponseWriter, r *http.Request) {
			if err := http.NewResponseController(w).Flush(); err != nil {
				panic(err)
			}
		}, 200},
		{"flush through http.Flusher", func(w http.ResponseWriter, r *http.Request) {
			w.(http.Flusher).Flush()
		}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			rec := httptest.NewRecorder()
			NewHTTP(reg, "l").Middleware(tt.h).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			want := "GET unmatched " + strconv.Itoa(tt.want)
			if got := series(t, reg, "l"); got[want] != 1 {
				t.Fatalf("series = %v, want %q", got, want)
			}
		})
	}
}

func BenchmarkMiddleware(b *testing.B) {
	reg := prometheus.NewRegistry()
	mux := http.NewServeMux()
	mux.HandleFunc(sendPattern, func(w http.ResponseWriter, r *http.Request) {})
	h := NewHTTP(reg, "client").Middleware(CaptureRoute(mux))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest("PUT", "/_matrix/client/v3/rooms/!abc:example.org/send/m.room.message/txn1", nil)
		w := httptest.NewRecorder()
		for pb.Next() {
			h.ServeHTTP(w, r)
		}
	})
}
