package federation

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/acl"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/id"
	"github.com/axon-hs/axon/services/roomserver"
)

// maxHierarchyChildren bounds the children of one /hierarchy answer (in
// the spec's order; the rest are left out).
const maxHierarchyChildren = 50

// maxAllowedChecked bounds the allowed rooms of a restricted room that
// are looked at for the requesting server's members.
const maxAllowedChecked = 20

// maxChildOrder is the longest valid "order" of an m.space.child event.
const maxChildOrder = 50

// summaryTypes are the state a room summary is made of.
var summaryTypes = []string{"m.room.create", "m.room.name", "m.room.topic", "m.room.canonical_alias", "m.room.avatar",
	"m.room.history_visibility", "m.room.guest_access", "m.room.join_rules", "m.room.encryption", "m.room.server_acl", "m.space.child"}

// roomSummary is the spec's RoomSummary, with the children_state of
// SpaceHierarchyParentRoom (empty for a room that is not a space).
type roomSummary struct {
	RoomID           string       `json:"room_id"`
	Name             *string      `json:"name,omitempty"`
	Topic            *string      `json:"topic,omitempty"`
	CanonicalAlias   *string      `json:"canonical_alias,omitempty"`
	AvatarURL        *string      `json:"avatar_url,omitempty"`
	NumJoinedMembers int          `json:"num_joined_members"`
	WorldReadable    bool         `json:"world_readable"`
	GuestCanJoin     bool         `json:"guest_can_join"`
	JoinRule         string       `json:"join_rule"`
	RoomType         *string      `json:"room_type,omitempty"`
	AllowedRoomIDs   []string     `json:"allowed_room_ids,omitempty"`
	Encryption       string       `json:"encryption,omitempty"`
	RoomVersion      string       `json:"room_version"`
	ChildrenState    []childState `json:"children_state"`
}

// childState is an m.space.child event in stripped form, with its
// origin_server_ts.
type childState struct {
	Type           string      `json:"type"`
	StateKey       string      `json:"state_key"`
	Content        cjson.Value `json:"content"`
	Sender         string      `json:"sender"`
	OriginServerTS int64       `json:"origin_server_ts"`
	order          string      // a valid "order", or ""
	suggested      bool
}

// summarized is a room as this server knows it now.
type summarized struct {
	summary roomSummary
	acl     *acl.ACL
	info    roomserver.RoomInfo
}

func (a *API) hierarchy(w http.ResponseWriter, r *http.Request, req *Request) error {
	ctx := r.Context()
	roomID := r.PathValue("roomId")
	var suggestedOnly bool
	switch r.URL.Query().Get("suggested_only") {
	case "", "false":
	case "true":
		suggestedOnly = true
	default:
		return httpx.InvalidParam("suggested_only must be true or false")
	}
	notFound := httpx.NotFound("room " + roomID + " is not known here, or not to be peeked or joined by " + req.Origin)
	space, err := a.summarize(ctx, roomID)
	if errors.Is(err, roomserver.ErrNotFound) {
		return notFound
	}
	if err != nil {
		return err
	}
	if ok, err := a.accessible(ctx, space, req.Origin); err != nil {
		return err
	} else if !ok {
		return notFound
	}
	if suggestedOnly {
		space.summary.ChildrenState = slices.DeleteFunc(space.summary.ChildrenState, func(c childState) bool { return !c.suggested })
	}
	children := []roomSummary{}
	inaccessible := []string{}
	for _, c := range space.summary.ChildrenState[:min(len(space.summary.ChildrenState), maxHierarchyChildren)] {
		child, err := a.summarize(ctx, c.StateKey)
		if errors.Is(err, roomserver.ErrNotFound) {
			continue // a room this server cannot tell about is left out
		}
		if err != nil {
			return err
		}
		ok, err := a.accessible(ctx, child, req.Origin)
		if err != nil {
			return err
		}
		if !ok {
			inaccessible = append(inaccessible, c.StateKey)
			continue
		}
		children = append(children, child.summary)
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{
		"room": space.summary, "children": children, "inaccessible_children": inaccessible})
}

