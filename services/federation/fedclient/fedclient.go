// Package fedclient makes this server's requests to other servers: it
// signs each one with the X-Matrix scheme (matrix/xmatrix), carries it over
// the discovery transport (resolution, verified TLS, bounded connection
// pools), bounds the answer's size and time, and turns a Matrix error
// answer into an *Error.
//
// It never retries on its own (the callers know whether a request is
// safe to repeat and when: the sender backs off per destination), never
// sends a request to this server itself, and never reads an unbounded
// body.
package fedclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/matrix/xmatrix"
	"github.com/axon-hs/axon/services/federation/discovery"
)

// DefaultTimeout bounds a request whose context has no deadline.
const DefaultTimeout = 60 * time.Second

// DefaultMaxResponse bounds a response body (a /state answer of a large
// room is the biggest the API has).
const DefaultMaxResponse = 64 << 20

// Config configures a Client.
type Config struct {
	ServerName string
	Key        *keys.SigningKey
	// Transport carries matrix-fed:// requests; normally a
	// *discovery.Transport.
	Transport   http.RoundTripper
	Timeout     time.Duration
	MaxResponse int64
	Logger      *slog.Logger
}

// Client sends signed federation requests. Safe for concurrent use.
type Client struct {
	cfg Config
	hc  *http.Client
}

// New returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.ServerName == "" || cfg.Key == nil || cfg.Transport == nil {
		return nil, errors.New("fedclient: server name, key and transport are required")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxResponse == 0 {
		cfg.MaxResponse = DefaultMaxResponse
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	hc := &http.Client{
		Transport: cfg.Transport,
		// A federation endpoint never redirects; following one would send
		// the signed request somewhere it was not signed for.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Client{cfg: cfg, hc: hc}, nil
}

// Error is a non-2xx answer.
type Error struct {
	Destination string
	Status      int
	Code        string // the Matrix errcode, "" when the body had none
	Message     string
}

func (e *Error) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("%s answered %d %s: %s", e.Destination, e.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("%s answered %d", e.Destination, e.Status)
}

// ErrSelf is returned for a request addressed to this server.
var ErrSelf = errors.New("fedclient: a request to this server itself")

// Do sends method path (with its query string) to destination, signed
// when sign is set, with body as JSON (nil: none), and returns the
// response body of a 2xx answer.
func (c *Client) Do(ctx context.Context, destination, method, path string, body any, sign bool) ([]byte, error) {
	if destination == c.cfg.ServerName {
		return nil, ErrSelf
	}
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("fedclient: path %q does not start with /", path)
	}
	var content []byte
	if body != nil {
		var err error
		if raw, ok := body.([]byte); ok {
			content = raw
		} else if content, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("fedclient: encode request: %w", err)
		}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, method, discovery.Scheme+"://"+destination+path, bytes.NewReader(content))
	if err != nil {
		return nil, fmt.Errorf("fedclient: %w", err)
	}
	if content != nil {
		req.Header.Set("Content-Type", "application/json")
	} else {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	if sign {
		h, err := xmatrix.Sign(method, path, c.cfg.ServerName, destination, content, c.cfg.Key)
		if err != nil {
			return nil, fmt.Errorf("fedclient: sign: %w", err)
		}
		req.Header.Set("Authorization", h.String())
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fedclient: %s %s to %s: %w", method, pathOnly(path), destination, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("fedclient: %s %s to %s: reading the answer: %w", method, pathOnly(path), destination, err)
	}
	if int64(len(data)) > c.cfg.MaxResponse {
		return nil, fmt.Errorf("fedclient: %s %s to %s: answer larger than %d bytes", method, pathOnly(path), destination, c.cfg.MaxResponse)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &Error{Destination: destination, Status: resp.StatusCode}
		var m struct {
			Errcode string `json:"errcode"`
			Error   string `json:"error"`
		}
		if json.Unmarshal(data, &m) == nil {
			e.Code, e.Message = m.Errcode, m.Error
		}
		return nil, e
	}
	return data, nil
}

// GetJSON sends a signed GET and decodes the answer into out.
func (c *Client) GetJSON(ctx context.Context, destination, path string, out any) error {
	data, err := c.Do(ctx, destination, http.MethodGet, path, nil, true)
	if err != nil {
		return err
	}
	return decode(destination, path, data, out)
}

// SendJSON sends a signed request with body and decodes the answer into
// out (nil: ignored).
func (c *Client) SendJSON(ctx context.Context, destination, method, path string, body, out any) error {
	data, err := c.Do(ctx, destination, method, path, body, true)
	if err != nil || out == nil {
		return err
	}
	return decode(destination, path, data, out)
}

func decode(destination, path string, data []byte, out any) error {
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("fedclient: %s from %s: the answer is not the expected JSON: %w", pathOnly(path), destination, err)
	}
	return nil
}

// ServerKeys implements keyserver.Fetcher: GET /_matrix/key/v2/server,
// which needs no signature.
func (c *Client) ServerKeys(ctx context.Context, server string) ([]byte, error) {
	return c.Do(ctx, server, http.MethodGet, "/_matrix/key/v2/server", nil, false)
}

// QueryKeys implements keyserver.Fetcher: POST /_matrix/key/v2/query.
func (c *Client) QueryKeys(ctx context.Context, notary string, body []byte) ([]byte, error) {
	return c.Do(ctx, notary, http.MethodPost, "/_matrix/key/v2/query", body, false)
}

// pathOnly drops the query string, which may name users, from logs and
// errors.
func pathOnly(p string) string {
	path, _, _ := strings.Cut(p, "?")
	return path
}
