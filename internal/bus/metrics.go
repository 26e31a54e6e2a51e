package bus

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics exported by RegisterMetrics (a contract; see internal/metrics):
//
//   - axon_bus_connected gauge: 1 while the NATS connection is usable.
//   - axon_bus_stream_messages{stream} gauge: messages stored in a stream.
//   - axon_bus_consumer_pending_messages{stream, consumer} gauge: messages
//     of the consumer's subjects not yet delivered (the pipeline's lag:
//     room input per partition, the sync indexer).
//   - axon_bus_consumer_ack_pending_messages{stream, consumer} gauge:
//     messages delivered and not yet acknowledged.
//
// They are read from the server at scrape time, within a few seconds.
type collector struct {
	b                             *Bus
	connected, msgs, pending, ack *prometheus.Desc
}

// RegisterMetrics registers the bus metrics on reg.
func RegisterMetrics(reg prometheus.Registerer, b *Bus) error {
	return reg.Register(&collector{
		b:         b,
		connected: prometheus.NewDesc("axon_bus_connected", "1 while the NATS connection is usable.", nil, nil),
		msgs:      prometheus.NewDesc("axon_bus_stream_messages", "Messages stored in the stream.", []string{"stream"}, nil),
		pending: prometheus.NewDesc("axon_bus_consumer_pending_messages",
			"Messages of the consumer's subjects not yet delivered to it.", []string{"stream", "consumer"}, nil),
		ack: prometheus.NewDesc("axon_bus_consumer_ack_pending_messages",
			"Messages delivered to the consumer and not yet acknowledged.", []string{"stream", "consumer"}, nil),
	})
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.connected
	ch <- c.msgs
	ch <- c.pending
	ch <- c.ack
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	up := 0.0
	if c.b.Connected() {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.connected, prometheus.GaugeValue, up)
	if up == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for _, s := range Streams() {
		st, err := c.b.js.Stream(ctx, string(s))
		if err != nil {
			continue
		}
		info, err := st.Info(ctx)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.msgs, prometheus.GaugeValue, float64(info.State.Msgs), string(s))
		lister := st.ListConsumers(ctx)
		for ci := range lister.Info() {
			ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(ci.NumPending), string(s), ci.Name)
			ch <- prometheus.MustNewConstMetric(c.ack, prometheus.GaugeValue, float64(ci.NumAckPending), string(s), ci.Name)
		}
	}
}
