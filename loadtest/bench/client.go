package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/axon-hs/axon/loadtest/mxclient"
)

// user is one logged-in account talking to the server over HTTP, as a
// client does.
type user struct {
	mxclient.Client
	txn atomic.Int64
}

// register creates an account through the dummy UIA stage.
func register(ctx context.Context, base string, hc *http.Client, localpart string) (*user, error) {
	c, err := mxclient.Register(ctx, base, hc, localpart, "bench-password-"+localpart)
	if err != nil {
		return nil, err
	}
	return &user{Client: *c}, nil
}

func (u *user) createRoom(ctx context.Context, preset string) (string, error) {
	var out struct {
		RoomID string `json:"room_id"`
	}
	err := u.Call(ctx, "POST", "/createRoom", map[string]any{"preset": preset}, &out)
	return out.RoomID, err
}

func (u *user) join(ctx context.Context, roomID string) error {
	return u.Call(ctx, "POST", "/rooms/"+url.PathEscape(roomID)+"/join", map[string]any{}, nil)
}

// send sends one text message and returns its event ID and the latency.
func (u *user) send(ctx context.Context, roomID, text string) (string, time.Duration, error) {
	path := fmt.Sprintf("/rooms/%s/send/m.room.message/b%d", url.PathEscape(roomID), u.txn.Add(1))
	var out struct {
		EventID string `json:"event_id"`
	}
	start := time.Now()
	err := u.Call(ctx, "PUT", path, map[string]any{"msgtype": "m.text", "body": text}, &out)
	return out.EventID, time.Since(start), err
}

type syncResp struct {
	NextBatch string `json:"next_batch"`
	Rooms     struct {
		Join map[string]struct {
			Timeline struct {
				Events []struct {
					EventID string `json:"event_id"`
				} `json:"events"`
			} `json:"timeline"`
		} `json:"join"`
	} `json:"rooms"`
}

func (u *user) sync(ctx context.Context, since string, timeout time.Duration, filter string) (*syncResp, error) {
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	q.Set("timeout", fmt.Sprint(timeout.Milliseconds()))
	if filter != "" {
		q.Set("filter", filter)
	}
	var out syncResp
	err := u.Call(ctx, "GET", "/sync?"+q.Encode(), nil, &out)
	return &out, err
}
