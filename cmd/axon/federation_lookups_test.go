package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/axon-hs/axon/services/federation/fedclient"
)

// Server b looks up server a over federation: a's public rooms, a space's
// hierarchy, a user's devices and keys, and an OpenID token that a user of
// a requested, which b (as a third party would) exchanges at a's
// federation listener.
func TestFederationLookups(t *testing.T) {
	w := newFedWorld(t)
	a := w.start(backends()[0], "a.fed.test")
	b := w.start(backends()[0], "b.fed.test")
	alice := a.register("alice")
	lobby := alice.createRoom(map[string]any{"preset": "public_chat", "visibility": "public", "name": "Lobby", "topic": "Say hello"})
	alice.createRoom(map[string]any{"preset": "private_chat", "name": "Secret"}) // not published
	space := alice.createRoom(map[string]any{"preset": "public_chat", "visibility": "public", "name": "Space",
		"creation_content": map[string]any{"type": "m.space"},
		"initial_state":    []any{map[string]any{"type": "m.space.child", "state_key": lobby, "content": map[string]any{"via": []string{"a.fed.test"}}}}})
	ctx := context.Background()
	fc := b.srv.fedClient

	// The directory: GET, and POST with a filter.
	type page struct {
		Chunk []struct {
			RoomID           string `json:"room_id"`
			Name             string `json:"name"`
			Topic            string `json:"topic"`
			NumJoinedMembers int    `json:"num_joined_members"`
			JoinRule         string `json:"join_rule"`
			RoomType         string `json:"room_type"`
		} `json:"chunk"`
		NextBatch string `json:"next_batch"`
		PrevBatch string `json:"prev_batch"`
		Total     *int   `json:"total_room_count_estimate"`
	}
	var p page
	if err := fc.GetJSON(ctx, "a.fed.test", "/_matrix/federation/v1/publicRooms", &p); err != nil {
		t.Fatalf("publicRooms: %v", err)
	}
	if len(p.Chunk) != 2 || p.Total == nil || *p.Total != 2 || p.NextBatch != "" {
		t.Fatalf("a's directory: %+v", p)
	}
	byID := map[string]int{}
	for i, r := range p.Chunk {
		byID[r.RoomID] = i
	}
	if i, ok := byID[lobby]; !ok || p.Chunk[i].Name != "Lobby" || p.Chunk[i].Topic != "Say hello" || p.Chunk[i].NumJoinedMembers != 1 || p.Chunk[i].JoinRule != "public" {
		t.Errorf("the lobby in a's directory: %+v", p.Chunk)
	}
	if i, ok := byID[space]; !ok || p.Chunk[i].RoomType != "m.space" {
		t.Errorf("the space in a's directory: %+v", p.Chunk)
	}
	// Pages of one room.
	if err := fc.GetJSON(ctx, "a.fed.test", "/_matrix/federation/v1/publicRooms?limit=1", &p); err != nil || len(p.Chunk) != 1 || p.NextBatch == "" {
		t.Fatalf("first page: %+v %v", p, err)
	}
	first := p.Chunk[0].RoomID
	var p2 page
	if err := fc.GetJSON(ctx, "a.fed.test", "/_matrix/federation/v1/publicRooms?limit=1&since="+url.QueryEscape(p.NextBatch), &p2); err != nil ||
		len(p2.Chunk) != 1 || p2.Chunk[0].RoomID == first || p2.NextBatch != "" || p2.PrevBatch == "" {
		t.Fatalf("second page: %+v %v", p2, err)
	}
	p = page{}
	if err := fc.SendJSON(ctx, "a.fed.test", "POST", "/_matrix/federation/v1/publicRooms",
		map[string]any{"filter": map[string]any{"generic_search_term": "HELLO"}}, &p); err != nil || len(p.Chunk) != 1 || p.Chunk[0].RoomID != lobby {
		t.Errorf("search: %+v %v", p, err)
	}
	p = page{}
	if err := fc.SendJSON(ctx, "a.fed.test", "POST", "/_matrix/federation/v1/publicRooms",
		map[string]any{"filter": map[string]any{"room_types": []any{"m.space"}}}, &p); err != nil || len(p.Chunk) != 1 || p.Chunk[0].RoomID != space {
		t.Errorf("spaces only: %+v %v", p, err)
	}
	var fe *fedclient.Error
	if err := fc.GetJSON(ctx, "a.fed.test", "/_matrix/federation/v1/publicRooms?since=nope", &p); !errors.As(err, &fe) || fe.Code != "M_INVALID_PARAM" {
		t.Errorf("a bad since token: %v", err)
	}

	// The space's hierarchy.
	var h struct {
		Room struct {
			RoomID        string `json:"room_id"`
			ChildrenState []struct {
				StateKey string `json:"state_key"`
			} `json:"children_state"`
		} `json:"room"`
		Children []struct {
			RoomID string `json:"room_id"`
			Name   string `json:"name"`
		} `json:"children"`
		Inaccessible []string `json:"inaccessible_children"`
	}
	if err := fc.GetJSON(ctx, "a.fed.test", "/_matrix/federation/v1/hierarchy/"+apiEsc(space), &h); err != nil {
		t.Fatalf("hierarchy: %v", err)
	}
	if h.Room.RoomID != space || len(h.Room.ChildrenState) != 1 || h.Room.ChildrenState[0].StateKey != lobby ||
		len(h.Children) != 1 || h.Children[0].RoomID != lobby || h.Children[0].Name != "Lobby" || h.Inaccessible == nil {
		t.Errorf("hierarchy: %+v", h)
	}

	// Alice's devices: the one of her registration and a named one.
	r := a.do("POST", "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.password",
		"identifier": map[string]any{"type": "m.id.user", "user": "alice"}, "password": "pw-alice-long-enough",
		"device_id": "LAPTOP", "initial_device_display_name": "Alice's laptop"})
	if r.Status != 200 {
		t.Fatalf("login: %d %s", r.Status, r.Raw)
	}
	var devs struct {
		UserID   string `json:"user_id"`
		StreamID int64  `json:"stream_id"`
		Devices  []struct {
			DeviceID    string          `json:"device_id"`
			DisplayName string          `json:"device_display_name"`
			Keys        json.RawMessage `json:"keys"`
		} `json:"devices"`
	}
	if err := fc.GetJSON(ctx, "a.fed.test", "/_matrix/federation/v1/user/devices/"+apiEsc(alice.UserID), &devs); err != nil {
		t.Fatalf("user devices: %v", err)
	}
	names := map[string]string{}
	for _, d := range devs.Devices {
		names[d.DeviceID] = d.DisplayName
		if string(d.Keys) != "{}" {
			t.Errorf("keys of %s: %s", d.DeviceID, d.Keys)
		}
	}
	if _, ok := names[alice.DeviceID]; devs.UserID != alice.UserID || devs.StreamID <= 0 || len(names) != 2 || !ok || names["LAPTOP"] != "Alice's laptop" {
		t.Errorf("alice's devices: %+v", devs)
	}
	if err := fc.GetJSON(ctx, "a.fed.test", "/_matrix/federation/v1/user/devices/"+apiEsc("@bob:b.fed.test"), &devs); !errors.As(err, &fe) || fe.Code != "M_INVALID_PARAM" {
		t.Errorf("devices of a user of another server: %v", err)
	}
	var keys map[string]map[string]any
	if err := fc.SendJSON(ctx, "a.fed.test", "POST", "/_matrix/federation/v1/user/keys/query",
		map[string]any{"device_keys": map[string]any{alice.UserID: []string{}}}, &keys); err != nil {
		t.Fatalf("keys query: %v", err)
	}
	if dk, ok := keys["device_keys"][alice.UserID]; !ok || len(dk.(map[string]any)) != 0 {
		t.Errorf("keys query: %v", keys)
	}

	// OpenID: alice asks her server for a token; b exchanges it.
	tok := alice.must("POST", "/user/"+apiEsc(alice.UserID)+"/openid/request_token", map[string]any{})
	if tok["token_type"] != "Bearer" || tok["matrix_server_name"] != "a.fed.test" || tok["expires_in"] != float64(3600) {
		t.Fatalf("request_token: %v", tok)
	}
	token, _ := tok["access_token"].(string)
	var info struct {
		Sub string `json:"sub"`
	}
	if err := fc.GetJSON(ctx, "a.fed.test", "/_matrix/federation/v1/openid/userinfo?access_token="+url.QueryEscape(token), &info); err != nil || info.Sub != alice.UserID {
		t.Fatalf("userinfo: %+v %v", info, err)
	}
	if err := fc.GetJSON(ctx, "a.fed.test", "/_matrix/federation/v1/openid/userinfo?access_token=axo_forged", &info); !errors.As(err, &fe) || fe.Status != 401 || fe.Code != "M_UNKNOWN_TOKEN" {
		t.Errorf("a forged token: %v", err)
	}
	// A third party needs no signing key: plain HTTPS does.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: w.ca.pool, ServerName: "a.fed.test"}}}
	resp, err := hc.Get("https://" + a.srv.addrs[1] + "/_matrix/federation/v1/openid/userinfo?access_token=" + url.QueryEscape(token))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || json.Unmarshal(body, &info) != nil || info.Sub != alice.UserID {
		t.Errorf("userinfo over plain HTTPS: %d %s", resp.StatusCode, body)
	}
	// The token is no access token.
	if r := a.do("GET", "/_matrix/client/v3/account/whoami", token, nil); r.Status != 401 {
		t.Errorf("an OpenID token as access token: %d", r.Status)
	}
	// Another user's token cannot be asked for.
	if r := alice.do("POST", "/user/"+apiEsc("@other:a.fed.test")+"/openid/request_token", map[string]any{}); r.Status != 403 {
		t.Errorf("a token for someone else: %d %s", r.Status, r.Raw)
	}
}
