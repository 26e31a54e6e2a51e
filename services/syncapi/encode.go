package syncapi

import (
	"slices"
	"strconv"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/services/roomserver"
)

// A /sync response is written by AppendJSON rather than by encoding/json,
// which would check and compact again the JSON every event encodes itself
// to (roomserver.ClientEvent), a second pass over most of the response's
// bytes. The small parts without events go through encoding/json; the
// output is the same JSON, with object keys in the order encoding/json
// writes them (struct fields in order, map keys sorted).

var _ httpx.Appender = (*syncResponse)(nil)

// AppendJSON implements httpx.Appender.
func (r *syncResponse) AppendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"next_batch":`...)
	b = cjson.AppendString(b, r.NextBatch)
	if r.Rooms != nil {
		b = append(b, `,"rooms":`...)
		if b, err = r.Rooms.appendJSON(b); err != nil {
			return nil, err
		}
	}
	fields := []struct {
		key string
		v   any
	}{
		{"account_data", r.AccountData}, {"presence", r.Presence}, {"to_device", r.ToDevice},
		{"device_lists", r.DeviceLists}, {"device_one_time_keys_count", r.DeviceOneTimeKeysCount},
		{"device_unused_fallback_key_types", r.DeviceUnusedFallback},
	}
	for _, f := range fields {
		if b, err = appendField(b, f.key, f.v); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func (rs *roomsResponse) appendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"join":`...)
	if b, err = appendRooms(b, rs.Join, (*joinedRoom).appendJSON); err != nil {
		return nil, err
	}
	if b, err = appendField(b, "invite", rs.Invite); err != nil {
		return nil, err
	}
	b = append(b, `,"leave":`...)
	if b, err = appendRooms(b, rs.Leave, (*leftRoom).appendJSON); err != nil {
		return nil, err
	}
	if b, err = appendField(b, "knock", rs.Knock); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// appendRooms appends a map of rooms, in room ID order (a nil map as null,
// as encoding/json does).
func appendRooms[R any](b []byte, rooms map[string]*R, appendRoom func(*R, []byte) ([]byte, error)) ([]byte, error) {
	if rooms == nil {
		return append(b, "null"...), nil
	}
	ids := make([]string, 0, len(rooms))
	for id := range rooms {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	b = append(b, '{')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = cjson.AppendString(b, id)
		b = append(b, ':')
		var err error
		if b, err = appendRoom(rooms[id], b); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func (j *joinedRoom) appendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"timeline":`...)
	b = j.Timeline.appendJSON(b)
	b = append(b, `,"state":`...)
	b = appendEvents(b, j.State.Events)
	for _, f := range []struct {
		key string
		v   any
	}{{"account_data", j.AccountData}, {"ephemeral", j.Ephemeral}, {"summary", j.Summary}, {"unread_notifications", j.UnreadNotifications}} {
		if b, err = appendField(b, f.key, f.v); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func (l *leftRoom) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"timeline":`...)
	b = l.Timeline.appendJSON(b)
	b = append(b, `,"state":`...)
	b = appendEvents(b, l.State.Events)
	b, err := appendField(b, "account_data", l.AccountData)
	if err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

func (t *timeline) appendJSON(b []byte) []byte {
	b = append(b, `{"events":`...)
	b = appendEventList(b, t.Events)
	b = append(b, `,"limited":`...)
	b = strconv.AppendBool(b, t.Limited)
	if t.PrevBatch != "" {
		b = append(b, `,"prev_batch":`...)
		b = cjson.AppendString(b, t.PrevBatch)
	}
	return append(b, '}')
}

// appendEvents appends a stateList: {"events":[…]}.
func appendEvents(b []byte, evs []roomserver.ClientEvent) []byte {
	b = append(b, `{"events":`...)
	b = appendEventList(b, evs)
	return append(b, '}')
}

func appendEventList(b []byte, evs []roomserver.ClientEvent) []byte {
	if evs == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i := range evs {
		if i > 0 {
			b = append(b, ',')
		}
		b = evs[i].Append(b)
	}
	return append(b, ']')
}

// appendField appends ,"key": and v as encoding/json writes it.
func appendField(b []byte, key string, v any) ([]byte, error) {
	b = append(b, ',')
	b = cjson.AppendString(b, key)
	b = append(b, ':')
	data, err := httpx.MarshalNoEscape(v)
	if err != nil {
		return nil, err
	}
	return append(b, data...), nil
}
