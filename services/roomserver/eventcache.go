package roomserver

import (
	"sync"

	"github.com/axon-hs/axon/matrix/event"
)

// eventCache keeps parsed events so that reads (a sync of many rooms, a
// page of /messages) do not parse and hash the same stored PDU again and
// again: parsing was most of the CPU time of an initial /sync.
//
// A stored PDU changes only once, when it is redacted (redacted_by goes
// from NULL to the redaction's ID in the same statement that replaces the
// PDU), so the key is the event ID together with redacted_by: a redaction
// makes the old entry unreachable rather than stale.
//
// It holds two generations of at most perGeneration events each: when the
// current one is full it becomes the previous one and the older one is
// dropped; a hit in the previous generation moves the event back into the
// current one. That is close to LRU without per-hit bookkeeping, and it
// bounds memory by count (a parsed message event is a few KB).
type eventCache struct {
	mu            sync.Mutex
	cur, prev     map[EventKey]cachedEvent
	perGeneration int
}

// EventKey names a stored event in the state it was stored in: its ID and
// the redaction that was applied to it ("" when none).
type EventKey struct{ ID, RedactedBy string }

// cachedEvent is a parsed event and its room_seq, which never changes.
type cachedEvent struct {
	ev  *event.Event
	seq int64
}

// eventsPerGeneration bounds each generation of the Reader's event cache.
const eventsPerGeneration = 16_384

func newEventCache(perGeneration int) *eventCache {
	return &eventCache{cur: make(map[EventKey]cachedEvent), perGeneration: perGeneration}
}

func (c *eventCache) get(k EventKey) (cachedEvent, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.cur[k]; ok {
		return e, true
	}
	e, ok := c.prev[k]
	if ok {
		c.putLocked(k, e)
	}
	return e, ok
}

func (c *eventCache) put(k EventKey, e cachedEvent) {
	c.mu.Lock()
	c.putLocked(k, e)
	c.mu.Unlock()
}

func (c *eventCache) putLocked(k EventKey, e cachedEvent) {
	if len(c.cur) >= c.perGeneration {
		c.prev, c.cur = c.cur, make(map[EventKey]cachedEvent, c.perGeneration)
	}
	c.cur[k] = e
}
