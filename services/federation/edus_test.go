package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/axon-hs/axon/internal/store/storetest"
	"github.com/axon-hs/axon/internal/testenv"
	"github.com/axon-hs/axon/services/roomserver"
)

// eduLog records what the EDUReceiver was asked to apply, one line per
// call.
type eduLog struct {
	mu    sync.Mutex
	calls []string
	// fail makes the calls about a user fail (or panic, for "panic").
	fail map[string]string
}

func (l *eduLog) add(user, line string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch l.fail[user] {
	case "error":
		return errors.New("the database is on fire")
	case "panic":
		panic("receiver bug")
	}
	l.calls = append(l.calls, line)
	return nil
}

func (l *eduLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.calls
	l.calls = nil
	return out
}

func (l *eduLog) receiver() EDUReceiver {
	return EDUReceiver{
		Typing: func(_ context.Context, roomID, userID string, typing bool) error {
			return l.add(userID, fmt.Sprintf("typing %s %s %v", roomID, userID, typing))
		},
		Receipt: func(_ context.Context, roomID, userID, eventID, threadID string, ts int64) error {
			return l.add(userID, fmt.Sprintf("receipt %s %s %s %q %d", roomID, userID, eventID, threadID, ts))
		},
		Presence: func(_ context.Context, p Presence) error {
			status := "-"
			if p.StatusMsg != nil {
				status = *p.StatusMsg
			}
			return l.add(p.UserID, fmt.Sprintf("presence %s %s %s %d %v", p.UserID, p.Presence, status, p.LastActiveAgo, p.CurrentlyActive))
		},
		ToDevice: func(_ context.Context, m ToDevice) error {
			users := sortedKeys(m.Messages)
			return l.add(m.Sender, fmt.Sprintf("to-device %s %s %s %v", m.Sender, m.Type, m.MessageID, users))
		},
		DeviceListUpdate: func(_ context.Context, u DeviceListUpdate) error {
			return l.add(u.UserID, fmt.Sprintf("device-list %s %s %d %v", u.UserID, u.DeviceID, u.StreamID, u.Deleted))
		},
	}
}

const (
	eduCarol  = "@carol:remote.test" // joined to testRoom and deniedRoom
	eduDave   = "@dave:remote.test"  // left testRoom
	eduErin   = "@erin:remote.test"  // joined only to a room without users of ours
	eduAlice  = "@alice:our.test"
	eduEvRead = "$RRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRA"
)

// newEDUFixture is newFixture's API with Config.EDUs recording into the
// returned log, and a room role database holding the memberships.
func newEDUFixture(t *testing.T) (*fixture, *API, *eduLog) {
	t.Helper()
	e := testenv.Engines()[0]
	rdb := storetest.Open(t, e, roomserver.Migrations())
	for _, m := range []struct{ user, room, membership string }{
		{eduCarol, testRoom, "join"}, {eduAlice, testRoom, "join"}, {eduDave, testRoom, "leave"},
		{eduCarol, deniedRoom, "join"}, {eduAlice, deniedRoom, "join"},
		{eduErin, "!theirs:remote.test", "join"}, {"@frank:remote.test", "!theirs:remote.test", "join"},
	} {
		if _, err := rdb.Exec(context.Background(), `INSERT INTO memberships (user_id, room_id, membership, event_id, room_seq) VALUES ($1, $2, $3, '$m', 1)`,
			m.user, m.room, m.membership); err != nil {
			t.Fatal(err)
		}
	}
	log := &eduLog{fail: map[string]string{}}
	f, api := newFixtureWith(t, func(c *Config) {
		c.Reader = roomserver.NewReader(rdb)
		c.EDUs = log.receiver()
	})
	return f, api, log
}

func mkEDU(typ string, content any) json.RawMessage {
	b, _ := json.Marshal(map[string]any{"edu_type": typ, "content": content})
	return b
}

func typingOf(room, user string, typing bool) json.RawMessage {
	return mkEDU("m.typing", map[string]any{"room_id": room, "user_id": user, "typing": typing})
}

func receiptsOf(byRoom map[string]map[string]string) json.RawMessage {
	content := map[string]any{}
	for room, byUser := range byRoom {
		users := map[string]any{}
		for u, ev := range byUser {
			users[u] = map[string]any{"event_ids": []string{ev}, "data": map[string]any{"ts": 42}}
		}
		content[room] = map[string]any{"m.read": users}
	}
	return mkEDU("m.receipt", content)
}

