package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// The traffic of one case: senders send at a fixed rate (open model: each
// send has a scheduled time, and its latency runs from that time, so a
// stall is counted in full rather than hidden by a sender that waits), and
// syncers long-poll /sync and record every timeline event of the run.
//
// A sender's sends are sequential, so its order is defined: send n+1 is
// made only once send n was acknowledged (or given up). A failed attempt
// (transport error, 5xx, 429) is retried with the same transaction ID,
// which exercises the server's idempotency: a retry of a send that was in
// fact persisted must return the same event, never a second one.

// Phases of a case.
const (
	phaseBefore = "before"
	phaseDist   = "disturbance"
	phaseAfter  = "after"
)

var phases = []string{phaseBefore, phaseDist, phaseAfter}

// Bounds of the driver.
const (
	sendGiveUp      = 120 * time.Second // a send is retried this long, then given up
	retryBackoffMax = 2 * time.Second
	syncPoll        = 5 * time.Second // long-poll timeout of /sync
	badLatency      = 2 * time.Second // a send slower than this did not go well
)

type driverConfig struct {
	rate time.Duration // interval between two sends of one sender
}

// sendRec is one message: its schedule, attempts and acknowledgement.
type sendRec struct {
	sender, seq int
	room        string
	txn         string
	phase       string
	scheduled   time.Time
	acked       time.Time // zero when never acknowledged
	eventID     string
	attempts    int
	failed      int    // attempts that failed
	lastErr     string // of the last failed attempt
	rejected    bool   // a 4xx other than 429: not retried
}

// reqRec is one HTTP request the driver made.
type reqRec struct {
	phase string
	sync  bool
	ok    bool
	err   string
}

// seenRec is an event of the run as a syncer saw it.
type seenRec struct {
	eventID     string
	sender, seq int
	at          time.Time
	gapFilled   bool // read through /messages after a limited timeline
}

type driver struct {
	cfg     driverConfig
	run     string // tag of this run's messages
	senders []*client
	rooms   []string // rooms[i % len(rooms)] is sender i's room
	syncers []*syncer

	mu     sync.Mutex
	phases []phaseMark  // in time order
	sends  [][]*sendRec // per sender, in order
	reqs   []reqRec

	stopSend chan struct{}
	wg       sync.WaitGroup // senders
	swg      sync.WaitGroup // syncers
	cancel   context.CancelFunc
}

type phaseMark struct {
	at   time.Time
	name string
}

type syncer struct {
	c       *client
	since   string
	mu      sync.Mutex
	rooms   map[string][]seenRec
	limited int
	gapErr  string
}

func newDriver(cfg driverConfig, run string, senders, syncers []*client, rooms []string) *driver {
	d := &driver{cfg: cfg, run: run, senders: senders, rooms: rooms, stopSend: make(chan struct{}),
		sends: make([][]*sendRec, len(senders))}
	for _, c := range syncers {
		d.syncers = append(d.syncers, &syncer{c: c, rooms: map[string][]seenRec{}})
	}
	d.phases = []phaseMark{{name: phaseBefore}}
	return d
}

// setPhase starts phase p now.
func (d *driver) setPhase(p string) {
	d.mu.Lock()
	d.phases = append(d.phases, phaseMark{at: time.Now(), name: p})
	d.mu.Unlock()
}

func (d *driver) curPhase() string { return d.phaseAt(time.Now()) }

// phaseAt is the phase that t falls in.
func (d *driver) phaseAt(t time.Time) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.phases[0].name
	for _, m := range d.phases {
		if !m.at.After(t) {
			p = m.name
		}
	}
	return p
}

func (d *driver) record(r reqRec) {
	d.mu.Lock()
	d.reqs = append(d.reqs, r)
	d.mu.Unlock()
}

