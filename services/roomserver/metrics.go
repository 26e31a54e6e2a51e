package roomserver

import (
	"encoding/json"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// Metrics are the room role's instruments (a contract; see
// internal/metrics):
//
//   - axon_room_batch_inputs histogram: inputs handled per batch.
//   - axon_room_batch_events histogram: events persisted per batch (one
//     transaction).
//   - axon_room_batch_duration_seconds histogram: time to build,
//     authorise, persist and relay one batch.
//   - axon_room_commit_batches histogram: partition batches committed in
//     one transaction (on SQLite, where concurrent batches are merged;
//     elsewhere always 1).
//
// A nil *Metrics records nothing.
type Metrics struct {
	inputs, events, duration, merged prometheus.Histogram
}

// NewMetrics registers the room role's metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	sizes := []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000}
	m := &Metrics{
		inputs: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "axon_room_batch_inputs",
			Help: "Room inputs handled per batch.", Buckets: sizes}),
		events: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "axon_room_batch_events",
			Help: "Events persisted per batch (one transaction).", Buckets: sizes}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "axon_room_batch_duration_seconds",
			Help:    "Time to build, authorise, persist and relay one batch.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}),
		merged: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "axon_room_commit_batches",
			Help: "Partition batches committed in one transaction.", Buckets: []float64{1, 2, 4, 8, 16, 32, 64}}),
	}
	for _, c := range []prometheus.Collector{m.inputs, m.events, m.duration, m.merged} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) observeBatch(inputs, events int, d time.Duration) {
	if m == nil {
		return
	}
	m.inputs.Observe(float64(inputs))
	m.events.Observe(float64(events))
	m.duration.Observe(d.Seconds())
}

func (m *Metrics) observeCommit(batches int) {
	if m == nil {
		return
	}
	m.merged.Observe(float64(batches))
}