// Each kind of EDU is applied when its checks pass and dropped when
// one fails, without affecting the others.
func TestEDUChecks(t *testing.T) {
	_, api, log := newEDUFixture(t)
	for _, c := range []struct {
		name string
		edus []json.RawMessage
		want []string
	}{
		{"typing", []json.RawMessage{typingOf(testRoom, eduCarol, true)}, []string{"typing !room:our.test @carol:remote.test true"}},
		{"typing of a user of another server", []json.RawMessage{typingOf(testRoom, eduAlice, true)}, nil},
		{"typing of a user who left", []json.RawMessage{typingOf(testRoom, eduDave, true)}, nil},
		{"typing in a room this server is not in", []json.RawMessage{typingOf("!theirs:remote.test", eduErin, true)}, nil},
		{"typing in a room whose ACL denies the origin", []json.RawMessage{typingOf(deniedRoom, eduCarol, true)}, nil},
		{"typing without typing", []json.RawMessage{mkEDU("m.typing", map[string]any{"room_id": testRoom, "user_id": eduCarol})}, nil},
		{"receipts: only the allowed room and the origin's joined users", []json.RawMessage{receiptsOf(map[string]map[string]string{
			testRoom:              {eduCarol: eduEvRead, eduAlice: eduEvRead, eduDave: eduEvRead, "@x:remote.test": eduEvRead},
			deniedRoom:            {eduCarol: eduEvRead},
			"!theirs:remote.test": {eduErin: eduEvRead},
		})}, []string{`receipt !room:our.test @carol:remote.test ` + eduEvRead + ` "" 42`}},
		{"a threaded receipt, and a bad event ID", []json.RawMessage{mkEDU("m.receipt", map[string]any{testRoom: map[string]any{
			"m.read":         map[string]any{eduCarol: map[string]any{"event_ids": []string{"not-an-event"}, "data": map[string]any{"ts": 1}}},
			"m.read.private": map[string]any{eduCarol: map[string]any{"event_ids": []string{eduEvRead}, "data": map[string]any{"ts": 1}}},
		}}), mkEDU("m.receipt", map[string]any{testRoom: map[string]any{
			"m.read": map[string]any{eduCarol: map[string]any{"event_ids": []string{eduEvRead}, "data": map[string]any{"ts": 7, "thread_id": "main"}}},
		}})}, []string{`receipt !room:our.test @carol:remote.test ` + eduEvRead + ` "main" 7`}},
		{"presence: only users sharing a room with ours, of the origin", []json.RawMessage{mkEDU("m.presence", map[string]any{"push": []any{
			map[string]any{"user_id": eduCarol, "presence": "online", "last_active_ago": 5000, "currently_active": true, "status_msg": "hi"},
			map[string]any{"user_id": eduErin, "presence": "online", "last_active_ago": 1},
			map[string]any{"user_id": eduAlice, "presence": "offline", "last_active_ago": 1},
			map[string]any{"user_id": eduCarol, "last_active_ago": 1},
			"garbage",
		}})}, []string{"presence @carol:remote.test online hi 5000 true"}},
		{"to-device: only for users of this server", []json.RawMessage{mkEDU("m.direct_to_device", map[string]any{
			"sender": eduCarol, "type": "m.room_key_request", "message_id": "abc",
			"messages": map[string]any{eduAlice: map[string]any{"*": map[string]any{}}, "@zed:elsewhere.test": map[string]any{"D": map[string]any{}}},
		})}, []string{"to-device @carol:remote.test m.room_key_request abc [@alice:our.test]"}},
		{"to-device from a user of another server", []json.RawMessage{mkEDU("m.direct_to_device", map[string]any{
			"sender": "@mallory:evil.test", "type": "m.x", "message_id": "abc", "messages": map[string]any{eduAlice: map[string]any{"*": map[string]any{}}},
		})}, nil},
		{"to-device for nobody here", []json.RawMessage{mkEDU("m.direct_to_device", map[string]any{
			"sender": eduCarol, "type": "m.x", "message_id": "abc", "messages": map[string]any{"@zed:elsewhere.test": map[string]any{"D": map[string]any{}}},
		})}, nil},
		{"device list update", []json.RawMessage{
			mkEDU("m.device_list_update", map[string]any{"user_id": eduCarol, "device_id": "DEV", "stream_id": 3, "prev_id": []int{2}}),
			mkEDU("m.device_list_update", map[string]any{"user_id": eduAlice, "device_id": "DEV", "stream_id": 3}),
			mkEDU("m.device_list_update", map[string]any{"user_id": eduCarol, "device_id": "DEV"}),
		}, []string{"device-list @carol:remote.test DEV 3 false"}},
		{"malformed and unknown EDUs among good ones", []json.RawMessage{
			json.RawMessage(`"not an EDU"`), json.RawMessage(`{"edu_type":"m.typing","content":[]}`), json.RawMessage(`{"content":{}}`),
			mkEDU("m.signing_key_update", map[string]any{"user_id": eduCarol}), mkEDU("org.example.custom", map[string]any{}),
			mkEDU("m.receipt", []int{1}), mkEDU("m.presence", map[string]any{"push": "no"}),
			typingOf(testRoom, eduCarol, false),
		}, []string{"typing !room:our.test @carol:remote.test false"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			api.processEDUs(context.Background(), "remote.test", c.edus)
			if got := log.take(); !slices.Equal(got, c.want) {
				t.Errorf("applied:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

// A receiver that fails or panics on one EDU does not stop the next; a
// zero EDUReceiver drops everything.
func TestEDUFailuresAreIsolated(t *testing.T) {
	_, api, log := newEDUFixture(t)
	log.fail[eduDave] = "panic"
	log.fail[eduErin] = "error"
	api.processEDUs(context.Background(), "remote.test", []json.RawMessage{
		mkEDU("m.device_list_update", map[string]any{"user_id": eduDave, "device_id": "D", "stream_id": 1}),
		mkEDU("m.device_list_update", map[string]any{"user_id": eduErin, "device_id": "D", "stream_id": 1}),
		mkEDU("m.device_list_update", map[string]any{"user_id": eduCarol, "device_id": "D", "stream_id": 1}),
	})
	if got := log.take(); !slices.Equal(got, []string{"device-list @carol:remote.test D 1 false"}) {
		t.Errorf("applied %v", got)
	}
	api.cfg.EDUs = EDUReceiver{}
	api.processEDUs(context.Background(), "remote.test", []json.RawMessage{typingOf(testRoom, eduCarol, true)})
	if got := log.take(); len(got) != 0 {
		t.Errorf("applied without a receiver: %v", got)
	}
}

// A transaction's EDUs are applied after its PDUs, and bad EDUs change
// neither its answer nor its PDUs' fate; a transaction sent again is not
// applied again.
func TestSendWithEDUs(t *testing.T) {
	f, _, log := newEDUFixture(t)
	good := f.pdu(t, "hello", f.remoteKey)
	var pdus []json.RawMessage
	pdus = append(pdus, good.Canonical())
	body, _ := json.Marshal(map[string]any{"origin": "remote.test", "origin_server_ts": 1, "pdus": pdus, "edus": []json.RawMessage{
		json.RawMessage(`17`), typingOf(testRoom, eduAlice, true), typingOf(testRoom, eduCarol, true),
	}})
	status, v := f.do(t, "PUT", "/_matrix/federation/v1/send/e1", body, signed)
	if status != 200 || v.Get("pdus").Len() != 1 || v.Get("pdus").Get(good.ID()).Has("error") {
		t.Fatalf("send: %d %s", status, v)
	}
	if len(f.inputs) != 1 {
		t.Errorf("%d inputs, want 1", len(f.inputs))
	}
	if got := log.take(); !slices.Equal(got, []string{"typing !room:our.test @carol:remote.test true"}) {
		t.Errorf("applied %v", got)
	}
	if status, _ := f.do(t, "PUT", "/_matrix/federation/v1/send/e1", body, signed); status != 200 {
		t.Fatalf("again: %d", status)
	}
	if got := log.take(); len(got) != 0 {
		t.Errorf("a repeated transaction applied %v", got)
	}
	// EDUs alone, beyond the limit: refused whole.
	many := make([]json.RawMessage, maxTxnEDUs+1)
	for i := range many {
		many[i] = typingOf(testRoom, eduCarol, true)
	}
	body, _ = json.Marshal(map[string]any{"origin": "remote.test", "origin_server_ts": 1, "pdus": []any{}, "edus": many})
	if status, v := f.do(t, "PUT", "/_matrix/federation/v1/send/e2", body, signed); status != 400 || v.Get("errcode").StrOr("") != "M_BAD_JSON" {
		t.Errorf("too many EDUs: %d %s", status, v)
	}
	if got := log.take(); len(got) != 0 {
		t.Errorf("a refused transaction applied %v", got)
	}
}
