package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/signingkey"
	"github.com/axon-hs/axon/internal/testenv"
	"github.com/axon-hs/axon/matrix/auth"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/matrix/roomversion"
	"github.com/axon-hs/axon/services/federation/fedclient"
)

// Multi-server scenarios: several real servers federating over TLS on
// loopback (fedWorld), driven through the Client-Server API, plus raw
// federation requests crafted here and signed with a server's own key
// (or a wrong one).

// stateIDs returns c's server's current state of room as event IDs by
// "type|state_key" (nil when the request fails).
func stateIDs(c *client, room string) map[string]string {
	r := c.do("GET", "/rooms/"+apiEsc(room)+"/state", nil)
	if r.Status != 200 {
		return nil
	}
	var evs []apiEvent
	if json.Unmarshal(r.Raw, &evs) != nil {
		return nil
	}
	out := map[string]string{}
	for _, e := range evs {
		if e.StateKey != nil {
			out[e.Type+"|"+*e.StateKey] = e.EventID
		}
	}
	return out
}

// timeline returns the events of room's timeline on c's server, newest
// first (at most limit), by event ID.
func timeline(c *client, room string, limit int) map[string]apiEvent {
	r := c.do("GET", "/rooms/"+apiEsc(room)+"/messages?dir=b&limit="+fmt.Sprint(limit), nil)
	out := map[string]apiEvent{}
	if r.Status != 200 {
		return out
	}
	var m apiMessagesResp
	if json.Unmarshal(r.Raw, &m) != nil {
		return out
	}
	for _, e := range m.Chunk {
		out[e.EventID] = e
	}
	return out
}

// hasAll reports whether tl holds every ID of ids.
func hasAll(tl map[string]apiEvent, ids []string) bool {
	for _, id := range ids {
		if _, ok := tl[id]; !ok {
			return false
		}
	}
	return true
}

// membershipOn returns user's membership in room as c's server sees it.
func membershipOn(c *client, room, user string) string {
	r := c.do("GET", "/rooms/"+apiEsc(room)+"/state/m.room.member/"+apiEsc(user), nil)
	if r.Status != 200 {
		return ""
	}
	m, _ := r.Body["membership"].(string)
	return m
}

// waitMembers waits until every client's server sees each user of
// users with the membership want.
func waitMembers(t *testing.T, room, want string, clients []*client, users ...string) {
	t.Helper()
	for _, c := range clients {
		for _, u := range users {
			testenv.Eventually(t, 15*time.Second, c.ts.name+" sees "+u+" "+want, func() bool {
				return membershipOn(c, room, u) == want
			})
		}
	}
}

