package sender

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/coord"
	"github.com/axon-hs/axon/internal/store/storetest"
	"github.com/axon-hs/axon/internal/testenv"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/services/federation/fedclient"
)

func TestBackoff(t *testing.T) {
	for _, c := range []struct {
		n    int
		j    float64
		want time.Duration
	}{
		{1, 0, 2 * time.Second},
		{2, 0, 4 * time.Second},
		{3, 0.5, 8*time.Second + time.Second},
		{20, 0, time.Hour},
		{40, 0.999, time.Hour + time.Duration(float64(time.Hour)*0.25*0.999)},
	} {
		if got := Backoff(c.n, c.j); got != c.want {
			t.Errorf("Backoff(%d, %v) = %v, want %v", c.n, c.j, got, c.want)
		}
	}
}

// countingTransport answers every transaction after a pause, counting how
// many are in flight at once.
type countingTransport struct {
	mu            sync.Mutex
	inFlight, max int
	served        map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.inFlight++
	c.max = max(c.max, c.inFlight)
	c.served[r.URL.Host]++
	c.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	c.mu.Lock()
	c.inFlight--
	c.mu.Unlock()
	rec := httptest.NewRecorder()
	_, _ = rec.WriteString(`{"pdus":{}}`)
	return rec.Result(), nil
}

// With more destinations than MaxActive, at most MaxActive are sent to at
// once and every one is served in the end.
func TestMaxActiveDestinations(t *testing.T) {
	db := storetest.Open(t, testenv.Engines()[0], Migrations())
	key, _ := keys.Generate("s1", nil)
	tr := &countingTransport{served: map[string]int{}}
	client, err := fedclient.New(fedclient.Config{ServerName: "us.test", Key: key, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	const dests = 7
	for i := range dests {
		if _, err := db.Exec(context.Background(), `INSERT INTO sender_queue (destination, seq, room_id, event_id, pdu) VALUES ($1, 1, '!r:us.test', '$e', $2)`,
			fmt.Sprintf("d%d.test", i), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	s := New(db, nil, Config{ServerName: "us.test", Client: client, MaxActive: 2})
	stop := ownAll(t, s)
	if err := s.pokeQueued(context.Background()); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "every queue sent", func() bool {
		var n int
		_ = db.QueryRow(context.Background(), `SELECT COUNT(*) FROM sender_queue`).Scan(&n)
		return n == 0
	})
	stop()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.max > 2 || len(tr.served) != dests {
		t.Errorf("at most %d in flight (want <= 2), %d destinations served (want %d)", tr.max, len(tr.served), dests)
	}
}

// ownAll makes s own every destination partition, as the single-process
// default does, without the queue consumer or the sweeper (the test
// drives those). stop, also run when the test ends, gives them up and
// waits for their workers.
func ownAll(t testing.TB, s *Sender) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = coord.NewLocal(nil).Own(ctx, DestinationResource, DestinationPartitions, s.runPartition)
	}()
	testenv.Eventually(t, 5*time.Second, "every destination partition owned", func() bool {
		return len(s.owned()) == DestinationPartitions
	})
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// owned returns the destination partitions s owns, in order.
func (s *Sender) owned() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for p := range s.parts {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// The partition of a destination is stable (a contract between sender
// workers: these values must never change) and spreads server names over
// every partition.
func TestDestinationPartition(t *testing.T) {
	for dest, want := range map[string]int{"matrix.org": 52, "example.com:8448": 60, "them.test": 3, "[::1]:8448": 30, "": 5} {
		if got := DestinationPartition(dest); got != want {
			t.Errorf("DestinationPartition(%q) = %d, want %d", dest, got, want)
		}
	}
	seen := map[int]bool{}
	for i := range 2000 {
		p := DestinationPartition(fmt.Sprintf("server%d.example", i))
		if p < 0 || p >= DestinationPartitions {
			t.Fatalf("partition %d out of range", p)
		}
		seen[p] = true
	}
	if len(seen) != DestinationPartitions {
		t.Errorf("2000 server names fall in %d of %d partitions", len(seen), DestinationPartitions)
	}
}
