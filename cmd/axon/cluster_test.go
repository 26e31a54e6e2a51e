package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/bus"
	"github.com/axon-hs/axon/internal/testenv"
	"github.com/axon-hs/axon/services/roomserver"
	"github.com/axon-hs/axon/services/syncapi"
)

// clusterBackend is PostgreSQL, NATS and etcd shared by several
// processes of one deployment (make test provides all three). Without
// them the test skips, except in CI, which must run it.
func clusterBackend(t *testing.T) (args []string) {
	t.Helper()
	pg, nats, etcd := os.Getenv("AXON_TEST_POSTGRES"), os.Getenv("AXON_TEST_NATS"), os.Getenv("AXON_TEST_ETCD")
	if pg == "" || nats == "" || etcd == "" {
		msg := "AXON_TEST_POSTGRES, AXON_TEST_NATS and AXON_TEST_ETCD are not all set (make test sets them)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dsn := testenv.PostgresDSN(t, pg)
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"migrate", "--database", dsn}, nil, &out, &errb); code != 0 {
		t.Fatalf("axon migrate: %d %s", code, errb.String())
	}
	return []string{"--database", dsn, "--nats", nats, "--etcd", etcd}
}

// TestClusterTwoProcesses runs one deployment as two processes with
// every role, sharing the database, NATS and etcd: they split the room
// partitions between them, a message sent through one is synced through
// the other, and when one stops (gracefully) the other takes all its
// partitions over at once and sending goes on.
func TestClusterTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster mode: not in -short")
	}
	shared := clusterBackend(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "cluster-" + hex.EncodeToString(b[:]) + ".test"
	// One deployment: one server name and one signing key.
	keyPath := filepath.Join(t.TempDir(), "signing.key")
	be := backend{Name: "cluster", args: func(*testing.T) []string { return shared }}
	// A lease that would outlive the test: partitions must move because
	// the stopped process releases them, not because its lease expired.
	longLease := func(s *server) { s.coordTTL = time.Minute }
	start := func() *testServer {
		ts := startServerWith(t, be, longLease, "--server-name", name, "--signing-key-path", keyPath)
		if ts.srv.coord == nil {
			t.Fatal("the server does not use the etcd coordinator")
		}
		return ts
	}
	p1, p2 := start(), start()

	const rooms = roomserver.Resource
	n := p1.srv.bus.Partitions()
	owned := func(ts *testServer) []int { return ts.srv.coord.Owned(rooms) }
	testenv.Eventually(t, 30*time.Second, "the two processes split the room partitions", func() bool {
		o1, o2 := owned(p1), owned(p2)
		all := slices.Sorted(slices.Values(append(slices.Clone(o1), o2...)))
		return len(o1) > 0 && len(o2) > 0 && slices.Equal(all, allPartitions(n))
	})
	testenv.Eventually(t, 30*time.Second, "one process runs the sync indexer", func() bool {
		return len(p1.srv.coord.Owned(syncapi.IndexerResource))+len(p2.srv.coord.Owned(syncapi.IndexerResource)) == 1
	})

	alice := p1.register("alice")
	roomID := alice.createRoom(map[string]any{"name": "cluster"})
	// Send through the process that does not own the room's partition,
	// so that the write crosses NATS to the other one; sync through the
	// owner.
	part := bus.PartitionOf(roomID, n)
	owner, other := p1, p2
	if slices.Contains(owned(p2), part) {
		owner, other = p2, p1
	}
	on := func(ts *testServer) *client {
		return &client{ts: ts, UserID: alice.UserID, DeviceID: alice.DeviceID, Token: alice.Token}
	}
	first := on(other).send(roomID, "sent through the process without the room")
	testenv.Eventually(t, 15*time.Second, "the message is synced through the other process", func() bool {
		return hasEvent(on(owner).sync(fullSync), roomID, first)
	})

	// The owner of the room's partition stops: the other takes every
	// partition over without waiting for the lease.
	stopped := time.Now()
	owner.srv.shutdown()
	testenv.Eventually(t, 20*time.Second, "the survivor owns every room partition", func() bool {
		return slices.Equal(owned(other), allPartitions(n)) && len(other.srv.coord.Owned(syncapi.IndexerResource)) == 1
	})
	t.Logf("room partitions moved %v after the shutdown began", time.Since(stopped))
	second := on(other).send(roomID, "sent after the owner stopped")
	testenv.Eventually(t, 15*time.Second, "both messages are synced through the survivor", func() bool {
		s := on(other).sync(fullSync)
		return hasEvent(s, roomID, first) && hasEvent(s, roomID, second)
	})
	if r := other.do("GET", "/readyz", "", nil); r.Status != 200 {
		t.Errorf("the survivor is not ready: %d %s", r.Status, r.Raw)
	}
}

func allPartitions(n int) []int {
	ps := make([]int, n)
	for i := range ps {
		ps[i] = i
	}
	return ps
}

// hasEvent reports whether a /sync response holds the event in the
// timeline of a joined room.
func hasEvent(resp map[string]any, roomID, eventID string) bool {
	return slices.Contains(timelineIDs(resp, roomID), eventID)
}

// fullSync is an initial /sync with a timeline long enough for the room.
var fullSync = url.Values{"filter": {`{"room":{"timeline":{"limit":50}}}`}}

// --etcd alone would split partitions between processes that do not share
// their writes: serve refuses it without a shared NATS and database.
func TestClusterModeNeedsSharedNATSAndDatabase(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--etcd", "http://127.0.0.1:1"}, "--etcd needs --nats"},
		{[]string{"--etcd", "http://127.0.0.1:1", "--nats", "nats://127.0.0.1:1"}, "--etcd needs a postgres:// --database"},
	} {
		args := append([]string{"serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0",
			"--federation-listen", "127.0.0.1:0", "--metrics-listen", ""}, tc.args...)
		code, _, errs := runAxon(t, nil, args...)
		if code != exitFailed || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q", tc.args, code, errs)
		}
	}
}
