package roomserver

import (
	"encoding/json"
	"time"
)

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// Metrics are the room role's instruments. A nil *Metrics records nothing.
type Metrics struct {
	// ObserveBatch is called after each handled batch with the number of
	// inputs, of persisted events and the handling time.
	ObserveBatch func(inputs, events int, d time.Duration)
}

func (m *Metrics) observeBatch(inputs, events int, d time.Duration) {
	if m != nil && m.ObserveBatch != nil {
		m.ObserveBatch(inputs, events, d)
	}
}
