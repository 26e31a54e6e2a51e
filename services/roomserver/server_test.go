package roomserver

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/bus"
	"github.com/axon-hs/axon/internal/bus/bustest"
	"github.com/axon-hs/axon/internal/coord"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/internal/store/storetest"
	"github.com/axon-hs/axon/internal/testenv"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/matrix/roomversion"
)

const (
	server = "test.example"
	alice  = "@alice:test.example"
	bob    = "@bob:test.example"
)

type harness struct {
	t   testing.TB
	db  *store.DB
	bus *bus.Bus
	key *keys.SigningKey
	srv *Server
	sub *Submitter
}

func newHarness(t testing.TB, e testenv.Engine) *harness {
	t.Helper()
	b := bustest.Start(t, 4)
	db := storetest.Open(t, e, Migrations())
	key, err := keys.Generate("t1", nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, db: db, bus: b, key: key}
	h.start()
	sub, err := NewSubmitter(b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	h.sub = sub
	return h
}

// start runs a room role until the test ends (or stop is called).
func (h *harness) start() (stop func()) {
	srv, err := New(h.db, h.bus, Config{ServerName: server, Key: h.key})
	if err != nil {
		h.t.Fatal(err)
	}
	h.srv = srv
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = srv.Run(ctx, coord.NewLocal(nil))
	}()
	stop = func() { cancel(); wg.Wait() }
	h.t.Cleanup(stop)
	return stop
}

func js(t testing.TB, s string) json.RawMessage {
	t.Helper()
	if !json.Valid([]byte(s)) {
		t.Fatalf("bad JSON in test: %s", s)
	}
	return json.RawMessage(s)
}

func sk(s string) *string { return &s }

// createRoom creates a room of version v with alice joined and a public
// join rule.
func (h *harness) createRoom(v string) string {
	h.t.Helper()
	rv := roomversion.MustLookup(v)
	content := cjson.ObjectValue(cjson.Member{Key: "room_version", Value: cjson.StringValue(v)})
	if rv.CreatorInContent {
		content = content.With("creator", cjson.StringValue(alice))
	}
	create, roomID, err := NewCreateEvent(rv, alice, content, server, h.key, time.Now(), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	pl := `{"users":{"` + alice + `":100}}`
	if rv.PrivilegedCreators {
		pl = `{}` // creators have infinite power and must not be listed
	}
	res := h.submit(&Input{RoomID: roomID, RoomVersion: v, Create: create.Canonical(), Events: []Template{
		{Type: "m.room.member", StateKey: sk(alice), Sender: alice, Content: js(h.t, `{"membership":"join"}`)},
		{Type: "m.room.power_levels", StateKey: sk(""), Sender: alice, Content: js(h.t, pl)},
		{Type: "m.room.join_rules", StateKey: sk(""), Sender: alice, Content: js(h.t, `{"join_rule":"public"}`)},
	}})
	if res.Error != nil {
		h.t.Fatalf("create room v%s: %+v", v, res.Error)
	}
	if len(res.EventIDs) != 4 || res.RoomID != roomID {
		h.t.Fatalf("create room: result %+v", res)
	}
	return roomID
}

func (h *harness) submit(in *Input) Result {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := h.sub.Submit(ctx, in)
	if err != nil {
		h.t.Fatalf("submit: %v", err)
	}
	return res
}

func (h *harness) send(roomID, sender string, txn *Txn, body string) Result {
	h.t.Helper()
	return h.submit(&Input{RoomID: roomID, Events: []Template{{Type: "m.room.message", Sender: sender, Txn: txn,
		Content: js(h.t, `{"msgtype":"m.text","body":"`+body+`"}`)}}})
}

func (h *harness) count(q string, args ...any) int {
	h.t.Helper()
	var n int
	if err := h.db.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

func TestRoomLifecycleEveryVersion(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		for _, v := range roomversion.IDs() {
			roomID := h.createRoom(v)
			if res := h.send(roomID, alice, nil, "hello"); res.Error != nil {
				t.Fatalf("v%s send: %+v", v, res.Error)
			}
			// Bob is not in the room: the auth rules refuse his message.
			res := h.send(roomID, bob, nil, "intruder")
			if res.Error == nil || res.Error.Code != "M_FORBIDDEN" {
				t.Fatalf("v%s: bob's message should be forbidden, got %+v", v, res)
			}
			join := h.submit(&Input{RoomID: roomID, Events: []Template{{Type: "m.room.member", StateKey: sk(bob), Sender: bob,
				Content: js(t, `{"membership":"join"}`)}}})
			if join.Error != nil {
				t.Fatalf("v%s join: %+v", v, join.Error)
			}
			if res := h.send(roomID, bob, nil, "hi"); res.Error != nil {
				t.Fatalf("v%s bob send: %+v", v, res.Error)
			}
			if n := h.count(`SELECT COUNT(*) FROM events WHERE room_id = $1`, roomID); n != 7 {
				t.Fatalf("v%s: %d events stored, want 7", v, n)
			}
			if n := h.count(`SELECT COUNT(*) FROM memberships WHERE room_id = $1 AND membership = 'join'`, roomID); n != 2 {
				t.Fatalf("v%s: %d joined members, want 2", v, n)
			}
		}
	})
}

