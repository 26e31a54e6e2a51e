package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func decodeBody(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", rec.Body.String(), err)
	}
	return m
}

func serveErr(t *testing.T, err error, opts ...Option) *httptest.ResponseRecorder {
	t.Helper()
	if len(opts) == 0 {
		opts = []Option{WithErrorLogger(slog.New(slog.DiscardHandler))}
	}
	h := Handle(func(w http.ResponseWriter, r *http.Request) error { return err }, opts...)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	return rec
}

func testLogger() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

func TestConstructors(t *testing.T) {
	tests := []struct {
		err    *Error
		status int
		code   string
		extra  map[string]any
	}{
		{Forbidden("f"), 403, "M_FORBIDDEN", nil},
		{UnknownToken("t", true), 401, "M_UNKNOWN_TOKEN", map[string]any{"soft_logout": true}},
		{UnknownToken("t", false), 401, "M_UNKNOWN_TOKEN", map[string]any{"soft_logout": false}},
		{MissingToken("m"), 401, "M_MISSING_TOKEN", nil},
		{BadJSON("b"), 400, "M_BAD_JSON", nil},
		{NotJSON("n"), 400, "M_NOT_JSON", nil},
		{NotFound("n"), 404, "M_NOT_FOUND", nil},
		{LimitExceeded("l", 1500*time.Millisecond), 429, "M_LIMIT_EXCEEDED", map[string]any{"retry_after_ms": float64(1500)}},
		{LimitExceeded("l", 0), 429, "M_LIMIT_EXCEEDED", nil},
		{Unknown("u"), 500, "M_UNKNOWN", nil},
		{Unknown("u").WithStatus(400), 400, "M_UNKNOWN", nil},
		{Unrecognized("u"), 404, "M_UNRECOGNIZED", nil},
		{UnrecognizedMethod("u"), 405, "M_UNRECOGNIZED", nil},
		{Unauthorized("u"), 401, "M_UNAUTHORIZED", nil},
		{UserDeactivated("d"), 403, "M_USER_DEACTIVATED", nil},
		{UserInUse("u"), 400, "M_USER_IN_USE", nil},
		{InvalidUsername("u"), 400, "M_INVALID_USERNAME", nil},
		{RoomInUse("r"), 400, "M_ROOM_IN_USE", nil},
		{InvalidRoomState("r"), 400, "M_INVALID_ROOM_STATE", nil},
		{ThreePIDInUse("t"), 400, "M_THREEPID_IN_USE", nil},
		{UnsupportedRoomVersion("v"), 400, "M_UNSUPPORTED_ROOM_VERSION", nil},
		{IncompatibleRoomVersion("v", "12"), 400, "M_INCOMPATIBLE_ROOM_VERSION", map[string]any{"room_version": "12"}},
		{BadState("s"), 400, "M_BAD_STATE", nil},
		{GuestAccessForbidden("g"), 403, "M_GUEST_ACCESS_FORBIDDEN", nil},
		{MissingParam("p"), 400, "M_MISSING_PARAM", nil},
		{InvalidParam("p"), 400, "M_INVALID_PARAM", nil},
		{TooLarge("t"), 413, "M_TOO_LARGE", nil},
		{Exclusive("e"), 400, "M_EXCLUSIVE", nil},
		{ResourceLimitExceeded("r", "mailto:admin@example.org", "monthly_active_user"), 403, "M_RESOURCE_LIMIT_EXCEEDED",
			map[string]any{"admin_contact": "mailto:admin@example.org", "limit_type": "monthly_active_user"}},
		{ResourceLimitExceeded("r", "mailto:a@b", ""), 403, "M_RESOURCE_LIMIT_EXCEEDED", map[string]any{"admin_contact": "mailto:a@b"}},
		{CannotLeaveServerNoticeRoom("c"), 403, "M_CANNOT_LEAVE_SERVER_NOTICE_ROOM", nil},
		{UserLocked("l"), 401, "M_USER_LOCKED", map[string]any{"soft_logout": true}},
		{UserSuspended("s"), 403, "M_USER_SUSPENDED", nil},
		{New("COM.EXAMPLE_THING", "x"), 400, "COM.EXAMPLE_THING", nil},
		{Forbidden("f").WithExtra("errcode", "M_HIJACK"), 403, "M_FORBIDDEN", nil},
	}
	for _, tt := range tests {
		t.Run(tt.err.Code+"/"+tt.err.Message, func(t *testing.T) {
			// Wrapping must not matter.
			rec := serveErr(t, fmt.Errorf("context: %w", tt.err))
			if rec.Code != tt.status {
				t.Errorf("status = %d, want %d", rec.Code, tt.status)
			}
			body := decodeBody(t, rec)
			want := map[string]any{"errcode": tt.code, "error": tt.err.Message}
			for k, v := range tt.extra {
				want[k] = v
			}
			if len(body) != len(want) {
				t.Errorf("body = %v, want %v", body, want)
			}
			for k, v := range want {
				if body[k] != v {
					t.Errorf("body[%q] = %v, want %v", k, body[k], v)
				}
			}
		})
	}
}

