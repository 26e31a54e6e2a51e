package main

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/testenv"
)

// TestGracefulShutdown checks the order of DESIGN.md's shutdown: readiness
// fails first while serving goes on, long-polls end early with a 200 and
// a token, then the listener closes.
func TestGracefulShutdown(t *testing.T) {
	ts := startServer(t, backends()[0])
	ts.srv.readinessGrace = 300 * time.Millisecond
	alice := ts.register("alice")
	first := alice.sync(url.Values{})

	if r := ts.do("GET", "/livez", "", nil); r.Status != 200 {
		t.Fatalf("livez %d", r.Status)
	}
	polled := make(chan response, 1)
	go func() {
		q := url.Values{"since": {first["next_batch"].(string)}, "timeout": {"30000"}}
		polled <- ts.do("GET", "/_matrix/client/v3/sync?"+q.Encode(), alice.Token, nil)
	}()
	testenv.Eventually(t, 5*time.Second, "the long-poll waits", func() bool { return ts.srv.sync.Waiters() == 1 })

	stopped := make(chan struct{})
	go func() { ts.srv.shutdown(); close(stopped) }()
	testenv.Eventually(t, 5*time.Second, "readiness fails first", func() bool {
		resp, err := http.Get(ts.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	// Still serving during the readiness grace.
	if r := ts.do("GET", "/_matrix/client/versions", "", nil); r.Status != 200 {
		t.Fatalf("not serving while draining: %d", r.Status)
	}
	select {
	case r := <-polled:
		if r.Status != 200 || r.Body["next_batch"] == nil {
			t.Fatalf("the long-poll ended with %d %s", r.Status, r.Raw)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the long-poll did not end early")
	}
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("shutdown did not finish")
	}
	if _, err := http.Get(ts.base + "/livez"); err == nil {
		t.Fatal("still listening after shutdown")
	}
}
