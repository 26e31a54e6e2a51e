package sender

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/bus"
	"github.com/axon-hs/axon/internal/bus/bustest"
	"github.com/axon-hs/axon/internal/coord"
	"github.com/axon-hs/axon/internal/testenv"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/services/federation/fedclient"
	"github.com/axon-hs/axon/services/roomserver"
)

// The tests of this file run two sender "processes" (nodes) over one
// database and one NATS server, each with its own coordinator
// (coord.Manual), Sender and recording transport, and move destination
// partitions between them.

// peers are servers joined to ourRoom besides them.test and other.test
// (newEDUEnv's), so that the room's destinations fall in many partitions.
var peers = func() []string {
	var out []string
	for i := range 14 {
		out = append(out, fmt.Sprintf("p%02d.test", i))
	}
	return out
}()

// node is one sender process.
type node struct {
	s    *Sender
	co   *coord.Manual
	tr   *txnRecorder
	stop func() // ends its Run and waits for it
}

// cluster is the shared database (newEDUEnv's, with its Queue poking over
// NATS), the bus and two nodes.
type cluster struct {
	*eduEnv
	b     *bus.Bus
	nodes []*node
	dests []string // ourRoom's destinations
	seq   int      // events published
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	b := bustest.Start(t, 4)
	env := newEDUEnv(t, testenv.Engines()[0], func(c *QueueConfig) {
		c.Poke = func(dests []string) {
			if err := b.Conn().Publish(PokeSubject, EncodePoke(dests)); err != nil {
				t.Errorf("poke: %v", err)
			}
		}
	})
	for _, p := range peers {
		if _, err := env.db.Exec(context.Background(), `INSERT INTO memberships (user_id, room_id, membership, event_id, room_seq) VALUES ($1, $2, 'join', '$x', 1)`,
			"@u:"+p, ourRoom); err != nil {
			t.Fatal(err)
		}
	}
	c := &cluster{eduEnv: env, b: b, dests: append([]string{"other.test", "them.test"}, peers...)}
	for range 2 {
		c.nodes = append(c.nodes, c.newNode(t))
	}
	return c
}

func (c *cluster) newNode(t *testing.T) *node {
	t.Helper()
	tr := &txnRecorder{txns: map[string][]sentTxn{}}
	key, _ := keys.Generate("s1", nil)
	client, err := fedclient.New(fedclient.Config{ServerName: "us.test", Key: key, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	s := New(c.db, c.b, Config{ServerName: "us.test", Client: client, Reader: roomserver.NewReader(c.db)})
	// Only the sweep of gained partitions and pokes deliver in these
	// tests: the periodic sweep would hide a lost poke.
	s.sweepEvery = time.Hour
	n := &node{s: s, co: coord.NewManual(nil), tr: tr}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, n.co) }()
	var once sync.Once
	n.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(n.stop)
	return n
}

// own assigns destination partitions to n and waits until its Sender
// owns them and has swept them (so that afterwards only pokes start its
// workers).
func (n *node) own(t *testing.T, parts ...int) {
	t.Helper()
	n.co.Assign(DestinationResource, parts...)
	testenv.Eventually(t, 10*time.Second, "partitions gained and swept", func() bool {
		n.s.mu.Lock()
		defer n.s.mu.Unlock()
		for _, p := range parts {
			if part := n.s.parts[p]; part == nil || !part.swept {
				return false
			}
		}
		return true
	})
}

// partitions returns every destination partition, the even ones and the
// odd ones.
func partitions() (all, even, odd []int) {
	for p := range DestinationPartitions {
		all = append(all, p)
		if p%2 == 0 {
			even = append(even, p)
		} else {
			odd = append(odd, p)
		}
	}
	return all, even, odd
}

func isEven(dest string) bool { return DestinationPartition(dest)%2 == 0 }

