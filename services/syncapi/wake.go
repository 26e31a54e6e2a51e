package syncapi

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"

	"github.com/nats-io/nats.go"
)

// WakeSubject is the core NATS subject on which the indexer announces new
// positions to every sync worker. Losing a wake-up delays a long-poll
// until its timeout at worst; nothing is lost, as /sync reads the index.
const WakeSubject = "axon.sync.wake"

// WakePublisher spreads wake-ups: it wakes this process's notifier at
// once and publishes on WakeSubject for the other sync workers, with an
// origin of its own so that this process ignores the copy it receives
// back (WakeHandler). A long-poll in the process that indexed is thus
// woken without a round trip through NATS.
type WakePublisher struct {
	nc     *nats.Conn
	local  *Notifier
	origin string
	log    *slog.Logger
}

// NewWakePublisher returns the process's wake publisher; local may be
// nil (a process without the sync role).
func NewWakePublisher(nc *nats.Conn, local *Notifier, log *slog.Logger) (*WakePublisher, error) {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	return &WakePublisher{nc: nc, local: local, origin: hex.EncodeToString(rnd[:]), log: log}, nil
}

// Wake wakes the local notifier and publishes w to the other workers.
func (p *WakePublisher) Wake(w Wake) {
	if p.local != nil {
		p.local.Notify(w)
	}
	w.Origin = p.origin
	data, err := json.Marshal(w)
	if err == nil {
		err = p.nc.Publish(WakeSubject, data)
	}
	if err != nil {
		p.log.Warn("sync: publishing a wake-up failed", "err", err)
	}
}

// Handler feeds the wake-ups received on WakeSubject from other processes
// to the local notifier.
func (p *WakePublisher) Handler() nats.MsgHandler {
	return func(m *nats.Msg) {
		var w Wake
		if err := json.Unmarshal(m.Data, &w); err != nil {
			p.log.Warn("sync: undecodable wake-up", "err", err)
			return
		}
		if w.Origin == p.origin || p.local == nil {
			return
		}
		p.local.Notify(w)
	}
}
