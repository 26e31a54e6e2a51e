package cluster

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// verdict is what the syncers saw against what the senders were told.
type verdict struct {
	sends, acked     int
	gaveUp, rejected int // never acknowledged: retried past sendGiveUp, or refused with a 4xx
	lost             int // acknowledged, missing at a syncer of its room
	duplicated       int // seen twice by a syncer, or two events for one send
	misordered       int // a sender's messages out of its send order at a syncer
	mismatched       int // the acknowledged event ID is not the event a syncer saw for that send
	diverged         int // rooms whose run events two syncers saw in different orders
	unackedSeen      int // sends never acknowledged whose event exists all the same (allowed)
	limited, gapFill int // limited timelines, and events read through /messages to fill them
	problems         []string
}

func (v *verdict) problem(format string, args ...any) {
	if len(v.problems) < 12 {
		v.problems = append(v.problems, fmt.Sprintf(format, args...))
	}
}

func (v *verdict) ok() bool {
	return v.lost == 0 && v.duplicated == 0 && v.misordered == 0 && v.mismatched == 0 && v.diverged == 0
}

type sendKey struct{ sender, seq int }

func (d *driver) verify() verdict {
	sends, _ := d.snapshot()
	var v verdict
	byKey := map[sendKey]*sendRec{}
	for _, r := range sends {
		v.sends++
		byKey[sendKey{r.sender, r.seq}] = r
		switch {
		case r.eventID != "":
			v.acked++
		case r.rejected:
			v.rejected++
			v.problem("send %s refused: %s", r.txn, r.lastErr)
		default:
			v.gaveUp++
			v.problem("send %s never acknowledged after %d attempts: %s", r.txn, r.attempts, r.lastErr)
		}
	}
	for _, room := range d.rooms {
		var first []string
		for si, s := range d.syncers {
			seen := s.seen(room)
			ids := make([]string, 0, len(seen))
			count := map[string]int{}
			events := map[sendKey]map[string]bool{}
			last := map[int]int{}
			for _, x := range seen {
				ids = append(ids, x.eventID)
				count[x.eventID]++
				k := sendKey{x.sender, x.seq}
				if events[k] == nil {
					events[k] = map[string]bool{}
				}
				events[k][x.eventID] = true
				if x.gapFilled {
					v.gapFill++
				}
				if count[x.eventID] > 1 {
					v.duplicated++
					v.problem("syncer %d saw %s (sender %d seq %d) %d times in %s", si, x.eventID, x.sender, x.seq, count[x.eventID], room)
					continue
				}
				if l, ok := last[x.sender]; ok && x.seq <= l {
					v.misordered++
					v.problem("syncer %d saw sender %d's seq %d after seq %d in %s", si, x.sender, x.seq, l, room)
				}
				last[x.sender] = max(last[x.sender], x.seq)
			}
			for k, evs := range events {
				if len(evs) > 1 {
					v.duplicated += len(evs) - 1
					v.problem("syncer %d saw %d events for sender %d seq %d: %v", si, len(evs), k.sender, k.seq, keys(evs))
				}
				r := byKey[k]
				if r == nil || r.eventID == "" {
					v.unackedSeen++
					continue
				}
				if !evs[r.eventID] {
					v.mismatched++
					v.problem("sender %d seq %d acknowledged as %s, syncer %d saw %v", k.sender, k.seq, r.eventID, si, keys(evs))
				}
			}
			for _, r := range sends {
				if r.room == room && r.eventID != "" && count[r.eventID] == 0 {
					v.lost++
					v.problem("syncer %d never saw %s (sender %d seq %d, acknowledged %s)", si, r.eventID, r.sender, r.seq, r.acked.Format("15:04:05.000"))
				}
			}
			if si == 0 {
				first = ids
			} else if !slices.Equal(first, ids) {
				v.diverged++
				v.problem("syncers 0 and %d saw %s's events in different orders (%d and %d events)", si, room, len(first), len(ids))
			}
		}
	}
	for _, s := range d.syncers {
		s.mu.Lock()
		v.limited += s.limited
		if s.gapErr != "" {
			v.problem("syncer %s: filling a gap failed: %s", s.c.UserID, s.gapErr)
		}
		s.mu.Unlock()
	}
	return v
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// phaseStats are the figures of one phase.
type phaseStats struct {
	sendAttempts, sendFailed int
	syncCalls, syncFailed    int
	p50, p99                 time.Duration // send latency: scheduled → acknowledged
	deliveryP99              time.Duration // scheduled → first seen by a syncer
	errs                     map[string]int
}

func (d *driver) stats() map[string]*phaseStats {
	sends, reqs := d.snapshot()
	seen := d.firstSeen()
	out := map[string]*phaseStats{}
	for _, p := range phases {
		out[p] = &phaseStats{errs: map[string]int{}}
	}
	for _, r := range reqs {
		ps := out[r.phase]
		if r.sync {
			ps.syncCalls++
			if !r.ok {
				ps.syncFailed++
			}
		} else {
			ps.sendAttempts++
			if !r.ok {
				ps.sendFailed++
			}
		}
		if !r.ok {
			ps.errs[shortErr(r.err)]++
		}
	}
	lat := map[string][]time.Duration{}
	del := map[string][]time.Duration{}
	for _, r := range sends {
		if r.eventID == "" {
			continue
		}
		lat[r.phase] = append(lat[r.phase], r.acked.Sub(r.scheduled))
		if t, ok := seen[r.eventID]; ok {
			del[r.phase] = append(del[r.phase], t.Sub(r.scheduled))
		}
	}
	for p, ps := range out {
		ps.p50, ps.p99 = percentile(lat[p], 0.50), percentile(lat[p], 0.99)
		ps.deliveryP99 = percentile(del[p], 0.99)
	}
	return out
}

func shortErr(s string) string {
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s)-1) + 0.5)
	return s[min(i, len(s)-1)]
}

// recovery is how long after faultEnd the sends scheduled in [from, to)
// went badly: failed attempts, slower than badLatency to acknowledge or to
// be seen, or never acknowledged. It is the completion of the last bad
// send less faultEnd, and 0 when none went badly.
func (d *driver) recovery(from, to, faultEnd time.Time) (time.Duration, int) {
	sends, _ := d.snapshot()
	seen := d.firstSeen()
	var last time.Time
	bad := 0
	for _, r := range sends {
		if r.scheduled.Before(from) || !r.scheduled.Before(to) {
			continue
		}
		done := r.acked
		isBad := r.failed > 0 || r.eventID == ""
		if r.eventID == "" {
			done = r.scheduled.Add(sendGiveUp)
		} else if r.acked.Sub(r.scheduled) >= badLatency {
			isBad = true
		}
		if t, ok := seen[r.eventID]; ok && r.eventID != "" {
			if t.Sub(r.scheduled) >= badLatency {
				isBad = true
			}
			if t.After(done) {
				done = t
			}
		}
		if isBad {
			bad++
			if done.After(last) {
				last = done
			}
		}
	}
	if bad == 0 || !last.After(faultEnd) {
		return 0, bad
	}
	return last.Sub(faultEnd), bad
}
