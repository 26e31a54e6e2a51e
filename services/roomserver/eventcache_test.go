package roomserver

import (
	"fmt"
	"testing"

	"github.com/axon-hs/axon/matrix/event"
)

func TestEventCacheGenerations(t *testing.T) {
	c := newEventCache(2)
	evs := make([]cachedEvent, 5)
	for i := range evs {
		evs[i] = cachedEvent{ev: &event.Event{}, seq: int64(i)}
	}
	key := func(i int) EventKey { return EventKey{ID: fmt.Sprintf("$%d", i)} }
	get := func(k EventKey) *event.Event {
		e, _ := c.get(k)
		return e.ev
	}
	c.put(key(0), evs[0])
	c.put(key(1), evs[1])
	// The third entry starts a new generation; 0 and 1 are still found.
	c.put(key(2), evs[2])
	if e, ok := c.get(key(0)); !ok || e != evs[0] {
		t.Fatal("entry of the previous generation lost")
	}
	// 0 was moved into the current generation (now full: 2, 0); the next
	// entry drops the generation holding only 1.
	c.put(key(3), evs[3])
	if _, ok := c.get(key(1)); ok {
		t.Error("entry two generations old still cached")
	}
	if get(key(0)) != evs[0].ev || get(key(2)) != evs[2].ev || get(key(3)) != evs[3].ev {
		t.Error("recent entries lost")
	}
	// A redaction changes the key: the unredacted entry is not returned
	// for the redacted row.
	if _, ok := c.get(EventKey{ID: "$0", RedactedBy: "$r"}); ok {
		t.Error("the unredacted event was returned for a redacted row")
	}
	if len(c.cur)+len(c.prev) > 4 {
		t.Errorf("%d entries held, want at most 2 generations of 2", len(c.cur)+len(c.prev))
	}
}