// start takes each syncer's position (events before it are not part of
// the run), then starts the syncers and the senders.
func (d *driver) start(ctx context.Context) error {
	for _, s := range d.syncers {
		resp, err := s.c.sync(ctx, "", 0)
		if err != nil {
			return fmt.Errorf("initial sync of %s: %w", s.c.UserID, err)
		}
		s.since = resp.NextBatch
	}
	ctx, d.cancel = context.WithCancel(ctx)
	for _, s := range d.syncers {
		d.swg.Add(1)
		go func() { defer d.swg.Done(); d.syncLoop(ctx, s) }()
	}
	t0 := time.Now()
	for i := range d.senders {
		d.wg.Add(1)
		// Spread the senders over one interval.
		first := t0.Add(time.Duration(i) * d.cfg.rate / time.Duration(len(d.senders)))
		go func() { defer d.wg.Done(); d.sendLoop(ctx, i, first) }()
	}
	return nil
}

// stopSenders stops scheduling sends and waits for the ones under way
// (each is retried until acknowledged or given up).
func (d *driver) stopSenders() {
	close(d.stopSend)
	d.wg.Wait()
}

// stop ends the syncers.
func (d *driver) stop() {
	d.cancel()
	d.swg.Wait()
}

func (d *driver) sendLoop(ctx context.Context, i int, first time.Time) {
	c := d.senders[i]
	room := d.rooms[i%len(d.rooms)]
	for seq := 0; ; seq++ {
		at := first.Add(time.Duration(seq) * d.cfg.rate)
		if wait := time.Until(at); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-d.stopSend:
				t.Stop()
				return
			case <-ctx.Done():
				t.Stop()
				return
			}
		} else {
			select {
			case <-d.stopSend:
				return
			default:
			}
		}
		rec := &sendRec{sender: i, seq: seq, room: room, txn: fmt.Sprintf("%s-s%d-n%d", d.run, i, seq),
			phase: d.phaseAt(at), scheduled: at}
		d.mu.Lock()
		d.sends[i] = append(d.sends[i], rec)
		d.mu.Unlock()
		d.sendOne(ctx, c, rec)
	}
}

// sendOne sends rec, retrying with the same transaction ID.
func (d *driver) sendOne(ctx context.Context, c *client, rec *sendRec) {
	content := map[string]any{"msgtype": "m.text", "body": rec.txn, "axon_run": d.run, "axon_sender": rec.sender, "axon_seq": rec.seq}
	backoff := 100 * time.Millisecond
	for {
		started := time.Now()
		id, err := c.send(ctx, rec.room, rec.txn, content)
		d.mu.Lock()
		rec.attempts++
		if err == nil {
			rec.acked, rec.eventID = time.Now(), id
		} else {
			rec.failed++
			rec.lastErr = err.Error()
			rec.rejected = permanent(err)
		}
		d.mu.Unlock()
		d.record(reqRec{phase: d.phaseAt(started), ok: err == nil, err: errString(err)})
		if err == nil || rec.rejected || time.Since(rec.scheduled) > sendGiveUp || ctx.Err() != nil {
			return
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, retryBackoffMax)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (d *driver) syncLoop(ctx context.Context, s *syncer) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		started := time.Now()
		resp, err := s.c.sync(ctx, s.since, syncPoll)
		if ctx.Err() != nil {
			return
		}
		d.record(reqRec{phase: d.phaseAt(started), sync: true, ok: err == nil, err: errString(err)})
		if err != nil {
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
			backoff = min(2*backoff, retryBackoffMax)
			continue
		}
		backoff = 100 * time.Millisecond
		now := time.Now()
		for roomID, jr := range resp.Rooms.Join {
			var gap []seenRec
			if jr.Timeline.Limited && jr.Timeline.PrevBatch != "" {
				gap = d.fillGap(ctx, s, roomID, jr.Timeline.PrevBatch, now)
			}
			s.mu.Lock()
			if jr.Timeline.Limited {
				s.limited++
			}
			s.rooms[roomID] = append(s.rooms[roomID], gap...)
			for _, ev := range jr.Timeline.Events {
				if ev.Type == "m.room.message" && ev.Content.Run == d.run {
					s.rooms[roomID] = append(s.rooms[roomID], seenRec{eventID: ev.EventID, sender: ev.Content.Sender, seq: ev.Content.Seq, at: now})
				}
			}
			s.mu.Unlock()
		}
		s.since = resp.NextBatch
	}
}