// Three servers change the state of one room at the same time (two
// topics, a name, a power level change, a leave and a join, each on the
// server of its user) while all three talk; every server ends with the
// same current state, event for event, and every message in its
// timeline.
func TestFederationScenarioConvergence(t *testing.T) {
	w := newFedWorld(t)
	a := w.start(backends()[0], "a.fed.test")
	b := w.start(backends()[0], "b.fed.test")
	c := w.start(backends()[0], "c.fed.test")
	alice := a.register("alice")
	bob, dave := b.register("bob"), b.register("dave")
	carol, erin := c.register("carol"), c.register("erin")
	room := alice.createRoom(map[string]any{"preset": "public_chat",
		"power_level_content_override": map[string]any{"events": map[string]any{"m.room.topic": 0, "m.room.name": 0}}})
	for _, u := range []*client{bob, carol, erin} {
		u.must("POST", "/join/"+apiEsc(room)+"?server_name=a.fed.test", nil)
	}
	all := []*client{alice, bob, carol}
	waitMembers(t, room, "join", all, alice.UserID, bob.UserID, carol.UserID, erin.UserID)
	pl := alice.must("GET", "/rooms/"+apiEsc(room)+"/state/m.room.power_levels/", nil)
	pl["users"].(map[string]any)[bob.UserID] = 50

	// Everything at once, each change on its user's own server.
	type result struct {
		what, eventID string
		msg           bool
		err           error
	}
	results := make(chan result, 32)
	start := make(chan struct{})
	var wg sync.WaitGroup
	// act makes u's request when start closes (apiRaw: no *testing.T in
	// a goroutine).
	act := func(what string, msg bool, u *client, method, path string, body any) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := apiRaw(method, u.ts.base+"/_matrix/client/v3"+path, u.Token, body)
			res := result{what: what, msg: msg, err: err}
			if err == nil && r.Status != 200 {
				res.err = fmt.Errorf("%d %s", r.Status, r.Raw)
			}
			res.eventID, _ = r.Body["event_id"].(string)
			results <- res
		}()
	}
	act("topic on a", false, alice, "PUT", apiStatePath(room, "m.room.topic", ""), map[string]any{"topic": "from a"})
	act("topic on b", false, bob, "PUT", apiStatePath(room, "m.room.topic", ""), map[string]any{"topic": "from b"})
	act("name on c", false, carol, "PUT", apiStatePath(room, "m.room.name", ""), map[string]any{"name": "from c"})
	act("power levels on a", false, alice, "PUT", apiStatePath(room, "m.room.power_levels", ""), pl)
	act("erin leaves on c", false, erin, "POST", "/rooms/"+apiEsc(room)+"/leave", map[string]any{})
	act("dave joins on b", false, dave, "POST", "/join/"+apiEsc(room)+"?server_name=a.fed.test", nil)
	for _, u := range all {
		for i := range 3 {
			act(fmt.Sprintf("message %d of %s", i, u.UserID), true, u, "PUT",
				fmt.Sprintf("/rooms/%s/send/m.room.message/conv%d", apiEsc(room), i),
				map[string]any{"msgtype": "m.text", "body": fmt.Sprintf("%s says %d", u.UserID, i)})
		}
	}
	close(start)
	wg.Wait()
	close(results)
	var msgs []string
	for r := range results {
		if r.err != nil {
			t.Fatalf("%s: %v", r.what, r.err)
		}
		if r.msg {
			msgs = append(msgs, r.eventID)
		}
	}

	var why string
	t.Cleanup(func() {
		if t.Failed() && why != "" {
			t.Log("last difference: " + why)
		}
	})
	testenv.Eventually(t, 30*time.Second, "the three servers agree on the room's state and have every message", func() bool {
		first := stateIDs(alice, room)
		for _, u := range all[1:] {
			if s := stateIDs(u, room); first == nil || !maps.Equal(s, first) {
				why = fmt.Sprintf("state on %s: %v\nstate on %s: %v", alice.ts.name, first, u.ts.name, s)
				return false
			}
		}
		for _, u := range all {
			if tl := timeline(u, room, 100); !hasAll(tl, msgs) {
				why = fmt.Sprintf("%s's timeline lacks some of %v", u.ts.name, msgs)
				return false
			}
		}
		return true
	})
	// What they agree on is what happened: none of the changes conflicts
	// with another under the auth rules, so each is in the state (the
	// topic is one of the two).
	for _, want := range []struct{ user, membership string }{
		{alice.UserID, "join"}, {bob.UserID, "join"}, {carol.UserID, "join"}, {dave.UserID, "join"}, {erin.UserID, "leave"},
	} {
		for _, u := range all {
			if m := membershipOn(u, room, want.user); m != want.membership {
				t.Errorf("%s shows %s %q, want %q", u.ts.name, want.user, m, want.membership)
			}
		}
	}
	for _, u := range all {
		topic := u.must("GET", apiStatePath(room, "m.room.topic", ""), nil)["topic"]
		name := u.must("GET", apiStatePath(room, "m.room.name", ""), nil)["name"]
		users := u.must("GET", apiStatePath(room, "m.room.power_levels", ""), nil)["users"].(map[string]any)
		if (topic != "from a" && topic != "from b") || name != "from c" || users[bob.UserID] != float64(50) {
			t.Errorf("%s: topic %v, name %v, power levels of users %v", u.ts.name, topic, name, users)
		}
	}
}

