package syncapi

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

func TestTokens(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Token
		ok   bool
	}{
		{"s5", Token{Events: 5}, true},
		{"s5_7", Token{Events: 5, UserData: 7}, true},
		{"s5_7_9", Token{5, 7, 9}, true},
		{"s0_0_0", Token{}, true},
		{"", Token{}, false},
		{"t5", Token{}, false},
		{"s", Token{}, false},
		{"s-1", Token{}, false},
		{"s1_2_3_4", Token{}, false},
		{"s1__3", Token{}, false},
		{"s99999999999999999999", Token{}, false},
	} {
		got, ok := ParseToken(c.in)
		if ok != c.ok || got != c.want {
			t.Errorf("ParseToken(%q) = %+v, %v; want %+v, %v", c.in, got, ok, c.want, c.ok)
		}
		if ok {
			if back, _ := ParseToken(got.String()); back != got {
				t.Errorf("%q does not round-trip: %q", c.in, got.String())
			}
		}
	}
}

func TestFilterMatching(t *testing.T) {
	for _, c := range []struct {
		pattern, typ string
		want         bool
	}{
		{"m.room.message", "m.room.message", true},
		{"m.room.*", "m.room.message", true},
		{"m.room.*", "m.roomy", false},
		{"*", "anything", true},
		{"m.*.message", "m.room.message", true},
		{"m.*.message", "m.room.topic", false},
		{"*.topic", "m.room.topic", true},
		{"m.room.message", "m.room.messages", false},
	} {
		if got := matchType(c.pattern, c.typ); got != c.want {
			t.Errorf("matchType(%q, %q) = %v", c.pattern, c.typ, got)
		}
	}
	var f Filter
	if err := json.Unmarshal([]byte(`{"room":{"timeline":{"limit":5000,"not_types":["m.room.member"],"senders":["@a:x"]},
		"rooms":["!r:x"],"not_rooms":["!s:x"]},"unknown":{"x":1}}`), &f); err != nil {
		t.Fatal(err)
	}
	if f.TimelineLimit() != MaxTimelineLimit {
		t.Errorf("limit %d not capped", f.TimelineLimit())
	}
	tl := f.Room.Timeline
	if !tl.Allows("m.room.message", "@a:x") || tl.Allows("m.room.member", "@a:x") || tl.Allows("m.room.message", "@b:x") {
		t.Error("timeline filter")
	}
	if !f.Room.AllowsRoom("!r:x") || f.Room.AllowsRoom("!s:x") || f.Room.AllowsRoom("!t:x") {
		t.Error("room filter")
	}
	if (&Filter{}).TimelineLimit() != DefaultTimelineLimit {
		t.Error("default limit")
	}
}

// TestNotifierDoesNotMissAWakeBetweenComputeAndWait checks the mark: a
// wake-up that lands after the mark and before Wait ends the wait at once,
// and one for somebody else's room does not.
func TestNotifierDoesNotMissAWakeBetweenComputeAndWait(t *testing.T) {
	n := NewNotifier()
	mark := n.Mark("@a:x", []string{"!r:x"})
	n.Notify(Wake{Rooms: []string{"!r:x"}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n.Wait(ctx, "@a:x", []string{"!r:x"}, mark)
	if ctx.Err() != nil {
		t.Fatal("a wake-up between the mark and the wait was missed")
	}

	mark = n.Mark("@a:x", []string{"!r:x"})
	n.Notify(Wake{Rooms: []string{"!other:x"}, Users: []string{"@b:x"}})
	woke := make(chan struct{})
	go func() {
		n.Wait(context.Background(), "@a:x", []string{"!r:x"}, mark)
		close(woke)
	}()
	for n.Waiters() == 0 {
		time.Sleep(time.Millisecond)
	}
	select {
	case <-woke:
		t.Fatal("woken by another room's news")
	default:
	}
	n.Notify(Wake{Users: []string{"@a:x"}})
	select {
	case <-woke:
	case <-time.After(5 * time.Second):
		t.Fatal("not woken by the user's own news")
	}
	if n.Waiters() != 0 {
		t.Fatalf("%d waiters left", n.Waiters())
	}
}
