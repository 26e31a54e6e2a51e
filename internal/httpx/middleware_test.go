package httpx

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRecover(t *testing.T) {
	logger, logs := testLogger()
	h := Chain(RequestID, Recover(logger))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("nil map write in room 42")
	}))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/x", nil)
	req.Header.Set(RequestIDHeader, "abc")
	h.ServeHTTP(rec, req)
	if rec.Code != 500 {
		t.Fatalf("status = %d", rec.Code)
	}
	body := decodeBody(t, rec)
	if body["errcode"] != "M_UNKNOWN" || strings.Contains(rec.Body.String(), "room 42") {
		t.Fatalf("body = %s", rec.Body)
	}
	if !strings.Contains(logs.String(), "room 42") || !strings.Contains(logs.String(), `"request_id":"abc"`) || !strings.Contains(logs.String(), "stack") {
		t.Fatalf("panic not logged: %s", logs)
	}
}

func TestRecoverAfterWriteAborts(t *testing.T) {
	logger, _ := testLogger()
	h := Recover(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		_, _ = w.Write([]byte(`{"chunk":`))
		panic("mid-stream")
	}))
	defer func() {
		if p := recover(); p != http.ErrAbortHandler {
			t.Fatalf("recovered %v, want http.ErrAbortHandler", p)
		}
	}()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	t.Fatal("no panic")
}

func TestRecoverOverRealServer(t *testing.T) {
	logger, _ := testLogger()
	srv := httptest.NewServer(Recover(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("boom")
	})))
	defer srv.Close()
	for range 2 { // the server survives
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 500 {
			t.Fatalf("status = %d", resp.StatusCode)
		}
	}
}

func TestRequestID(t *testing.T) {
	tests := []struct {
		name, in string
		keep     bool
	}{
		{"valid kept", "lb-7f3a.01_x", true},
		{"missing generated", "", false},
		{"log injection replaced", "a\nlevel=ERROR", false},
		{"too long replaced", strings.Repeat("a", 65), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen string
			h := RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen = RequestIDFrom(r.Context())
			}))
			req := httptest.NewRequest("GET", "/", nil)
			if tt.in != "" {
				req.Header.Set(RequestIDHeader, tt.in)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			out := rec.Header().Get(RequestIDHeader)
			if out == "" || out != seen || !validRequestID(out) {
				t.Fatalf("out %q seen %q", out, seen)
			}
			if (out == tt.in) != tt.keep {
				t.Fatalf("in %q out %q keep=%v", tt.in, out, tt.keep)
			}
		})
	}
}

func TestAccessLog(t *testing.T) {
	logger, logs := testLogger()
	mux := http.NewServeMux()
	mux.Handle("GET /_matrix/client/v3/rooms/{roomId}/state", Handle(func(w http.ResponseWriter, r *http.Request) error {
		return WriteJSON(w, 200, []any{})
	}))
	h := Chain(RequestID, AccessLog(logger), CORS, BodyLimit(100))(WrapMux(mux))
	req := httptest.NewRequest("GET", "/_matrix/client/v3/rooms/!r:example.org/state?access_token=syt_SECRET_query", nil)
	req.Header.Set("Authorization", "Bearer syt_SECRET_header")
	req.Header.Set(RequestIDHeader, "rid-1")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	out := logs.String()
	if strings.Contains(out, "SECRET") || strings.Contains(out, "access_token") {
		t.Fatalf("log leaks token: %s", out)
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &line); err != nil {
		t.Fatalf("want one JSON log line, got %q: %v", out, err)
	}
	want := map[string]any{
		"msg":        "http request",
		"method":     "GET",
		"route":      "GET /_matrix/client/v3/rooms/{roomId}/state",
		"path":       "/_matrix/client/v3/rooms/!r:example.org/state",
		"status":     float64(200),
		"bytes":      float64(2),
		"request_id": "rid-1",
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("log[%q] = %v, want %v", k, line[k], v)
		}
	}
	if _, ok := line["duration"]; !ok {
		t.Error("no duration")
	}
}

func TestCORS(t *testing.T) {
	called := false
	h := CORS(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called = true
		WriteError(w, r, nil, MissingToken("no token")) // an auth check
	}))
	for _, method := range []string{"OPTIONS", "GET"} {
		called = false
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(method, "/_matrix/client/v3/sync", nil)
		req.Header.Set("Origin", "https://app.example")
		req.Header.Set("Access-Control-Request-Method", "GET")
		h.ServeHTTP(rec, req)
		hdr := rec.Header()
		if hdr.Get("Access-Control-Allow-Origin") != "*" ||
			hdr.Get("Access-Control-Allow-Methods") != "GET, POST, PUT, DELETE, OPTIONS" ||
			hdr.Get("Access-Control-Allow-Headers") != "X-Requested-With, Content-Type, Authorization" {
			t.Errorf("%s: CORS headers %v", method, hdr)
		}
		if method == "OPTIONS" {
			if rec.Code != 200 || called || rec.Body.String() != "{}" {
				t.Errorf("preflight: %d called=%v body=%q", rec.Code, called, rec.Body)
			}
		} else if rec.Code != 401 || !called {
			t.Errorf("GET: %d called=%v", rec.Code, called)
		}
	}
}

func TestWrapMuxUnrecognized(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("GET /_matrix/client/v3/profile/{userId}", Handle(func(w http.ResponseWriter, r *http.Request) error {
		return WriteJSON(w, 200, map[string]string{"u": r.PathValue("userId")})
	}))
	mux.Handle("PUT /_matrix/client/v3/profile/{userId}", Handle(func(w http.ResponseWriter, r *http.Request) error {
		return WriteJSON(w, 200, struct{}{})
	}))
	h := WrapMux(mux)
	tests := []struct {
		method, path string
		status       int
		errcode      string
		allow        string
	}{
		{"GET", "/_matrix/client/v3/profile/@a:b", 200, "", ""},
		{"GET", "/_matrix/client/v3/nope", 404, "M_UNRECOGNIZED", ""},
		{"DELETE", "/_matrix/client/v3/profile/@a:b", 405, "M_UNRECOGNIZED", "GET, HEAD, PUT"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			body := decodeBody(t, rec)
			if tt.errcode != "" && body["errcode"] != tt.errcode {
				t.Fatalf("body %v", body)
			}
			if got := rec.Header().Get("Allow"); got != tt.allow {
				t.Fatalf("Allow = %q, want %q", got, tt.allow)
			}
		})
	}
}

func TestFlushThroughWrappers(t *testing.T) {
	logger, _ := testLogger()
	var ok bool
	h := Chain(AccessLog(logger), Recover(logger))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, ok = w.(http.Flusher)
		ok = ok && http.NewResponseController(w).Flush() == nil
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if !ok {
		t.Fatal("Flush not reachable through middleware")
	}
}
