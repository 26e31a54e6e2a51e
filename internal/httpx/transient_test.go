package httpx

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

type notNow string

func (e notNow) Error() string { return string(e) }
func (notNow) Transient() bool { return true }

// TestTransientErrorIs503: a dependency's "not now" (the database
// restarting) is 503 with Retry-After, which clients retry, not a 500;
// the cause is logged and not sent.
func TestTransientErrorIs503(t *testing.T) {
	logger, logs := testLogger()
	rec := serveErr(t, fmt.Errorf("load room: %w: %w", notNow("database unavailable"), errors.New("dial 10.0.0.7")), WithErrorLogger(logger))
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "2" {
		t.Fatalf("status %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	body := decodeBody(t, rec)
	if body["errcode"] != "M_UNKNOWN" || strings.Contains(rec.Body.String(), "10.0.0.7") {
		t.Fatalf("body %s", rec.Body)
	}
	if !strings.Contains(logs.String(), "dial 10.0.0.7") {
		t.Fatalf("cause not logged: %s", logs)
	}
	if rec := serveErr(t, errors.New("boom"), WithErrorLogger(logger)); rec.Code != 500 {
		t.Fatalf("a plain error is %d", rec.Code)
	}
}
