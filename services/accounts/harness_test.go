package accounts

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/internal/store/storetest"
	"github.com/axon-hs/axon/internal/testenv"
	"github.com/axon-hs/axon/matrix/id"
)

const testServer = id.ServerName("test.example")

// engine is a database the tests run against (internal/testenv).
type engine = testenv.Engine

func engines() []engine { return testenv.Engines() }

// forEachEngine runs f as a subtest on every engine.
func forEachEngine(t *testing.T, f func(t *testing.T, e engine)) { testenv.ForEachEngine(t, f) }

type profileCall struct {
	userID              id.UserID
	displayName, avatar string
}

// harness is one Service over a fresh database, served over HTTP like a
// client sees it, with recording hooks.
type harness struct {
	t     *testing.T
	db    *store.DB
	svc   *Service
	srv   *httptest.Server
	clock *testenv.Clock
	cfg   Config

	mu             sync.Mutex
	profileCalls   []profileCall
	deactivated    []id.UserID
	devicesDeleted map[id.UserID][]string
}

func openDB(t *testing.T, e engine) *store.DB {
	t.Helper()
	return storetest.Open(t, e, Migrations())
}

func newHarness(t *testing.T, e engine, mutate func(*Config)) *harness {
	t.Helper()
	return newHarnessOn(t, openDB(t, e), testenv.NewClock(time.UnixMilli(1_700_000_000_000)), mutate)
}

// newHarnessOn serves another Service on db: a second worker.
func newHarnessOn(t *testing.T, db *store.DB, clock *testenv.Clock, mutate func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, db: db, clock: clock, devicesDeleted: map[id.UserID][]string{}}
	h.cfg = Config{
		ServerName:   testServer,
		Registration: RegistrationOpen,
		BcryptCost:   bcrypt.MinCost,
		Now:          clock.Now,
		OnProfileChange: func(_ context.Context, u id.UserID, dn, av string) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.profileCalls = append(h.profileCalls, profileCall{u, dn, av})
			return nil
		},
		OnDeactivate: func(_ context.Context, u id.UserID) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.deactivated = append(h.deactivated, u)
			return nil
		},
		OnDevicesDeleted: func(_ context.Context, u id.UserID, ds []string) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.devicesDeleted[u] = append(h.devicesDeleted[u], ds...)
			return nil
		},
	}
	if mutate != nil {
		mutate(&h.cfg)
	}
	svc, err := New(db, h.cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.svc = svc
	mux := http.NewServeMux()
	svc.Routes(mux)
	h.srv = httptest.NewServer(httpx.WrapMux(mux))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *harness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	h.t.Cleanup(cancel)
	return ctx
}

// resp is a decoded response.
type resp struct {
	status int
	body   map[string]any
}

func (r resp) str(k string) string { s, _ := r.body[k].(string); return s }

func (r resp) errcode() string { return r.str("errcode") }

// do sends a request: body nil sends none, a string is sent as it is,
// anything else as JSON. token "" sends no Authorization header.
func (h *harness) do(method, path, token string, body any) resp {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequestWithContext(h.ctx(), method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	return decodeResp(h.t, res)
}

func decodeResp(t *testing.T, res *http.Response) resp {
	t.Helper()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := resp{status: res.StatusCode}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			t.Fatalf("%s %s: response is not a JSON object: %q", res.Request.Method, res.Request.URL.Path, raw)
		}
	}
	return out
}

// expect fails the test unless r has the status and (if not "") errcode.
func (h *harness) expect(r resp, status int, errcode string) {
	h.t.Helper()
	if r.status != status || r.errcode() != errcode {
		h.t.Fatalf("got %d %v, want %d %q", r.status, r.body, status, errcode)
	}
}

const v3 = "/_matrix/client/v3"

// account is a logged-in test user.
type account struct {
	userID   id.UserID
	token    string
	deviceID string
	password string
}

// register registers a user through the whole UIA dance of open
// registration.
func (h *harness) register(username, password string) account {
	h.t.Helper()
	body := map[string]any{"username": username, "password": password}
	r := h.do("POST", v3+"/register", "", body)
	h.expect(r, 401, "")
	body["auth"] = map[string]any{"type": stageDummy, "session": r.str("session")}
	r = h.do("POST", v3+"/register", "", body)
	h.expect(r, 200, "")
	return account{userID: id.UserID(r.str("user_id")), token: r.str("access_token"), deviceID: r.str("device_id"), password: password}
}

// login logs a user in with a password; extra adds fields.
func (h *harness) login(user, password string, extra map[string]any) resp {
	h.t.Helper()
	body := map[string]any{"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": user}, "password": password}
	for k, v := range extra {
		body[k] = v
	}
	return h.do("POST", v3+"/login", "", body)
}

func (h *harness) loginOK(user, password string, extra map[string]any) account {
	h.t.Helper()
	r := h.login(user, password, extra)
	h.expect(r, 200, "")
	return account{userID: id.UserID(r.str("user_id")), token: r.str("access_token"), deviceID: r.str("device_id"), password: password}
}

// withPassword runs a UIA-protected request: first without auth (401 with
// the password flow), then with an m.login.password stage for a.
func (h *harness) withPassword(method, path string, a account, body map[string]any) resp {
	h.t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	r := h.do(method, path, a.token, body)
	h.expect(r, 401, "")
	if !reflect.DeepEqual(flowsOf(r), [][]string{{stagePassword}}) {
		h.t.Fatalf("flows = %v", r.body["flows"])
	}
	body["auth"] = map[string]any{
		"type":       stagePassword,
		"session":    r.str("session"),
		"identifier": map[string]any{"type": "m.id.user", "user": string(a.userID)},
		"password":   a.password,
	}
	return h.do(method, path, a.token, body)
}

func flowsOf(r resp) [][]string {
	var out [][]string
	flows, _ := r.body["flows"].([]any)
	for _, f := range flows {
		var stages []string
		st, _ := f.(map[string]any)["stages"].([]any)
		for _, s := range st {
			stages = append(stages, s.(string))
		}
		out = append(out, stages)
	}
	return out
}

func (h *harness) whoami(token string) resp {
	h.t.Helper()
	return h.do("GET", v3+"/account/whoami", token, nil)
}
