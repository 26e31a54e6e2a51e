package syncapi

import (
	"slices"
	"strings"
)

// Filter is the subset of the spec's Filter that Axon applies. Unknown
// keys are accepted and ignored, as the spec allows servers to.
type Filter struct {
	EventFields []string    `json:"event_fields,omitempty"`
	EventFormat string      `json:"event_format,omitempty"`
	Presence    EventFilter `json:"presence"`
	AccountData EventFilter `json:"account_data"`
	Room        RoomFilter  `json:"room"`
}

// RoomFilter filters the rooms part of /sync.
type RoomFilter struct {
	Rooms        *[]string       `json:"rooms,omitempty"`
	NotRooms     []string        `json:"not_rooms,omitempty"`
	IncludeLeave bool            `json:"include_leave,omitempty"`
	Timeline     RoomEventFilter `json:"timeline"`
	State        RoomEventFilter `json:"state"`
	Ephemeral    RoomEventFilter `json:"ephemeral"`
	AccountData  RoomEventFilter `json:"account_data"`
}

// EventFilter is the spec's EventFilter.
type EventFilter struct {
	Limit      *int      `json:"limit,omitempty"`
	Types      *[]string `json:"types,omitempty"`
	NotTypes   []string  `json:"not_types,omitempty"`
	Senders    *[]string `json:"senders,omitempty"`
	NotSenders []string  `json:"not_senders,omitempty"`
}

// RoomEventFilter is the spec's RoomEventFilter.
type RoomEventFilter struct {
	EventFilter
	Rooms                   *[]string `json:"rooms,omitempty"`
	NotRooms                []string  `json:"not_rooms,omitempty"`
	LazyLoadMembers         bool      `json:"lazy_load_members,omitempty"`
	IncludeRedundantMembers bool      `json:"include_redundant_members,omitempty"`
	ContainsURL             *bool     `json:"contains_url,omitempty"`
}

// DefaultTimelineLimit is the timeline limit when the filter sets none.
const DefaultTimelineLimit = 10

// MaxTimelineLimit bounds a filter's timeline limit.
const MaxTimelineLimit = 1000

// TimelineLimit returns the effective limit.
func (f *Filter) TimelineLimit() int {
	if f.Room.Timeline.Limit == nil {
		return DefaultTimelineLimit
	}
	return min(max(*f.Room.Timeline.Limit, 0), MaxTimelineLimit)
}

// matchType implements the filters' type patterns: '*' matches any run of
// characters.
func matchType(pattern, t string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == t
	}
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(t, parts[0]) {
		return false
	}
	t = t[len(parts[0]):]
	for i, p := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(t, p)
		}
		j := strings.Index(t, p)
		if j < 0 {
			return false
		}
		t = t[j+len(p):]
	}
	return true
}

// Allows reports whether an event of the type and sender passes.
func (f *EventFilter) Allows(typ, sender string) bool {
	for _, p := range f.NotTypes {
		if matchType(p, typ) {
			return false
		}
	}
	if f.Types != nil && !slices.ContainsFunc(*f.Types, func(p string) bool { return matchType(p, typ) }) {
		return false
	}
	if slices.Contains(f.NotSenders, sender) {
		return false
	}
	if f.Senders != nil && !slices.Contains(*f.Senders, sender) {
		return false
	}
	return true
}

// AllowsRoom reports whether the room passes.
func (f *RoomFilter) AllowsRoom(roomID string) bool {
	if slices.Contains(f.NotRooms, roomID) {
		return false
	}
	return f.Rooms == nil || slices.Contains(*f.Rooms, roomID)
}

// AllowsRoom reports whether the room passes a RoomEventFilter.
func (f *RoomEventFilter) AllowsRoom(roomID string) bool {
	if slices.Contains(f.NotRooms, roomID) {
		return false
	}
	return f.Rooms == nil || slices.Contains(*f.Rooms, roomID)
}
