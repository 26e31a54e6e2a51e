package sender

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/internal/store/storetest"
	"github.com/axon-hs/axon/internal/testenv"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/services/federation/fedclient"
	"github.com/axon-hs/axon/services/roomserver"
)

const (
	ourRoom = "!room:us.test"
	alice   = "@alice:us.test"
)

// txnRecorder is a federation transport that records the transactions
// sent to each destination and answers them (500 while failing). With a
// hold channel it keeps every answer until the channel is closed, as a
// slow destination does: a transaction whose request is cancelled
// meanwhile is recorded as abandoned.
type txnRecorder struct {
	mu        sync.Mutex
	txns      map[string][]sentTxn // answered 200, by destination
	received  map[string][]sentTxn // every request, by destination
	abandoned map[string][]sentTxn // cancelled while held, by destination
	failing   bool
	hold      chan struct{}
}

type sentTxn struct {
	ID   string
	PDUs []json.RawMessage `json:"pdus"`
	EDUs []struct {
		Type    string          `json:"edu_type"`
		Content json.RawMessage `json:"content"`
	} `json:"edus"`
}

func (r *txnRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(req.Body)
	var txn sentTxn
	if err := json.Unmarshal(body, &txn); err != nil {
		return nil, err
	}
	txn.ID = req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:]
	dest := req.URL.Host
	r.mu.Lock()
	if r.received == nil {
		r.received, r.abandoned = map[string][]sentTxn{}, map[string][]sentTxn{}
	}
	r.received[dest] = append(r.received[dest], txn)
	hold := r.hold
	r.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-req.Context().Done():
			r.mu.Lock()
			r.abandoned[dest] = append(r.abandoned[dest], txn)
			r.mu.Unlock()
			return nil, req.Context().Err()
		}
	}
	rec := httptest.NewRecorder()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failing {
		rec.WriteHeader(500)
		return rec.Result(), nil
	}
	r.txns[dest] = append(r.txns[dest], txn)
	_, _ = rec.WriteString(`{"pdus":{}}`)
	return rec.Result(), nil
}

func (r *txnRecorder) sent(dest string) []sentTxn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.txns[dest])
}

// sentEventIDs returns the event IDs of the PDUs sent to dest (answered
// 200), in order.
func (r *txnRecorder) sentEventIDs(dest string) []string {
	var ids []string
	for _, txn := range r.sent(dest) {
		for _, p := range txn.PDUs {
			var head struct {
				ID string `json:"event_id"`
			}
			_ = json.Unmarshal(p, &head)
			ids = append(ids, head.ID)
		}
	}
	return ids
}

// receivedBy returns the transactions requested of dest, answered or not.
func (r *txnRecorder) receivedBy(dest string) []sentTxn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.received[dest])
}

// abandonedBy returns the transactions to dest cancelled while held.
func (r *txnRecorder) abandonedBy(dest string) []sentTxn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.abandoned[dest])
}

// setHold makes new requests wait for hold to close (nil: answer at once).
func (r *txnRecorder) setHold(hold chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hold = hold
}

func (r *txnRecorder) setFailing(f bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failing = f
}

// eduEnv is a database with the room's memberships, a Queue, and a
// Sender whose transport records what it sends.
type eduEnv struct {
	db    *store.DB
	q     *Queue
	s     *Sender
	tr    *txnRecorder
	clock *testenv.Clock
	pokes []string
	mu    sync.Mutex
}

func newEDUEnv(t *testing.T, engine testenv.Engine, tweak ...func(*QueueConfig)) *eduEnv {
	t.Helper()
	db := storetest.Open(t, engine, Migrations(), roomserver.Migrations())
	for _, m := range []struct{ user, room, membership string }{
		{alice, ourRoom, "join"},
		{"@bob:them.test", ourRoom, "join"},
		{"@carol:them.test", ourRoom, "join"},
		{"@dan:other.test", ourRoom, "join"},
		{"@eve:gone.test", ourRoom, "leave"},
		{"@bob:them.test", "!elsewhere:them.test", "join"},
		{alice, "!elsewhere:them.test", "join"},
		{"@fay:far.test", "!elsewhere:them.test", "join"},
	} {
		if _, err := db.Exec(context.Background(), `INSERT INTO memberships (user_id, room_id, membership, event_id, room_seq) VALUES ($1, $2, $3, '$x', 1)`,
			m.user, m.room, m.membership); err != nil {
			t.Fatal(err)
		}
	}
	env := &eduEnv{db: db, tr: &txnRecorder{txns: map[string][]sentTxn{}}, clock: testenv.NewClock(time.UnixMilli(1_700_000_000_000))}
	cfg := QueueConfig{ServerName: "us.test", Reader: roomserver.NewReader(db), Now: env.clock.Now, Poke: func(d []string) {
		env.mu.Lock()
		defer env.mu.Unlock()
		env.pokes = append(env.pokes, d...)
	}}
	for _, f := range tweak {
		f(&cfg)
	}
	env.q = NewQueue(db, cfg)
	key, _ := keys.Generate("s1", nil)
	client, err := fedclient.New(fedclient.Config{ServerName: "us.test", Key: key, Transport: env.tr})
	if err != nil {
		t.Fatal(err)
	}
	env.s = New(db, nil, Config{ServerName: "us.test", Client: client, Reader: roomserver.NewReader(db), Now: env.clock.Now})
	ownAll(t, env.s)
	return env
}

