package testenv

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Serve sends one request to h in process, with token as the bearer
// access token when not empty and body as the request body (nil: none; a
// string: as is; anything else: as JSON). It returns the status, the
// Matrix errcode of an error response and the raw body.
func Serve(t testing.TB, h http.Handler, method, path, token string, body any) (status int, errcode string, raw []byte) {
	t.Helper()
	var data []byte
	switch b := body.(type) {
	case nil:
	case string:
		data = []byte(b)
	default:
		var err error
		if data, err = json.Marshal(b); err != nil {
			t.Fatal(err)
		}
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(data))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var e struct {
		Code string `json:"errcode"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &e)
	return rec.Code, e.Code, rec.Body.Bytes()
}

// ServeOK is Serve that fails the test unless the answer is 200; it
// returns the body.
func ServeOK(t testing.TB, h http.Handler, method, path, token string, body any) []byte {
	t.Helper()
	status, code, raw := Serve(t, h, method, path, token, body)
	if status != http.StatusOK {
		t.Fatalf("%s %s: %d %s %s", method, path, status, code, raw)
	}
	return raw
}