func TestEveryCodeHasStatus(t *testing.T) {
	for code, status := range defaultStatus {
		if status < 400 || status > 599 || !strings.HasPrefix(code, "M_") {
			t.Errorf("%s -> %d", code, status)
		}
	}
}

func TestWithMethodsCopy(t *testing.T) {
	base := Forbidden("x")
	cause := errors.New("cause")
	e := base.WithExtra("k", 1).WithStatus(418).WithCause(cause)
	if base.Extra != nil || base.Status != 403 || base.Err != nil {
		t.Fatalf("base mutated: %+v", base)
	}
	if !errors.Is(e, cause) || CodeOf(fmt.Errorf("w: %w", e)) != CodeForbidden || CodeOf(cause) != "" {
		t.Fatal("Unwrap/CodeOf")
	}
}

func TestRateLimitHeader(t *testing.T) {
	tests := []struct {
		after time.Duration
		want  string
	}{
		{1500 * time.Millisecond, "2"},
		{time.Second, "1"},
		{time.Millisecond, "1"},
		{0, ""},
	}
	for _, tt := range tests {
		rec := serveErr(t, LimitExceeded("slow down", tt.after))
		if got := rec.Header().Get("Retry-After"); got != tt.want {
			t.Errorf("after %v: Retry-After = %q, want %q", tt.after, got, tt.want)
		}
	}
}

func TestInternalErrorDoesNotLeak(t *testing.T) {
	logger, logs := testLogger()
	secret := "pq: connection to 10.0.0.7 failed password=hunter2"
	h := Chain(RequestID, AccessLog(logger))(Handle(func(w http.ResponseWriter, r *http.Request) error {
		return fmt.Errorf("load room: %w", errors.New(secret))
	}))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/x", nil)
	req.Header.Set(RequestIDHeader, "req-123")
	h.ServeHTTP(rec, req)
	if rec.Code != 500 {
		t.Fatalf("status = %d", rec.Code)
	}
	body := decodeBody(t, rec)
	if body["errcode"] != "M_UNKNOWN" {
		t.Errorf("errcode = %v", body["errcode"])
	}
	if strings.Contains(rec.Body.String(), "hunter2") || strings.Contains(rec.Body.String(), "10.0.0.7") {
		t.Errorf("body leaks internal error: %s", rec.Body)
	}
	if !strings.Contains(rec.Body.String(), "req-123") {
		t.Errorf("body lacks request ID: %s", rec.Body)
	}
	if !strings.Contains(logs.String(), "load room") || !strings.Contains(logs.String(), `"request_id":"req-123"`) {
		t.Errorf("internal error not logged with request ID: %s", logs)
	}
}

func TestInternalErrorFallbackLogger(t *testing.T) {
	logger, logs := testLogger()
	rec := serveErr(t, errors.New("boom"), WithErrorLogger(logger))
	if rec.Code != 500 || !strings.Contains(logs.String(), "boom") || strings.Contains(rec.Body.String(), "boom") {
		t.Fatalf("status %d body %s logs %s", rec.Code, rec.Body, logs)
	}
}

func TestMaxBytesErrorFromHandler(t *testing.T) {
	rec := serveErr(t, fmt.Errorf("upload: %w", &http.MaxBytesError{Limit: 10}))
	if rec.Code != 413 || decodeBody(t, rec)["errcode"] != "M_TOO_LARGE" {
		t.Fatalf("got %d %s", rec.Code, rec.Body)
	}
}