// fillGap reads, through /messages, the events that a limited timeline
// left out: back from prev_batch to the last event this syncer has of the
// room, or to the first event that is not of this run. It returns them in
// timeline order.
func (d *driver) fillGap(ctx context.Context, s *syncer, roomID, from string, now time.Time) []seenRec {
	s.mu.Lock()
	known := map[string]bool{}
	for _, r := range s.rooms[roomID] {
		known[r.eventID] = true
	}
	s.mu.Unlock()
	var back []seenRec
	for page := 0; page < 50 && from != ""; page++ {
		resp, err := s.c.messages(ctx, roomID, from, 100)
		d.record(reqRec{phase: d.curPhase(), sync: true, ok: err == nil, err: errString(err)})
		if err != nil {
			s.mu.Lock()
			s.gapErr = err.Error()
			s.mu.Unlock()
			break
		}
		done := len(resp.Chunk) == 0
		for _, ev := range resp.Chunk {
			if known[ev.EventID] || (ev.Type == "m.room.message" && ev.Content.Run != d.run) {
				done = true
				break
			}
			if ev.Type == "m.room.message" {
				back = append(back, seenRec{eventID: ev.EventID, sender: ev.Content.Sender, seq: ev.Content.Seq, at: now, gapFilled: true})
			}
		}
		if done {
			break
		}
		from = resp.End
	}
	for i, j := 0, len(back)-1; i < j; i, j = i+1, j-1 {
		back[i], back[j] = back[j], back[i]
	}
	return back
}

// snapshot copies what the driver recorded.
func (d *driver) snapshot() (sends []*sendRec, reqs []reqRec) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ss := range d.sends {
		for _, r := range ss {
			c := *r
			sends = append(sends, &c)
		}
	}
	return sends, append([]reqRec(nil), d.reqs...)
}

// seen copies what syncer s has seen of room.
func (s *syncer) seen(room string) []seenRec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seenRec(nil), s.rooms[room]...)
}

// firstSeen is when the first syncer saw each event.
func (d *driver) firstSeen() map[string]time.Time {
	out := map[string]time.Time{}
	for _, s := range d.syncers {
		s.mu.Lock()
		for _, rs := range s.rooms {
			for _, r := range rs {
				if t, ok := out[r.eventID]; !ok || r.at.Before(t) {
					out[r.eventID] = r.at
				}
			}
		}
		s.mu.Unlock()
	}
	return out
}

// allSeen reports whether every acknowledged send has been seen by every
// syncer, and how many are missing.
func (d *driver) allSeen() (bool, int) {
	sends, _ := d.snapshot()
	missing := 0
	for _, s := range d.syncers {
		s.mu.Lock()
		have := map[string]bool{}
		for _, rs := range s.rooms {
			for _, r := range rs {
				have[r.eventID] = true
			}
		}
		s.mu.Unlock()
		for _, r := range sends {
			if r.eventID != "" && !have[r.eventID] {
				missing++
			}
		}
	}
	return missing == 0, missing
}

// healthySince reports whether, for every room, a send scheduled after t
// went well (no failed attempt, acknowledged within badLatency) and has
// been seen by every syncer: the cluster processes writes end to end again.
func (d *driver) healthySince(t time.Time) bool {
	sends, _ := d.snapshot()
	var sets []map[string]bool
	for _, s := range d.syncers {
		s.mu.Lock()
		have := map[string]bool{}
		for _, rs := range s.rooms {
			for _, r := range rs {
				have[r.eventID] = true
			}
		}
		s.mu.Unlock()
		sets = append(sets, have)
	}
	ok := map[string]bool{}
	for _, r := range sends {
		if !r.scheduled.After(t) || r.failed != 0 || r.acked.IsZero() || r.acked.Sub(r.scheduled) >= badLatency {
			continue
		}
		all := true
		for _, have := range sets {
			all = all && have[r.eventID]
		}
		if all {
			ok[r.room] = true
		}
	}
	for _, room := range d.rooms {
		if !ok[room] {
			return false
		}
	}
	return true
}
