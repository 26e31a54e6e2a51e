package syncapi

import (
	"encoding/json"
	"log/slog"

	"github.com/nats-io/nats.go"
)

// WakeSubject is the core NATS subject on which the indexer announces new
// positions to every sync worker. Losing a wake-up delays a long-poll
// until its timeout at worst; nothing is lost, as /sync reads the index.
const WakeSubject = "axon.sync.wake"

// PublishWake returns an indexer wake function that publishes on
// WakeSubject.
func PublishWake(nc *nats.Conn, log *slog.Logger) func(Wake) {
	return func(w Wake) {
		data, err := json.Marshal(w)
		if err == nil {
			err = nc.Publish(WakeSubject, data)
		}
		if err != nil {
			log.Warn("sync: publishing a wake-up failed", "err", err)
		}
	}
}

// WakeHandler feeds wake-ups received on WakeSubject to the notifier.
func WakeHandler(n *Notifier, log *slog.Logger) nats.MsgHandler {
	return func(m *nats.Msg) {
		var w Wake
		if err := json.Unmarshal(m.Data, &w); err != nil {
			log.Warn("sync: undecodable wake-up", "err", err)
			return
		}
		n.Notify(w)
	}
}