func TestErrorAfterWriteIsNotAppended(t *testing.T) {
	logger, logs := testLogger()
	h := Handle(func(w http.ResponseWriter, r *http.Request) error {
		_ = WriteJSON(w, 200, map[string]int{"a": 1})
		return errors.New("late")
	}, WithErrorLogger(logger))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 200 || rec.Body.String() != `{"a":1}` || !strings.Contains(logs.String(), "late") {
		t.Fatalf("got %d %q logs %s", rec.Code, rec.Body, logs)
	}
}

func TestWriteJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	if err := WriteJSON(rec, 201, map[string]string{"body": "<b>&</b>"}); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 201 || rec.Body.String() != `{"body":"<b>&</b>"}` {
		t.Fatalf("got %d %q", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	if err := WriteJSON(rec, 200, map[string]any{"f": func() {}}); err == nil {
		t.Fatal("no error for unencodable value")
	}
	if rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != "" {
		t.Fatal("partial write on encoding error")
	}
}

type sample struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		noBody bool
		limit  int64
		code   string // "" means success
		status int
	}{
		{name: "ok", body: `{"name":"a","count":2}`},
		{name: "unknown fields allowed", body: `{"name":"a","extra":{"x":[1]}}`},
		{name: "trailing whitespace", body: "{\"name\":\"a\"}\r\n\t "},
		{name: "empty", body: "", code: CodeNotJSON, status: 400},
		{name: "no body", noBody: true, code: CodeNotJSON, status: 400},
		{name: "whitespace only", body: "  \n", code: CodeNotJSON, status: 400},
		{name: "not json", body: "name=a", code: CodeNotJSON, status: 400},
		{name: "truncated", body: `{"name":`, code: CodeNotJSON, status: 400},
		{name: "trailing garbage", body: `{"name":"a"} x`, code: CodeNotJSON, status: 400},
		{name: "two objects", body: `{"name":"a"}{"name":"b"}`, code: CodeNotJSON, status: 400},
		{name: "invalid utf8", body: "{\"name\":\"\xff\"}", code: CodeNotJSON, status: 400},
		{name: "wrong type", body: `{"count":"three"}`, code: CodeBadJSON, status: 400},
		{name: "array", body: `[1,2]`, code: CodeBadJSON, status: 400},
		{name: "null", body: `null`, code: CodeBadJSON, status: 400},
		{name: "too large", body: `{"name":"` + strings.Repeat("a", 100) + `"}`, limit: 50, code: CodeTooLarge, status: 413},
		{name: "exactly at limit", body: `{"name":"abc"}`, limit: int64(len(`{"name":"abc"}`))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			if tt.noBody {
				req.Body = http.NoBody
			}
			var v sample
			err := DecodeJSON(req, tt.limit, &v)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			e, ok := errors.AsType[*Error](err)
			if !ok {
				t.Fatalf("error %v is not *Error", err)
			}
			if e.Code != tt.code || e.Status != tt.status || e.Message == "" {
				t.Fatalf("got %d %s %q, want %d %s", e.Status, e.Code, e.Message, tt.status, tt.code)
			}
		})
	}
}

type strictID string

func (s *strictID) UnmarshalJSON(b []byte) error {
	if string(b) != `"!ok"` {
		return InvalidParam("bad room ID")
	}
	*s = "!ok"
	return nil
}

func TestDecodeJSONPassesThroughMatrixErrors(t *testing.T) {
	var v struct {
		Room strictID `json:"room_id"`
	}
	err := DecodeJSON(httptest.NewRequest("POST", "/", strings.NewReader(`{"room_id":"nope"}`)), 0, &v)
	if CodeOf(err) != CodeInvalidParam {
		t.Fatalf("got %v", err)
	}
}

func TestBodyLimit(t *testing.T) {
	h := BodyLimit(10)(Handle(func(w http.ResponseWriter, r *http.Request) error {
		var v map[string]any
		if err := DecodeJSON(r, 1000, &v); err != nil {
			return err
		}
		return WriteJSON(w, 200, v)
	}))
	tests := []struct {
		name          string
		body          string
		contentLength int64
		status        int
	}{
		{"small", `{"a":1}`, -2, 200},
		{"declared too large", `{"a":"long string"}`, -2, 413},
		{"streamed too large", `{"a":"long string"}`, -1, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			if tt.contentLength == -1 {
				req.ContentLength = -1
				req.Body = io.NopCloser(strings.NewReader(tt.body))
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status == 413 && decodeBody(t, rec)["errcode"] != "M_TOO_LARGE" {
				t.Fatalf("body %s", rec.Body)
			}
		})
	}
}
