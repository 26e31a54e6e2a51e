package roomserver

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/testenv"
	"github.com/axon-hs/axon/matrix/auth"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/keys"
)

// BenchmarkIngest10k ingests a 10,000-event room history from another
// server the way the federation role does: each event's signatures and
// content hash checked (event.Verify), then handed to the room role in
// transactions of 50, which authorises and persists them (embedded NATS,
// SQLite). It reports events per second and per second of CPU (events
// per core-second: the whole process's CPU, all goroutines).
//
//	go test -run '^$' -bench BenchmarkIngest10k -benchtime 1x ./services/roomserver
func BenchmarkIngest10k(b *testing.B) {
	const n = 10000
	for range b.N {
		b.StopTimer()
		h := newHarness(b, testenv.Engines()[0])
		roomID := h.createRoom("12")
		rm := newRemote(b, h, roomID, "12")
		join := rm.event("m.room.member", sk(carol), carol, `{"membership":"join"}`, []*event.Event{h.head(rm.v, roomID)})
		if out := rm.send(join); out[join.ID()] != "" {
			b.Fatalf("join: %q", out[join.ID()])
		}
		// The history: carol's messages, with a rename every 100 events.
		state := h.currentState(roomID)
		member := join
		evs := make([]*event.Event, 0, n)
		prev := join
		for i := range n {
			var ev *event.Event
			if i%100 == 99 {
				ev = rm.eventIn(state, "m.room.member", sk(carol), carol, fmt.Sprintf(`{"membership":"join","displayname":"carol %d"}`, i), []*event.Event{prev})
				member = ev
				state[auth.StateKey{Type: "m.room.member", StateKey: carol}] = member.ID()
			} else {
				ev = rm.eventIn(state, "m.room.message", nil, carol, fmt.Sprintf(`{"msgtype":"m.text","body":"message %d"}`, i), []*event.Event{prev})
			}
			evs = append(evs, ev)
			prev = ev
		}
		raws := make([][]byte, n)
		for i, ev := range evs {
			raws[i] = ev.Canonical()
		}
		lookup := func(server string, id keys.KeyID) (keys.VerifyKey, bool) {
			if server == remoteServer && id == rm.key.ID {
				return keys.VerifyKey{Key: rm.key.Public(), ValidUntilTS: keys.NoExpiry}, true
			}
			return keys.VerifyKey{}, false
		}
		cpu0 := cpuTime()
		start := time.Now()
		b.StartTimer()
		for off := 0; off < n; off += 50 {
			in := &Input{RoomID: roomID, Origin: remoteServer}
			for _, raw := range raws[off:min(off+50, n)] {
				ev, err := event.Parse(rm.v, raw)
				if err != nil {
					b.Fatal(err)
				}
				if err := ev.Verify(lookup); err != nil {
					b.Fatal(err)
				}
				in.PDUs = append(in.PDUs, ev.Canonical())
			}
			res := h.submit(in)
			for id, outcome := range res.PDUs {
				if outcome != "" {
					b.Fatalf("%s: %s", id, outcome)
				}
			}
		}
		b.StopTimer()
		elapsed, cpu := time.Since(start), cpuTime()-cpu0
		b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
		b.ReportMetric(float64(n)/cpu.Seconds(), "events/cpu-s")
	}
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
