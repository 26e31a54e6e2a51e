// Package mxclient is the Matrix client plumbing that Axon's benchmarks
// and cluster fault tests share: JSON calls to the Client-Server API and
// registration through the dummy stage of user-interactive auth. It talks
// HTTP to a server, as any client does, and links nothing of the server.
package mxclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// maxBody bounds a response body read.
const maxBody = 64 << 20

// Error is an answer other than 2xx.
type Error struct {
	Status int
	Body   string
}

func (e *Error) Error() string { return fmt.Sprintf("HTTP %d: %.300s", e.Status, e.Body) }

// Client is one user (or nobody, before registration) talking to Base.
type Client struct {
	Base   string // the server's base URL, without /_matrix
	HC     *http.Client
	UserID string
	Token  string
}

// Call sends body (JSON; nil for none) to the Client-Server API v3 path
// and decodes a 2xx answer into out (nil: ignored). Another answer is an
// *Error.
func (c *Client) Call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+"/_matrix/client/v3"+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HC.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return &Error{Status: resp.StatusCode, Body: string(data)}
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// Register creates an account through the dummy stage of
// user-interactive auth and returns it logged in.
func Register(ctx context.Context, base string, hc *http.Client, localpart, password string) (*Client, error) {
	c := &Client{Base: base, HC: hc}
	body := map[string]any{"username": localpart, "password": password}
	err := c.Call(ctx, "POST", "/register", body, nil)
	var me *Error
	if !errors.As(err, &me) || me.Status != http.StatusUnauthorized {
		return nil, fmt.Errorf("register %s: want the UIA challenge, got %v", localpart, err)
	}
	var uia struct {
		Session string `json:"session"`
	}
	_ = json.Unmarshal([]byte(me.Body), &uia)
	body["auth"] = map[string]any{"type": "m.login.dummy", "session": uia.Session}
	var out struct {
		UserID      string `json:"user_id"`
		AccessToken string `json:"access_token"`
	}
	if err := c.Call(ctx, "POST", "/register", body, &out); err != nil {
		return nil, fmt.Errorf("register %s: %w", localpart, err)
	}
	c.UserID, c.Token = out.UserID, out.AccessToken
	return c, nil
}
