package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// client is one logged-in Matrix user talking to the proxy over HTTP.
type client struct {
	base  string
	hc    *http.Client
	user  string
	token string
}

// httpError is an answer other than 2xx.
type httpError struct {
	Status int
	Body   string
}

func (e *httpError) Error() string { return fmt.Sprintf("HTTP %d: %.300s", e.Status, e.Body) }

// permanent reports whether err is an answer that a retry cannot change
// (a 4xx other than 429).
func permanent(err error) bool {
	var he *httpError
	return errors.As(err, &he) && he.Status >= 400 && he.Status < 500 && he.Status != http.StatusTooManyRequests
}

func newHTTPClient() *http.Client {
	return &http.Client{
		Timeout: 45 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     20 * time.Second, // below haproxy's keep-alive timeout
		},
	}
}

func (c *client) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+"/_matrix/client/v3"+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return &httpError{Status: resp.StatusCode, Body: string(data)}
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// register creates an account through the dummy stage of user-interactive
// auth.
func register(ctx context.Context, base string, hc *http.Client, localpart string) (*client, error) {
	c := &client{base: base, hc: hc}
	body := map[string]any{"username": localpart, "password": "cluster-" + localpart + "-password"}
	err := c.call(ctx, "POST", "/register", body, nil)
	var he *httpError
	if !errors.As(err, &he) || he.Status != http.StatusUnauthorized {
		return nil, fmt.Errorf("register %s: want the UIA challenge, got %v", localpart, err)
	}
	var uia struct {
		Session string `json:"session"`
	}
	_ = json.Unmarshal([]byte(he.Body), &uia)
	body["auth"] = map[string]any{"type": "m.login.dummy", "session": uia.Session}
	var out struct {
		UserID      string `json:"user_id"`
		AccessToken string `json:"access_token"`
	}
	if err := c.call(ctx, "POST", "/register", body, &out); err != nil {
		return nil, fmt.Errorf("register %s: %w", localpart, err)
	}
	c.user, c.token = out.UserID, out.AccessToken
	return c, nil
}

func (c *client) createRoom(ctx context.Context, name string) (string, error) {
	var out struct {
		RoomID string `json:"room_id"`
	}
	err := c.call(ctx, "POST", "/createRoom", map[string]any{"preset": "public_chat", "name": name}, &out)
	return out.RoomID, err
}

func (c *client) join(ctx context.Context, roomID string) error {
	return c.call(ctx, "POST", "/rooms/"+url.PathEscape(roomID)+"/join", map[string]any{}, nil)
}

// send sends one message under the transaction ID txn.
func (c *client) send(ctx context.Context, roomID, txn string, content map[string]any) (string, error) {
	var out struct {
		EventID string `json:"event_id"`
	}
	err := c.call(ctx, "PUT", "/rooms/"+url.PathEscape(roomID)+"/send/m.room.message/"+url.PathEscape(txn), content, &out)
	if err == nil && out.EventID == "" {
		err = errors.New("send: no event_id in the answer")
	}
	return out.EventID, err
}

// event is a timeline event as the suite reads it.
type event struct {
	EventID string `json:"event_id"`
	Type    string `json:"type"`
	Sender  string `json:"sender"`
	Content struct {
		Run    string `json:"axon_run"`
		Sender int    `json:"axon_sender"`
		Seq    int    `json:"axon_seq"`
	} `json:"content"`
}

type syncResponse struct {
	NextBatch string `json:"next_batch"`
	Rooms     struct {
		Join map[string]struct {
			Timeline struct {
				Events    []event `json:"events"`
				Limited   bool    `json:"limited"`
				PrevBatch string  `json:"prev_batch"`
			} `json:"timeline"`
		} `json:"join"`
	} `json:"rooms"`
}

// syncFilter keeps the timeline whole (up to the server's limit) and drops
// what the suite does not read.
const syncFilter = `{"room":{"timeline":{"limit":1000},"state":{"lazy_load_members":true},` +
	`"ephemeral":{"not_types":["*"]},"account_data":{"not_types":["*"]}},` +
	`"presence":{"not_types":["*"]},"account_data":{"not_types":["*"]}}`

func (c *client) sync(ctx context.Context, since string, timeout time.Duration) (*syncResponse, error) {
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	q.Set("timeout", fmt.Sprint(timeout.Milliseconds()))
	q.Set("filter", syncFilter)
	var out syncResponse
	err := c.call(ctx, "GET", "/sync?"+q.Encode(), nil, &out)
	return &out, err
}

type messagesResponse struct {
	Chunk []event `json:"chunk"`
	End   string  `json:"end"`
}

// messages pages backwards from from.
func (c *client) messages(ctx context.Context, roomID, from string, limit int) (*messagesResponse, error) {
	q := url.Values{"dir": {"b"}, "from": {from}, "limit": {fmt.Sprint(limit)}}
	var out messagesResponse
	err := c.call(ctx, "GET", "/rooms/"+url.PathEscape(roomID)+"/messages?"+q.Encode(), nil, &out)
	return &out, err
}
