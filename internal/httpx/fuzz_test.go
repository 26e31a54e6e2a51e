package httpx

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzDecodeJSON: any body either decodes or yields a 4xx *Error; never a
// panic, never an internal error.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"name":"a","count":1}`, `[]`, `null`, `{"count":"x"}`, `{} {}`, "\xff", ``, `{"name":`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var v sample
		err := DecodeJSON(httptest.NewRequest("POST", "/", strings.NewReader(body)), 256, &v)
		if err == nil {
			return
		}
		e, ok := errors.AsType[*Error](err)
		if !ok || e.Status < 400 || e.Status >= 500 || e.Message == "" {
			t.Fatalf("body %q: %v", body, err)
		}
	})
}
