package pushrules

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/internal/store/storetest"
	"github.com/axon-hs/axon/internal/testenv"
)

const (
	alice = "@alice:test.example"
	bob   = "@bob:test.example"
	v3    = "/_matrix/client/v3"
)

func openDB(t *testing.T, e testenv.Engine) *store.DB {
	t.Helper()
	return storetest.Open(t, e, Migrations())
}

// fakeAuth takes "Bearer <user ID>" as the access token.
func fakeAuth(r *http.Request) (Device, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return Device{}, httpx.MissingToken("no token")
	}
	if !strings.HasPrefix(tok, "@") {
		return Device{}, httpx.UnknownToken("bad token", false)
	}
	return Device{UserID: tok}, nil
}

// harness is one Service over a fresh database, behind an HTTP mux.
type harness struct {
	t   *testing.T
	svc *Service
	h   http.Handler
}

func newHarness(t *testing.T, e testenv.Engine) *harness {
	t.Helper()
	svc := New(openDB(t, e), fakeAuth, Config{})
	mux := http.NewServeMux()
	svc.Routes(mux)
	return &harness{t: t, svc: svc, h: httpx.WrapMux(mux)}
}

// do sends a request as user ("" for none) and returns the status, the
// Matrix error code (if any) and the body. A string body is sent as is.
func (h *harness) do(method, path, as string, body any) (int, string, []byte) {
	h.t.Helper()
	return testenv.Serve(h.t, h.h, method, path, as, body)
}

// mustDo is do that expects 200.
func (h *harness) mustDo(method, path, as string, body any) []byte {
	h.t.Helper()
	return testenv.ServeOK(h.t, h.h, method, path, as, body)
}

// global fetches the user's global ruleset.
func (h *harness) global(as string) ruleset {
	h.t.Helper()
	var rs ruleset
	if err := json.Unmarshal(h.mustDo("GET", v3+"/pushrules/global/", as, nil), &rs); err != nil {
		h.t.Fatal(err)
	}
	return rs
}

// ids returns the rule IDs of kind k in order.
func (rs ruleset) ids(k string) []string {
	out := []string{}
	for _, r := range *rs.of(k) {
		out = append(out, r.RuleID)
	}
	return out
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(t *testing.T, got, want []byte) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: %v", want, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	return bytes.Equal(gb, wb)
}
