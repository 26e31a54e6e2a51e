package userdata

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/testenv"
)

const rita = "@rita:remote.example" // a user of another server, in room1

// fakeOutbound records what the service hands to federation.
type fakeOutbound struct {
	mu    sync.Mutex
	calls []string
	fail  error
}

func (o *fakeOutbound) add(line string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fail != nil {
		return o.fail
	}
	o.calls = append(o.calls, line)
	return nil
}

func (o *fakeOutbound) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.calls
	o.calls = nil
	return out
}

func (o *fakeOutbound) setFail(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fail = err
}

func (o *fakeOutbound) Typing(_ context.Context, roomID, userID string, typing bool, timeout time.Duration) error {
	return o.add(fmt.Sprintf("typing %s %s %v %v", roomID, userID, typing, timeout))
}

func (o *fakeOutbound) Receipt(_ context.Context, roomID, userID, eventID, threadID string, ts int64) error {
	return o.add(fmt.Sprintf("receipt %s %s %s %q", roomID, userID, eventID, threadID))
}

func (o *fakeOutbound) Presence(_ context.Context, userID, presence string, statusMsg *string, ago int64, active bool) error {
	s := "-"
	if statusMsg != nil {
		s = *statusMsg
	}
	return o.add(fmt.Sprintf("presence %s %s %s %d %v", userID, presence, s, ago, active))
}

func (o *fakeOutbound) ToDevice(_ context.Context, dest, sender, typ, messageID string, messages map[string]map[string]json.RawMessage) error {
	var parts []string
	for u, devs := range messages {
		for d, c := range devs {
			parts = append(parts, u+"/"+d+"="+string(c))
		}
	}
	sort.Strings(parts)
	return o.add(fmt.Sprintf("to-device %s %s %s %s %v", dest, sender, typ, messageID, parts))
}

func newOutboundHarness(t *testing.T) (*harness, *fakeOutbound) {
	out := &fakeOutbound{}
	h := newHarness(t, testenv.Engines()[0], func(c *Config) { c.Outbound = out })
	return h, out
}

