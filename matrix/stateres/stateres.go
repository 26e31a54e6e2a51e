package stateres

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/axon-hs/axon/matrix/auth"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// StateMap maps a state key to an event ID.
type StateMap map[auth.StateKey]string

// Source gives the events the algorithm needs: every event in the state maps
// and every event in their auth chains. Event returns nil when unknown.
type Source interface {
	Event(eventID string) *event.Event
	// Rejected reports whether the event was rejected (auth events that were
	// rejected are not used during iterative auth checks).
	Rejected(eventID string) bool
}

// Errors matched with errors.Is.
var (
	// ErrMissingEvent: an event named by a state map or an auth_events list
	// is unknown to the Source. The error is a *MissingEventError.
	ErrMissingEvent = errors.New("stateres: event unknown to the source")
	// ErrAuthCycle: the auth_events links of the events form a cycle.
	ErrAuthCycle = errors.New("stateres: auth events form a cycle")
	// ErrInvalidState: a state map names an event that does not belong under
	// its key (not a state event, another type or state key, another room
	// version or another room).
	ErrInvalidState = errors.New("stateres: invalid state map")
)

// MissingEventError names an event the Source does not know.
type MissingEventError struct {
	EventID string
	// ReferencedBy is the event whose auth_events name EventID, or "" when
	// a state map names it.
	ReferencedBy string
}

func (e *MissingEventError) Error() string {
	if e.ReferencedBy == "" {
		return fmt.Sprintf("stateres: event %s of the state is unknown", e.EventID)
	}
	return fmt.Sprintf("stateres: event %s (an auth event of %s) is unknown", e.EventID, e.ReferencedBy)
}

// Is makes errors.Is(err, ErrMissingEvent) true.
func (e *MissingEventError) Is(target error) bool { return target == ErrMissingEvent }

// MapSource is a Source held in memory, for tests and for callers that have
// already loaded the events. The zero value is empty and ready to use.
type MapSource struct {
	Events      map[string]*event.Event // by event ID
	RejectedIDs map[string]bool         // IDs of rejected events
}

// NewMapSource returns a MapSource holding the events (none rejected).
func NewMapSource(evs ...*event.Event) *MapSource {
	m := &MapSource{Events: make(map[string]*event.Event, len(evs)), RejectedIDs: map[string]bool{}}
	for _, ev := range evs {
		m.Events[ev.ID()] = ev
	}
	return m
}

// Add stores an event and whether it was rejected.
func (m *MapSource) Add(ev *event.Event, rejected bool) {
	if m.Events == nil {
		m.Events = map[string]*event.Event{}
	}
	m.Events[ev.ID()] = ev
	if rejected {
		if m.RejectedIDs == nil {
			m.RejectedIDs = map[string]bool{}
		}
		m.RejectedIDs[ev.ID()] = true
	} else {
		delete(m.RejectedIDs, ev.ID())
	}
}

// Event implements Source.
func (m *MapSource) Event(id string) *event.Event { return m.Events[id] }

// Rejected implements Source.
func (m *MapSource) Rejected(id string) bool { return m.RejectedIDs[id] }

// Resolve resolves the states after several forward extremities into one
// state, with the algorithm of the room version v (v.StateRes).
//
// The result never depends on the order of states or on map iteration
// order. Resolving no state gives an empty map; resolving one state, or
// several identical ones, gives a copy of it without consulting src. The
// returned map is always new and may be modified by the caller.
func Resolve(v *roomversion.Version, states []StateMap, src Source) (StateMap, error) {
	return NewResolver(v).Resolve(states, src)
}

// A Resolver resolves states of one room again and again, keeping the
// auth DAG it has loaded so that later resolutions only load the events
// they have not seen. Events are immutable, so what it keeps stays valid;
// whether an event was rejected is asked afresh on each call. It grows with
// the room's auth DAG: drop it to free the memory. A Resolver is not safe
// for concurrent use.
type Resolver struct {
	v *roomversion.Version
	g *graph
}

// NewResolver returns a Resolver for rooms of version v.
func NewResolver(v *roomversion.Version) *Resolver { return &Resolver{v: v} }

// Resolve is like the package function Resolve with the Resolver's room
// version. After an error the Resolver is as it was before the call.
func (r *Resolver) Resolve(states []StateMap, src Source) (StateMap, error) {
	v := r.v
	if v == nil {
		return nil, errors.New("stateres: no room version")
	}
	if len(states) == 0 {
		return StateMap{}, nil
	}
	v1 := v.StateRes == roomversion.StateResV1
	conflicted := conflictedKeys(states, v1)
	if len(conflicted) == 0 {
		if v1 {
			return union(states), nil
		}
		return cloneState(states[0]), nil
	}
	if src == nil {
		return nil, errors.New("stateres: no event source")
	}
	switch v.StateRes {
	case roomversion.StateResV1:
		return resolveV1(v, states, conflicted, src)
	case roomversion.StateResV2, roomversion.StateResV21:
		if r.g == nil {
			r.g = newGraph(v, 2*len(states[0])+64)
		}
		return resolveV2(r.g, states, conflicted, src, v.StateRes == roomversion.StateResV21)
	}
	return nil, fmt.Errorf("stateres: room version %s has unknown state resolution algorithm %d", v.ID, v.StateRes)
}

