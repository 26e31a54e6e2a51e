package store

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the database metrics (a contract; see internal/metrics):
//
//   - axon_db_tx_retries_total counter: transaction attempts retried after
//     a serialization failure, deadlock or SQLITE_BUSY (a retry storm means
//     contention).
//   - axon_db_statement_timeouts_total counter: statements cancelled by
//     the statement timeout.
//   - axon_db_open_connections{pool} and axon_db_in_use_connections{pool}
//     gauges, axon_db_wait_seconds_total{pool} counter: the pools.
type Metrics struct {
	retries  prometheus.Counter
	timeouts prometheus.Counter
}

// NewMetrics registers the counters on reg. Pass OnRetry in Options and
// call Observe once the DB is open.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		retries: prometheus.NewCounter(prometheus.CounterOpts{Name: "axon_db_tx_retries_total",
			Help: "Transaction attempts retried after a serialization failure, deadlock or SQLITE_BUSY."}),
		timeouts: prometheus.NewCounter(prometheus.CounterOpts{Name: "axon_db_statement_timeouts_total",
			Help: "Statements cancelled by the statement timeout."}),
	}
	for _, c := range []prometheus.Collector{m.retries, m.timeouts} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// OnRetry is the Options.OnRetry hook.
func (m *Metrics) OnRetry() { m.retries.Inc() }

// OnStatementTimeout is the Options.OnStatementTimeout hook.
func (m *Metrics) OnStatementTimeout() { m.timeouts.Inc() }

// Observe registers the pool gauges of db.
func (m *Metrics) Observe(reg prometheus.Registerer, db *DB) error {
	return reg.Register(&poolCollector{db: db,
		open:   prometheus.NewDesc("axon_db_open_connections", "Open connections of the pool.", []string{"pool"}, nil),
		inUse:  prometheus.NewDesc("axon_db_in_use_connections", "Connections of the pool in use.", []string{"pool"}, nil),
		waited: prometheus.NewDesc("axon_db_wait_seconds_total", "Time spent waiting for a free connection.", []string{"pool"}, nil),
	})
}

type poolCollector struct {
	db                  *DB
	open, inUse, waited *prometheus.Desc
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.open
	ch <- c.inUse
	ch <- c.waited
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	pools := map[string]func() (int, int, float64){
		"write": func() (int, int, float64) {
			s := c.db.w.Stats()
			return s.OpenConnections, s.InUse, s.WaitDuration.Seconds()
		},
	}
	if c.db.r != c.db.w {
		pools["read"] = func() (int, int, float64) {
			s := c.db.r.Stats()
			return s.OpenConnections, s.InUse, s.WaitDuration.Seconds()
		}
	}
	for name, stats := range pools {
		open, inUse, wait := stats()
		ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(open), name)
		ch <- prometheus.MustNewConstMetric(c.inUse, prometheus.GaugeValue, float64(inUse), name)
		ch <- prometheus.MustNewConstMetric(c.waited, prometheus.CounterValue, wait, name)
	}
}
