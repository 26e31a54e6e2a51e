package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/axon-hs/axon/loadtest/mxclient"
)

// client is one logged-in Matrix user talking to the proxy over HTTP.
type client struct {
	mxclient.Client
}

// httpError is an answer other than 2xx.
type httpError = mxclient.Error

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

// register creates an account through the dummy stage of user-interactive
// auth.
func register(ctx context.Context, base string, hc *http.Client, localpart string) (*client, error) {
	c, err := mxclient.Register(ctx, base, hc, localpart, "cluster-"+localpart+"-password")
	if err != nil {
		return nil, err
	}
	return &client{Client: *c}, nil
}

func (c *client) createRoom(ctx context.Context, name string) (string, error) {
	var out struct {
		RoomID string `json:"room_id"`
	}
	err := c.Call(ctx, "POST", "/createRoom", map[string]any{"preset": "public_chat", "name": name}, &out)
	return out.RoomID, err
}

func (c *client) join(ctx context.Context, roomID string) error {
	return c.Call(ctx, "POST", "/rooms/"+url.PathEscape(roomID)+"/join", map[string]any{}, nil)
}

// send sends one message under the transaction ID txn.
func (c *client) send(ctx context.Context, roomID, txn string, content map[string]any) (string, error) {
	var out struct {
		EventID string `json:"event_id"`
	}
	err := c.Call(ctx, "PUT", "/rooms/"+url.PathEscape(roomID)+"/send/m.room.message/"+url.PathEscape(txn), content, &out)
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
	err := c.Call(ctx, "GET", "/sync?"+q.Encode(), nil, &out)
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
	err := c.Call(ctx, "GET", "/rooms/"+url.PathEscape(roomID)+"/messages?"+q.Encode(), nil, &out)
	return &out, err
}
