package sender

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/testenv"
)

// TestCatchUp: a destination back from failures with a long queue gets
// each room's latest event only; a short queue, or a destination that
// never failed, gets everything in order.
func TestCatchUp(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		env := newEDUEnv(t, e)
		ctx := context.Background()
		queue := func(dest string, n int, rooms ...string) (latest map[string]string) {
			latest = map[string]string{}
			for i := range n {
				room := rooms[i%len(rooms)]
				id := fmt.Sprintf("$%s-%d", dest, i)
				pdu, _ := json.Marshal(map[string]any{"event_id": id, "room_id": room})
				if _, err := env.db.Exec(ctx, `INSERT INTO sender_queue (destination, seq, room_id, event_id, pdu) VALUES ($1, $2, $3, $4, $5)`,
					dest, int64(1000+i), room, id, pdu); err != nil {
					t.Fatal(err)
				}
				latest[room] = id
			}
			return latest
		}
		failedBefore := func(dest string) {
			if _, err := env.db.Exec(ctx, `INSERT INTO sender_destinations (destination, failures, retry_at) VALUES ($1, 3, $2)`,
				dest, env.clock.Now().Add(-time.Second).UnixMilli()); err != nil {
				t.Fatal(err)
			}
		}

		latest := queue("back.test", catchUpThreshold+50, "!a:us.test", "!b:us.test", "!c:us.test")
		failedBefore("back.test")
		short := queue("blip.test", 10, "!a:us.test")
		failedBefore("blip.test")
		healthy := queue("busy.test", catchUpThreshold+50, "!a:us.test")
		env.drainAll(t, "back.test", "blip.test", "busy.test")

		got := env.tr.sentEventIDs("back.test")
		if len(got) != 3 {
			t.Fatalf("a destination back after failures got %d events (%v); want each room's latest, 3", len(got), got)
		}
		for _, id := range got {
			if id != latest["!a:us.test"] && id != latest["!b:us.test"] && id != latest["!c:us.test"] {
				t.Errorf("sent %s, not a room's latest event", id)
			}
		}
		if got := env.tr.sentEventIDs("blip.test"); len(got) != 10 || got[9] != short["!a:us.test"] {
			t.Errorf("a short queue after failures: %d events sent; want all 10", len(got))
		}
		if got := env.tr.sentEventIDs("busy.test"); len(got) != catchUpThreshold+50 || got[len(got)-1] != healthy["!a:us.test"] {
			t.Errorf("a destination that never failed: %d events sent; want all %d", len(got), catchUpThreshold+50)
		}
		var left int
		if err := env.db.QueryRow(ctx, `SELECT COUNT(*) FROM sender_queue`).Scan(&left); err != nil || left != 0 {
			t.Errorf("%d rows left queued, %v", left, err)
		}
	})
}
