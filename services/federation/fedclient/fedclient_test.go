package fedclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/matrix/xmatrix"
)

// handlerTransport hands matrix-fed:// requests to a handler in process,
// as the discovery transport would over TLS.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != "matrix-fed" {
		return nil, errors.New("not a federation URL")
	}
	rec := httptest.NewRecorder()
	in := r.Clone(r.Context())
	in.RequestURI = r.URL.RequestURI()
	in.Host = r.URL.Host
	t.h.ServeHTTP(rec, in)
	return rec.Result(), nil
}

func newClient(t *testing.T, h http.HandlerFunc, max int64) (*Client, *keys.SigningKey) {
	t.Helper()
	key, _ := keys.Generate("c1", nil)
	c, err := New(Config{ServerName: "us.test", Key: key, Transport: handlerTransport{h}, MaxResponse: max})
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func TestSignedRequest(t *testing.T) {
	var got error
	var c *Client
	var key *keys.SigningKey
	c, key = newClient(t, func(w http.ResponseWriter, r *http.Request) {
		h, err := xmatrix.ParseHeader(r.Header.Get("Authorization"))
		if err == nil {
			body, _ := io.ReadAll(r.Body)
			got = xmatrix.Verify(h, r.Method, r.RequestURI, "them.test", body, func(string, keys.KeyID) (keys.VerifyKey, bool) {
				return keys.VerifyKey{Key: key.Public(), ValidUntilTS: keys.NoExpiry}, true
			}, 0)
		} else {
			got = err
		}
		_, _ = w.Write([]byte(`{"ok":true}`))
	}, 0)
	var out struct{ OK bool }
	if err := c.SendJSON(context.Background(), "them.test", "PUT", "/_matrix/federation/v1/send/1?x=%20y", map[string]any{"pdus": []any{}}, &out); err != nil || !out.OK {
		t.Fatalf("send: %v %+v", err, out)
	}
	if got != nil {
		t.Errorf("the receiver could not verify the request: %v", got)
	}
}

func TestAnswers(t *testing.T) {
	c, _ := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing":
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"errcode":"M_NOT_FOUND","error":"nope"}`))
		case "/html":
			w.WriteHeader(502)
			_, _ = w.Write([]byte(`<html>bad gateway</html>`))
		case "/big":
			_, _ = w.Write([]byte(strings.Repeat("x", 200)))
		case "/redirect":
			http.Redirect(w, r, "https://elsewhere.test/", http.StatusFound)
		case "/garbage":
			_, _ = w.Write([]byte(`not json`))
		}
	}, 100)
	ctx := context.Background()
	var fe *Error
	if err := c.GetJSON(ctx, "them.test", "/missing", &struct{}{}); !errors.As(err, &fe) || fe.Status != 404 || fe.Code != "M_NOT_FOUND" || fe.Message != "nope" {
		t.Errorf("404: %v", err)
	}
	if err := c.GetJSON(ctx, "them.test", "/html", &struct{}{}); !errors.As(err, &fe) || fe.Status != 502 || fe.Code != "" {
		t.Errorf("502: %v", err)
	}
	if _, err := c.Do(ctx, "them.test", "GET", "/big", nil, true); err == nil || !strings.Contains(err.Error(), "larger than 100 bytes") {
		t.Errorf("big answer: %v", err)
	}
	if err := c.GetJSON(ctx, "them.test", "/redirect", &struct{}{}); !errors.As(err, &fe) || fe.Status != 302 {
		t.Errorf("a redirect was followed: %v", err)
	}
	if err := c.GetJSON(ctx, "them.test", "/garbage", &struct{}{}); err == nil {
		t.Error("a non-JSON answer decoded")
	}
	if _, err := c.Do(ctx, "us.test", "GET", "/x", nil, true); !errors.Is(err, ErrSelf) {
		t.Errorf("a request to ourselves: %v", err)
	}
	if _, err := c.Do(ctx, "them.test", "GET", "x", nil, true); err == nil {
		t.Error("a relative path was sent")
	}
}
