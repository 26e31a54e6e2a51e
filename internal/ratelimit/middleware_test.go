package ratelimit

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

type countingHandler struct{ calls int }

func (h *countingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.calls++
	w.WriteHeader(http.StatusNoContent)
}

func headerKey(r *http.Request) (string, bool) {
	k := r.Header.Get("X-Test-Key")
	return k, k != ""
}

func TestMiddleware(t *testing.T) {
	tests := []struct {
		name           string
		rate           float64
		burst          int
		key            string // "" means keyFn reports !ok
		requests       int
		wantCalls      int
		wantRetryMS    float64 // of the last response, if 429
		wantRetryAfter string
	}{
		{"within burst", 1, 3, "a", 3, 3, 0, ""},
		{"over burst", 1, 2, "a", 3, 2, 1000, "1"},
		{"sub-second retry rounds up", 3, 1, "a", 2, 1, 334, "1"},       // interval 333.333334ms
		{"multi-second retry", 0.1, 1, "a", 2, 1, 10000, "10"},          // one per 10 s
		{"sub-millisecond retry rounds up", 1500, 1, "a", 2, 1, 1, "1"}, // 666.667µs
		{"unkeyed requests pass", 1, 1, "", 5, 5, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := newTestLimiter(tt.rate, tt.burst, 0)
			next := &countingHandler{}
			h := Middleware(l, headerKey)(next)
			var rec *httptest.ResponseRecorder
			for range tt.requests {
				rec = httptest.NewRecorder()
				req := httptest.NewRequest("PUT", "/_matrix/client/v3/rooms/!r:x/send/m.room.message/1", nil)
				if tt.key != "" {
					req.Header.Set("X-Test-Key", tt.key)
				}
				h.ServeHTTP(rec, req)
			}
			if next.calls != tt.wantCalls {
				t.Fatalf("next called %d times, want %d", next.calls, tt.wantCalls)
			}
			if tt.wantRetryAfter == "" {
				if rec.Code != http.StatusNoContent {
					t.Fatalf("last status %d", rec.Code)
				}
				return
			}
			if rec.Code != http.StatusTooManyRequests {
				t.Fatalf("status = %d, want 429", rec.Code)
			}
			if got := rec.Header().Get("Retry-After"); got != tt.wantRetryAfter {
				t.Fatalf("Retry-After = %q, want %q", got, tt.wantRetryAfter)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type = %q", ct)
			}
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if body["errcode"] != "M_LIMIT_EXCEEDED" || body["error"] == "" || body["retry_after_ms"] != tt.wantRetryMS {
				t.Fatalf("body = %v, want retry_after_ms %v", body, tt.wantRetryMS)
			}
		})
	}
}

// TestMiddlewareRetryIsHonest: a client that waits retry_after_ms is
// admitted.
func TestMiddlewareRetryIsHonest(t *testing.T) {
	l, clock := newTestLimiter(3, 1, 0)
	h := Middleware(l, headerKey)(&countingHandler{})
	do := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("X-Test-Key", "k")
		h.ServeHTTP(rec, req)
		return rec
	}
	do()
	rec := do()
	var body struct {
		RetryAfterMS int64 `json:"retry_after_ms"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.RetryAfterMS <= 0 {
		t.Fatalf("body %s: %v", rec.Body, err)
	}
	clock.Advance(time.Duration(body.RetryAfterMS) * time.Millisecond)
	if rec := do(); rec.Code != http.StatusNoContent {
		t.Fatalf("after waiting retry_after_ms: status %d", rec.Code)
	}
}

func TestMiddlewareDisabledIsIdentity(t *testing.T) {
	next := &countingHandler{}
	for _, l := range []*Limiter{nil, New(Config{})} {
		if h := Middleware(l, headerKey)(next); h != http.Handler(next) {
			t.Fatalf("disabled limiter wrapped the handler: %T", h)
		}
	}
}
