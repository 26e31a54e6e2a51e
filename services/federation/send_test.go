package federation

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// pdu builds a message from @carol:remote.test in the test room.
func (f *fixture) pdu(t *testing.T, body string, key *keys.SigningKey) *event.Event {
	t.Helper()
	v := roomversion.MustLookup("10")
	p := cjson.ObjectValue(
		cjson.Member{Key: "type", Value: cjson.StringValue("m.room.message")},
		cjson.Member{Key: "room_id", Value: cjson.StringValue(testRoom)},
		cjson.Member{Key: "sender", Value: cjson.StringValue("@carol:remote.test")},
		cjson.Member{Key: "content", Value: cjson.ObjectValue(cjson.Member{Key: "body", Value: cjson.StringValue(body)})},
		cjson.Member{Key: "origin_server_ts", Value: cjson.IntValue(1_700_000_000_000)},
		cjson.Member{Key: "depth", Value: cjson.IntValue(5)},
		cjson.Member{Key: "prev_events", Value: cjson.StringArray([]string{"$" + strings.Repeat("A", 43)})},
		cjson.Member{Key: "auth_events", Value: cjson.StringArray([]string{"$" + strings.Repeat("B", 42) + "A"})},
	)
	ev, err := event.Build(v, p, "remote.test", key)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func txnBody(origin string, pdus ...[]byte) []byte {
	list := make([]json.RawMessage, len(pdus))
	for i, p := range pdus {
		list[i] = p
	}
	b, _ := json.Marshal(map[string]any{"origin": origin, "origin_server_ts": 1, "pdus": list})
	return b
}

func TestSendTransaction(t *testing.T) {
	f := newFixture(t)
	good := f.pdu(t, "hello", f.remoteKey)
	refused := f.pdu(t, "forbidden words", f.remoteKey)
	otherKey, _ := keys.Generate("r1", nil)
	forged := f.pdu(t, "forged", otherKey)
	// The content changed after signing: the hash fails, the signature
	// (over the redacted event) holds: kept, redacted.
	tampered := f.pdu(t, "original", f.remoteKey)
	tamperedJSON := tampered.JSON().With("content", cjson.ObjectValue(cjson.Member{Key: "body", Value: cjson.StringValue("changed")}))
	elsewhere := f.pdu(t, "x", f.remoteKey).JSON().With("room_id", cjson.StringValue("!other:our.test"))
	deniedJSON := f.pdu(t, "acl", f.remoteKey).JSON().With("room_id", cjson.StringValue(deniedRoom))
	denied, err := event.Build(roomversion.MustLookup("10"), deniedJSON.Without("signatures", "hashes"), "remote.test", f.remoteKey)
	if err != nil {
		t.Fatal(err)
	}

	body := txnBody("remote.test", good.Canonical(), refused.Canonical(), forged.Canonical(), tamperedJSON.Canonical(), elsewhere.Canonical(), []byte(`{"not":"an event"}`), denied.Canonical())
	status, v := f.do(t, "PUT", "/_matrix/federation/v1/send/t1", body, signed)
	if status != 200 {
		t.Fatalf("send: %d %s", status, v)
	}
	pdus := v.Get("pdus")
	if e := pdus.Get(good.ID()); !e.Exists() || e.Has("error") {
		t.Errorf("accepted PDU: %s", e)
	}
	if e := pdus.Path(refused.ID(), "error").StrOr(""); !strings.HasPrefix(e, "rejected") {
		t.Errorf("rejected PDU: %q", e)
	}
	if e := pdus.Path(forged.ID(), "error").StrOr(""); !strings.Contains(e, "signature") {
		t.Errorf("forged PDU: %q", e)
	}
	if e := pdus.Path(denied.ID(), "error").StrOr(""); !strings.Contains(e, "server ACL") {
		t.Errorf("PDU of a room whose ACL denies the origin: %q", e)
	}
	if pdus.Len() != 5 {
		t.Errorf("results for %d PDUs, want 5: %s", pdus.Len(), pdus)
	}
	if len(f.inputs) != 1 || len(f.inputs[0].PDUs) != 3 || f.inputs[0].Origin != "remote.test" {
		t.Fatalf("inputs = %+v", f.inputs)
	}
	sub, _ := event.Parse(roomversion.MustLookup("10"), f.inputs[0].PDUs[2])
	if sub.ID() != tampered.ID() || sub.Content().Has("body") {
		t.Errorf("the PDU whose hash failed was submitted as %s", sub.JSON())
	}

	// The same transaction again: the same answer, nothing processed.
	status, again := f.do(t, "PUT", "/_matrix/federation/v1/send/t1", body, signed)
	if status != 200 || again.String() != v.String() || len(f.inputs) != 1 {
		t.Errorf("repeated transaction: %d %s, %d inputs", status, again, len(f.inputs))
	}

	// Bad transactions.
	many := make([][]byte, maxTxnPDUs+1)
	for i := range many {
		many[i] = good.Canonical()
	}
	for _, c := range []struct {
		name, body, code string
	}{
		{"too many PDUs", string(txnBody("remote.test", many...)), "M_BAD_JSON"},
		{"another origin", string(txnBody("third.test", good.Canonical())), "M_FORBIDDEN"},
		{"not an object", `[]`, "M_BAD_JSON"},
		{"not JSON", `{`, "M_NOT_JSON"},
	} {
		status, v := f.do(t, "PUT", fmt.Sprintf("/_matrix/federation/v1/send/bad-%s", strings.ReplaceAll(c.name, " ", "-")), []byte(c.body), signed)
		if status/100 != 4 || v.Get("errcode").StrOr("") != c.code {
			t.Errorf("%s: %d %s", c.name, status, v)
		}
	}
}