func TestTxnIDsAreIdempotentAcrossRestarts(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		roomID := h.createRoom("12")
		txn := &Txn{DeviceID: "DEV", TxnID: "t1", Scope: "send " + roomID + " m.room.message"}
		first := h.send(roomID, alice, txn, "once")
		again := h.send(roomID, alice, txn, "once")
		if first.Error != nil || again.Error != nil || first.EventIDs[0] != again.EventIDs[0] {
			t.Fatalf("same txn gave %+v then %+v", first, again)
		}
		// Another device's same txn ID is another transaction.
		other := h.send(roomID, alice, &Txn{DeviceID: "DEV2", TxnID: "t1", Scope: txn.Scope}, "once")
		if other.EventIDs[0] == first.EventIDs[0] {
			t.Fatal("a txn ID of another device must not be de-duplicated")
		}
		// The same txn ID on another path (room, event type) is another
		// request, not a retransmission.
		elsewhere := h.send(roomID, alice, &Txn{DeviceID: "DEV", TxnID: "t1", Scope: "send " + roomID + " m.other"}, "once")
		if elsewhere.EventIDs[0] == first.EventIDs[0] {
			t.Fatal("a txn ID on another path must not be de-duplicated")
		}
		// A fresh room role (cold cache) still knows the transaction.
		h.srv.cache.drop(roomID)
		third := h.send(roomID, alice, txn, "once")
		if third.EventIDs[0] != first.EventIDs[0] {
			t.Fatalf("after a cache loss the txn gave %s, want %s", third.EventIDs[0], first.EventIDs[0])
		}
		if n := h.count(`SELECT COUNT(*) FROM events WHERE room_id = $1 AND type = 'm.room.message'`, roomID); n != 3 {
			t.Fatalf("%d messages stored, want 3", n)
		}
	})
}

func TestRefusedInputWritesNothing(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		roomID := h.createRoom("12")
		before := h.count(`SELECT COUNT(*) FROM events`)
		// The first event is fine, the second is refused: neither is kept.
		res := h.submit(&Input{RoomID: roomID, Events: []Template{
			{Type: "m.room.topic", StateKey: sk(""), Sender: alice, Content: js(t, `{"topic":"x"}`)},
			{Type: "m.room.message", Sender: bob, Content: js(t, `{"body":"no"}`)},
		}})
		if res.Error == nil || res.Error.Code != "M_FORBIDDEN" {
			t.Fatalf("got %+v", res)
		}
		// Floats are not allowed in v12 content.
		res = h.submit(&Input{RoomID: roomID, Events: []Template{{Type: "m.room.message", Sender: alice, Content: js(t, `{"n":1.5}`)}}})
		if res.Error == nil || res.Error.Code != "M_BAD_JSON" {
			t.Fatalf("float content: got %+v", res)
		}
		res = h.submit(&Input{RoomID: "!nope:test.example", Events: []Template{{Type: "m.room.message", Sender: alice, Content: js(t, `{}`)}}})
		if res.Error == nil || res.Error.Code != "M_NOT_FOUND" {
			t.Fatalf("unknown room: got %+v", res)
		}
		if after := h.count(`SELECT COUNT(*) FROM events`); after != before {
			t.Fatalf("%d events written by refused inputs", after-before)
		}
		// The room still works, and its state has no topic.
		if res := h.send(roomID, alice, nil, "still here"); res.Error != nil {
			t.Fatal(res.Error)
		}
		if n := h.count(`SELECT COUNT(*) FROM state_history WHERE room_id = $1 AND type = 'm.room.topic'`, roomID); n != 0 {
			t.Fatal("a refused input changed the state")
		}
	})
}

