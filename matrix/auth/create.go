package auth

import (
	"strconv"

	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/id"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// checkCreate applies rule 1, for m.room.create events. It needs no state.
func (c *checker) checkCreate() *Rejection {
	ev, n := c.ev, c.n.create
	if p := ev.PrevEvents(); len(p) > 0 {
		return c.reject("m.room.create event has "+strconv.Itoa(len(p))+" prev_events", n, 1)
	}
	if c.v.RoomIDFromCreate {
		if ev.JSON().Has("room_id") {
			return c.reject("m.room.create event has a room_id", n, 2)
		}
	} else {
		roomServer, _ := id.RoomID(ev.RoomID()).Server()
		if string(roomServer) != serverOf(ev.Sender()) {
			return c.reject("room ID "+ev.RoomID()+" is not on the server of sender "+ev.Sender(), n, 2)
		}
	}
	if rv := ev.Content().Get("room_version"); rv.Exists() {
		s, ok := rv.Str()
		if !ok {
			return c.reject("content.room_version is a "+rv.Kind().String()+", not a room version", n, 3)
		}
		if _, known := roomversion.Lookup(s); !known {
			return c.reject("content.room_version "+quote(s)+" is not a recognised room version", n, 3)
		}
	}
	if c.v.CreatorInContent && !ev.Content().Has("creator") {
		return c.reject("content has no creator", n, 4)
	}
	if c.v.PrivilegedCreators {
		if ac := ev.Content().Get("additional_creators"); ac.Exists() {
			if ac.Kind() != cjson.Array {
				return c.reject("content.additional_creators is a "+ac.Kind().String()+", not an array", n, 4)
			}
			for i, m := range ac.Elems() {
				s, ok := m.Value.Str()
				if !ok {
					return c.reject("content.additional_creators["+strconv.Itoa(i)+"] is a "+m.Value.Kind().String()+", not a user ID", n, 4)
				}
				if _, err := id.ParseUserID(s); err != nil {
					return c.reject("content.additional_creators["+strconv.Itoa(i)+"]: "+err.Error(), n, 4)
				}
			}
		}
	}
	return nil
}

// creatorOf returns the user the version's rules call the room creator: the
// content.creator of the create event (v1–10) or its sender (v11+).
func creatorOf(v *roomversion.Version, create *event.Event) string {
	if create == nil {
		return ""
	}
	if v.CreatorInContent {
		s, _ := create.Content().Get("creator").Str()
		return s
	}
	return create.Sender()
}

// isPrivilegedCreator reports whether user is one of the room creators of
// room version 12: the create event's sender or one of its
// additional_creators.
func isPrivilegedCreator(create *event.Event, user string) bool {
	if create == nil {
		return false
	}
	if create.Sender() == user {
		return true
	}
	ac := create.Content().Get("additional_creators")
	if ac.Kind() != cjson.Array {
		return false
	}
	for _, m := range ac.Elems() {
		if s, ok := m.Value.Str(); ok && s == user {
			return true
		}
	}
	return false
}
