package syncapi

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/services/roomserver"
)

// syncResponse.AppendJSON writes what encoding/json writes for the same
// value, for a response in which every field of every type it encodes by
// hand is set (checked by reflection, so a field added later and left
// out of AppendJSON fails here).
func TestSyncResponseAppendJSONMatchesEncodingJSON(t *testing.T) {
	content, err := cjson.ParseString(`{"body":"<b>&</b> \u2028 \"q\"","msgtype":"m.text","n":[1,2.5,{"x":null}]}`, cjson.Lenient)
	if err != nil {
		t.Fatal(err)
	}
	sk := ""
	age := int64(12)
	redaction := roomserver.ClientEvent{Content: cjson.ObjectValue(), EventID: "$r", OriginServerTS: 3, Sender: "@a:x", Type: "m.room.redaction", Redacts: "$e2"}
	evs := []roomserver.ClientEvent{
		{Content: content, EventID: "$e1", OriginServerTS: 1, Sender: "@a:x", Type: "m.room.message",
			Unsigned: roomserver.Unsigned{Age: &age, TransactionID: "t<1>"}},
		{Content: cjson.ObjectValue(), EventID: "$e2", OriginServerTS: 2, Sender: "@b:x", StateKey: &sk, Type: "m.room.topic",
			Unsigned: roomserver.Unsigned{RedactedBecause: &redaction}},
		{Content: content, EventID: "$e3", OriginServerTS: 4, RoomID: "!r:x", Sender: "@b:x", Type: "m.room.message",
			Unsigned: roomserver.Unsigned{RedactedBecauseID: "$r2"}},
	}
	raw := rawList{Events: []json.RawMessage{json.RawMessage(`{"type":"m.tag","content":{"tags":{"u.<x>":{}}}}`)}}
	tl := timeline{Events: evs, Limited: true, PrevBatch: "r7"}
	resp := &syncResponse{
		NextBatch: "s1_2_3",
		Rooms: &roomsResponse{
			Join: map[string]*joinedRoom{
				"!b:x": {Timeline: tl, State: stateList{Events: evs[:1]}, AccountData: raw, Ephemeral: raw,
					Summary: map[string]any{"m.heroes": []string{"@c:x"}, "m.joined_member_count": 2}, UnreadNotifications: unreadCounts{1, 2}},
				"!a:x": {Timeline: timeline{Events: []roomserver.ClientEvent{}}, State: stateList{Events: []roomserver.ClientEvent{}},
					AccountData: rawList{Events: []json.RawMessage{}}, Ephemeral: raw, Summary: map[string]any{}},
			},
			Invite: map[string]*invitedRoom{"!i:x": {InviteState: strippedList{Events: []strippedEvent{{Content: content, Sender: "@a:x", Type: "m.room.name"}}}}},
			Leave:  map[string]*leftRoom{"!l:x": {Timeline: tl, State: stateList{Events: evs[1:]}, AccountData: raw}},
			Knock:  map[string]*knockedRoom{"!k:x": {KnockState: strippedList{Events: []strippedEvent{{Content: content, Sender: "@a:x", Type: "m.room.name"}}}}},
		},
		AccountData:            raw,
		Presence:               raw,
		ToDevice:               raw,
		DeviceLists:            deviceLists{Changed: []string{"@c:x"}, Left: []string{}},
		DeviceOneTimeKeysCount: map[string]int{"signed_curve25519": 0},
		DeviceUnusedFallback:   []string{},
	}
	allSet(t, "syncResponse", reflect.ValueOf(*resp))
	allSet(t, "roomsResponse", reflect.ValueOf(*resp.Rooms))
	allSet(t, "joinedRoom", reflect.ValueOf(*resp.Rooms.Join["!b:x"]))
	allSet(t, "leftRoom", reflect.ValueOf(*resp.Rooms.Leave["!l:x"]))
	allSet(t, "timeline", reflect.ValueOf(tl))

	for _, r := range []*syncResponse{resp, {NextBatch: "s0", DeviceLists: deviceLists{}}} {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(got) {
			t.Fatalf("AppendJSON wrote invalid JSON: %s", got)
		}
		var w, g any
		if err := json.Unmarshal(want, &w); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(w, g) {
			t.Errorf("AppendJSON differs from encoding/json:\n got %s\nwant %s", got, want)
		}
	}
}

// allSet fails for each exported field of the struct v that is zero.
func allSet(t *testing.T, name string, v reflect.Value) {
	t.Helper()
	for i := range v.NumField() {
		if f := v.Type().Field(i); f.IsExported() && v.Field(i).IsZero() {
			t.Errorf("the fixture leaves %s.%s unset", name, f.Name)
		}
	}
}
