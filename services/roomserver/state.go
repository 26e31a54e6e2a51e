package roomserver

import (
	"container/list"
	"sync"

	"github.com/axon-hs/axon/matrix/auth"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// room is the partition owner's in-memory copy of a room's head: its
// current state, forward extremities and head sequence. The database is
// the truth; this is a cache that a failed compare-and-set discards.
type room struct {
	id          string
	version     *roomversion.Version
	state       map[auth.StateKey]*event.Event
	extremities []*event.Event // forward extremities
	extremDepth int64          // max depth among the extremities
	headSeq     int64
	// committedSeq is headSeq as last committed; the difference is the
	// events staged in the current batch.
	committedSeq int64
	// undo holds the changes of the Input being applied, newest last.
	undo []undoEntry
}

type undoEntry struct {
	key         auth.StateKey
	prev        *event.Event
	stateChange bool
	// keys are the previous values of several keys (applyChanges).
	keys        []stateChange
	extremities []*event.Event
	extremDepth int64
	headSeq     int64
}

// stateChange is one key of the current state changing: to ev, or out of
// the state (ev nil).
type stateChange struct {
	key auth.StateKey
	ev  *event.Event
}

// Get implements auth.State.
func (r *room) Get(eventType, stateKey string) *event.Event {
	return r.state[auth.StateKey{Type: eventType, StateKey: stateKey}]
}

var _ auth.State = (*room)(nil)

// apply advances the head past ev, which is accepted, and makes it current
// state if it is a state event. It records how to undo the change.
func (r *room) apply(ev *event.Event) {
	u := undoEntry{extremities: r.extremities, extremDepth: r.extremDepth, headSeq: r.headSeq}
	if sk, ok := ev.StateKey(); ok {
		u.key = auth.StateKey{Type: ev.Type(), StateKey: sk}
		u.prev = r.state[u.key]
		u.stateChange = true
		r.state[u.key] = ev
	}
	r.undo = append(r.undo, u)
	r.extremities = []*event.Event{ev}
	r.extremDepth = ev.Depth()
	r.headSeq++
}

// applyChanges advances the head past an event received from another
// server: the current state changes by changes, and the forward
// extremities become extremities.
func (r *room) applyChanges(changes []stateChange, extremities []*event.Event) {
	u := undoEntry{extremities: r.extremities, extremDepth: r.extremDepth, headSeq: r.headSeq}
	for _, c := range changes {
		u.keys = append(u.keys, stateChange{key: c.key, ev: r.state[c.key]})
		if c.ev == nil {
			delete(r.state, c.key)
		} else {
			r.state[c.key] = c.ev
		}
	}
	r.undo = append(r.undo, u)
	r.extremities = extremities
	r.extremDepth = 0
	for _, e := range extremities {
		r.extremDepth = max(r.extremDepth, e.Depth())
	}
	r.headSeq++
}

// rollback undoes every change since the last mark.
func (r *room) rollback() {
	for i := len(r.undo) - 1; i >= 0; i-- {
		u := r.undo[i]
		for j := len(u.keys) - 1; j >= 0; j-- {
			if c := u.keys[j]; c.ev == nil {
				delete(r.state, c.key)
			} else {
				r.state[c.key] = c.ev
			}
		}
		if u.stateChange {
			if u.prev == nil {
				delete(r.state, u.key)
			} else {
				r.state[u.key] = u.prev
			}
		}
		r.extremities, r.extremDepth, r.headSeq = u.extremities, u.extremDepth, u.headSeq
	}
	r.undo = r.undo[:0]
}

// mark forgets the undo log: the changes so far are kept.
func (r *room) mark() { r.undo = r.undo[:0] }

// cache is a bounded LRU of rooms. It is used by one partition worker at a
// time per room, but partitions share it, so it is locked.
type cache struct {
	mu    sync.Mutex
	max   int
	items map[string]*list.Element
	order *list.List // front = most recently used
}

func newCache(max int) *cache {
	if max < 1 {
		max = 1
	}
	return &cache{max: max, items: make(map[string]*list.Element), order: list.New()}
}

func (c *cache) get(roomID string) *room {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[roomID]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*room)
	}
	return nil
}

func (c *cache) put(r *room) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[r.id]; ok {
		e.Value = r
		c.order.MoveToFront(e)
		return
	}
	c.items[r.id] = c.order.PushFront(r)
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*room).id)
	}
}

func (c *cache) drop(roomIDs ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range roomIDs {
		if e, ok := c.items[id]; ok {
			c.order.Remove(e)
			delete(c.items, id)
		}
	}
}
