package syncapi

import "github.com/prometheus/client_golang/prometheus"

// RegisterMetrics registers the sync role's metrics on reg (a contract;
// see internal/metrics):
//
//   - axon_sync_waiters gauge: /sync long-polls waiting for news.
func RegisterMetrics(reg prometheus.Registerer, n *Notifier) error {
	return reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "axon_sync_waiters",
		Help: "/sync long-polls waiting for news."}, func() float64 { return float64(n.Waiters()) }))
}
