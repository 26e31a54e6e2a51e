package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Scrape limits of [Handler]. Prometheus scrapes each target from one
// loop, so more than a few concurrent scrapes means something is wrong;
// the timeout is just under Prometheus's default 10 s scrape_timeout, so
// a slow collection shows up as a 503 that the scraper records.
const (
	scrapeMaxInFlight = 4
	scrapeTimeout     = 9 * time.Second
)

// NewRegistry returns a new registry with the Go runtime and process
// collectors registered. Create one per process (per server, in tests) and
// pass it to everything that registers metrics.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// HandlerOption configures [Handler].
type HandlerOption func(*handlerConfig)

type handlerConfig struct {
	logger *slog.Logger
}

// WithErrorLogger sets the logger for collection and encoding errors
// (default slog.Default()).
func WithErrorLogger(l *slog.Logger) HandlerOption {
	return func(c *handlerConfig) { c.logger = l }
}

// Handler serves reg in the Prometheus exposition formats. At most a few
// scrapes run at once (more get 503), and one that takes too long gets
// 503. A collector that fails does not fail the scrape: the error is
// logged, counted in promhttp_metric_handler_errors_total (registered on
// reg), and the other metrics are still served.
func Handler(reg *prometheus.Registry, opts ...HandlerOption) http.Handler {
	cfg := handlerConfig{}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            errorLog{cfg.logger},
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            reg,
		MaxRequestsInFlight: scrapeMaxInFlight,
		Timeout:             scrapeTimeout,
	})
}

// errorLog adapts slog to promhttp.Logger.
type errorLog struct{ l *slog.Logger }

func (e errorLog) Println(v ...any) {
	e.l.LogAttrs(context.Background(), slog.LevelError, "metrics scrape error",
		slog.String("error", strings.TrimSuffix(fmt.Sprintln(v...), "\n")))
}
