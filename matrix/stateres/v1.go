package stateres

import (
	"bytes"
	"cmp"
	"crypto/sha1"
	"slices"

	"github.com/axon-hs/axon/matrix/auth"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// v1State is the state R of the v1 algorithm as an auth.State.
type v1State struct {
	r   StateMap
	evs map[string]*event.Event
}

func (s *v1State) Get(eventType, stateKey string) *event.Event {
	id, ok := s.r[auth.StateKey{Type: eventType, StateKey: stateKey}]
	if !ok {
		return nil
	}
	return s.evs[id]
}

// resolveV1 is the state resolution algorithm of room version 1.
func resolveV1(v *roomversion.Version, states []StateMap, conflicted map[auth.StateKey]struct{}, src Source) (StateMap, error) {
	evs := make(map[string]*event.Event, len(states[0]))
	val := validator{v: v}
	var missing string
	for _, s := range states {
		for k, id := range s {
			ev, seen := evs[id]
			if !seen {
				ev = src.Event(id)
				if ev == nil || ev.ID() != id {
					if missing == "" || id < missing {
						missing = id
					}
					continue
				}
				evs[id] = ev
			}
			val.check(k, ev)
		}
	}
	if missing != "" {
		return nil, &MissingEventError{EventID: missing}
	}
	if err := val.err(); err != nil {
		return nil, err
	}

	// R starts as the union of the states without the conflicted keys.
	r := &v1State{r: make(StateMap, len(states[0])+len(conflicted)), evs: evs}
	for _, s := range states {
		for k, id := range s {
			if _, c := conflicted[k]; !c {
				r.r[k] = id
			}
		}
	}

	// Power levels, then join rules, then each member key (by state key):
	// from the oldest event on, take each one that the auth rules allow in
	// R, stopping at the first that they do not.
	authKeys := []auth.StateKey{keyPL, {Type: "m.room.join_rules"}}
	var others []auth.StateKey
	for _, k := range sortedKeys(conflicted) {
		switch {
		case k == authKeys[0] || k == authKeys[1]:
		case k.Type == "m.room.member":
			authKeys = append(authKeys, k)
		default:
			others = append(others, k)
		}
	}
	for _, k := range authKeys {
		if _, c := conflicted[k]; !c {
			continue
		}
		list := v1Order(states, k, evs)
		r.r[k] = list[0].ID()
		for _, ev := range list[1:] {
			if auth.Check(ev, r) != nil {
				break
			}
			r.r[k] = ev.ID()
		}
	}

	// Every other key: the newest event that the auth rules allow in R.
	// When none is allowed the spec is silent; the reference
	// implementation keeps the last one it tried (the oldest), and so do
	// we, since leaving the key out would resolve a different state.
	for _, k := range others {
		list := v1Order(states, k, evs)
		r.r[k] = list[0].ID()
		for i := len(list) - 1; i >= 0; i-- {
			if auth.Check(list[i], r) == nil {
				r.r[k] = list[i].ID()
				break
			}
		}
	}
	return r.r, nil
}

// v1Order lists the events the states give for k by ascending depth, then
// descending sha1 of the event ID.
func v1Order(states []StateMap, k auth.StateKey, evs map[string]*event.Event) []*event.Event {
	ids := eventIDsOf(states, k)
	type item struct {
		ev   *event.Event
		hash [sha1.Size]byte
	}
	items := make([]item, len(ids))
	for i, id := range ids {
		items[i] = item{evs[id], sha1.Sum([]byte(id))}
	}
	slices.SortFunc(items, func(a, b item) int {
		if c := cmp.Compare(a.ev.Depth(), b.ev.Depth()); c != 0 {
			return c
		}
		return bytes.Compare(b.hash[:], a.hash[:])
	})
	out := make([]*event.Event, len(items))
	for i, it := range items {
		out[i] = it.ev
	}
	return out
}
