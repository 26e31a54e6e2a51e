package federation

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/bus/bustest"
	"github.com/axon-hs/axon/internal/coord"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/internal/store/storetest"
	"github.com/axon-hs/axon/internal/testenv"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/matrix/roomversion"
	"github.com/axon-hs/axon/services/roomserver"
)

const alice = "@alice:our.test"

// rooms is a room role of our.test over a real database and bus, to make
// rooms for the reads of this package to find.
type rooms struct {
	t     *testing.T
	db    *store.DB
	sub   *roomserver.Submitter
	key   *keys.SigningKey
	clock *testenv.Clock
}

func newRooms(t *testing.T, e testenv.Engine) *rooms {
	t.Helper()
	b := bustest.Start(t, 2)
	db := storetest.Open(t, e, roomserver.Migrations(), Migrations())
	key, _ := keys.Generate("o1", nil)
	clock := testenv.NewClock(time.UnixMilli(1_700_000_000_000))
	srv, err := roomserver.New(db, b, roomserver.Config{ServerName: "our.test", Key: key, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Run(runCtx, coord.NewLocal(nil)) })
	t.Cleanup(func() { stop(); wg.Wait() })
	sub, err := roomserver.NewSubmitter(b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return &rooms{t: t, db: db, sub: sub, key: key, clock: clock}
}

func (rs *rooms) submit(in *roomserver.Input) roomserver.Result {
	rs.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := rs.sub.Submit(ctx, in)
	if err != nil {
		rs.t.Fatalf("submit: %v", err)
	}
	if res.Error != nil {
		rs.t.Fatalf("submit: %+v", res.Error)
	}
	return res
}

// state is a state event template of alice's.
func state(typ, key string, content any) roomserver.Template {
	raw, _ := json.Marshal(content)
	return roomserver.Template{Type: typ, StateKey: &key, Sender: alice, Content: raw}
}

// create makes a room of version 10 with alice joined, of roomType ("" for
// none), with the state events given.
func (rs *rooms) create(roomType string, evs ...roomserver.Template) string {
	rs.t.Helper()
	v := roomversion.MustLookup("10")
	content := cjson.ObjectValue(cjson.Member{Key: "room_version", Value: cjson.StringValue("10")},
		cjson.Member{Key: "creator", Value: cjson.StringValue(alice)})
	if roomType != "" {
		content = content.With("type", cjson.StringValue(roomType))
	}
	create, roomID, err := roomserver.NewCreateEvent(v, alice, content, "our.test", rs.key, rs.clock.Now(), nil)
	if err != nil {
		rs.t.Fatal(err)
	}
	all := append([]roomserver.Template{
		state("m.room.member", alice, map[string]any{"membership": "join"}),
		state("m.room.power_levels", "", map[string]any{"users": map[string]any{alice: 100}}),
	}, evs...)
	rs.submit(&roomserver.Input{RoomID: roomID, RoomVersion: "10", Create: create.Canonical(), Events: all})
	return roomID
}

// child adds an m.space.child event to space, a second after the last.
func (rs *rooms) child(space, child string, content map[string]any) {
	rs.t.Helper()
	rs.clock.Advance(time.Second)
	rs.submit(&roomserver.Input{RoomID: space, Events: []roomserver.Template{state("m.space.child", child, content)}})
}

func joinRule(rule string, extra ...any) roomserver.Template {
	c := map[string]any{"join_rule": rule}
	if len(extra) > 0 {
		c["allow"] = extra
	}
	return state("m.room.join_rules", "", c)
}

func name(n string) roomserver.Template { return state("m.room.name", "", map[string]any{"name": n}) }

func TestHierarchy(t *testing.T) { testenv.ForEachEngine(t, testHierarchy) }

func testHierarchy(t *testing.T, e testenv.Engine) {
	rs := newRooms(t, e)
	space := rs.create("m.space", joinRule("public"), name("Space"), state("m.room.topic", "", map[string]any{"topic": "All of it"}))
	pub := rs.create("", joinRule("public"), name("Pub"), state("m.room.avatar", "", map[string]any{"url": "mxc://our.test/pub"}),
		state("m.room.guest_access", "", map[string]any{"guest_access": "can_join"}),
		state("m.room.encryption", "", map[string]any{"algorithm": "m.megolm.v1.aes-sha2"}))
	priv := rs.create("", name("Private"))
	readable := rs.create("", state("m.room.history_visibility", "", map[string]any{"history_visibility": "world_readable"}))
	invited := rs.create("", state("m.room.member", "@carol:remote.test", map[string]any{"membership": "invite"}))
	denied := rs.create("", joinRule("public"), state("m.room.server_acl", "", map[string]any{"allow": []string{"*"}, "deny": []string{"remote.test"}}))
	restricted := rs.create("", joinRule("restricted", map[string]any{"type": "m.room_membership", "room_id": space}))
	knock := rs.create("", joinRule("knock"))
	sub := rs.create("m.space", joinRule("public"), name("Sub"))
	via := []string{"our.test"}
	rs.child(sub, pub, map[string]any{"via": via})
	rs.child(space, pub, map[string]any{"via": via, "order": "aaaa"})
	rs.child(space, priv, map[string]any{"via": via, "order": " "})
	rs.child(space, readable, map[string]any{"via": via, "suggested": true})
	rs.child(space, invited, map[string]any{"via": via})
	rs.child(space, denied, map[string]any{"via": via, "order": "\x7fbad"}) // an invalid order counts as none
	rs.child(space, restricted, map[string]any{"via": via})
	rs.child(space, knock, map[string]any{"via": via, "suggested": false})
	rs.child(space, sub, map[string]any{"via": via})
	rs.child(space, "!unknown:elsewhere.test", map[string]any{"via": []string{"elsewhere.test"}})
	rs.child(space, "!removed:our.test", map[string]any{})
	rs.child(space, "not a room", map[string]any{"via": via})

	f := newLookupFixture(t, Lookups{}, rs.db, roomserver.NewReader(rs.db))
	get := func(room, query string) (int, cjson.Value) {
		t.Helper()
		return f.do(t, "GET", "/_matrix/federation/v1/hierarchy/"+url.PathEscape(room)+query, nil, signed)
	}
	roomIDs := func(v cjson.Value, key string) []string {
		var out []string
		for i := range v.Len() {
			out = append(out, v.Index(i).Get(key).StrOr(""))
		}
		return out
	}

	status, v := get(space, "")
	if status != 200 {
		t.Fatalf("hierarchy: %d %s", status, v)
	}
	room := v.Get("room")
	if room.Get("room_id").StrOr("") != space || room.Get("name").StrOr("") != "Space" || room.Get("topic").StrOr("") != "All of it" ||
		room.Get("room_type").StrOr("") != "m.space" || room.Get("join_rule").StrOr("") != "public" ||
		room.Get("room_version").StrOr("") != "10" {
		t.Errorf("room: %s", room)
	}
	if n, _ := room.Get("num_joined_members").Int(); n != 1 {
		t.Errorf("num_joined_members: %s", room)
	}
	for _, k := range []string{"world_readable", "guest_can_join"} {
		if b, ok := room.Get(k).Bool(); !ok || b {
			t.Errorf("%s: %s", k, room)
		}
	}
	// children_state in the spec's order: valid orders first, then by
	// timestamp; no removed child, no state key that is no room.
	wantState := []string{priv, pub, readable, invited, denied, restricted, knock, sub, "!unknown:elsewhere.test"}
	cs := room.Get("children_state")
	if got := roomIDs(cs, "state_key"); !slices.Equal(got, wantState) {
		t.Errorf("children_state %v, want %v", got, wantState)
	}
	first := cs.Index(0)
	if first.Get("type").StrOr("") != "m.space.child" || first.Get("sender").StrOr("") != alice ||
		first.Get("content").Get("order").StrOr("") != " " || first.Get("event_id").Exists() {
		t.Errorf("a stripped child: %s", first)
	}
	if ts, ok := first.Get("origin_server_ts").Int(); !ok || ts <= 1_700_000_000_000 {
		t.Errorf("origin_server_ts of a child: %s", first)
	}
	// The children remote.test can peek into or join, in the same order;
	// the others it cannot; rooms unknown here are left out.
	wantChildren := []string{pub, readable, invited, knock, sub}
	if got := roomIDs(v.Get("children"), "room_id"); !slices.Equal(got, wantChildren) {
		t.Errorf("children %v, want %v", got, wantChildren)
	}
	var inaccessible []string
	for i := range v.Get("inaccessible_children").Len() {
		inaccessible = append(inaccessible, v.Get("inaccessible_children").Index(i).StrOr(""))
	}
	if want := []string{priv, denied, restricted}; !slices.Equal(inaccessible, want) {
		t.Errorf("inaccessible_children %v, want %v", inaccessible, want)
	}
	c := v.Get("children")
	p := c.Index(0)
	if p.Get("name").StrOr("") != "Pub" || p.Get("avatar_url").StrOr("") != "mxc://our.test/pub" || p.Get("encryption").StrOr("") != "m.megolm.v1.aes-sha2" {
		t.Errorf("pub: %s", p)
	}
	if b, _ := p.Get("guest_can_join").Bool(); !b {
		t.Errorf("pub's guest access: %s", p)
	}
	if r := c.Index(1); r.Get("join_rule").StrOr("") != "invite" || !func() bool { b, _ := r.Get("world_readable").Bool(); return b }() {
		t.Errorf("world-readable room: %s", r)
	}
	if s := c.Index(4); s.Get("room_type").StrOr("") != "m.space" || !slices.Equal(roomIDs(s.Get("children_state"), "state_key"), []string{pub}) {
		t.Errorf("sub-space: %s", s)
	}

	// Only the suggested ones.
	status, v = get(space, "?suggested_only=true")
	if got := roomIDs(v.Get("children"), "room_id"); status != 200 || !slices.Equal(got, []string{readable}) ||
		!slices.Equal(roomIDs(v.Get("room").Get("children_state"), "state_key"), []string{readable}) {
		t.Errorf("suggested only: %d %s", status, v)
	}

	// A room itself: its summary without children.
	status, v = get(invited, "")
	if status != 200 || v.Get("room").Get("room_id").StrOr("") != invited || v.Get("children").Len() != 0 ||
		v.Get("room").Get("children_state").Len() != 0 || v.Get("inaccessible_children").Len() != 0 {
		t.Errorf("a room with an invite of remote.test: %d %s", status, v)
	}
	for _, c := range []struct {
		room, query string
		status      int
		code        string
	}{
		{priv, "", 404, "M_NOT_FOUND"},
		{denied, "", 404, "M_NOT_FOUND"},
		{restricted, "", 404, "M_NOT_FOUND"},
		{"!unknown:elsewhere.test", "", 404, "M_NOT_FOUND"},
		{"not a room", "", 404, "M_NOT_FOUND"},
		{space, "?suggested_only=maybe", 400, "M_INVALID_PARAM"},
	} {
		if status, v := get(c.room, c.query); status != c.status || v.Get("errcode").StrOr("") != c.code {
			t.Errorf("%s%s: %d %s, want %d %s", c.room, c.query, status, v, c.status, c.code)
		}
	}

	// A restricted room's summary names its allowed rooms.
	api := &API{cfg: Config{Reader: roomserver.NewReader(rs.db)}}
	s, err := api.summarize(context.Background(), restricted)
	if err != nil || s.summary.JoinRule != "restricted" || !slices.Equal(s.summary.AllowedRoomIDs, []string{space}) {
		t.Errorf("restricted summary %+v, %v", s, err)
	}
	s, err = api.summarize(context.Background(), pub)
	if err != nil || s.summary.AllowedRoomIDs != nil {
		t.Errorf("a public room's allowed rooms: %+v, %v", s, err)
	}
}

func TestChildOrder(t *testing.T) {
	cs := []childState{
		{StateKey: "!d", OriginServerTS: 1640741000000},
		{StateKey: "!e", OriginServerTS: 1640641000000},
		{StateKey: "!c", OriginServerTS: 1640841000000, order: "first"},
		{StateKey: "!a", OriginServerTS: 1640141000000, order: "aaaa"},
		{StateKey: "!b", OriginServerTS: 1640341000000, order: " "},
		{StateKey: "!g", OriginServerTS: 5, order: "same"},
		{StateKey: "!f", OriginServerTS: 5, order: "same"},
		{StateKey: "!h", OriginServerTS: 4, order: "same"},
	}
	sortChildren(cs)
	var got []string
	for _, c := range cs {
		got = append(got, c.StateKey)
	}
	// The spec's example, and ties broken by timestamp, then room ID.
	if want := []string{"!b", "!a", "!c", "!h", "!f", "!g", "!e", "!d"}; !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	for o, want := range map[string]bool{" ": true, "~": true, "aaaa": true, "": false, "\x7f": false, "é": false,
		strings.Repeat("a", 51): false, "01234567890123456789012345678901234567890123456789": true} {
		if validOrder(o) != want {
			t.Errorf("validOrder(%q) = %v", o, !want)
		}
	}
}
