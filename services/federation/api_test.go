package federation

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store/storetest"
	"github.com/axon-hs/axon/internal/testenv"
	"github.com/axon-hs/axon/matrix/acl"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/matrix/roomversion"
	"github.com/axon-hs/axon/matrix/xmatrix"
	"github.com/axon-hs/axon/services/keyserver"
	"github.com/axon-hs/axon/services/roomserver"
)

const (
	testRoom   = "!room:our.test"
	deniedRoom = "!denied:our.test" // its server ACL denies remote.test
)

// keyNet answers key requests with the handlers of other key servers, in
// process (the federation client does it over HTTPS).
type keyNet map[string]http.Handler

func (n keyNet) ServerKeys(_ context.Context, server string) ([]byte, error) {
	h := n[server]
	if h == nil {
		return nil, fmt.Errorf("%s unreachable", server)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/_matrix/key/v2/server", nil))
	return rec.Body.Bytes(), nil
}

func (n keyNet) QueryKeys(context.Context, string, []byte) ([]byte, error) {
	return nil, fmt.Errorf("no notaries here")
}

// fixture is our server's API and a remote server whose key it can fetch.
// The room role is stood in for by submit, which records the Inputs.
type fixture struct {
	mux       *http.ServeMux
	remoteKey *keys.SigningKey
	ourKey    *keys.SigningKey
	mu        sync.Mutex
	inputs    []*roomserver.Input
	invites   []*roomserver.RemoteInvite
}

// Receive records invites to rooms our.test is not in.
func (f *fixture) Receive(_ context.Context, inv *roomserver.RemoteInvite) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.invites = append(f.invites, inv)
	return nil
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f, _ := newFixtureWith(t, nil)
	return f
}