// conflictedKeys returns the keys whose values differ between the states.
// In v2 a key is unconflicted only when every state has it with the same
// value; in v1 a conflict is two states having different event IDs for the
// key, so a key missing from some states is not by itself a conflict.
func conflictedKeys(states []StateMap, v1 bool) map[auth.StateKey]struct{} {
	out := map[auth.StateKey]struct{}{}
	first := states[0]
	rest := states[1:]
	for k, id := range first {
		for _, s := range rest {
			other, ok := s[k]
			if (ok || !v1) && other != id {
				out[k] = struct{}{}
				break
			}
		}
	}
	for i, s := range rest {
		for k, id := range s {
			if _, seen := first[k]; seen {
				continue
			}
			if _, done := out[k]; done {
				continue
			}
			if !v1 {
				out[k] = struct{}{}
				continue
			}
			for _, o := range rest[i+1:] {
				if other, ok := o[k]; ok && other != id {
					out[k] = struct{}{}
					break
				}
			}
		}
	}
	return out
}

// union is the union of states whose shared keys all agree.
func union(states []StateMap) StateMap {
	out := cloneState(states[0])
	for _, s := range states[1:] {
		maps.Copy(out, s)
	}
	return out
}

// cloneState copies s; the copy of a nil map is an empty map.
func cloneState(s StateMap) StateMap {
	if s == nil {
		return StateMap{}
	}
	return maps.Clone(s)
}

// eventIDsOf lists the distinct event IDs the states give for a key, sorted.
func eventIDsOf(states []StateMap, k auth.StateKey) []string {
	var ids []string
	for _, s := range states {
		if id, ok := s[k]; ok && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// validator checks that the events of state maps stand under their keys,
// are of the room version and all of one room, and remembers the error of
// the smallest event ID so that the error does not depend on map order.
type validator struct {
	v                   *roomversion.Version
	invalid             error
	invalidID           string
	roomID, otherRoomID string
}

func (val *validator) check(k auth.StateKey, ev *event.Event) {
	sk, ok := ev.StateKey()
	var err error
	switch {
	case !ok:
		err = fmt.Errorf("%w: %s under (%s, %q) is not a state event", ErrInvalidState, ev.ID(), k.Type, k.StateKey)
	case ev.Type() != k.Type || sk != k.StateKey:
		err = fmt.Errorf("%w: %s is (%s, %q) but stands under (%s, %q)", ErrInvalidState, ev.ID(), ev.Type(), sk, k.Type, k.StateKey)
	case ev.Version() == nil || ev.Version().ID != val.v.ID:
		err = fmt.Errorf("%w: %s is not an event of room version %s", ErrInvalidState, ev.ID(), val.v.ID)
	}
	if err != nil && (val.invalid == nil || ev.ID() < val.invalidID) {
		val.invalid, val.invalidID = err, ev.ID()
	}
	switch r := ev.RoomID(); {
	case val.roomID == "":
		val.roomID = r
	case r != val.roomID && (val.otherRoomID == "" || r < val.otherRoomID):
		val.otherRoomID = r
	}
}

func (val *validator) err() error {
	if val.invalid != nil {
		return val.invalid
	}
	if val.otherRoomID != "" {
		a, b := min(val.roomID, val.otherRoomID), max(val.roomID, val.otherRoomID)
		return fmt.Errorf("%w: the states mix events of rooms %s and %s", ErrInvalidState, a, b)
	}
	return nil
}

// sortedKeys returns the keys of a key set in (type, state_key) order.
func sortedKeys(set map[auth.StateKey]struct{}) []auth.StateKey {
	out := slices.Collect(maps.Keys(set))
	slices.SortFunc(out, compareKeys)
	return out
}

func compareKeys(a, b auth.StateKey) int {
	if c := strings.Compare(a.Type, b.Type); c != 0 {
		return c
	}
	return strings.Compare(a.StateKey, b.StateKey)
}

// IsPowerEvent reports whether ev is a power event in the sense of state
// resolution v2: an m.room.power_levels or m.room.join_rules event with the
// empty state key, or an m.room.member state event whose membership is
// leave or ban and whose sender is not its state key (a kick or a ban).
// Like the reference implementation it also counts the m.room.create event
// (the spec's list does not name it; it can only be conflicted in a broken
// or hostile DAG, where agreeing with other servers is what matters).
func IsPowerEvent(ev *event.Event) bool {
	sk, ok := ev.StateKey()
	if !ok {
		return false
	}
	switch ev.Type() {
	case "m.room.power_levels", "m.room.join_rules", "m.room.create":
		// With the empty state key only, and counting the create event,
		// as the reference implementation does.
		return sk == ""
	case "m.room.member":
		m := ev.Membership()
		return (m == "leave" || m == "ban") && ev.Sender() != sk
	}
	return false
}
