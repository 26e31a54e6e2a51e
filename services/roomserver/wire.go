package roomserver

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/axon-hs/axon/matrix/cjson"
)

// The two messages that carry every event through the pipeline, Input
// (ROOM_INPUT) and Output (ROOM_EVENTS), hold events as JSON made by
// event.Canonical. encoding/json re-scans and copies every json.RawMessage
// it encodes, a pass over each event that costs more than the rest of the
// message; these encoders copy the events as they are. Decoding stays
// encoding/json's, which checks them on the receiving side.

// Encode returns o as JSON: what encoding/json gives (the same keys,
// omitempty alike), except that PDU is copied without being checked.
func (o *Output) Encode() []byte {
	b := make([]byte, 0, len(o.PDU)+160+len(o.StateDelta)*96)
	b = append(b, `{"room_id":`...)
	b = cjson.AppendString(b, o.RoomID)
	b = append(b, `,"room_version":`...)
	b = cjson.AppendString(b, o.RoomVersion)
	b = append(b, `,"room_seq":`...)
	b = strconv.AppendInt(b, o.RoomSeq, 10)
	b = append(b, `,"event_id":`...)
	b = cjson.AppendString(b, o.EventID)
	b = append(b, `,"pdu":`...)
	b = appendRaw(b, o.PDU)
	for _, f := range [...]struct {
		key string
		set bool
	}{{"rejected", o.Rejected}, {"out_of_room", o.OutOfRoom}, {"state_changed", o.StateChanged}, {"soft_failed", o.SoftFailed}} {
		if f.set {
			b = append(b, ',', '"')
			b = append(b, f.key...)
			b = append(b, `":true`...)
		}
	}
	if len(o.StateDelta) > 0 {
		b = append(b, `,"state_delta":[`...)
		for i, d := range o.StateDelta {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"type":`...)
			b = cjson.AppendString(b, d.Type)
			b = append(b, `,"state_key":`...)
			b = cjson.AppendString(b, d.StateKey)
			b = append(b, `,"event_id":`...)
			b = cjson.AppendString(b, d.EventID)
			b = appendOptString(b, "membership", d.Membership)
			b = appendOptString(b, "sender", d.Sender)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = appendOptString(b, "redacts", o.Redacts)
	b = appendOptString(b, "txn_id", o.TxnID)
	b = appendOptString(b, "device_id", o.DeviceID)
	return append(b, '}')
}

// Encode returns in as JSON, like encoding/json except that the events
// (PDUs, Outliers, Backfill) are copied without being checked: they must
// each be one JSON value, as event.Canonical makes them.
func (in *Input) Encode() ([]byte, error) {
	rest := *in
	rest.PDUs, rest.Outliers, rest.Backfill = nil, nil, nil
	b, err := json.Marshal(&rest)
	if err != nil {
		return nil, err
	}
	size := len(b)
	for _, raws := range [...][]json.RawMessage{in.PDUs, in.Outliers, in.Backfill} {
		for _, r := range raws {
			size += len(r) + 1
		}
	}
	out := make([]byte, 0, size+48)
	out = append(out, b[:len(b)-1]...) // without the closing brace
	for _, f := range [...]struct {
		key  string
		raws []json.RawMessage
	}{{"pdus", in.PDUs}, {"outliers", in.Outliers}, {"backfill", in.Backfill}} {
		if len(f.raws) == 0 {
			continue
		}
		if out[len(out)-1] != '{' {
			out = append(out, ',')
		}
		out = append(out, '"')
		out = append(out, f.key...)
		out = append(out, `":[`...)
		for i, r := range f.raws {
			if len(r) == 0 {
				return nil, fmt.Errorf("roomserver: input of %s: an empty event in %s", in.RoomID, f.key)
			}
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, r...)
		}
		out = append(out, ']')
	}
	return append(out, '}'), nil
}

func appendRaw(b []byte, raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return append(b, "null"...)
	}
	return append(b, raw...)
}

func appendOptString(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return cjson.AppendString(b, v)
}