// Local users' typing, public receipts, presence and send-to-device
// messages for other servers go to Config.Outbound; private receipts and
// unchanged receipts do not.
func TestOutbound(t *testing.T) {
	h, out := newOutboundHarness(t)
	h.mustDo("PUT", typingPath(room1, alice), alice, map[string]any{"typing": true, "timeout": 5000})
	h.mustDo("POST", receiptPath(room1, "m.read", evA), alice, nil)
	h.mustDo("POST", receiptPath(room1, "m.read", evA), alice, nil) // unchanged
	h.mustDo("POST", receiptPath(room1, "m.read.private", evB), alice, nil)
	h.mustDo("POST", receiptPath(room1, "m.read", evB), alice, map[string]any{"thread_id": "main"})
	h.mustDo("POST", v3+"/rooms/"+url.PathEscape(room1)+"/read_markers", alice, map[string]any{"m.fully_read": evB, "m.read": evB})
	h.mustDo("PUT", v3+"/presence/"+url.PathEscape(alice)+"/status", alice, map[string]any{"presence": "online", "status_msg": "hi"})
	want := []string{
		"typing " + room1 + " " + alice + " true 5s",
		"receipt " + room1 + " " + alice + " " + evA + ` ""`,
		"receipt " + room1 + " " + alice + " " + evB + ` "main"`,
		"receipt " + room1 + " " + alice + " " + evB + ` ""`,
		"presence " + alice + " online hi 0 true",
	}
	if got := out.take(); !slices.Equal(got, want) {
		t.Errorf("outbound:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Send-to-device: one EDU per other server; the local recipient gets
	// the message here.
	body := msgs(map[string]map[string]any{
		bob:                    {"BDEV": map[string]any{"n": 1}},
		"@dan:other.example":   {"*": map[string]any{"n": 2}},
		"@erin:other.example":  {"E1": map[string]any{"n": 3}},
		"@fred:third.example":  {"F": map[string]any{"n": 4}},
		"@gone:unused.example": {},
	})
	h.mustDo("PUT", toDevicePath("m.key", "t1"), alice+"|ADEV1", body)
	got := out.take()
	if len(got) != 2 || !strings.HasPrefix(got[0], "to-device other.example "+alice+" m.key ") ||
		!strings.HasSuffix(got[0], `[@dan:other.example/*={"n":2} @erin:other.example/E1={"n":3}]`) ||
		!strings.HasPrefix(got[1], "to-device third.example ") {
		t.Fatalf("send-to-device outbound: %v", got)
	}
	if ns, _ := h.toDeviceOf(bob, "BDEV", 0); !slices.Equal(ns, []float64{1}) {
		t.Errorf("bob's messages: %v", ns)
	}
	// A retransmission sends nothing again.
	h.mustDo("PUT", toDevicePath("m.key", "t1"), alice+"|ADEV1", body)
	if again := out.take(); len(again) != 0 {
		t.Errorf("a retransmission went out again: %v", again)
	}
	// A failure fails the request and queues nothing; its retry hands over
	// the same message ID.
	out.setFail(errors.New("queue unavailable"))
	remoteOnly := msgs(map[string]map[string]any{"@dan:other.example": {"D": map[string]any{"n": 5}}, bob: {"BDEV": map[string]any{"n": 6}}})
	if status, _, _ := h.do("PUT", toDevicePath("m.key", "t2"), alice+"|ADEV1", remoteOnly); status != 500 {
		t.Fatalf("send-to-device with a failing outbound: %d", status)
	}
	if ns, _ := h.toDeviceOf(bob, "BDEV", 0); !slices.Equal(ns, []float64{1}) {
		t.Errorf("bob's messages after a failed request: %v", ns)
	}
	out.setFail(nil)
	h.mustDo("PUT", toDevicePath("m.key", "t2"), alice+"|ADEV1", remoteOnly)
	h.mustDo("PUT", toDevicePath("m.key", "t3"), alice+"|ADEV1", remoteOnly)
	got = out.take()
	id := func(line string) string { return strings.Fields(line)[4] }
	if len(got) != 2 || id(got[0]) == id(got[1]) || len(id(got[0])) != 32 {
		t.Errorf("message IDs of two requests: %v", got)
	}
	out.setFail(errors.New("queue unavailable"))
	if status, _, _ := h.do("PUT", toDevicePath("m.key", "t2b"), alice+"|ADEV1", remoteOnly); status != 500 {
		t.Fatal("no failure")
	}
	out.setFail(nil)
	h.mustDo("PUT", toDevicePath("m.key", "t2b"), alice+"|ADEV1", remoteOnly)
	h2 := out.take()
	// The same device and transaction ID always give the same message ID.
	h.mustDo("PUT", toDevicePath("m.key", "t2b"), alice+"|ADEV2", remoteOnly)
	if other := out.take(); len(h2) != 1 || len(other) != 1 || id(h2[0]) == id(other[0]) {
		t.Errorf("message IDs of two devices: %v %v", h2, other)
	}

	// A receipt whose hand-over fails is not stored: the retry hands it
	// over.
	out.setFail(errors.New("queue unavailable"))
	if status, _, _ := h.do("POST", receiptPath(room2, "m.read", evA), alice, nil); status != 500 {
		t.Fatalf("receipt with a failing outbound: %d", status)
	}
	out.setFail(nil)
	h.mustDo("POST", receiptPath(room2, "m.read", evA), alice, nil)
	if got := out.take(); !slices.Equal(got, []string{"receipt " + room2 + " " + alice + " " + evA + ` ""`}) {
		t.Errorf("receipt retried: %v", got)
	}
	// Typing and presence are best effort: a failure is only logged.
	out.setFail(errors.New("queue unavailable"))
	h.mustDo("PUT", typingPath(room1, alice), alice, map[string]any{"typing": false})
	out.setFail(nil)

	// What other servers send never goes out again.
	h.world.rooms[room1] = append(h.world.rooms[room1], rita)
	ctx := context.Background()
	if err := h.svc.ReceiveRemoteTyping(ctx, room1, rita, true); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.PutRemoteReceipt(ctx, room1, rita, evA, "", 1); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.ReceiveRemotePresence(ctx, RemotePresence{UserID: rita, Presence: "online"}); err != nil {
		t.Fatal(err)
	}
	if got := out.take(); len(got) != 0 {
		t.Errorf("remote data went out: %v", got)
	}
}

// Other servers' typing, receipts, presence, send-to-device messages and
// device list changes reach the local users' /sync.
func TestReceiveRemote(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		var published [][]byte
		var pmu sync.Mutex
		h := newHarness(t, e, func(c *Config) {
			c.PublishTyping = func(data []byte) error {
				pmu.Lock()
				defer pmu.Unlock()
				published = append(published, data)
				return nil
			}
		})
		h.world.rooms[room1] = append(h.world.rooms[room1], rita)
		ctx := context.Background()
		start := h.pos()
		startTyping := h.svc.TypingPosition()

		if err := h.svc.ReceiveRemoteTyping(ctx, room1, rita, true); err != nil {
			t.Fatal(err)
		}
		d := h.sync(SyncQuery{UserID: bob, From: start, FromTyping: startTyping})
		if users, _ := typingIn(t, d, room1); !slices.Equal(users, []string{rita}) {
			t.Errorf("typing in room1: %v", users)
		}
		pmu.Lock()
		if len(published) != 1 || !strings.Contains(string(published[0]), rita) {
			t.Errorf("published typing updates: %q", published)
		}
		pmu.Unlock()
		h.clock.Advance(31 * time.Second)
		h.svc.ExpireTyping()
		if users, _ := typingIn(t, h.sync(SyncQuery{UserID: bob, From: start, FromTyping: startTyping}), room1); len(users) != 0 {
			t.Errorf("remote typing did not expire: %v", users)
		}

		h.world.takeWakes()
		if err := h.svc.PutRemoteReceipt(ctx, room1, rita, evA, "main", 1234); err != nil {
			t.Fatal(err)
		}
		d = h.sync(SyncQuery{UserID: bob, From: start})
		rc := receiptContents(t, d.Ephemeral[room1])
		if len(rc) != 1 || !jsonEqualValue(t, rc[0], map[string]any{evA: map[string]any{"m.read": map[string]any{rita: map[string]any{"ts": 1234, "thread_id": "main"}}}}) {
			t.Errorf("receipts: %v", rc)
		}
		if db, _ := h.world.takeWakes(); len(db) != 1 || !slices.Equal(db[0].rooms, []string{room1}) {
			t.Errorf("wakes of a remote receipt: %v", db)
		}
		pos := h.pos()
		if err := h.svc.PutRemoteReceipt(ctx, room1, rita, evA, "main", 1234); err != nil || h.pos() != pos {
			t.Errorf("the same receipt again: %v, position %d → %d", err, pos, h.pos())
		}
		if err := h.svc.PutRemoteReceipt(ctx, room1, rita, "bad", "", 1); !errors.Is(err, ErrInvalid) {
			t.Errorf("a bad event ID: %v", err)
		}

		status := "away"
		if err := h.svc.ReceiveRemotePresence(ctx, RemotePresence{UserID: rita, Presence: "unavailable", StatusMsg: &status, LastActiveAgo: 60_000}); err != nil {
			t.Fatal(err)
		}
		d = h.sync(SyncQuery{UserID: bob, From: pos})
		var seen map[string]any
		for _, ev := range decode(t, d.Presence) {
			if ev["sender"] == rita {
				seen = ev["content"].(map[string]any)
			}
		}
		if seen == nil || seen["presence"] != "unavailable" || seen["status_msg"] != "away" || seen["last_active_ago"] != float64(60_000) {
			t.Errorf("rita's presence: %v", seen)
		}
		if d := h.sync(SyncQuery{UserID: carol, From: pos}); len(d.Presence) != 0 {
			t.Errorf("carol, who shares no room with rita, got presence %s", d.Presence)
		}
		pos = h.pos()
		if err := h.svc.ReceiveRemotePresence(ctx, RemotePresence{UserID: rita, Presence: "unavailable", StatusMsg: &status, LastActiveAgo: 30_000}); err != nil || h.pos() != pos {
			t.Errorf("an unchanged presence: %v, position %d → %d", err, pos, h.pos())
		}
		if err := h.svc.ReceiveRemotePresence(ctx, RemotePresence{UserID: rita, Presence: "busy"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("a bad presence: %v", err)
		}

		raw := func(s string) json.RawMessage { return json.RawMessage(s) }
		messages := map[string]map[string]json.RawMessage{
			bob:                  {"*": raw(`{"n": 1}`)},
			alice:                {"ADEV2": raw(`{"n": 2}`)},
			"@zed:other.example": {"Z": raw(`{"n": 3}`)},
		}
		if err := h.svc.ReceiveRemoteToDevice(ctx, rita, "m.room_key", "mid1", messages); err != nil {
			t.Fatal(err)
		}
		pos = h.pos()
		if err := h.svc.ReceiveRemoteToDevice(ctx, rita, "m.room_key", "mid1", messages); err != nil || h.pos() != pos {
			t.Errorf("the same message_id again: %v, position %d → %d", err, pos, h.pos())
		}
		if ns, d := h.toDeviceOf(bob, "BDEV", 0); !slices.Equal(ns, []float64{1}) || decode(t, d.ToDevice)[0]["sender"] != rita {
			t.Errorf("bob's messages: %v", ns)
		}
		if ns, _ := h.toDeviceOf(alice, "ADEV2", 0); !slices.Equal(ns, []float64{2}) {
			t.Errorf("alice's messages: %v", ns)
		}
		for _, bad := range []struct{ sender, typ, id string }{{"rita", "m.x", "m"}, {rita, "", "m"}, {rita, "m.x", ""}, {rita, "m.x", strings.Repeat("x", 256)}} {
			if err := h.svc.ReceiveRemoteToDevice(ctx, bad.sender, bad.typ, bad.id, messages); !errors.Is(err, ErrInvalid) {
				t.Errorf("send-to-device %v: %v", bad, err)
			}
		}
		if err := h.svc.ReceiveRemoteToDevice(ctx, rita, "m.x", "mid2", map[string]map[string]json.RawMessage{bob: {"BDEV": raw(`[]`)}}); !errors.Is(err, ErrInvalid) {
			t.Errorf("a message that is not an object: %v", err)
		}

		pos = h.pos()
		h.world.takeWakes()
		if err := h.svc.ReceiveDeviceListUpdate(ctx, rita, 5); err != nil {
			t.Fatal(err)
		}
		if db, _ := h.world.takeWakes(); len(db) != 1 || !slices.Equal(db[0].rooms, []string{room1}) {
			t.Errorf("wakes of a device list change: %v", db)
		}
		if d := h.sync(SyncQuery{UserID: bob, From: pos}); !slices.Equal(d.DeviceListsChanged, []string{rita}) || d.Empty() {
			t.Errorf("bob's device_lists.changed: %v", d.DeviceListsChanged)
		}
		if d := h.sync(SyncQuery{UserID: carol, From: pos}); len(d.DeviceListsChanged) != 0 {
			t.Errorf("carol's device_lists.changed: %v", d.DeviceListsChanged)
		}
		if d := h.sync(SyncQuery{UserID: bob, Initial: true}); len(d.DeviceListsChanged) != 0 {
			t.Errorf("an initial sync's device_lists.changed: %v", d.DeviceListsChanged)
		}
		pos = h.pos()
		if err := h.svc.ReceiveDeviceListUpdate(ctx, rita, 5); err != nil || h.pos() != pos {
			t.Errorf("the same update again: %v, position %d → %d", err, pos, h.pos())
		}
		if err := h.svc.ReceiveDeviceListUpdate(ctx, rita, 6); err != nil || h.pos() == pos {
			t.Errorf("a newer update: %v", err)
		}
	})
}

// jsonEqualValue compares two values by their JSON forms.
func jsonEqualValue(t *testing.T, got, want any) bool {
	t.Helper()
	b, _ := json.Marshal(got)
	return jsonEqual(t, b, want)
}