// queued returns the queued EDUs as "destination key" strings.
func (e *eduEnv) queued(t *testing.T) []string {
	t.Helper()
	rows, err := e.db.Query(context.Background(), `SELECT destination, edu_key FROM sender_edus ORDER BY destination, edu_key`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d, k string
		if err := rows.Scan(&d, &k); err != nil {
			t.Fatal(err)
		}
		out = append(out, d+" "+k)
	}
	return out
}

// drainAll sends every destination's queue once, in this goroutine.
func (e *eduEnv) drainAll(t *testing.T, dests ...string) {
	t.Helper()
	for _, d := range dests {
		if _, err := e.s.drain(context.Background(), d); err != nil {
			t.Fatalf("drain %s: %v", d, err)
		}
	}
}

// Typing and receipts go to every other server resident in the room,
// presence to every server sharing a room with the user; newer typing,
// receipts and presence replace queued ones; a send-to-device message is
// queued once.
func TestQueueDestinationsAndCoalescing(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, engine testenv.Engine) {
		e := newEDUEnv(t, engine)
		ctx := context.Background()
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(e.q.Typing(ctx, ourRoom, alice, true, 20*time.Second))
		must(e.q.Typing(ctx, ourRoom, alice, false, 0))
		must(e.q.Receipt(ctx, ourRoom, alice, "$e1", "", 1))
		must(e.q.Receipt(ctx, ourRoom, alice, "$e2", "", 2))
		must(e.q.Receipt(ctx, ourRoom, alice, "$e3", "main", 3))
		must(e.q.Presence(ctx, alice, "online", nil, 0, true)) // far.test shares another room
		status := "away"
		must(e.q.Presence(ctx, alice, "unavailable", &status, 0, false))
		msgs := map[string]map[string]json.RawMessage{"@bob:them.test": {"DEV": json.RawMessage(`{"a":1}`)}}
		must(e.q.ToDevice(ctx, "them.test", alice, "m.test", "m1", msgs))
		must(e.q.ToDevice(ctx, "them.test", alice, "m.test", "m1", msgs))
		if err := e.q.ToDevice(ctx, "us.test", alice, "m.test", "m2", msgs); err == nil {
			t.Error("send-to-device to this server itself was queued")
		}

		want := []string{
			"far.test p|@alice:us.test",
			"other.test p|@alice:us.test",
			"other.test r|!room:us.test|@alice:us.test|",
			"other.test r|!room:us.test|@alice:us.test|main",
			"other.test t|!room:us.test|@alice:us.test",
			"them.test d|@alice:us.test|m1",
			"them.test p|@alice:us.test",
			"them.test r|!room:us.test|@alice:us.test|",
			"them.test r|!room:us.test|@alice:us.test|main",
			"them.test t|!room:us.test|@alice:us.test",
		}
		if got := e.queued(t); !slices.Equal(got, want) {
			t.Errorf("queued:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		e.drainAll(t, "them.test")
		txns := e.tr.sent("them.test")
		if len(txns) != 1 {
			t.Fatalf("%d transactions to them.test, want 1", len(txns))
		}
		byType := map[string][]string{}
		for _, edu := range txns[0].EDUs {
			byType[edu.Type] = append(byType[edu.Type], string(edu.Content))
		}
		if got := byType["m.typing"]; len(got) != 1 || !strings.Contains(got[0], `"typing":false`) {
			t.Errorf("typing EDUs: %v", got)
		}
		if got := byType["m.receipt"]; len(got) != 2 || !strings.Contains(strings.Join(got, ""), `"event_ids":["$e2"]`) ||
			strings.Contains(strings.Join(got, ""), `$e1`) {
			t.Errorf("receipt EDUs: %v", got)
		}
		if got := byType["m.presence"]; len(got) != 1 || !strings.Contains(got[0], `"status_msg":"away"`) {
			t.Errorf("presence EDUs: %v", got)
		}
		if got := byType["m.direct_to_device"]; len(got) != 1 || !strings.Contains(got[0], `"message_id":"m1"`) {
			t.Errorf("send-to-device EDUs: %v", got)
		}
		if txns[0].PDUs == nil {
			t.Error("a transaction of EDUs only has no pdus list")
		}
		for _, d := range []string{"them.test", "other.test", "far.test"} {
			if !slices.Contains(e.pokes, d) {
				t.Errorf("%s was not poked", d)
			}
		}
		if slices.Contains(e.pokes, "us.test") || slices.Contains(e.pokes, "gone.test") {
			t.Errorf("pokes %v include this server or one with no joined user", e.pokes)
		}
	})
}

