package coord

import "github.com/prometheus/client_golang/prometheus"

// Ownership changes, the values of the change label.
const (
	changeAcquired = "acquired" // the owner key was taken and the run started
	changeReleased = "released" // the run returned and the key was given up on purpose
	changeLost     = "lost"     // the key or the session went away under a run
)

// etcdMetrics are Etcd's instruments; the names are a contract (see the
// package documentation and internal/metrics).
type etcdMetrics struct {
	up       prometheus.Gauge
	sessions prometheus.Counter
	owned    *prometheus.GaugeVec
	waiting  *prometheus.GaugeVec
	members  *prometheus.GaugeVec
	changes  *prometheus.CounterVec
}

// newEtcdMetrics creates the instruments and registers them on reg (none
// when reg is nil).
func newEtcdMetrics(reg prometheus.Registerer) (*etcdMetrics, error) {
	m := &etcdMetrics{
		up: prometheus.NewGauge(prometheus.GaugeOpts{Name: "axon_coord_session_up",
			Help: "1 while this process holds a live etcd session (lease)."}),
		sessions: prometheus.NewCounter(prometheus.CounterOpts{Name: "axon_coord_sessions_total",
			Help: "etcd sessions established, the first one included."}),
		owned: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "axon_coord_partitions_owned",
			Help: "Partitions of the resource that this process owns and runs."}, []string{"resource"}),
		waiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "axon_coord_partitions_waiting",
			Help: "Partitions of the resource assigned to this process but still held by another worker."}, []string{"resource"}),
		members: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "axon_coord_members",
			Help: "Workers sharing the resource, as this process sees them."}, []string{"resource"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "axon_coord_ownership_changes_total",
			Help: "Partitions acquired, released on purpose, or lost with the session or key."}, []string{"resource", "change"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.up, m.sessions, m.owned, m.waiting, m.members, m.changes} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// forget drops the series of a resource that is no longer under Own.
func (m *etcdMetrics) forget(resource string) {
	m.owned.DeleteLabelValues(resource)
	m.waiting.DeleteLabelValues(resource)
	m.members.DeleteLabelValues(resource)
}
