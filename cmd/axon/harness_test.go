package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/config"
	"github.com/axon-hs/axon/internal/testenv"
)

// testServer is a whole axon process (every role) started in the test, on
// a random loopback port.
type testServer struct {
	t    *testing.T
	srv  *server
	base string // http://127.0.0.1:port
	name string // server name
}

// backend is what a test server runs on: the embedded default (SQLite and
// an in-process NATS), or PostgreSQL and an external NATS server when the
// environment provides them (make test does: AXON_TEST_POSTGRES and
// AXON_TEST_NATS).
type backend struct {
	Name string
	Skip string
	args func(t *testing.T) []string
}

func backends() []backend {
	bs := []backend{{Name: "embedded", args: func(t *testing.T) []string { return nil }}}
	pg, nats := os.Getenv("AXON_TEST_POSTGRES"), os.Getenv("AXON_TEST_NATS")
	ext := backend{Name: "postgres+nats"}
	switch {
	case pg == "" || nats == "":
		ext.Skip = "AXON_TEST_POSTGRES and AXON_TEST_NATS are not both set (make test sets them)"
	default:
		ext.args = func(t *testing.T) []string {
			dsn := testenv.PostgresDSN(t, pg)
			// The shared database is migrated by `axon migrate`, as in a
			// real deployment.
			var out, errb bytes.Buffer
			if code := run(context.Background(), []string{"migrate", "--database", dsn}, nil, &out, &errb); code != 0 {
				t.Fatalf("axon migrate: %d %s", code, errb.String())
			}
			return []string{"--database", dsn, "--nats", nats}
		}
	}
	return append(bs, ext)
}

// forEachBackend runs f as a subtest on every backend.
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends() {
		t.Run(b.Name, func(t *testing.T) {
			if b.Skip != "" {
				t.Skip(b.Skip)
			}
			f(t, b)
		})
	}
}

var serverCount atomic.Int64

// startServer starts a server on b with extra flags.
func startServer(t *testing.T, b backend, extra ...string) *testServer {
	t.Helper()
	return startServerWith(t, b, nil, extra...)
}

// startServerWith is startServer with a hook that adjusts the server
// before it starts (nil: none).
func startServerWith(t *testing.T, b backend, adjust func(*server), extra ...string) *testServer {
	t.Helper()
	dir := t.TempDir()
	name := fmt.Sprintf("hs%d.test", serverCount.Add(1))
	args := []string{"--data-dir", dir, "--server-name", name, "--listen", "127.0.0.1:0", "--federation-listen", "127.0.0.1:0", "--metrics-listen", "",
		"--registration", "open", "--log-level", "warn", "--rate-limit-ip", "off", "--rate-limit-user", "off"}
	args = append(args, b.args(t)...)
	args = append(args, extra...)
	cfg, err := config.Load(args, nil, os.ReadFile)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logw := &testLogWriter{t: t}
	// The cheapest bcrypt cost: the suite registers and logs in hundreds
	// of users, and hashing is not what it tests.
	s := &server{cfg: cfg, log: newLogger(cfg, logw), readinessGrace: 0, drainTimeout: 5 * time.Second, bcryptCost: 4}
	if adjust != nil {
		adjust(s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.start(ctx); err != nil {
		s.close()
		t.Fatalf("start: %v", err)
	}
	ts := &testServer{t: t, srv: s, base: "http://" + s.addrs[0], name: string(cfg.ServerName)}
	t.Cleanup(func() {
		s.shutdown()
		logw.done.Store(true)
	})
	testenv.Eventually(t, 10*time.Second, "server ready", func() bool {
		resp, err := http.Get(ts.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return ts
}

// testLogWriter sends the server's logs to the test log while the test
// runs.
type testLogWriter struct {
	t    *testing.T
	done atomic.Bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// client is one logged-in device.
type client struct {
	ts       *testServer
	UserID   string
	DeviceID string
	Token    string
	txn      atomic.Int64
}

// response is a decoded reply.
type response struct {
	Status int
	Body   map[string]any
	Raw    []byte
	Header http.Header
}

// do sends a request; body may be nil, a []byte (sent raw) or a value
// encoded as JSON.
func (ts *testServer) do(method, path, token string, body any) response {
	ts.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			ts.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, ts.base+path, rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{Status: resp.StatusCode, Raw: raw, Header: resp.Header}
	_ = json.Unmarshal(raw, &r.Body)
	return r
}

// register creates a user with the dummy UIA stage and returns its client.
func (ts *testServer) register(localpart string) *client {
	ts.t.Helper()
	body := map[string]any{"username": localpart, "password": "pw-" + localpart + "-long-enough"}
	r := ts.do("POST", "/_matrix/client/v3/register", "", body)
	if r.Status != 401 {
		ts.t.Fatalf("register %s: first step %d %s", localpart, r.Status, r.Raw)
	}
	body["auth"] = map[string]any{"type": "m.login.dummy", "session": r.Body["session"]}
	r = ts.do("POST", "/_matrix/client/v3/register", "", body)
	if r.Status != 200 {
		ts.t.Fatalf("register %s: %d %s", localpart, r.Status, r.Raw)
	}
	return &client{ts: ts, UserID: r.Body["user_id"].(string), DeviceID: r.Body["device_id"].(string), Token: r.Body["access_token"].(string)}
}

func (c *client) do(method, path string, body any) response {
	c.ts.t.Helper()
	return c.ts.do(method, "/_matrix/client/v3"+path, c.Token, body)
}

// must sends a request and fails the test unless it answers 200.
func (c *client) must(method, path string, body any) map[string]any {
	c.ts.t.Helper()
	r := c.do(method, path, body)
	if r.Status != 200 {
		c.ts.t.Fatalf("%s %s: %d %s", method, path, r.Status, r.Raw)
	}
	return r.Body
}

func (c *client) createRoom(body map[string]any) string {
	c.ts.t.Helper()
	return c.must("POST", "/createRoom", body)["room_id"].(string)
}

func (c *client) send(roomID, text string) string {
	c.ts.t.Helper()
	path := fmt.Sprintf("/rooms/%s/send/m.room.message/txn%d", url.PathEscape(roomID), c.txn.Add(1))
	return c.must("PUT", path, map[string]any{"msgtype": "m.text", "body": text})["event_id"].(string)
}

// sync calls /sync with the query (since, timeout, filter …).
func (c *client) sync(q url.Values) map[string]any {
	c.ts.t.Helper()
	return c.must("GET", "/sync?"+q.Encode(), nil)
}
