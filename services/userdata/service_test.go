package userdata

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/axon-hs/axon/internal/testenv"
)

func TestGuests(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		guest := "@guest:test.example|GDEV|guest"
		cases := []struct {
			method, path string
			body         any
			status       int
			code         string
		}{
			{"PUT", adPath("@guest:test.example", "x"), map[string]any{}, 403, "M_GUEST_ACCESS_FORBIDDEN"},
			{"GET", presencePath(alice), nil, 403, "M_GUEST_ACCESS_FORBIDDEN"},
			{"POST", receiptPath(room1, "m.read", evA), nil, 403, "M_GUEST_ACCESS_FORBIDDEN"},
			{"PUT", typingPath(room1, "@guest:test.example"), map[string]any{"typing": true}, 403, "M_GUEST_ACCESS_FORBIDDEN"},
			{"PUT", toDevicePath("m.test", "g1"), msgs(map[string]map[string]any{bob: {"BDEV": map[string]any{}}}), 200, ""},
		}
		for _, c := range cases {
			status, code, body := h.do(c.method, c.path, guest, c.body)
			if status != c.status || code != c.code {
				t.Errorf("%s %s: got %d %s (%s), want %d %s", c.method, c.path, status, code, body, c.status, c.code)
			}
		}
	})
}

// TestRun checks that the background loop expires typing and stops with
// its context.
func TestRun(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			h.svc.Run(ctx)
			close(done)
		}()
		h.mustDo("PUT", typingPath(room1, alice), alice, map[string]any{"typing": true, "timeout": 1000})
		seen := h.svc.TypingPosition()
		h.clock.Advance(2 * time.Second)
		testenv.Eventually(t, 5*time.Second, "typing expired by Run", func() bool {
			return h.svc.TypingPosition() > seen
		})
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
	})
}

func TestRoutesServeR0(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		status, _, _ := h.do("PUT", "/_matrix/client/r0/presence/"+alice+"/status", alice, map[string]any{"presence": "online"})
		if status != http.StatusOK {
			t.Fatalf("r0 presence: %d", status)
		}
	})
}

func FuzzReceiveTyping(f *testing.F) {
	f.Add([]byte(`{"origin":"o","room_id":"!r:x","user_id":"@u:x","typing":true,"timeout_ms":5000}`))
	f.Add([]byte(`{"origin":"o","room_id":"!r:x","user_id":"@u:x","typing":false}`))
	f.Add([]byte(`{"room_id":"!r:x","user_id":"@u:x","typing":true,"timeout_ms":-1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := New(nil, fakeAuth, nil, nil, nil, Config{})
		before := s.TypingPosition()
		s.ReceiveTyping(data)
		var u typingUpdate
		if json.Unmarshal(data, &u) != nil && s.TypingPosition() != before {
			t.Fatal("undecodable update changed the state")
		}
		s.typing.mu.Lock()
		defer s.typing.mu.Unlock()
		for _, r := range s.typing.rooms {
			for _, exp := range r.users {
				if exp.After(time.Now().Add(s.cfg.TypingMaxTimeout + time.Second)) {
					t.Fatalf("timeout not capped: %v", exp)
				}
			}
		}
	})
}

func FuzzTagContent(f *testing.F) {
	f.Add([]byte(`{"tags":{"m.favourite":{"order":0.5}}}`), "u.x")
	f.Add([]byte(`{"tags":5,"other":true}`), "m.lowpriority")
	f.Add([]byte(`null`), "t")
	f.Fuzz(func(t *testing.T, content []byte, tag string) {
		if !utf8.ValidString(tag) {
			return // the endpoint refuses such tag names
		}
		c := parseTagContent(content)
		tags := c.tags()
		tags[tag] = json.RawMessage(`{}`)
		out, err := c.with(tags)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := parseTagContent(out).tags()[tag]; !ok {
			t.Fatalf("tag %q lost in %s", tag, out)
		}
	})
}
