package event

import (
	"testing"

	"github.com/axon-hs/axon/matrix/roomversion"
)

// FuzzParse feeds arbitrary bytes to the PDU parser of every room version:
// it must never panic, and whatever it accepts must re-parse to the same
// event with the same ID and survive redaction.
func FuzzParse(f *testing.F) {
	for _, v := range roomversion.All() {
		e := build(f, v, proto(v))
		f.Add(v.ID, e.Canonical())
	}
	f.Add("12", []byte(`{"type":"m.room.create","sender":"@a:b","state_key":"","content":{},"depth":0,"origin_server_ts":0,"hashes":{"sha256":"x"},"signatures":{},"prev_events":[],"auth_events":[]}`))
	f.Fuzz(func(t *testing.T, version string, data []byte) {
		v, ok := roomversion.Lookup(version)
		if !ok {
			return
		}
		e, err := Parse(v, data)
		if err != nil {
			return
		}
		again, err := Parse(v, e.Canonical())
		if err != nil {
			t.Fatalf("accepted event does not re-parse: %v", err)
		}
		if again.ID() != e.ID() || again.RoomID() != e.RoomID() || string(again.Canonical()) != string(e.Canonical()) {
			t.Fatalf("re-parse differs")
		}
		if e.Size() > MaxEventSize {
			t.Fatalf("accepted %d bytes", e.Size())
		}
		r := e.Redacted()
		if r.ID() != e.ID() {
			t.Fatalf("redaction changed the ID")
		}
		_ = e.ContentHashValid()
		_ = e.RequiredSigners()
	})
}
