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

	// Power levels, then join rules, then member keys: from the oldest event
	// on, take each one that the auth rules allow in R (with the key's own
	// value so far), stopping at the first that they do not. As in the
	// reference implementation, all keys of one group are checked against R
	// as it was before the group, and R takes the group's results after it:
	// resolving one member key never depends on another's.
	var jrKeys, memberKeys, others []auth.StateKey
	for _, k := range sortedKeys(conflicted) {
		switch {
		case k == keyPL:
		case k.Type == "m.room.join_rules":
			jrKeys = append(jrKeys, k)
		case k.Type == "m.room.member":
			memberKeys = append(memberKeys, k)
		default:
			others = append(others, k)
		}
	}
	if _, c := conflicted[keyPL]; c {
		r.r[keyPL] = v1AuthKey(r, v1Order(states, keyPL, evs))
	}
	for _, group := range [][]auth.StateKey{jrKeys, memberKeys} {
		results := make([]string, len(group))
		for i, k := range group {
			results[i] = v1AuthKey(r, v1Order(states, k, evs))
		}
		for i, k := range group {
			r.r[k] = results[i]
		}
	}

	// Every other key: the newest event that the auth rules allow in R.
	// When none is allowed the spec is silent; the reference
	// implementation keeps the last one it tried (the oldest), and so do
	// we, since leaving the key out would resolve a different state.
	results := make([]string, len(others))
	for i, k := range others {
		list := v1Order(states, k, evs)
		results[i] = list[0].ID()
		for j := len(list) - 1; j >= 0; j-- {
			if auth.Check(list[j], r) == nil {
				results[i] = list[j].ID()
				break
			}
		}
	}
	for i, k := range others {
		r.r[k] = results[i]
	}
	return r.r, nil
}

// v1AuthKey resolves one key of the auth-relevant groups: the first event
// of list (oldest first) is taken, then each next one while the auth rules
// allow it in R with the key set to the value so far. R is left as it was.
func v1AuthKey(r *v1State, list []*event.Event) string {
	k := auth.StateKey{Type: list[0].Type()}
	k.StateKey, _ = list[0].StateKey()
	old, had := r.r[k]
	cur := list[0].ID()
	for _, ev := range list[1:] {
		r.r[k] = cur
		if auth.Check(ev, r) != nil {
			break
		}
		cur = ev.ID()
	}
	if had {
		r.r[k] = old
	} else {
		delete(r.r, k)
	}
	return cur
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
