package federation

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/xmatrix"
	"github.com/axon-hs/axon/services/keyserver"
)

// Request is an authenticated federation request.
type Request struct {
	// Origin is the server that signed the request.
	Origin string
	// Body is the request body as received (nil when there was none).
	Body []byte
}

// authedFunc is an endpoint behind request authentication.
type authedFunc func(w http.ResponseWriter, r *http.Request, req *Request) error

// authed wraps h with X-Matrix request authentication.
func (a *API) authed(h authedFunc) http.Handler {
	return httpx.Handle(func(w http.ResponseWriter, r *http.Request) error {
		req, err := a.authenticate(r)
		if err != nil {
			return err
		}
		return h(w, r, req)
	}, httpx.WithErrorLogger(a.log))
}

// authenticate reads the body and checks the request's signature.
func (a *API) authenticate(r *http.Request) (*Request, error) {
	var h xmatrix.Header
	var parseErr error
	found := false
	// A sender may send one header per key; any one that verifies will
	// do, so take the first X-Matrix header that parses.
	for _, v := range r.Header.Values("Authorization") {
		scheme, _, _ := strings.Cut(strings.TrimSpace(v), " ")
		if !strings.EqualFold(scheme, "X-Matrix") {
			continue
		}
		hh, err := xmatrix.ParseHeader(v)
		if err != nil {
			parseErr = err
			continue
		}
		h, found = hh, true
		break
	}
	if !found {
		if parseErr != nil {
			return nil, httpx.Unauthorized("the X-Matrix Authorization header is malformed: " + parseErr.Error())
		}
		return nil, httpx.Unauthorized("this endpoint requires an X-Matrix Authorization header")
	}
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(nil, r.Body, a.cfg.BodyLimit))
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				return nil, httpx.TooLarge(fmt.Sprintf("request body is larger than %d bytes", a.cfg.BodyLimit))
			}
			return nil, httpx.NotJSON("could not read the request body").WithCause(err)
		}
		if len(body) == 0 {
			body = nil
		}
	}
	now := a.cfg.Now().UnixMilli()
	lookup, err := a.cfg.Keys.Keys(r.Context(), []keyserver.Request{{Server: h.Origin, KeyID: h.Key, AtTS: now}})
	if err != nil {
		return nil, err // the database failed: a 500, not the sender's fault
	}
	// The signature covers the request target exactly as sent.
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	err = xmatrix.Verify(h, r.Method, uri, a.cfg.ServerName, body, lookup, now)
	switch {
	case err == nil:
		return &Request{Origin: h.Origin, Body: body}, nil
	case errors.Is(err, xmatrix.ErrContentNotJSON):
		return nil, httpx.NotJSON("the request body is not valid JSON")
	case errors.Is(err, xmatrix.ErrWrongDestination):
		return nil, httpx.Unauthorized("the request is addressed to " + h.Destination + ", not to this server")
	case errors.Is(err, xmatrix.ErrUnknownKey):
		return nil, httpx.Unauthorized("no valid key " + string(h.Key) + " is known for " + h.Origin)
	default:
		return nil, httpx.Unauthorized("the request signature does not verify")
	}
}
