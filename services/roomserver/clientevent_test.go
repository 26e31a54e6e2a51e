package roomserver

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/axon-hs/axon/matrix/cjson"
)

func TestClientEventJSON(t *testing.T) {
	content, err := cjson.Parse([]byte(`{"body":"a \"quoted\" <b>\u0001","msgtype":"m.text","n":[1,{"x":null}]}`), cjson.Strict)
	if err != nil {
		t.Fatal(err)
	}
	sk := ""
	age := int64(42)
	redaction := ClientEvent{Content: cjson.ObjectValue(), EventID: "$r", OriginServerTS: 5, Sender: "@b:x", Type: "m.room.redaction", Redacts: "$e"}
	cases := []struct {
		name string
		ev   ClientEvent
		want string
	}{
		{"minimal", ClientEvent{EventID: "$e", OriginServerTS: 1, Sender: "@a:x", Type: "m.room.message"},
			`{"content":{},"event_id":"$e","origin_server_ts":1,"sender":"@a:x","type":"m.room.message"}`},
		{"every field", ClientEvent{Content: content, EventID: "$e", OriginServerTS: 1, RoomID: "!r:x", Sender: "@a:x", StateKey: &sk,
			Type: "m.room.topic", Redacts: "$z", Unsigned: Unsigned{Age: &age, RedactedBecause: &redaction, TransactionID: "t1"}},
			`{"content":{"body":"a \"quoted\" <b>\u0001","msgtype":"m.text","n":[1,{"x":null}]},"event_id":"$e","origin_server_ts":1,
			"room_id":"!r:x","sender":"@a:x","state_key":"","type":"m.room.topic","redacts":"$z",
			"unsigned":{"age":42,"redacted_because":{"content":{},"event_id":"$r","origin_server_ts":5,"sender":"@b:x","type":"m.room.redaction","redacts":"$e"},"transaction_id":"t1"}}`},
		{"redaction not loaded", ClientEvent{EventID: "$e", Sender: "@a:x", Type: "m.room.message", Unsigned: Unsigned{RedactedBecauseID: "$r"}},
			`{"content":{},"event_id":"$e","origin_server_ts":0,"sender":"@a:x","type":"m.room.message","unsigned":{"redacted_because":{"event_id":"$r"}}}`},
		{"transaction only", ClientEvent{EventID: "$e", Sender: "@a:x", Type: "m.room.message", Unsigned: Unsigned{TransactionID: "t"}},
			`{"content":{},"event_id":"$e","origin_server_ts":0,"sender":"@a:x","type":"m.room.message","unsigned":{"transaction_id":"t"}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Through encoding/json, as responses are written.
			got, err := json.Marshal([]ClientEvent{c.ev})
			if err != nil {
				t.Fatal(err)
			}
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, got)
			}
			if err := json.Unmarshal([]byte("["+c.want+"]"), &w); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("got  %s\nwant [%s]", got, c.want)
			}
		})
	}
}
