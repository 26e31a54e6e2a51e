package metrics

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestNewRegistryIsFresh(t *testing.T) {
	a, b := NewRegistry(), NewRegistry()
	NewHTTP(a, "client")
	na, err := Names(a)
	if err != nil {
		t.Fatal(err)
	}
	nb, err := Names(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"go_goroutines", "go_gc_duration_seconds", "process_cpu_seconds_total", "axon_http_requests_total"} {
		if !slices.Contains(na, want) {
			t.Errorf("NewRegistry+NewHTTP lacks %s: %v", want, na)
		}
	}
	if slices.Contains(nb, "axon_http_requests_total") {
		t.Fatal("registries share state")
	}
	// Nothing leaked into the global registry.
	global, err := Names(prometheus.DefaultGatherer)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range global {
		if strings.HasPrefix(n, "axon_") {
			t.Fatalf("%s registered globally", n)
		}
	}
}

func TestNames(t *testing.T) {
	reg := prometheus.NewRegistry()
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "axon_test_unobserved_total", Help: "h"}, []string{"a", "b"})
	hist := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "axon_test_latency_seconds", Help: "h"})
	labelled := prometheus.NewGauge(prometheus.GaugeOpts{Name: "axon_test_gauge", Help: "h", ConstLabels: prometheus.Labels{"k": "v"}})
	reg.MustRegister(vec, hist, labelled)
	got, err := Names(reg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"axon_test_gauge", "axon_test_latency_seconds", "axon_test_unobserved_total"}
	if !slices.Equal(got, want) {
		t.Fatalf("Names = %v, want %v", got, want)
	}
	// A plain Gatherer only reports what it gathers.
	got, err = Names(prometheus.Gatherers{reg})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want[:2]) {
		t.Fatalf("Names(Gatherers) = %v", got)
	}
}

func TestNamesReportsGatherErrors(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(failingCollector{})
	names, err := Names(reg)
	if err == nil {
		t.Fatal("no error")
	}
	if !slices.Contains(names, "axon_test_failing") {
		t.Fatalf("names = %v", names)
	}
}

// TestDocumentedNames: the package doc lists exactly the axon_ metrics
// that this package registers.
func TestDocumentedNames(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	documented := regexp.MustCompile(`\baxon_[a-z0-9_]*[a-z0-9]\b`).FindAllString(string(src), -1)
	slices.Sort(documented)
	documented = slices.Compact(documented)

	reg := NewRegistry()
	NewHTTP(reg, "client")
	Handler(reg)
	names, err := Names(reg)
	if err != nil {
		t.Fatal(err)
	}
	var registered []string
	for _, n := range names {
		if strings.HasPrefix(n, "axon_") {
			registered = append(registered, n)
		}
		if !regexp.MustCompile(`^(axon|go|process|promhttp)_`).MatchString(n) {
			t.Errorf("unexpected metric %s", n)
		}
	}
	if !slices.Equal(documented, registered) {
		t.Fatalf("doc.go lists %v, code registers %v", documented, registered)
	}
	if !slices.Contains(names, "promhttp_metric_handler_errors_total") {
		t.Fatal("Handler did not register its error counter")
	}
}

type failingCollector struct{}

var failingDesc = prometheus.NewDesc("axon_test_failing", "h", nil, nil)

func (failingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- failingDesc }
func (failingCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.NewInvalidMetric(failingDesc, errors.New("backend unreachable"))
}

func TestHandler(t *testing.T) {
	reg := NewRegistry()
	m := NewHTTP(reg, "client")
	reg.MustRegister(failingCollector{})
	var logs bytes.Buffer
	h := Handler(reg, WithErrorLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	srv := httptest.NewServer(m.Middleware(h))
	defer srv.Close()

	for range 2 { // Handler twice on one registry must not panic either
		Handler(reg)
	}
	var body []byte
	for range 2 { // the error counter is incremented after the first is served
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	}
	for _, want := range []string{
		"go_goroutines ",
		`axon_http_requests_in_flight{listener="client"} 1`,
		`promhttp_metric_handler_errors_total{cause="gathering"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if !strings.Contains(logs.String(), "backend unreachable") || !strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Fatalf("error not logged: %s", logs.String())
	}
}
