package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
)

// user is one logged-in account talking to the server over HTTP, as a
// client does.
type user struct {
	base  string
	hc    *http.Client
	id    string
	token string
	txn   atomic.Int64
}

type apiError struct {
	Status int
	Body   string
}

func (e *apiError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Body) }

func (u *user) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.base+"/_matrix/client/v3"+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if u.token != "" {
		req.Header.Set("Authorization", "Bearer "+u.token)
	}
	resp, err := u.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return &apiError{Status: resp.StatusCode, Body: string(data)}
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// register creates an account through the dummy UIA stage.
func register(ctx context.Context, base string, hc *http.Client, localpart string) (*user, error) {
	u := &user{base: base, hc: hc}
	body := map[string]any{"username": localpart, "password": "bench-password-" + localpart}
	var first struct {
		Session string `json:"session"`
	}
	err := u.call(ctx, "POST", "/register", body, nil)
	var ae *apiError
	if err == nil || !asAPIError(err, &ae) || ae.Status != 401 {
		return nil, fmt.Errorf("register %s: expected the UIA challenge, got %v", localpart, err)
	}
	_ = json.Unmarshal([]byte(ae.Body), &first)
	body["auth"] = map[string]any{"type": "m.login.dummy", "session": first.Session}
	var out struct {
		UserID      string `json:"user_id"`
		AccessToken string `json:"access_token"`
	}
	if err := u.call(ctx, "POST", "/register", body, &out); err != nil {
		return nil, fmt.Errorf("register %s: %w", localpart, err)
	}
	u.id, u.token = out.UserID, out.AccessToken
	return u, nil
}

func asAPIError(err error, target **apiError) bool {
	ae, ok := err.(*apiError)
	if ok {
		*target = ae
	}
	return ok
}

func (u *user) createRoom(ctx context.Context, preset string) (string, error) {
	var out struct {
		RoomID string `json:"room_id"`
	}
	err := u.call(ctx, "POST", "/createRoom", map[string]any{"preset": preset}, &out)
	return out.RoomID, err
}

func (u *user) join(ctx context.Context, roomID string) error {
	return u.call(ctx, "POST", "/rooms/"+url.PathEscape(roomID)+"/join", map[string]any{}, nil)
}

// send sends one text message and returns its event ID and the latency.
func (u *user) send(ctx context.Context, roomID, text string) (string, time.Duration, error) {
	path := fmt.Sprintf("/rooms/%s/send/m.room.message/b%d", url.PathEscape(roomID), u.txn.Add(1))
	var out struct {
		EventID string `json:"event_id"`
	}
	start := time.Now()
	err := u.call(ctx, "PUT", path, map[string]any{"msgtype": "m.text", "body": text}, &out)
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
	err := u.call(ctx, "GET", "/sync?"+q.Encode(), nil, &out)
	return &out, err
}
