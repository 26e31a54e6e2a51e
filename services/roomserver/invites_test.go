package roomserver

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/bus"
	"github.com/axon-hs/axon/internal/bus/bustest"
	"github.com/axon-hs/axon/internal/store/storetest"
	"github.com/axon-hs/axon/internal/testenv"
)

// TestRemoteKnocks: the remote invite store keeps a knock like an invite,
// with its membership and the server it went through; an invite of the
// same room and user replaces it, a rescinding leave retires it; each
// change is announced on ROOM_EVENTS as an out-of-room membership with
// the right membership. Rows from before migration 0204 are invites.
func TestRemoteKnocks(t *testing.T) { testenv.ForEachEngine(t, testRemoteKnocks) }

func testRemoteKnocks(t *testing.T, e testenv.Engine) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := bustest.Start(t, 2)
	db := storetest.Open(t, e, Migrations())
	iv := NewInvites(db, b, func() int64 { return 1_700_000_000_000 })
	rd := NewReader(db)

	var mu sync.Mutex
	var got []Output
	go func() {
		_ = b.ConsumeBatch(ctx, bus.RoomEvents, bus.AllPartitions, "test-knocks", 50, func(_ context.Context, ms []bus.Msg) error {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range ms {
				var o Output
				if err := json.Unmarshal(m.Data, &o); err != nil {
					return err
				}
				got = append(got, o)
			}
			return nil
		}, bus.ConsumeOptions{PollWait: 100 * time.Millisecond})
	}()
	// announced waits for the nth announcement and returns it.
	announced := func(n int) Output {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, "announcement", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= n })
		mu.Lock()
		defer mu.Unlock()
		return got[n-1]
	}
	membershipOf := func(o Output) (string, string) {
		if !o.OutOfRoom || len(o.StateDelta) != 1 || o.StateDelta[0].StateKey != bob || o.StateDelta[0].Type != "m.room.member" {
			t.Fatalf("not an out-of-room membership of bob: %+v", o)
		}
		return o.StateDelta[0].Membership, o.StateDelta[0].Sender
	}

	const room = "!knocked:elsewhere.test"
	state := []json.RawMessage{json.RawMessage(`{"type":"m.room.create"}`)}
	knock := &RemoteInvite{RoomID: room, UserID: bob, EventID: "$knock", RoomVersion: "12", Sender: bob,
		Event: json.RawMessage(`{"knock":1}`), RoomState: state, Membership: "knock", Via: "elsewhere.test"}
	if err := iv.Receive(ctx, knock); err != nil {
		t.Fatal(err)
	}
	k, err := rd.RemoteInvite(ctx, room, bob)
	if err != nil || k == nil || !k.IsKnock() || k.Via != "elsewhere.test" || k.Sender != bob || k.EventID != "$knock" ||
		string(k.Event) != `{"knock":1}` || len(k.RoomState) != 1 {
		t.Fatalf("stored knock: %+v, %v", k, err)
	}
	if m, snd := membershipOf(announced(1)); m != "knock" || snd != bob {
		t.Errorf("the knock was announced as %s by %s", m, snd)
	}

	// Accepted: an invite of the inviting server replaces it.
	inv := &RemoteInvite{RoomID: room, UserID: bob, EventID: "$invite", RoomVersion: "12", Sender: "@alice:elsewhere.test",
		Event: json.RawMessage(`{"invite":1}`), RoomState: state}
	if err := iv.Receive(ctx, inv); err != nil {
		t.Fatal(err)
	}
	i, err := iv.Get(ctx, room, bob)
	if err != nil || i == nil || i.IsKnock() || i.Membership != "invite" || i.Via != "" || i.EventID != "$invite" {
		t.Fatalf("the invite after the knock: %+v, %v", i, err)
	}
	if m, snd := membershipOf(announced(2)); m != "invite" || snd != "@alice:elsewhere.test" {
		t.Errorf("the invite was announced as %s by %s", m, snd)
	}

	// Knocked again (an invite rejected meanwhile, say) and rescinded.
	knock.EventID = "$knock2"
	if err := iv.Receive(ctx, knock); err != nil {
		t.Fatal(err)
	}
	if m, _ := membershipOf(announced(3)); m != "knock" {
		t.Errorf("the second knock was announced as %s", m)
	}
	if err := iv.Retire(ctx, room, bob, "$leave", json.RawMessage(`{"leave":1}`)); err != nil {
		t.Fatal(err)
	}
	if k, err := iv.Get(ctx, room, bob); err != nil || k != nil {
		t.Errorf("a rescinded knock is still kept: %+v, %v", k, err)
	}
	if o := announced(4); o.EventID != "$leave" {
		t.Errorf("the leave announced is %s", o.EventID)
	} else if m, snd := membershipOf(o); m != "leave" || snd != bob {
		t.Errorf("the leave was announced as %s by %s", m, snd)
	}

	// Neither invite nor knock: refused, nothing kept.
	bad := *knock
	bad.Membership = "join"
	if err := iv.Receive(ctx, &bad); err == nil {
		t.Error("an out-of-room join was kept")
	}
	if k, _ := iv.Get(ctx, room, bob); k != nil {
		t.Errorf("a refused membership was kept: %+v", k)
	}

	// A row written without the new columns (a server of the version
	// before) is an invite.
	if _, err := db.Exec(ctx, `INSERT INTO remote_invites (room_id, user_id, event_id, room_version, sender, pdu, room_state, received_at)
		VALUES ($1, $2, '$old', '12', '@alice:elsewhere.test', $3, $4, 1)`, "!old:elsewhere.test", bob, []byte(`{}`), []byte(`[]`)); err != nil {
		t.Fatal(err)
	}
	if o, err := iv.Get(ctx, "!old:elsewhere.test", bob); err != nil || o == nil || o.IsKnock() || o.Membership != "invite" {
		t.Errorf("an old row: %+v, %v", o, err)
	}
}