// A send-to-device message for a destination with MaxToDeviceQueue queued
// is dropped without an error.
func TestQueueToDeviceBound(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, engine testenv.Engine) {
		e := newEDUEnv(t, engine, func(c *QueueConfig) { c.MaxToDeviceQueue = 2 })
		ctx := context.Background()
		msgs := map[string]map[string]json.RawMessage{"@bob:them.test": {"*": json.RawMessage(`{}`)}}
		for i := range 3 {
			if err := e.q.ToDevice(ctx, "them.test", alice, "m.test", fmt.Sprint("m", i), msgs); err != nil {
				t.Fatal(err)
			}
		}
		// Typing is not counted against the bound.
		if err := e.q.Typing(ctx, ourRoom, alice, true, time.Second); err != nil {
			t.Fatal(err)
		}
		want := []string{"other.test t|!room:us.test|@alice:us.test", "them.test d|@alice:us.test|m0", "them.test d|@alice:us.test|m1",
			"them.test t|!room:us.test|@alice:us.test"}
		if got := e.queued(t); !slices.Equal(got, want) {
			t.Errorf("queued %v, want %v", got, want)
		}
	})
}

// EDUs ride with the PDUs, at most 100 per transaction; they stay queued
// while the destination fails (and survive a new Sender, as after a
// crash) and are deleted once sent; a typing notification that expired
// unsent is dropped.
func TestDrainEDUs(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, engine testenv.Engine) {
		e := newEDUEnv(t, engine)
		ctx := context.Background()
		if _, err := e.db.Exec(ctx, `INSERT INTO sender_queue (destination, seq, room_id, event_id, pdu) VALUES ('them.test', 7, $1, '$p', $2)`,
			ourRoom, []byte(`{"event":"pdu"}`)); err != nil {
			t.Fatal(err)
		}
		msgs := map[string]map[string]json.RawMessage{"@bob:them.test": {"DEV": json.RawMessage(`{}`)}}
		for i := range 150 {
			if err := e.q.ToDevice(ctx, "them.test", alice, "m.test", fmt.Sprintf("m%03d", i), msgs); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.q.Typing(ctx, ourRoom, alice, true, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		e.tr.setFailing(true)
		if _, err := e.s.drain(ctx, "them.test"); err == nil {
			t.Fatal("a failing destination drained")
		}
		if n := len(e.queued(t)); n != 152 { // 150 + typing for them.test and other.test
			t.Fatalf("%d EDUs queued after a failure, want 152", n)
		}
		// A new Sender over the same database (the first one crashed) sends
		// them, the typing notification expired meanwhile.
		e.tr.setFailing(false)
		if _, err := e.db.Exec(ctx, `DELETE FROM sender_destinations`); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(10 * time.Second)
		e.s = New(e.db, nil, Config{ServerName: "us.test", Client: e.s.cfg.Client, Reader: e.s.cfg.Reader, Now: e.clock.Now})
		e.drainAll(t, "them.test")
		txns := e.tr.sent("them.test")
		var edus []string
		for i, txn := range txns {
			if len(txn.EDUs) > maxTxnEDUs {
				t.Errorf("transaction %d has %d EDUs", i, len(txn.EDUs))
			}
			for _, edu := range txn.EDUs {
				var c struct {
					MessageID string `json:"message_id"`
				}
				_ = json.Unmarshal(edu.Content, &c)
				edus = append(edus, edu.Type+" "+c.MessageID)
			}
		}
		if len(txns) != 2 || len(txns[0].PDUs) != 1 || len(txns[1].PDUs) != 0 || !strings.HasPrefix(txns[0].ID, "7-7-") {
			t.Errorf("transactions: %d, first %s with %d PDUs", len(txns), txns[0].ID, len(txns[0].PDUs))
		}
		if len(edus) != 150 || edus[0] != "m.direct_to_device m000" || edus[149] != "m.direct_to_device m149" {
			t.Errorf("%d EDUs sent, from %q", len(edus), edus[:min(len(edus), 2)])
		}
		if got := e.queued(t); !slices.Equal(got, []string{"other.test t|!room:us.test|@alice:us.test"}) {
			t.Errorf("left queued: %v", got)
		}
	})
}