// TestCompareAndSetProtectsTheHead simulates a second writer that
// persisted behind this worker's back: the worker's cached head is stale,
// the compare-and-set fails, and the retry builds on the real head.
func TestCompareAndSetProtectsTheHead(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		roomID := h.createRoom("12")
		if res := h.send(roomID, alice, nil, "one"); res.Error != nil {
			t.Fatal(res.Error)
		}
		// Another worker (a second harness server sharing the database
		// would race; simulate its effect) moves the head.
		if _, err := h.db.Exec(context.Background(), `UPDATE rooms SET head_seq = head_seq + 0 WHERE room_id = $1`, roomID); err != nil {
			t.Fatal(err)
		}
		r := h.srv.cache.get(roomID)
		if r == nil {
			t.Fatal("room not cached")
		}
		r.committedSeq-- // the cache now believes in an older head
		r.headSeq--
		res := h.send(roomID, alice, nil, "two")
		if res.Error != nil {
			t.Fatalf("send after a conflict: %+v", res.Error)
		}
		seqs := h.count(`SELECT COUNT(DISTINCT room_seq) FROM events WHERE room_id = $1`, roomID)
		all := h.count(`SELECT COUNT(*) FROM events WHERE room_id = $1`, roomID)
		if seqs != all || all != 6 {
			t.Fatalf("room_seq not unique or events lost: %d distinct of %d", seqs, all)
		}
	})
}

func TestOutputsReachRoomEventsInOrder(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		roomID := h.createRoom("12")
		for i := range 20 {
			if res := h.send(roomID, alice, nil, strings.Repeat("x", i)); res.Error != nil {
				t.Fatal(res.Error)
			}
		}
		var got []Output
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var mu sync.Mutex
		go func() {
			_ = h.bus.ConsumeBatch(ctx, bus.RoomEvents, bus.AllPartitions, "test-reader", 50, func(_ context.Context, ms []bus.Msg) error {
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
			}, bus.ConsumeOptions{PollWait: 200 * time.Millisecond})
		}()
		testenv.Eventually(t, 10*time.Second, "24 outputs", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 24 })
		mu.Lock()
		defer mu.Unlock()
		for i, o := range got {
			if o.RoomSeq != int64(i+1) {
				t.Fatalf("output %d has room_seq %d", i, o.RoomSeq)
			}
		}
		testenv.Eventually(t, 10*time.Second, "outbox emptied", func() bool {
			// The last batch's rows are deleted by the next transaction or
			// at shutdown; nudge with one more input.
			h.send(roomID, alice, nil, "nudge")
			return h.count(`SELECT COUNT(*) FROM outbox WHERE room_seq < 24`) == 0
		})
	})
}

