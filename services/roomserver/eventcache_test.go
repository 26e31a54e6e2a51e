package roomserver

import (
	"fmt"
	"testing"

	"github.com/axon-hs/axon/matrix/event"
)

func TestEventCacheGenerations(t *testing.T) {
	c := newEventCache(2)
	evs := make([]*event.Event, 5)
	for i := range evs {
		evs[i] = &event.Event{}
	}
	key := func(i int) eventKey { return eventKey{id: fmt.Sprintf("$%d", i)} }
	c.put(key(0), evs[0])
	c.put(key(1), evs[1])
	// The third entry starts a new generation; 0 and 1 are still found.
	c.put(key(2), evs[2])
	if c.get(key(0)) != evs[0] {
		t.Fatal("entry of the previous generation lost")
	}
	// 0 was moved into the current generation (now full: 2, 0); the next
	// entry drops the generation holding only 1.
	c.put(key(3), evs[3])
	if c.get(key(1)) != nil {
		t.Error("entry two generations old still cached")
	}
	if c.get(key(0)) != evs[0] || c.get(key(2)) != evs[2] || c.get(key(3)) != evs[3] {
		t.Error("recent entries lost")
	}
	// A redaction changes the key: the unredacted entry is not returned
	// for the redacted row.
	if c.get(eventKey{id: "$0", redactedBy: "$r"}) != nil {
		t.Error("the unredacted event was returned for a redacted row")
	}
	if len(c.cur)+len(c.prev) > 4 {
		t.Errorf("%d entries held, want at most 2 generations of 2", len(c.cur)+len(c.prev))
	}
}