// summarize reads a room's current summary; roomserver.ErrNotFound when
// this server does not know the room.
func (a *API) summarize(ctx context.Context, roomID string) (*summarized, error) {
	if _, err := id.ParseRoomID(roomID); err != nil {
		return nil, roomserver.ErrNotFound
	}
	info, err := a.cfg.Reader.Room(ctx, roomID)
	if err != nil {
		return nil, err
	}
	state, err := a.cfg.Reader.StateAt(ctx, info.Version, roomID, info.HeadSeq, summaryTypes...)
	if err != nil {
		return nil, err
	}
	joined, _, _, err := a.cfg.Reader.MemberSummary(ctx, roomID, "", 0)
	if err != nil {
		return nil, err
	}
	s := &summarized{info: info, summary: roomSummary{RoomID: roomID, NumJoinedMembers: joined, RoomVersion: info.Version.ID,
		JoinRule: "invite", ChildrenState: []childState{}}}
	sum := &s.summary
	str := func(ev *roomserver.StoredEvent, key string) *string {
		if v, ok := ev.Content().Get(key).Str(); ok {
			return &v
		}
		return nil
	}
	for _, ev := range state {
		c := ev.Content()
		switch ev.Type() {
		case "m.room.create":
			sum.RoomType = str(ev, "type")
		case "m.room.name":
			sum.Name = str(ev, "name")
		case "m.room.topic":
			sum.Topic = str(ev, "topic")
		case "m.room.canonical_alias":
			sum.CanonicalAlias = str(ev, "alias")
		case "m.room.avatar":
			sum.AvatarURL = str(ev, "url")
		case "m.room.history_visibility":
			sum.WorldReadable = c.Get("history_visibility").StrOr("") == "world_readable"
		case "m.room.guest_access":
			sum.GuestCanJoin = c.Get("guest_access").StrOr("") == "can_join"
		case "m.room.join_rules":
			if rule, ok := c.Get("join_rule").Str(); ok {
				sum.JoinRule = rule
			}
			sum.AllowedRoomIDs = allowedRooms(c)
		case "m.room.encryption":
			sum.Encryption = c.Get("algorithm").StrOr("")
		case "m.room.server_acl":
			s.acl = acl.Parse(c)
		case "m.space.child":
			if cs, ok := spaceChild(ev); ok {
				sum.ChildrenState = append(sum.ChildrenState, cs)
			}
		}
	}
	if !restrictedRule(s) {
		sum.AllowedRoomIDs = nil
	}
	sortChildren(sum.ChildrenState)
	return s, nil
}

// restrictedRule reports whether the room's join rule is one that the
// room's version knows to take allowed rooms.
func restrictedRule(s *summarized) bool {
	return restrictedJoinRule(s.info.Version, s.summary.JoinRule)
}

// allowedRooms lists the rooms of the m.room_membership conditions of a
// join rule's allow list.
func allowedRooms(content cjson.Value) []string {
	var out []string
	allow := content.Get("allow")
	for i := range allow.Len() {
		cond := allow.Index(i)
		if cond.Get("type").StrOr("") != "m.room_membership" {
			continue
		}
		if room, ok := cond.Get("room_id").Str(); ok && !slices.Contains(out, room) {
			out = append(out, room)
		}
	}
	return out
}

// spaceChild turns an m.space.child state event into its stripped form;
// false when it names no child (no via, or a state key that is no room
// ID).
func spaceChild(ev *roomserver.StoredEvent) (childState, bool) {
	sk, _ := ev.StateKey()
	if _, err := id.ParseRoomID(sk); err != nil {
		return childState{}, false
	}
	c := ev.Content()
	via, ok := c.Get("via").Strings()
	if !ok || len(via) == 0 {
		return childState{}, false
	}
	cs := childState{Type: ev.Type(), StateKey: sk, Content: c, Sender: ev.Sender(), OriginServerTS: ev.OriginServerTS()}
	if o, ok := c.Get("order").Str(); ok && validOrder(o) {
		cs.order = o
	}
	cs.suggested, _ = c.Get("suggested").Bool()
	return cs, true
}

// validOrder: at most 50 characters, each from U+0020 to U+007E.
func validOrder(o string) bool {
	if o == "" || len(o) > maxChildOrder {
		return false
	}
	for i := range len(o) {
		if o[i] < 0x20 || o[i] > 0x7e {
			return false
		}
	}
	return true
}

// sortChildren orders children as the spec's "Ordering of children
// within a space" says: those with a valid order first, by order; then by
// the event's origin_server_ts; then by room ID.
func sortChildren(cs []childState) {
	slices.SortFunc(cs, func(a, b childState) int {
		if (a.order == "") != (b.order == "") {
			if a.order != "" {
				return -1
			}
			return 1
		}
		return cmp.Or(strings.Compare(a.order, b.order), cmp.Compare(a.OriginServerTS, b.OriginServerTS), strings.Compare(a.StateKey, b.StateKey))
	})
}

// accessible reports whether origin could peek into or join the room, as
// far as this server can tell: not when the room's server ACL denies it;
// otherwise when the room is world-readable, public or knockable, when one
// of origin's users is joined or invited, or, for a restricted room, when
// one of origin's users is joined to one of the allowed rooms that this
// server knows.
func (a *API) accessible(ctx context.Context, s *summarized, origin string) (bool, error) {
	if s.acl != nil && !s.acl.Allows(origin) {
		return false, nil
	}
	if s.summary.WorldReadable {
		return true, nil
	}
	v := s.info.Version
	switch s.summary.JoinRule {
	case "public":
		return true, nil
	case "knock":
		if v.Knocking {
			return true, nil
		}
	case "knock_restricted":
		if v.KnockRestricted {
			return true, nil
		}
	}
	roomID := s.summary.RoomID
	if in, err := a.cfg.Reader.ServerInRoom(ctx, roomID, origin); err != nil || in {
		return in, err
	}
	invited, err := a.cfg.Reader.Members(ctx, roomID, "invite")
	if err != nil {
		return false, err
	}
	for _, m := range invited {
		if _, server, _ := strings.Cut(m.UserID, ":"); server == origin {
			return true, nil
		}
	}
	if restrictedRule(s) {
		allowed := s.summary.AllowedRoomIDs
		for _, allowed := range allowed[:min(len(allowed), maxAllowedChecked)] {
			if in, err := a.cfg.Reader.ServerInRoom(ctx, allowed, origin); err != nil || in {
				return in, err
			}
		}
	}
	return false, nil
}