// restartable starts a server named name whose data directory and
// certificate stay the same across restarts.
func (w *fedWorld) restartable(name string) func() *testServer {
	dir := w.t.TempDir()
	cert, key := w.ca.issue(w.t, w.t.TempDir(), nil, name)
	return func() *testServer {
		ts := startServerWith(w.t, backends()[0], func(s *server) { s.fedDNS = w.dns },
			"--server-name", name, "--data-dir", dir, "--federation-tls-cert", cert, "--federation-tls-key", key,
			"--federation-ca-file", w.caFile)
		w.dns.point(name, ts.srv.addrs[1])
		return ts
	}
}

// fetchPDU fetches eventID from destination with fc's GET /event.
func fetchPDU(t *testing.T, fc *fedclient.Client, destination string, v *roomversion.Version, eventID string) *event.Event {
	t.Helper()
	var txn struct {
		PDUs []json.RawMessage `json:"pdus"`
	}
	if err := fc.GetJSON(context.Background(), destination, "/_matrix/federation/v1/event/"+apiEsc(eventID), &txn); err != nil || len(txn.PDUs) != 1 {
		t.Fatalf("GET /event/%s from %s: %v (%d PDUs)", eventID, destination, err, len(txn.PDUs))
	}
	ev, err := event.Parse(v, txn.PDUs[0])
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// serverKeysOf fetches server's keys document with fc.
func serverKeysOf(t *testing.T, fc *fedclient.Client, server string) *keys.ServerKeys {
	t.Helper()
	data, err := fc.ServerKeys(context.Background(), server)
	if err != nil {
		t.Fatalf("keys of %s: %v", server, err)
	}
	v, err := cjson.Parse(data, cjson.Strict)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := keys.ParseServerKeys(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := sk.CheckSelfSigned(); err != nil || sk.ServerName != server {
		t.Fatalf("keys document of %q: %v", sk.ServerName, err)
	}
	return sk
}

// signerKeys returns the IDs of server's keys that signed ev.
func signerKeys(ev *event.Event, server string) []string {
	var out []string
	for _, m := range ev.Signatures().Get(server).Members() {
		out = append(out, m.Key)
	}
	return out
}

// A server that rotated its signing key and restarted signs with the new
// key: the other server accepts its new events, still holds and serves
// the older ones, and sees the old key among the old_verify_keys; a
// server that first meets it after the rotation joins the room, checking
// the events signed before it with the old key.
func TestFederationScenarioKeyRotation(t *testing.T) {
	w := newFedWorld(t)
	startA, startB := w.restartable("a.fed.test"), w.restartable("b.fed.test")
	a, b := startA(), startB()
	alice := a.register("alice")
	room := alice.createRoom(map[string]any{"preset": "public_chat"})
	bob := b.register("bob")
	bob.must("POST", "/join/"+apiEsc(room)+"?server_name=a.fed.test", nil)
	old := alice.send(room, "signed with the old key")
	testenv.Eventually(t, 15*time.Second, "b has a's message from before the rotation", func() bool {
		return hasAll(timeline(bob, room, 20), []string{old})
	})
	v := roomversion.MustLookup("12")
	oldEv := fetchPDU(t, b.srv.fedClient, "a.fed.test", v, old)
	before := serverKeysOf(t, b.srv.fedClient, "a.fed.test")
	if len(before.VerifyKeys) != 1 || len(before.OldKeys) != 0 {
		t.Fatalf("a's keys before the rotation: %+v", before)
	}
	var oldKey keys.KeyID
	for id := range before.VerifyKeys {
		oldKey = id
	}
	if got := signerKeys(oldEv, "a.fed.test"); !slices.Equal(got, []string{string(oldKey)}) {
		t.Fatalf("a's message before the rotation is signed by %v, want %s", got, oldKey)
	}

	a.srv.shutdown()
	code, out, errs := runAxon(t, nil, "key", "rotate", "--data-dir", a.srv.cfg.DataDir)
	if code != exitOK {
		t.Fatalf("key rotate: %d %q %q", code, out, errs)
	}
	// b fetched a's keys when bob joined, seconds ago; a key ID it has
	// never seen is fetched again after a few seconds
	// (UnknownKeyRefetchInterval), not after the minute of
	// RefetchInterval, so a's sender gets through on an early retry.
	a = startA()
	alice.ts = a

	after := serverKeysOf(t, b.srv.fedClient, "a.fed.test")
	var newKey keys.KeyID
	for id := range after.VerifyKeys {
		newKey = id
	}
	if o, ok := after.OldKeys[oldKey]; len(after.VerifyKeys) != 1 || newKey == oldKey || !ok || o.ExpiredTS < oldEv.OriginServerTS() {
		t.Fatalf("a's keys after the rotation: verify %v, old %v", after.VerifyKeys, after.OldKeys)
	}
	fresh := alice.send(room, "signed with the new key")
	if got := signerKeys(fetchPDU(t, b.srv.fedClient, "a.fed.test", v, fresh), "a.fed.test"); !slices.Equal(got, []string{string(newKey)}) {
		t.Fatalf("a's message after the rotation is signed by %v, want %s", got, newKey)
	}
	testenv.Eventually(t, 20*time.Second, "b accepts a's message signed with the new key", func() bool {
		return hasAll(timeline(bob, room, 20), []string{fresh, old})
	})
	if e := bob.apiGetEvent(t, room, old); e.Content["body"] != "signed with the old key" {
		t.Errorf("b's copy of a's older message: %v", e)
	}
	// What b's key store holds for a (its notary answer): the new
	// document, with the old key among the old ones.
	data, err := a.srv.fedClient.Do(context.Background(), "b.fed.test", "GET", "/_matrix/key/v2/query/a.fed.test", nil, false)
	if err != nil {
		t.Fatal(err)
	}
	var notary struct {
		ServerKeys []cjson.Value `json:"server_keys"`
	}
	if err := json.Unmarshal(data, &notary); err != nil || len(notary.ServerKeys) != 1 {
		t.Fatalf("b's notary answer for a: %v %s", err, data)
	}
	held, err := keys.ParseServerKeys(notary.ServerKeys[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := held.VerifyKeys[newKey]; !ok || held.OldKeys[oldKey].ExpiredTS < oldEv.OriginServerTS() {
		t.Errorf("b holds a's keys as verify %v, old %v", held.VerifyKeys, held.OldKeys)
	}
	// b answers with a message of its own, which a accepts.
	reply := bob.send(room, "got it")
	testenv.Eventually(t, 15*time.Second, "a receives b's reply", func() bool {
		return hasAll(timeline(alice, room, 20), []string{reply})
	})

	// A server that never saw the old key in use joins: the room's
	// create event, alice's join and the rest of the state were signed
	// with it.
	c := w.start(backends()[0], "c.fed.test")
	carol := c.register("carol")
	carol.must("POST", "/join/"+apiEsc(room)+"?server_name=a.fed.test", nil)
	if m := membershipOn(carol, room, alice.UserID); m != "join" {
		t.Errorf("c shows alice's membership %q after joining", m)
	}
	create := carol.must("GET", apiStatePath(room, "m.room.create", ""), nil)
	if create["room_version"] != "12" {
		t.Errorf("c's create event: %v", create)
	}
	fromC := carol.send(room, "hello from c")
	testenv.Eventually(t, 15*time.Second, "a and b receive c's message", func() bool {
		return hasAll(timeline(alice, room, 20), []string{fromC}) && hasAll(timeline(bob, room, 20), []string{fromC})
	})
}

// pduMaker crafts PDUs of a room as if a server built them: on the
// target server's current state (read by a user there) and a recent event
// as the prev event.
type pduMaker struct {
	t        *testing.T
	v        *roomversion.Version
	room     string
	resident *client // a user of the target server, joined
	fc       *fedclient.Client
	target   string
}

// proto returns an unsigned m.room.message of sender with content.
func (m *pduMaker) proto(sender string, content map[string]any) cjson.Value {
	m.t.Helper()
	raw, err := json.Marshal(content)
	if err != nil {
		m.t.Fatal(err)
	}
	cv, err := cjson.Parse(raw, cjson.Strict)
	if err != nil {
		m.t.Fatal(err)
	}
	state := map[auth.StateKey]string{}
	for _, e := range m.resident.apiFullState(m.t, m.room) {
		state[auth.StateKey{Type: e.Type, StateKey: *e.StateKey}] = e.EventID
	}
	var authIDs []string
	for _, k := range auth.SelectionFor(m.v, "m.room.message", sender, "", false, cv) {
		if id, ok := state[k]; ok {
			authIDs = append(authIDs, id)
		}
	}
	latest := m.resident.apiMessages(m.t, m.room, url.Values{"dir": {"b"}, "limit": {"1"}}).Chunk
	if len(latest) != 1 {
		m.t.Fatalf("no event in %s to build on", m.room)
	}
	prev := fetchPDU(m.t, m.fc, m.target, m.v, latest[0].EventID)
	return cjson.ObjectValue(
		cjson.Member{Key: "type", Value: cjson.StringValue("m.room.message")},
		cjson.Member{Key: "room_id", Value: cjson.StringValue(m.room)},
		cjson.Member{Key: "sender", Value: cjson.StringValue(sender)},
		cjson.Member{Key: "content", Value: cv},
		cjson.Member{Key: "origin_server_ts", Value: cjson.IntValue(time.Now().UnixMilli())},
		cjson.Member{Key: "depth", Value: cjson.IntValue(prev.Depth() + 1)},
		cjson.Member{Key: "prev_events", Value: cjson.StringArray([]string{prev.ID()})},
		cjson.Member{Key: "auth_events", Value: cjson.StringArray(authIDs)},
	)
}

// build signs proto as origin with key.
func (m *pduMaker) build(proto cjson.Value, origin string, key *keys.SigningKey) *event.Event {
	m.t.Helper()
	ev, err := event.Build(m.v, proto, origin, key)
	if err != nil {
		m.t.Fatal(err)
	}
	return ev
}

// reparse returns ev with its JSON changed by f, as a receiver would
// parse it (the ID follows the change in room versions with hashed IDs).
func (m *pduMaker) reparse(ev *event.Event, f func(cjson.Value) cjson.Value) *event.Event {
	m.t.Helper()
	out, err := event.Parse(m.v, f(ev.JSON()).Canonical())
	if err != nil {
		m.t.Fatal(err)
	}
	return out
}

// sendTxn sends a transaction of pdus and edus to destination with fc
// and returns the per-PDU errors by event ID ("" for a PDU accepted).
func sendTxn(t *testing.T, fc *fedclient.Client, origin, destination, txnID string, pdus []*event.Event, edus []map[string]any) map[string]string {
	t.Helper()
	raw := []json.RawMessage{}
	for _, ev := range pdus {
		raw = append(raw, ev.Canonical())
	}
	txn := map[string]any{"origin": origin, "origin_server_ts": time.Now().UnixMilli(), "pdus": raw}
	if len(edus) > 0 {
		txn["edus"] = edus
	}
	var resp struct {
		PDUs map[string]struct {
			Error string `json:"error"`
		} `json:"pdus"`
	}
	if err := fc.SendJSON(context.Background(), destination, "PUT", "/_matrix/federation/v1/send/"+txnID, txn, &resp); err != nil {
		t.Fatalf("/send %s to %s: %v", txnID, destination, err)
	}
	out := map[string]string{}
	for id, r := range resp.PDUs {
		out[id] = r.Error
	}
	return out
}

func signingKeyOf(t *testing.T, ts *testServer) *keys.SigningKey {
	t.Helper()
	ks, _, err := signingkey.LoadOrCreate(ts.srv.cfg.SigningKeyPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ks[0]
}

func textContent(body string) map[string]any {
	return map[string]any{"msgtype": "m.text", "body": body}
}

// Forged, tampered and denied traffic sent to a server straight to its
// federation listener, each beside good traffic: the bad part is refused
// or neutered, the good part goes through, and the room carries on.
func TestFederationScenarioForgedAndDenied(t *testing.T) {
	w := newFedWorld(t)
	a := w.start(backends()[0], "a.fed.test")
	b := w.start(backends()[0], "b.fed.test")
	c := w.start(backends()[0], "c.fed.test")
	alice := a.register("alice")
	room := alice.createRoom(map[string]any{"preset": "public_chat"})
	bob, carol := b.register("bob"), c.register("carol")
	bob.must("POST", "/join/"+apiEsc(room)+"?server_name=a.fed.test", nil)
	carol.must("POST", "/join/"+apiEsc(room)+"?server_name=a.fed.test", nil)
	waitMembers(t, room, "join", []*client{alice}, bob.UserID, carol.UserID)
	bKey, cKey := signingKeyOf(t, b), signingKeyOf(t, c)
	mb := &pduMaker{t: t, v: roomversion.MustLookup("12"), room: room, resident: alice, fc: b.srv.fedClient, target: "a.fed.test"}

	t.Run("forged signatures and a bad content hash", func(t *testing.T) {
		mb.t = t
		good := mb.build(mb.proto(bob.UserID, textContent("good")), "b.fed.test", bKey)
		// b's key ID, another key.
		wrong, err := keys.Generate(bKey.ID.Version(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		forged := mb.build(mb.proto(bob.UserID, textContent("forged")), "b.fed.test", wrong)
		// alice's message, made and signed by b alone.
		impostor := mb.build(mb.proto(alice.UserID, textContent("impostor")), "b.fed.test", bKey)
		// A signed field changed after signing.
		tampered := mb.reparse(mb.build(mb.proto(bob.UserID, textContent("tampered")), "b.fed.test", bKey),
			func(v cjson.Value) cjson.Value { return v.With("origin_server_ts", cjson.IntValue(1)) })
		// The content changed after signing: the signature (over the
		// redacted event) holds, the content hash does not.
		badHash := mb.reparse(mb.build(mb.proto(bob.UserID, textContent("as signed")), "b.fed.test", bKey),
			func(v cjson.Value) cjson.Value {
				return v.With("content", cjson.ObjectValue(
					cjson.Member{Key: "msgtype", Value: cjson.StringValue("m.text")},
					cjson.Member{Key: "body", Value: cjson.StringValue("altered in transit")}))
			})

		res := sendTxn(t, b.srv.fedClient, "b.fed.test", "a.fed.test", "scenario-forged",
			[]*event.Event{forged, good, impostor, tampered, badHash}, nil)
		for _, ev := range []*event.Event{forged, impostor, tampered} {
			if e, ok := res[ev.ID()]; !ok || e == "" {
				t.Errorf("%s (%v): result %q, present %v; want an error", ev.ID(), ev.Content(), e, ok)
			}
			if r := alice.do("GET", "/rooms/"+apiEsc(room)+"/event/"+apiEsc(ev.ID()), nil); r.Status != 404 {
				t.Errorf("a serves the rejected %v: %d %s", ev.Content(), r.Status, r.Raw)
			}
		}
		for _, ev := range []*event.Event{good, badHash} {
			if e, ok := res[ev.ID()]; !ok || e != "" {
				t.Errorf("%s (%v): result %q, present %v; want accepted", ev.ID(), ev.Content(), e, ok)
			}
		}
		if e := alice.apiGetEvent(t, room, good.ID()); e.Content["body"] != "good" || e.Sender != bob.UserID {
			t.Errorf("the good PDU as a serves it: %v", e)
		}
		if e := alice.apiGetEvent(t, room, badHash.ID()); e.Type != "m.room.message" || len(e.Content) != 0 {
			t.Errorf("the PDU with a bad content hash as a serves it: %v; want it redacted", e)
		}
		tl := timeline(alice, room, 50)
		for _, ev := range []*event.Event{forged, impostor, tampered} {
			if _, ok := tl[ev.ID()]; ok {
				t.Errorf("a's timeline holds the rejected %v", ev.Content())
			}
		}
		if !hasAll(tl, []string{good.ID(), badHash.ID()}) {
			t.Errorf("a's timeline lacks the accepted PDUs")
		}

		// The room carries on, both ways, over the forks just made.
		fromA := alice.send(room, "after the forgeries")
		testenv.Eventually(t, 15*time.Second, "b receives a's next message", func() bool {
			return hasAll(timeline(bob, room, 30), []string{fromA})
		})
		fromB := bob.send(room, "still here")
		testenv.Eventually(t, 15*time.Second, "a receives b's next message", func() bool {
			return hasAll(timeline(alice, room, 30), []string{fromB})
		})
	})

	t.Run("server ACL", func(t *testing.T) {
		mb.t = t
		receipt := func(user, eventID string) map[string]any {
			return map[string]any{"edu_type": "m.receipt", "content": map[string]any{room: map[string]any{"m.read": map[string]any{
				user: map[string]any{"event_ids": []string{eventID}, "data": map[string]any{"ts": time.Now().UnixMilli()}}}}}}
		}
		typing := func(user string) map[string]any {
			return map[string]any{"edu_type": "m.typing", "content": map[string]any{"room_id": room, "user_id": user, "typing": true}}
		}
		from := alice.apiSync(t, nil).NextBatch

		// Before the ACL, c's traffic is taken.
		e1 := alice.send(room, "read me")
		okPDU := mb.build(mb.proto(carol.UserID, textContent("before the ACL")), "c.fed.test", cKey)
		if res := sendTxn(t, c.srv.fedClient, "c.fed.test", "a.fed.test", "scenario-acl-1", []*event.Event{okPDU},
			[]map[string]any{receipt(carol.UserID, e1)}); res[okPDU.ID()] != "" {
			t.Fatalf("c's PDU before the ACL: %v", res)
		}
		alice.apiSyncUntil(t, since(from), "carol's receipt before the ACL", func(s *apiSyncResp) bool {
			return s.readReceipt(room, e1, carol.UserID)
		})

		alice.must("PUT", apiStatePath(room, "m.room.server_acl", ""), map[string]any{
			"allow": []string{"*"}, "deny": []string{"c.fed.test"}, "allow_ip_literals": false})
		from = alice.apiSync(t, nil).NextBatch
		e2 := alice.send(room, "read me too")

		// c: its PDU and EDUs are dropped.
		denied := mb.build(mb.proto(carol.UserID, textContent("after the ACL")), "c.fed.test", cKey)
		res := sendTxn(t, c.srv.fedClient, "c.fed.test", "a.fed.test", "scenario-acl-2", []*event.Event{denied},
			[]map[string]any{receipt(carol.UserID, e2), typing(carol.UserID)})
		if e, ok := res[denied.ID()]; !ok || e == "" {
			t.Errorf("c's PDU after the ACL: %v; want an error", res)
		}
		fromCarol := carol.send(room, "after the ACL, through c's sender")
		// b: the same kinds of traffic, taken.
		allowed := mb.build(mb.proto(bob.UserID, textContent("b is still allowed")), "b.fed.test", bKey)
		res = sendTxn(t, b.srv.fedClient, "b.fed.test", "a.fed.test", "scenario-acl-3", []*event.Event{allowed},
			[]map[string]any{receipt(bob.UserID, e2), typing(bob.UserID)})
		if e, ok := res[allowed.ID()]; !ok || e != "" {
			t.Errorf("b's PDU after the ACL: %v; want accepted", res)
		}
		fromBob := bob.send(room, "after the ACL, through b's sender")

		// c's EDUs were handled before b's: when b's show, c's would have.
		s := alice.apiSyncUntil(t, since(from), "bob's receipt and typing", func(s *apiSyncResp) bool {
			return s.readReceipt(room, e2, bob.UserID) && slices.Contains(s.typing(room), bob.UserID)
		})
		if s.readReceipt(room, e2, carol.UserID) || slices.Contains(s.typing(room), carol.UserID) {
			t.Errorf("a applied c's EDUs after the ACL denied c: typing %v, carol's receipt %v", s.typing(room), s.readReceipt(room, e2, carol.UserID))
		}
		testenv.Eventually(t, 15*time.Second, "a receives b's messages", func() bool {
			return hasAll(timeline(alice, room, 50), []string{allowed.ID(), fromBob})
		})
		tl := timeline(alice, room, 50)
		for _, id := range []string{denied.ID(), fromCarol} {
			if _, ok := tl[id]; ok {
				t.Errorf("a's timeline holds c's %s sent after the ACL", id)
			}
			if r := alice.do("GET", "/rooms/"+apiEsc(room)+"/event/"+apiEsc(id), nil); r.Status != 404 {
				t.Errorf("a serves c's %s sent after the ACL: %d", id, r.Status)
			}
		}
	})
}