// A transaction's ID is the same for the same content and changes when a
// queued EDU was replaced.
func TestTxnID(t *testing.T) {
	a := []sentEDU{{key: "t|r|u", queuedNS: 5}, {key: "d|u|m", queuedNS: 6}}
	b := []sentEDU{{key: "t|r|u", queuedNS: 9}, {key: "d|u|m", queuedNS: 6}}
	if id := txnID([]int64{3, 4}, nil); !strings.HasPrefix(id, "3-4-") || id != txnID([]int64{3, 4}, nil) {
		t.Errorf("PDUs only: %q", id)
	}
	if txnID(nil, a) != txnID(nil, slices.Clone(a)) || txnID(nil, a) == txnID(nil, b) || txnID([]int64{1}, a) == txnID(nil, a) {
		t.Error("transaction IDs do not follow their content")
	}
	// The same range with another row inside it is another transaction.
	if txnID([]int64{3, 9}, nil) == txnID([]int64{3, 5, 9}, nil) {
		t.Error("two transactions with the same first and last rows share an ID")
	}
}

// A poke on PokeSubject (as another process's Queue sends) starts the
// destination's worker.
func TestPokeSendsQueuedEDUs(t *testing.T) {
	e := newEDUEnv(t, testenv.Engines()[0])
	if err := e.q.Receipt(context.Background(), ourRoom, alice, "$e", "", 1); err != nil {
		t.Fatal(err)
	}
	e.s.handlePoke(EncodePoke([]string{"them.test", "us.test"}))
	testenv.Eventually(t, 5*time.Second, "them.test's receipt sent and deleted", func() bool {
		return slices.Equal(e.queued(t), []string{"other.test r|!room:us.test|@alice:us.test|"})
	})
	if txns := e.tr.sent("them.test"); len(txns) != 1 || len(txns[0].EDUs) != 1 || txns[0].EDUs[0].Type != "m.receipt" {
		t.Errorf("sent to them.test: %+v", txns)
	}
}

// A failed transaction is sent again as it was, with the same ID, even
// when more rows were queued meanwhile; those go in the next one.
func TestRetrySameTransaction(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, engine testenv.Engine) {
		e := newEDUEnv(t, engine)
		ctx := context.Background()
		queuePDU := func(seq int) {
			t.Helper()
			if _, err := e.db.Exec(ctx, `INSERT INTO sender_queue (destination, seq, room_id, event_id, pdu) VALUES ('them.test', $1, $2, $3, $4)`,
				seq, ourRoom, fmt.Sprint("$p", seq), []byte(fmt.Sprintf(`{"event_id":"$p%d"}`, seq))); err != nil {
				t.Fatal(err)
			}
		}
		msgs := map[string]map[string]json.RawMessage{"@bob:them.test": {"DEV": json.RawMessage(`{}`)}}
		queuePDU(1)
		queuePDU(2)
		if err := e.q.ToDevice(ctx, "them.test", alice, "m.test", "first", msgs); err != nil {
			t.Fatal(err)
		}
		e.tr.setFailing(true)
		if _, err := e.s.drain(ctx, "them.test"); err == nil {
			t.Fatal("a failing destination drained")
		}
		e.tr.setFailing(false)
		queuePDU(3)
		if err := e.q.ToDevice(ctx, "them.test", alice, "m.test", "second", msgs); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.Exec(ctx, `DELETE FROM sender_destinations`); err != nil {
			t.Fatal(err)
		}
		e.drainAll(t, "them.test")
		tried := e.tr.receivedBy("them.test")
		sent := e.tr.sent("them.test")
		if len(tried) != 3 || len(sent) != 2 {
			t.Fatalf("%d requests, %d answered; want 3 and 2", len(tried), len(sent))
		}
		if sent[0].ID != tried[0].ID || len(sent[0].PDUs) != 2 || len(sent[0].EDUs) != 1 {
			t.Errorf("the retry is %s with %d PDUs and %d EDUs; the failed one was %s", sent[0].ID, len(sent[0].PDUs), len(sent[0].EDUs), tried[0].ID)
		}
		if got := e.tr.sentEventIDs("them.test"); !slices.Equal(got, []string{"$p1", "$p2", "$p3"}) || len(sent[1].EDUs) != 1 {
			t.Errorf("sent %v, then %d EDUs", got, len(sent[1].EDUs))
		}
	})
}