// newFixtureWith is newFixture with the API's Config changed by mod.
func newFixtureWith(t *testing.T, mod func(*Config)) (*fixture, *API) {
	t.Helper()
	e := testenv.Engines()[0]
	remoteKey, _ := keys.Generate("r1", nil)
	remote, err := keyserver.New(storetest.Open(t, e, keyserver.Migrations()), keyserver.Config{ServerName: "remote.test", Keys: []*keys.SigningKey{remoteKey}})
	if err != nil {
		t.Fatal(err)
	}
	rmux := http.NewServeMux()
	remote.Routes(rmux)
	ourKey, _ := keys.Generate("o1", nil)
	ks, err := keyserver.New(storetest.Open(t, e, keyserver.Migrations()), keyserver.Config{
		ServerName: "our.test", Keys: []*keys.SigningKey{ourKey}, Fetcher: keyNet{"remote.test": rmux}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{remoteKey: remoteKey, ourKey: ourKey}
	cfg := Config{
		ServerName: "our.test", Keys: ks, DB: storetest.Open(t, e, Migrations()), Reader: roomserver.NewReader(nil),
		Key: ourKey, Invites: f,
		ServerACL: func(_ context.Context, roomID string) (*acl.ACL, error) {
			if roomID == deniedRoom {
				return acl.Parse(cjson.ObjectValue(cjson.Member{Key: "allow", Value: cjson.StringArray([]string{"*"})},
					cjson.Member{Key: "deny", Value: cjson.StringArray([]string{"remote.test"})})), nil
			}
			return nil, nil
		},
		RoomVersion: func(_ context.Context, roomID string) (*roomversion.Version, error) {
			if roomID == testRoom || roomID == deniedRoom {
				return roomversion.MustLookup("10"), nil
			}
			return nil, nil
		},
		Submit: func(_ context.Context, in *roomserver.Input) (roomserver.Result, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.inputs = append(f.inputs, in)
			res := roomserver.Result{RoomID: in.RoomID, PDUs: map[string]string{}}
			for _, raw := range in.PDUs {
				ev, err := event.Parse(roomversion.MustLookup("10"), raw)
				if err != nil {
					return res, err
				}
				res.PDUs[ev.ID()] = ""
				if strings.Contains(ev.Content().Get("body").StrOr(""), "forbidden") {
					res.PDUs[ev.ID()] = roomserver.OutcomeRejected + "not allowed"
				}
			}
			return res, nil
		},
		Profile: func(_ context.Context, userID string) (string, string, error) {
			if userID != "@alice:our.test" {
				return "", "", httpx.NotFound("no such user")
			}
			return "Alice", "mxc://our.test/a", nil
		},
		RoomForAlias: func(_ context.Context, alias string) (string, []string, error) {
			if alias == "#room:our.test" {
				return "!r:our.test", []string{"our.test", "remote.test"}, nil
			}
			return "", nil, nil
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	api, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.mux = http.NewServeMux()
	api.Routes(f.mux)
	return f, api
}

// do sends a request signed as remote.test (with the header given by
// sign, which may tamper with it).
func (f *fixture) do(t *testing.T, method, uri string, body []byte, auth func(h xmatrix.Header) string) (int, cjson.Value) {
	t.Helper()
	h, err := xmatrix.Sign(method, uri, "remote.test", "our.test", body, f.remoteKey)
	if err != nil {
		// A body that is not JSON cannot be signed: send a header over
		// no body, which the server never gets to check.
		if h, err = xmatrix.Sign(method, uri, "remote.test", "our.test", nil, f.remoteKey); err != nil {
			t.Fatal(err)
		}
	}
	req := httptest.NewRequest(method, uri, bytes.NewReader(body))
	if v := auth(h); v != "" {
		req.Header.Set("Authorization", v)
	}
	rec := httptest.NewRecorder()
	f.mux.ServeHTTP(rec, req)
	v, _ := cjson.Parse(rec.Body.Bytes(), cjson.Lenient)
	return rec.Code, v
}

func signed(h xmatrix.Header) string { return h.String() }

func TestQueries(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		uri    string
		status int
		want   string // canonical body, or errcode
	}{
		{"/_matrix/federation/v1/query/profile?user_id=%40alice%3Aour.test", 200, `{"avatar_url":"mxc://our.test/a","displayname":"Alice"}`},
		{"/_matrix/federation/v1/query/profile?user_id=@alice:our.test&field=displayname", 200, `{"displayname":"Alice"}`},
		{"/_matrix/federation/v1/query/profile?user_id=@alice:our.test&field=m.tz", 404, "M_NOT_FOUND"},
		{"/_matrix/federation/v1/query/profile?user_id=@bob:our.test", 404, "M_NOT_FOUND"},
		{"/_matrix/federation/v1/query/profile?user_id=@bob:remote.test", 400, "M_INVALID_PARAM"},
		{"/_matrix/federation/v1/query/profile?user_id=bob", 400, "M_INVALID_PARAM"},
		{"/_matrix/federation/v1/query/profile", 400, "M_MISSING_PARAM"},
		{"/_matrix/federation/v1/query/directory?room_alias=%23room%3Aour.test", 200, `{"room_id":"!r:our.test","servers":["our.test","remote.test"]}`},
		{"/_matrix/federation/v1/query/directory?room_alias=%23nope%3Aour.test", 404, "M_NOT_FOUND"},
		{"/_matrix/federation/v1/query/directory?room_alias=%23room%3Aremote.test", 404, "M_NOT_FOUND"},
		{"/_matrix/federation/v1/query/directory?room_alias=room", 400, "M_INVALID_PARAM"},
	} {
		status, v := f.do(t, "GET", c.uri, nil, signed)
		got := v.String()
		if status != 200 {
			got = v.Get("errcode").StrOr("")
		}
		if status != c.status || got != c.want {
			t.Errorf("%s: %d %s, want %d %s", c.uri, status, got, c.status, c.want)
		}
	}
}

// Every way a request can fail authentication is a 401 M_UNAUTHORIZED, and
// the endpoint does not run.
func TestAuthentication(t *testing.T) {
	f := newFixture(t)
	uri := "/_matrix/federation/v1/query/profile?user_id=@alice:our.test"
	other, _ := keys.Generate("r1", nil)
	for name, auth := range map[string]func(h xmatrix.Header) string{
		"no header":       func(xmatrix.Header) string { return "" },
		"bearer token":    func(xmatrix.Header) string { return "Bearer abc" },
		"malformed":       func(xmatrix.Header) string { return `X-Matrix origin=remote.test,key=` },
		"wrong signature": func(h xmatrix.Header) string { h.Sig = h.Sig[:10] + "AAAA" + h.Sig[14:]; return h.String() },
		"unknown key":     func(h xmatrix.Header) string { h.Key = "ed25519:nope"; return h.String() },
		"other origin":    func(h xmatrix.Header) string { h.Origin = "third.test"; return h.String() },
		"other dest":      func(h xmatrix.Header) string { h.Destination = "elsewhere.test"; return h.String() },
		"signed for a uri": func(h xmatrix.Header) string {
			h2, _ := xmatrix.Sign("GET", "/other", "remote.test", "our.test", nil, f.remoteKey)
			return h2.String()
		},
		"forged key": func(h xmatrix.Header) string {
			h2, _ := xmatrix.Sign("GET", uri, "remote.test", "our.test", nil, other) // same key ID, other key
			return h2.String()
		},
	} {
		status, v := f.do(t, "GET", uri, nil, auth)
		if status != 401 || v.Get("errcode").StrOr("") != "M_UNAUTHORIZED" {
			t.Errorf("%s: %d %s", name, status, v)
		}
	}
	// Without destination (servers before v1.3) the request is accepted.
	status, _ := f.do(t, "GET", uri, nil, func(h xmatrix.Header) string {
		return `X-Matrix origin=remote.test,key="` + string(h.Key) + `",sig="` + h.Sig + `"`
	})
	if status != 200 {
		t.Errorf("a header without destination: %d", status)
	}
}