// publish publishes n events of alice in ourRoom on ROOM_EVENTS, as the
// room role does, and returns their IDs.
func (c *cluster) publish(t *testing.T, n int) []string {
	t.Helper()
	var ids []string
	for range n {
		c.seq++
		id := fmt.Sprintf("$ev%03d", c.seq)
		pdu, _ := json.Marshal(map[string]any{"event_id": id, "room_id": ourRoom, "sender": alice, "type": "m.room.message"})
		out, _ := json.Marshal(roomserver.Output{RoomID: ourRoom, EventID: id, PDU: pdu})
		if _, err := c.b.PublishRoom(context.Background(), bus.RoomEvents, ourRoom, out, id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// delivered returns the event IDs and to-device message IDs in the
// transactions to dest that tr answered 200.
func delivered(tr *txnRecorder, dest string) map[string]bool {
	got := map[string]bool{}
	for _, id := range tr.sentEventIDs(dest) {
		got[id] = true
	}
	for _, txn := range tr.sent(dest) {
		for _, e := range txn.EDUs {
			var c struct {
				MessageID string `json:"message_id"`
			}
			_ = json.Unmarshal(e.Content, &c)
			got[c.MessageID] = true
		}
	}
	return got
}

// waitDelivered waits until every destination of want has had all its IDs
// answered by some node and nothing is left queued.
func (c *cluster) waitDelivered(t *testing.T, want map[string][]string) {
	t.Helper()
	missing := func() string {
		for dest, ids := range want {
			got := map[string]bool{}
			for _, n := range c.nodes {
				for id := range delivered(n.tr, dest) {
					got[id] = true
				}
			}
			for _, id := range ids {
				if !got[id] {
					return dest + " " + id
				}
			}
		}
		var n int
		if err := c.db.QueryRow(context.Background(), `SELECT (SELECT COUNT(*) FROM sender_queue) + (SELECT COUNT(*) FROM sender_edus)`).Scan(&n); err != nil || n != 0 {
			return fmt.Sprintf("%d rows queued (%v)", n, err)
		}
		return ""
	}
	deadline := time.Now().Add(30 * time.Second)
	for m := missing(); m != ""; m = missing() {
		if time.Now().After(deadline) {
			t.Fatalf("not delivered within 30s: %s", m)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// noBackoff checks that no destination was put in backoff: abandoning a
// transaction when a partition is lost is not the destination's failure.
func (c *cluster) noBackoff(t *testing.T) {
	t.Helper()
	var n int
	if err := c.db.QueryRow(context.Background(), `SELECT COUNT(*) FROM sender_destinations`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d destinations in backoff (%v)", n, err)
	}
}

// forAll maps every destination to ids.
func (c *cluster) forAll(ids []string) map[string][]string {
	want := map[string][]string{}
	for _, d := range c.dests {
		want[d] = ids
	}
	return want
}

// Two nodes split the partitions: each destination is delivered by its
// partition's owner only, the events queued by the consumer (on one node)
// and the EDUs queued by a Queue (in no sender) both reaching the owner,
// in this process or across NATS; the periodic sweep is off, so only
// pokes can have started the workers.
func TestPartitionsSplitDestinations(t *testing.T) {
	c := newCluster(t)
	n0, n1 := c.nodes[0], c.nodes[1]
	_, even, odd := partitions()
	var evenDests, oddDests int
	for _, d := range c.dests {
		if isEven(d) {
			evenDests++
		} else {
			oddDests++
		}
	}
	if evenDests == 0 || oddDests == 0 {
		t.Fatalf("the fixture's destinations fall in even partitions %d times, odd %d: both are needed", evenDests, oddDests)
	}
	n0.co.Assign(QueueResource, 0)
	n0.own(t, even...)
	n1.own(t, odd...)

	events := c.publish(t, 30)
	c.waitDelivered(t, c.forAll(events))
	ctx := context.Background()
	msgs := map[string]map[string]json.RawMessage{"@u:x": {"*": json.RawMessage(`{}`)}}
	want := c.forAll(events)
	for _, d := range c.dests {
		if err := c.q.ToDevice(ctx, d, alice, "m.test", "m-"+d, msgs); err != nil {
			t.Fatal(err)
		}
		want[d] = append(slices.Clip(want[d]), "m-"+d)
	}
	c.waitDelivered(t, want)

	for _, d := range c.dests {
		owner, other := n0, n1
		if !isEven(d) {
			owner, other = n1, n0
		}
		if txns := other.tr.receivedBy(d); len(txns) != 0 {
			t.Errorf("%s (partition %d) got %d transactions from the node that does not own it", d, DestinationPartition(d), len(txns))
		}
		got := delivered(owner.tr, d)
		for _, id := range want[d] {
			if !got[id] {
				t.Errorf("%s: %s not delivered by its owner", d, id)
			}
		}
		order := owner.tr.sentEventIDs(d)
		if !slices.Equal(order, events) {
			t.Errorf("%s got events %v, want %v in order", d, order, events)
		}
	}
	c.noBackoff(t)
}

// Partitions move mid-stream: while node 0 owns every destination and
// cannot finish a transaction (each destination has one in flight),
// the even partitions and the queue consumer move to node 1, then the odd
// ones; then the even ones come back to node 0. Every event reaches every
// destination, nothing stays queued, and each delivery is made by the
// owner of the moment.
func TestPartitionsMoveMidStream(t *testing.T) {
	c := newCluster(t)
	n0, n1 := c.nodes[0], c.nodes[1]
	all, even, odd := partitions()
	hold := make(chan struct{})
	n0.tr.setHold(hold)
	n0.co.Assign(QueueResource, 0)
	n0.own(t, all...)

	a := c.publish(t, 40)
	testenv.Eventually(t, 20*time.Second, "a transaction in flight to every destination", func() bool {
		for _, d := range c.dests {
			if len(n0.tr.receivedBy(d)) == 0 {
				return false
			}
		}
		return true
	})
	n0.co.Move(n1.co, DestinationResource, even...)
	n0.co.Move(n1.co, QueueResource, 0)
	n1.own(t, even...)
	b := c.publish(t, 40)
	n0.co.Move(n1.co, DestinationResource, odd...)
	n1.own(t, odd...)
	close(hold)
	n1.co.Move(n0.co, DestinationResource, even...)
	n0.own(t, even...)
	cc := c.publish(t, 40)

	events := slices.Concat(a, b, cc)
	c.waitDelivered(t, c.forAll(events))
	for _, d := range c.dests {
		if len(n0.tr.abandonedBy(d)) == 0 {
			t.Errorf("%s: no transaction of node 0 was abandoned when its partition moved", d)
		}
		got0, got1 := delivered(n0.tr, d), delivered(n1.tr, d)
		if !isEven(d) {
			if len(got0) != 0 {
				t.Errorf("%s: node 0 delivered %d events while its answers were held", d, len(got0))
			}
			continue
		}
		for _, id := range cc {
			if !got0[id] || got1[id] {
				t.Errorf("%s: %s queued after its partition came back to node 0: node 0 sent it %v, node 1 %v", d, id, got0[id], got1[id])
			}
		}
	}
	c.noBackoff(t)
}

// A node stops (as at SIGTERM) with a transaction in flight to every
// destination; the other is given every partition and the queue
// consumer and delivers everything, the abandoned transaction under the
// same ID (which the destination de-duplicates). held.test's rows were
// queued before anyone owned it, so only the sweep of gained partitions
// finds them.
func TestStoppedNodeHandsOver(t *testing.T) {
	c := newCluster(t)
	n0, n1 := c.nodes[0], c.nodes[1]
	all, _, _ := partitions()
	ctx := context.Background()
	var heldIDs []string
	for i := range 30 {
		id := fmt.Sprintf("$held%02d", i)
		pdu, _ := json.Marshal(map[string]any{"event_id": id, "room_id": "!other:us.test"})
		if _, err := c.db.Exec(ctx, `INSERT INTO sender_queue (destination, seq, room_id, event_id, pdu) VALUES ('held.test', $1, '!other:us.test', $2, $3)`,
			int64(1000+i), id, pdu); err != nil {
			t.Fatal(err)
		}
		heldIDs = append(heldIDs, id)
	}
	hold := make(chan struct{})
	defer close(hold)
	n0.tr.setHold(hold)
	n0.co.Assign(QueueResource, 0)
	n0.own(t, all...)
	a := c.publish(t, 40)
	testenv.Eventually(t, 20*time.Second, "a transaction in flight to every destination", func() bool {
		for _, d := range append([]string{"held.test"}, c.dests...) {
			if len(n0.tr.receivedBy(d)) == 0 {
				return false
			}
		}
		return true
	})
	n0.stop()

	n1.co.Assign(QueueResource, 0)
	n1.own(t, all...)
	b := c.publish(t, 40)
	want := c.forAll(slices.Concat(a, b))
	want["held.test"] = heldIDs
	c.waitDelivered(t, want)

	abandoned, resent := n0.tr.abandonedBy("held.test"), n1.tr.sent("held.test")
	if len(abandoned) != 1 || len(resent) == 0 || resent[0].ID != abandoned[0].ID {
		t.Errorf("held.test: node 0 abandoned %d transactions, node 1 sent %d: the first must carry the abandoned one's ID", len(abandoned), len(resent))
	}
	for _, d := range c.dests {
		if got := n0.tr.sent(d); len(got) != 0 {
			t.Errorf("%s: the stopped node had %d transactions answered", d, len(got))
		}
	}
	c.noBackoff(t)
}

// Both nodes believe they own every destination (a paused process, a
// lease that expired): both have a transaction in flight to every
// destination at once, then both are answered and go on while more
// events and EDUs are queued. Nothing is lost and nothing stays queued;
// the only cost is duplicate sends.
func TestOverlappingOwnersLoseNothing(t *testing.T) {
	c := newCluster(t)
	n0, n1 := c.nodes[0], c.nodes[1]
	all, _, _ := partitions()
	hold0, hold1 := make(chan struct{}), make(chan struct{})
	n0.tr.setHold(hold0)
	n1.tr.setHold(hold1)
	n0.co.Assign(QueueResource, 0)
	n0.own(t, all...)
	a := c.publish(t, 40)
	inFlight := func(n *node) func() bool {
		return func() bool {
			for _, d := range c.dests {
				if len(n.tr.receivedBy(d)) == 0 {
					return false
				}
			}
			return true
		}
	}
	testenv.Eventually(t, 20*time.Second, "node 0 has a transaction in flight to every destination", inFlight(n0))
	n1.own(t, all...) // its sweep finds every queue
	testenv.Eventually(t, 20*time.Second, "node 1 has a transaction in flight to every destination", inFlight(n1))
	close(hold0)
	close(hold1)

	b := c.publish(t, 40)
	want := c.forAll(slices.Concat(a, b))
	msgs := map[string]map[string]json.RawMessage{"@u:x": {"*": json.RawMessage(`{}`)}}
	for _, d := range c.dests {
		for i := range 3 {
			id := fmt.Sprintf("m%d-%s", i, d)
			if err := c.q.ToDevice(context.Background(), d, alice, "m.test", id, msgs); err != nil {
				t.Fatal(err)
			}
			want[d] = append(slices.Clip(want[d]), id)
		}
	}
	c.waitDelivered(t, want)
	for _, d := range c.dests {
		if len(n0.tr.sent(d)) == 0 || len(n1.tr.sent(d)) == 0 {
			t.Errorf("%s: both owners' transactions in flight should have been answered", d)
		}
	}
	c.noBackoff(t)
}

// cancelTransport loses the partition (cancels ctx) while a transaction
// is in flight, then answers it 200.
type cancelTransport struct {
	cancel context.CancelFunc
	sent   atomic.Int32
}

func (c *cancelTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.sent.Add(1)
	c.cancel()
	rec := httptest.NewRecorder()
	_, _ = rec.WriteString(`{"pdus":{}}`)
	return rec.Result(), nil
}

// A transaction answered 200 just as its partition is lost still has its
// rows deleted, so the next owner need not send it again; the worker then
// stops.
func TestAnsweredTransactionFinishesAfterLoss(t *testing.T) {
	e := newEDUEnv(t, testenv.Engines()[0])
	ctx := context.Background()
	for i := range 3 {
		if _, err := e.db.Exec(ctx, `INSERT INTO sender_queue (destination, seq, room_id, event_id, pdu) VALUES ('lost.test', $1, $2, '$e', '{}')`,
			int64(i+1), ourRoom); err != nil {
			t.Fatal(err)
		}
	}
	partCtx, cancel := context.WithCancel(ctx)
	tr := &cancelTransport{cancel: cancel}
	key, _ := keys.Generate("s1", nil)
	client, err := fedclient.New(fedclient.Config{ServerName: "us.test", Key: key, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	s := New(e.db, nil, Config{ServerName: "us.test", Client: client})
	part := s.gain(partCtx, DestinationPartition("lost.test"))
	if !s.poke("lost.test") {
		t.Fatal("a destination of an owned partition was not poked")
	}
	<-partCtx.Done()
	s.release(part) // waits for the worker
	var left int
	if err := e.db.QueryRow(ctx, `SELECT COUNT(*) FROM sender_queue WHERE destination = 'lost.test'`).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d rows left after their transaction was answered 200 (%v)", left, err)
	}
	if n := tr.sent.Load(); n != 1 {
		t.Errorf("%d transactions sent, want 1", n)
	}
	if s.poke("lost.test") {
		t.Error("a destination of a lost partition was poked")
	}
}

// hookTransport runs once before the first transaction is answered, then
// records like txnRecorder.
type hookTransport struct {
	once sync.Once
	hook func()
	*txnRecorder
}

func (h *hookTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	h.once.Do(h.hook)
	return h.txnRecorder.RoundTrip(r)
}

// A row queued inside the range of a transaction in flight (by a queue
// consumer of another process that briefly overlapped) is not deleted
// with that transaction's rows: it is sent next.
func TestLateRowInsideSentRangeStays(t *testing.T) {
	e := newEDUEnv(t, testenv.Engines()[0])
	ctx := context.Background()
	insert := func(seq int64) {
		t.Helper()
		pdu, _ := json.Marshal(map[string]any{"event_id": fmt.Sprintf("$e%d", seq)})
		if _, err := e.db.Exec(ctx, `INSERT INTO sender_queue (destination, seq, room_id, event_id, pdu) VALUES ('late.test', $1, $2, $3, $4)`,
			seq, ourRoom, fmt.Sprintf("$e%d", seq), pdu); err != nil {
			t.Error(err)
		}
	}
	insert(1)
	insert(3)
	tr := &hookTransport{hook: func() { insert(2) }, txnRecorder: &txnRecorder{txns: map[string][]sentTxn{}}}
	key, _ := keys.Generate("s1", nil)
	client, err := fedclient.New(fedclient.Config{ServerName: "us.test", Key: key, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	s := New(e.db, nil, Config{ServerName: "us.test", Client: client})
	if _, err := s.drain(ctx, "late.test"); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for id := range delivered(tr.txnRecorder, "late.test") {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if txns := tr.sent("late.test"); len(txns) != 2 || !slices.Equal(ids, []string{"$e1", "$e2", "$e3"}) {
		t.Errorf("%d transactions carried %v; want 2 carrying $e1, $e2, $e3", len(txns), ids)
	}
}
