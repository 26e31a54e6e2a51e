package main

// Helpers of the HTTP-level Client-Server API suite (api_*_test.go). The
// suite drives a whole server the way clients do, over HTTP only, and
// checks what the spec (v1.19) requires.
//
// Every helper here takes the *testing.T of the (sub)test that calls it, so
// that a failed precondition stops that subtest only; the harness's own
// client methods report on the test that started the server, which is
// wrong from inside parallel subtests.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/testenv"
)

const apiV3 = "/_matrix/client/v3"

// apiHTTP is the suite's HTTP client. Its timeout only stops a hung
// request from hanging the test binary; no test relies on it.
var apiHTTP = &http.Client{Timeout: 90 * time.Second}

var apiSeq atomic.Int64

// apiUniq returns prefix with a number that no other call returns, for
// localparts, aliases and transaction IDs.
func apiUniq(prefix string) string { return fmt.Sprintf("%s%d", prefix, apiSeq.Add(1)) }

func apiEsc(s string) string { return url.PathEscape(s) }

// apiRaw sends a request without a *testing.T (for goroutines). body may be
// nil, a []byte (sent raw) or a value encoded as JSON.
func apiRaw(method, fullURL, token string, body any) (response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, fullURL, rd)
	if err != nil {
		return response{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := apiHTTP.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	r := response{Status: resp.StatusCode, Raw: raw, Header: resp.Header}
	_ = json.Unmarshal(raw, &r.Body)
	return r, nil
}

// apiDo sends a request to a full path (/_matrix/…) of ts.
func apiDo(t *testing.T, ts *testServer, method, path, token string, body any) response {
	t.Helper()
	r, err := apiRaw(method, ts.base+path, token, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// call sends a request to a path relative to /_matrix/client/v3.
func (c *client) apiCall(t *testing.T, method, path string, body any) response {
	t.Helper()
	return apiDo(t, c.ts, method, apiV3+path, c.Token, body)
}

// ok is call that fails the test unless the answer is 200.
func (c *client) apiOK(t *testing.T, method, path string, body any) map[string]any {
	t.Helper()
	r := c.apiCall(t, method, path, body)
	if r.Status != 200 {
		t.Fatalf("%s %s as %s: %d %s", method, path, c.UserID, r.Status, r.Raw)
	}
	return r.Body
}

func (c *client) apiLocalpart() string {
	lp, _, _ := strings.Cut(strings.TrimPrefix(c.UserID, "@"), ":")
	return lp
}

func apiPassword(localpart string) string { return "pw-" + localpart + "-long-enough" }

// apiUser registers a user whose localpart starts with prefix (made
// unique) and returns its first device.
func apiUser(t *testing.T, ts *testServer, prefix string) *client {
	t.Helper()
	lp := apiUniq(strings.ToLower(prefix))
	body := map[string]any{"username": lp, "password": apiPassword(lp)}
	r := apiDo(t, ts, "POST", apiV3+"/register", "", body)
	if r.Status != 401 {
		t.Fatalf("register %s: first step %d %s", lp, r.Status, r.Raw)
	}
	body["auth"] = map[string]any{"type": "m.login.dummy", "session": r.Body["session"]}
	r = apiDo(t, ts, "POST", apiV3+"/register", "", body)
	if r.Status != 200 {
		t.Fatalf("register %s: %d %s", lp, r.Status, r.Raw)
	}
	return &client{ts: ts, UserID: r.Body["user_id"].(string), DeviceID: r.Body["device_id"].(string), Token: r.Body["access_token"].(string)}
}

// login logs c's user in again: a new device (deviceID "" lets the server
// choose).
func (c *client) apiLogin(t *testing.T, deviceID string) *client {
	t.Helper()
	body := map[string]any{
		"type":       "m.login.password",
		"identifier": map[string]any{"type": "m.id.user", "user": c.apiLocalpart()},
		"password":   apiPassword(c.apiLocalpart()),
	}
	if deviceID != "" {
		body["device_id"] = deviceID
	}
	r := apiDo(t, c.ts, "POST", apiV3+"/login", "", body)
	if r.Status != 200 {
		t.Fatalf("login %s: %d %s", c.UserID, r.Status, r.Raw)
	}
	return &client{ts: c.ts, UserID: r.Body["user_id"].(string), DeviceID: r.Body["device_id"].(string), Token: r.Body["access_token"].(string)}
}

func (c *client) apiRoom(t *testing.T, body map[string]any) string {
	t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	return c.apiOK(t, "POST", "/createRoom", body)["room_id"].(string)
}

func (c *client) apiJoin(t *testing.T, roomIDOrAlias string) string {
	t.Helper()
	return c.apiOK(t, "POST", "/join/"+apiEsc(roomIDOrAlias), map[string]any{})["room_id"].(string)
}

// sendTxn sends an event with an explicit transaction ID and returns the
// raw answer.
func (c *client) apiSend(t *testing.T, roomID, evType, txn string, content any) response {
	t.Helper()
	return c.apiCall(t, "PUT", "/rooms/"+apiEsc(roomID)+"/send/"+apiEsc(evType)+"/"+apiEsc(txn), content)
}

// text sends an m.text message and returns its event ID.
func (c *client) apiText(t *testing.T, roomID, body string) string {
	t.Helper()
	r := c.apiSend(t, roomID, "m.room.message", apiUniq("t"), map[string]any{"msgtype": "m.text", "body": body})
	if r.Status != 200 {
		t.Fatalf("send %q as %s: %d %s", body, c.UserID, r.Status, r.Raw)
	}
	return r.Body["event_id"].(string)
}

// apiStatePath is the path of a state event; an empty state key uses the
// form without a trailing slash.
func apiStatePath(roomID, evType, stateKey string) string {
	p := "/rooms/" + apiEsc(roomID) + "/state/" + apiEsc(evType)
	if stateKey != "" {
		p += "/" + apiEsc(stateKey)
	}
	return p
}

func (c *client) apiPutState(t *testing.T, roomID, evType, stateKey string, content any) string {
	t.Helper()
	return c.apiOK(t, "PUT", apiStatePath(roomID, evType, stateKey), content)["event_id"].(string)
}

// stateContent returns the content of a state event (GET …/state/type/key).
func (c *client) apiState(t *testing.T, roomID, evType, stateKey string) map[string]any {
	t.Helper()
	return c.apiOK(t, "GET", apiStatePath(roomID, evType, stateKey), nil)
}

func (c *client) apiJoinedRooms(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, r := range c.apiOK(t, "GET", "/joined_rooms", nil)["joined_rooms"].([]any) {
		out = append(out, r.(string))
	}
	return out
}

// apiWantErr checks a standard error response.
func apiWantErr(t *testing.T, r response, status int, errcode string) {
	t.Helper()
	if r.Status != status || r.Body["errcode"] != errcode {
		t.Errorf("want %d %s, got %d %s", status, errcode, r.Status, r.Raw)
		return
	}
	if msg, ok := r.Body["error"].(string); !ok || msg == "" {
		t.Errorf("%s: the error response has no human-readable error: %s", errcode, r.Raw)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", errcode, ct)
	}
}

// apiEvent is a ClientEvent (or a stripped state event).
type apiEvent struct {
	EventID        string         `json:"event_id"`
	Type           string         `json:"type"`
	Sender         string         `json:"sender"`
	StateKey       *string        `json:"state_key"`
	RoomID         string         `json:"room_id"`
	Redacts        string         `json:"redacts"`
	OriginServerTS int64          `json:"origin_server_ts"`
	Content        map[string]any `json:"content"`
	Unsigned       map[string]any `json:"unsigned"`
}

func (e apiEvent) isState(typ, stateKey string) bool {
	return e.Type == typ && e.StateKey != nil && *e.StateKey == stateKey
}

func (e apiEvent) String() string {
	sk := ""
	if e.StateKey != nil {
		sk = fmt.Sprintf("[%q]", *e.StateKey)
	}
	return fmt.Sprintf("%s%s %s %v", e.Type, sk, e.EventID, e.Content)
}

type apiEventBatch struct {
	Events []apiEvent `json:"events"`
}

type apiTimeline struct {
	Events    []apiEvent `json:"events"`
	Limited   bool       `json:"limited"`
	PrevBatch string     `json:"prev_batch"`
}

type apiJoined struct {
	Timeline    apiTimeline    `json:"timeline"`
	State       apiEventBatch  `json:"state"`
	AccountData apiEventBatch  `json:"account_data"`
	Ephemeral   apiEventBatch  `json:"ephemeral"`
	Summary     map[string]any `json:"summary"`
}

type apiInvited struct {
	InviteState apiEventBatch `json:"invite_state"`
}

type apiLeft struct {
	Timeline apiTimeline   `json:"timeline"`
	State    apiEventBatch `json:"state"`
}

type apiSyncResp struct {
	NextBatch string `json:"next_batch"`
	Rooms     struct {
		Join   map[string]apiJoined  `json:"join"`
		Invite map[string]apiInvited `json:"invite"`
		Leave  map[string]apiLeft    `json:"leave"`
	} `json:"rooms"`
	raw map[string]any
}

func apiDecodeSync(t *testing.T, r response) *apiSyncResp {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("/sync: %d %s", r.Status, r.Raw)
	}
	var s apiSyncResp
	if err := json.Unmarshal(r.Raw, &s); err != nil {
		t.Fatalf("/sync: %v in %s", err, r.Raw)
	}
	s.raw = r.Body
	return &s
}

// apiSync calls /sync once.
func (c *client) apiSync(t *testing.T, q url.Values) *apiSyncResp {
	t.Helper()
	return apiDecodeSync(t, c.apiCall(t, "GET", "/sync?"+q.Encode(), nil))
}

// apiSyncUntil calls /sync with q until cond holds of a response. Events
// reach /sync through the sync role's index, after the write that made
// them has answered, so a test waits for what it expects; every call uses
// the same since, so the response that satisfies cond covers the whole
// range. Incremental calls long-poll so that the loop does not spin.
func (c *client) apiSyncUntil(t *testing.T, q url.Values, what string, cond func(s *apiSyncResp) bool) *apiSyncResp {
	t.Helper()
	q2 := url.Values{}
	for k, v := range q {
		q2[k] = v
	}
	if q2.Get("since") != "" && q2.Get("timeout") == "" {
		q2.Set("timeout", "1000")
	}
	var last *apiSyncResp
	testenv.Eventually(t, 15*time.Second, c.UserID+" /sync: "+what, func() bool {
		last = c.apiSync(t, q2)
		return cond(last)
	})
	return last
}

// apiSyncUntilEvent waits until the room's timeline (joined, or left when
// the user has left) contains the event.
func (c *client) apiSyncUntilEvent(t *testing.T, q url.Values, roomID, eventID string) *apiSyncResp {
	t.Helper()
	return c.apiSyncUntil(t, q, "timeline of "+roomID+" has "+eventID, func(s *apiSyncResp) bool {
		if jr, ok := s.Rooms.Join[roomID]; ok && apiIndexOf(jr.Timeline.Events, eventID) >= 0 {
			return true
		}
		lr, ok := s.Rooms.Leave[roomID]
		return ok && apiIndexOf(lr.Timeline.Events, eventID) >= 0
	})
}

func apiIndexOf(evs []apiEvent, eventID string) int {
	return slices.IndexFunc(evs, func(e apiEvent) bool { return e.EventID == eventID })
}

func apiIDs(evs []apiEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.EventID
	}
	return out
}

// apiFindState returns the state event of the type and key in evs.
func apiFindState(evs []apiEvent, typ, stateKey string) (apiEvent, bool) {
	for _, e := range evs {
		if e.isState(typ, stateKey) {
			return e, true
		}
	}
	return apiEvent{}, false
}

// apiMemberKeys returns the state keys of the m.room.member events in evs,
// sorted.
func apiMemberKeys(evs []apiEvent) []string {
	var out []string
	for _, e := range evs {
		if e.Type == "m.room.member" && e.StateKey != nil {
			out = append(out, *e.StateKey)
		}
	}
	slices.Sort(out)
	return out
}

func apiSorted(s ...string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// apiFilter encodes a filter for the filter query parameter.
func apiFilter(f any) string {
	b, err := json.Marshal(f)
	if err != nil {
		panic(err)
	}
	return string(b)
}

type apiMessagesResp struct {
	Start string     `json:"start"`
	End   string     `json:"end"`
	Chunk []apiEvent `json:"chunk"`
	State []apiEvent `json:"state"`
	raw   map[string]any
}

// messages calls GET /rooms/{roomId}/messages.
func (c *client) apiMessages(t *testing.T, roomID string, q url.Values) *apiMessagesResp {
	t.Helper()
	r := c.apiCall(t, "GET", "/rooms/"+apiEsc(roomID)+"/messages?"+q.Encode(), nil)
	if r.Status != 200 {
		t.Fatalf("/messages %v as %s: %d %s", q, c.UserID, r.Status, r.Raw)
	}
	var m apiMessagesResp
	if err := json.Unmarshal(r.Raw, &m); err != nil {
		t.Fatalf("/messages: %v in %s", err, r.Raw)
	}
	m.raw = r.Body
	return &m
}

// getEvent calls GET /rooms/{roomId}/event/{eventId}.
func (c *client) apiGetEvent(t *testing.T, roomID, eventID string) apiEvent {
	t.Helper()
	r := c.apiCall(t, "GET", "/rooms/"+apiEsc(roomID)+"/event/"+apiEsc(eventID), nil)
	if r.Status != 200 {
		t.Fatalf("/event %s: %d %s", eventID, r.Status, r.Raw)
	}
	var e apiEvent
	if err := json.Unmarshal(r.Raw, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// fullState returns GET /rooms/{roomId}/state.
func (c *client) apiFullState(t *testing.T, roomID string) []apiEvent {
	t.Helper()
	r := c.apiCall(t, "GET", "/rooms/"+apiEsc(roomID)+"/state", nil)
	if r.Status != 200 {
		t.Fatalf("/state: %d %s", r.Status, r.Raw)
	}
	var evs []apiEvent
	if err := json.Unmarshal(r.Raw, &evs); err != nil {
		t.Fatal(err)
	}
	return evs
}

// apiParallel runs the suite's top-level tests side by side when every
// server they start is self-contained (the embedded backend). Servers of
// the postgres+nats backend share one external NATS server, whose streams
// are not namespaced per server: two of them running at once consume each
// other's room input, so then the tests run one after the other.
func apiParallel(t *testing.T) {
	for _, b := range backends() {
		if b.Skip == "" && b.Name != "embedded" {
			return
		}
	}
	t.Parallel()
}

// apiCase is one subtest of an API suite, run against a shared server.
type apiCase struct {
	name string
	f    func(t *testing.T, ts *testServer)
}

// runAPICases runs the cases as parallel subtests on one server per
// backend.
func runAPICases(t *testing.T, cases []apiCase) {
	apiParallel(t)
	forEachBackend(t, func(t *testing.T, b backend) {
		ts := startServer(t, b)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.f(t, ts)
			})
		}
	})
}
