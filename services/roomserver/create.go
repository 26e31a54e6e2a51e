package roomserver

import (
	"encoding/base64"
	"fmt"
	"io"
	"time"

	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// NewCreateEvent builds and signs the m.room.create event of a new room
// and returns it with the room's ID: derived from the event in room
// version 12, a fresh random `!opaque:server` before. content must already
// hold what the room version needs (room_version, and creator before v11).
func NewCreateEvent(v *roomversion.Version, sender string, content cjson.Value, origin string, key *keys.SigningKey, now time.Time, random io.Reader) (*event.Event, string, error) {
	p := cjson.ObjectValue(
		cjson.Member{Key: "type", Value: cjson.StringValue("m.room.create")},
		cjson.Member{Key: "state_key", Value: cjson.StringValue("")},
		cjson.Member{Key: "sender", Value: cjson.StringValue(sender)},
		cjson.Member{Key: "content", Value: content},
		cjson.Member{Key: "origin_server_ts", Value: cjson.IntValue(now.UnixMilli())},
		cjson.Member{Key: "depth", Value: cjson.IntValue(1)},
		cjson.Member{Key: "prev_events", Value: cjson.ArrayValue()},
		cjson.Member{Key: "auth_events", Value: cjson.ArrayValue()},
	)
	random = defaultRand(random)
	if !v.RoomIDFromCreate {
		var rnd [12]byte
		if _, err := io.ReadFull(random, rnd[:]); err != nil {
			return nil, "", err
		}
		roomID := "!" + base64.RawURLEncoding.EncodeToString(rnd[:]) + ":" + origin
		p = p.With("room_id", cjson.StringValue(roomID))
	}
	if !v.HashEventIDs() {
		var rnd [12]byte
		if _, err := io.ReadFull(random, rnd[:]); err != nil {
			return nil, "", err
		}
		p = p.With("event_id", cjson.StringValue("$"+base64.RawURLEncoding.EncodeToString(rnd[:])+":"+origin))
	}
	ev, err := event.Build(v, p, origin, key)
	if err != nil {
		return nil, "", fmt.Errorf("roomserver: create event: %w", err)
	}
	return ev, ev.RoomID(), nil
}
