package userdata

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/internal/store/storetest"
	"github.com/axon-hs/axon/internal/testenv"
)

const (
	alice = "@alice:test.example"
	bob   = "@bob:test.example"
	carol = "@carol:test.example"
	room1 = "!room1:test.example"
	room2 = "!room2:test.example"
	evA   = "$eventA:test.example"
	evB   = "$eventB:test.example"
)

type wakeCall struct {
	users, rooms []string
}

// world is the fake rest of the server: room memberships, devices, and
// the wake-ups the service asked for.
type world struct {
	mu      sync.Mutex
	rooms   map[string][]string // room → joined members
	devices map[string][]string // user → devices
	wakes   []wakeCall
	local   []wakeCall
}

func newWorld() *world {
	return &world{
		rooms: map[string][]string{
			room1: {alice, bob},
			room2: {alice, carol},
		},
		devices: map[string][]string{
			alice: {"ADEV1", "ADEV2"},
			bob:   {"BDEV"},
			carol: {"CDEV"},
		},
	}
}

func (w *world) member(_ context.Context, roomID, userID string) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Contains(w.rooms[roomID], userID), nil
}

func (w *world) members(_ context.Context, roomIDs []string) ([]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, r := range roomIDs {
		for _, u := range w.rooms[r] {
			if !slices.Contains(out, u) {
				out = append(out, u)
			}
		}
	}
	return out, nil
}

func (w *world) roomsOf(_ context.Context, userID string) ([]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for r, m := range w.rooms {
		if slices.Contains(m, userID) {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (w *world) devicesOf(_ context.Context, userID string) ([]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.devices[userID]), nil
}

func (w *world) wake(users, rooms []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.wakes = append(w.wakes, wakeCall{sorted(users), sorted(rooms)})
}

func (w *world) localWake(users, rooms []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.local = append(w.local, wakeCall{sorted(users), sorted(rooms)})
}

// takeWakes returns and forgets the wake-ups so far.
func (w *world) takeWakes() (db, local []wakeCall) {
	w.mu.Lock()
	defer w.mu.Unlock()
	db, local = w.wakes, w.local
	w.wakes, w.local = nil, nil
	return db, local
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// harness is one Service over a fresh database, with a fake clock, a fake
// world and an HTTP mux.
type harness struct {
	t     *testing.T
	db    *store.DB
	svc   *Service
	clock *testenv.Clock
	world *world
	h     http.Handler
}

func openDB(t *testing.T, e testenv.Engine) *store.DB {
	t.Helper()
	return storetest.Open(t, e, Migrations())
}

// fakeAuth takes "Bearer user|device" (or "user|device|guest") as the
// access token.
func fakeAuth(r *http.Request) (Device, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return Device{}, httpx.MissingToken("no token")
	}
	u, d, ok := strings.Cut(tok, "|")
	if !ok {
		return Device{}, httpx.UnknownToken("bad token", false)
	}
	d, guest := strings.CutSuffix(d, "|guest")
	return Device{UserID: u, DeviceID: d, IsGuest: guest}, nil
}

func newHarness(t *testing.T, e testenv.Engine, tweak ...func(*Config)) *harness {
	t.Helper()
	return newHarnessOn(t, openDB(t, e), newWorld(), tweak...)
}

func newHarnessOn(t *testing.T, db *store.DB, w *world, tweak ...func(*Config)) *harness {
	clock := testenv.NewClock(time.UnixMilli(1_700_000_000_000))
	cfg := Config{
		Now:        clock.Now,
		ServerName: "test.example",
		Devices:    w.devicesOf,
		Rooms:      w.roomsOf,
		LocalWake:  w.localWake,
	}
	for _, f := range tweak {
		f(&cfg)
	}
	svc := New(db, fakeAuth, w.member, w.members, w.wake, cfg)
	mux := http.NewServeMux()
	svc.Routes(mux)
	return &harness{t: t, db: db, svc: svc, clock: clock, world: w, h: httpx.WrapMux(mux)}
}

// do sends a request as user|device ("" for none) and returns the status,
// the Matrix error code (if any) and the body.
func (h *harness) do(method, path, as string, body any) (int, string, []byte) {
	h.t.Helper()
	return testenv.Serve(h.t, h.h, method, path, token(as), body)
}

// mustDo is do that expects 200.
func (h *harness) mustDo(method, path, as string, body any) []byte {
	h.t.Helper()
	return testenv.ServeOK(h.t, h.h, method, path, token(as), body)
}

// token is the fake access token of user|device, device DEV by default.
func token(as string) string {
	if as != "" && !strings.Contains(as, "|") {
		as += "|DEV"
	}
	return as
}

func (h *harness) pos() int64 {
	h.t.Helper()
	p, err := h.svc.Position(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

// sync runs Sync for q, with To set to the current position if zero.
func (h *harness) sync(q SyncQuery) *SyncData {
	h.t.Helper()
	if q.To == 0 {
		q.To = h.pos()
	}
	if q.ToTyping == 0 {
		q.ToTyping = h.svc.TypingPosition()
	}
	if q.JoinedRooms == nil {
		q.JoinedRooms, _ = h.world.roomsOf(context.Background(), q.UserID)
	}
	d, err := h.svc.Sync(context.Background(), q)
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

// decode turns raw events into generic values for comparisons.
func decode(t *testing.T, evs []json.RawMessage) []map[string]any {
	t.Helper()
	out := make([]map[string]any, 0, len(evs))
	for _, e := range evs {
		var m map[string]any
		if err := json.Unmarshal(e, &m); err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		out = append(out, m)
	}
	return out
}

// jsonEqual compares a JSON document to a Go value by their JSON forms.
func jsonEqual(t *testing.T, got []byte, want any) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	wb, _ := json.Marshal(want)
	_ = json.Unmarshal(wb, &w)
	gb, _ := json.Marshal(g)
	wb, _ = json.Marshal(w)
	return bytes.Equal(gb, wb)
}