// TestRedeliveredInputIsNotAppliedTwice plays a crash between the commit
// and the ack: the same message (same stream sequence, delivered again) is
// handled again, by this worker and by a fresh one, and nothing is written
// twice; the same sequence of a recreated stream is a new input.
func TestRedeliveredInputIsNotAppliedTwice(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		roomID := h.createRoom("12")
		in, _ := json.Marshal(&Input{RoomID: roomID, Events: []Template{{Type: "m.room.message", Sender: alice,
			Content: js(t, `{"msgtype":"m.text","body":"once"}`)}}})
		p := bus.PartitionOf(roomID, h.bus.Partitions())
		ctx := context.Background()
		count := func() int {
			return h.count(`SELECT COUNT(*) FROM events WHERE room_id = $1 AND type = 'm.room.message'`, roomID)
		}
		w := &partitionWorker{s: h.srv, p: p, log: h.srv.log, done: map[string]int64{}, streamCreated: 42}
		if err := w.handle(ctx, []bus.Msg{{StreamSeq: 7, NumDelivered: 1, Data: in}}); err != nil {
			t.Fatal(err)
		}
		for _, wk := range []*partitionWorker{w, {s: h.srv, p: p, log: h.srv.log, done: map[string]int64{}, streamCreated: 42}} {
			if err := wk.handle(ctx, []bus.Msg{{StreamSeq: 7, NumDelivered: 2, Data: in}}); err != nil {
				t.Fatal(err)
			}
		}
		if n := count(); n != 1 {
			t.Fatalf("the input was applied %d times", n)
		}
		other := &partitionWorker{s: h.srv, p: p, log: h.srv.log, done: map[string]int64{}, streamCreated: 43}
		if err := other.handle(ctx, []bus.Msg{{StreamSeq: 7, NumDelivered: 2, Data: in}}); err != nil {
			t.Fatal(err)
		}
		if n := count(); n != 2 {
			t.Fatalf("the same sequence of another stream: %d messages, want 2", n)
		}
	})
}

// StatesAt answers for many rooms (of several versions, at several
// points of their history) what StateAt answers for each.
func TestStatesAtMatchesStateAt(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		ctx := context.Background()
		rd := NewReader(h.db)
		var qs []StateQuery
		for _, v := range []string{"10", "11", "12", "12"} {
			roomID := h.createRoom(v)
			join := h.submit(&Input{RoomID: roomID, Events: []Template{{Type: "m.room.member", StateKey: sk(bob), Sender: bob,
				Content: js(t, `{"membership":"join"}`)}}})
			if join.Error != nil {
				t.Fatalf("join: %+v", join.Error)
			}
			info, err := rd.Room(ctx, roomID)
			if err != nil {
				t.Fatal(err)
			}
			// The current state, and the state before bob's join.
			qs = append(qs, StateQuery{RoomID: roomID, Version: info.Version, Seq: info.HeadSeq})
			if v == "12" {
				qs[len(qs)-1].Seq = info.HeadSeq - 1
			}
		}
		got, err := rd.StatesAt(ctx, qs)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			want, err := rd.StateAt(ctx, q.Version, q.RoomID, q.Seq)
			if err != nil {
				t.Fatal(err)
			}
			if len(want) < 4 || len(got[q.RoomID]) != len(want) {
				t.Fatalf("%s at %d: %d events, want %d", q.RoomID, q.Seq, len(got[q.RoomID]), len(want))
			}
			for i := range want {
				if got[q.RoomID][i].ID() != want[i].ID() {
					t.Errorf("%s at %d: event %d is %s, want %s", q.RoomID, q.Seq, i, got[q.RoomID][i].ID(), want[i].ID())
				}
			}
		}
	})
}

// The room role answers its own process's Submitter directly and any other
// over NATS. The local Submitter here has stopped listening on NATS, so
// only a direct answer reaches it.
func TestRepliesToTheLocalSubmitterSkipNATS(t *testing.T) {
	h := newHarness(t, testenv.Engines()[0])
	roomID := h.createRoom("12")
	local, err := NewSubmitter(h.bus)
	if err != nil {
		t.Fatal(err)
	}
	if err := local.Close(); err != nil {
		t.Fatal(err)
	}
	h.srv.ReplyLocally(local)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := local.Submit(ctx, &Input{RoomID: roomID, Events: []Template{{Type: "m.room.message", Sender: alice,
		Content: js(t, `{"msgtype":"m.text","body":"local"}`)}}})
	if err != nil || res.Error != nil || len(res.EventIDs) != 1 {
		t.Fatalf("local submit: %+v, %v", res, err)
	}
	// h.sub is another process's as far as the room role knows.
	if res := h.send(roomID, alice, nil, "remote"); res.Error != nil || len(res.EventIDs) != 1 {
		t.Fatalf("remote submit: %+v", res)
	}
}
