package federation

import (
	"context"
	"errors"
	"testing"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/roomversion"
	"github.com/axon-hs/axon/matrix/xmatrix"
	"github.com/axon-hs/axon/services/roomserver"
)

// newLookupFixture is our.test's API with the lookup hooks, over db (nil:
// a fresh database of this package's tables) and reading rooms with
// reader (nil: none), which remote.test can call (see fixture.do).
func newLookupFixture(t *testing.T, lookups Lookups, db *store.DB, reader *roomserver.Reader) *fixture {
	t.Helper()
	f, _ := newFixtureWith(t, func(c *Config) {
		c.Lookups = lookups
		if db != nil {
			c.DB = db
		}
		if reader != nil {
			c.Reader = reader
		}
		c.RoomVersion = func(context.Context, string) (*roomversion.Version, error) { return nil, nil }
		c.Submit = func(context.Context, *roomserver.Input) (roomserver.Result, error) {
			return roomserver.Result{}, errors.New("no room role here")
		}
	})
	return f
}

// lookupCase is a request and what it must answer: a canonical body for
// 200, an errcode otherwise.
type lookupCase struct {
	method, uri string
	body        string
	status      int
	want        string
}

func runLookupCases(t *testing.T, f *fixture, cases []lookupCase) {
	t.Helper()
	for _, c := range cases {
		var body []byte
		if c.body != "" {
			body = []byte(c.body)
		}
		status, v := f.do(t, c.method, c.uri, body, signed)
		got := v.String()
		if status != 200 {
			got = v.Get("errcode").StrOr("")
		}
		if status != c.status || got != c.want {
			t.Errorf("%s %s %s: %d %s, want %d %s", c.method, c.uri, c.body, status, got, c.status, c.want)
		}
	}
}

func TestPublicRooms(t *testing.T) {
	var got []PublicRoomsQuery
	f := newLookupFixture(t, Lookups{PublicRooms: func(_ context.Context, q PublicRoomsQuery) (any, error) {
		got = append(got, q)
		if q.Since == "bad" {
			return nil, httpx.InvalidParam("since is not a directory token of this server")
		}
		return map[string]any{"chunk": []map[string]any{{"room_id": "!a:our.test", "num_joined_members": 2,
			"world_readable": false, "guest_can_join": false}}, "next_batch": "o1", "total_room_count_estimate": 3}, nil
	}}, nil, nil)
	page := `{"chunk":[{"guest_can_join":false,"num_joined_members":2,"room_id":"!a:our.test","world_readable":false}],"next_batch":"o1","total_room_count_estimate":3}`
	const p = "/_matrix/federation/v1/publicRooms"
	runLookupCases(t, f, []lookupCase{
		{"GET", p, "", 200, page},
		{"GET", p + "?limit=1&since=o2", "", 200, page},
		{"GET", p + "?include_all_networks=true", "", 200, page},
		{"GET", p + "?third_party_instance_id=irc", "", 200, page},
		{"POST", p, `{"limit":5,"since":"o5","filter":{"generic_search_term":"Cheese","room_types":[null,"m.space"]},"third_party_instance_id":"irc"}`, 200, page},
		{"POST", p, `{}`, 200, page},
		{"GET", p + "?since=bad", "", 400, "M_INVALID_PARAM"},
		{"GET", p + "?limit=-1", "", 400, "M_INVALID_PARAM"},
		{"GET", p + "?limit=x", "", 400, "M_INVALID_PARAM"},
		{"GET", p + "?include_all_networks=yes", "", 400, "M_INVALID_PARAM"},
		{"GET", p + "?include_all_networks=true&third_party_instance_id=irc", "", 400, "M_INVALID_PARAM"},
		{"POST", p, `{"include_all_networks":true,"third_party_instance_id":"irc"}`, 400, "M_INVALID_PARAM"},
		{"POST", p, `{"limit":-3}`, 400, "M_INVALID_PARAM"},
		{"POST", p, `{"limit":"ten"}`, 400, "M_BAD_JSON"},
		{"POST", p, `{"filter":{"room_types":"m.space"}}`, 400, "M_BAD_JSON"},
		{"POST", p, `[]`, 400, "M_BAD_JSON"},
		{"POST", p, ``, 400, "M_NOT_JSON"},
	})
	if len(got) != 7 {
		t.Fatalf("the hook ran %d times: %+v", len(got), got)
	}
	if q := got[1]; q.Limit != 1 || q.Since != "o2" {
		t.Errorf("GET with limit and since: %+v", q)
	}
	if !got[2].IncludeAllNetworks || got[3].ThirdPartyInstanceID != "irc" {
		t.Errorf("networks: %+v %+v", got[2], got[3])
	}
	q := got[4]
	if q.Limit != 5 || q.Since != "o5" || q.SearchTerm != "Cheese" || q.ThirdPartyInstanceID != "irc" || q.RoomTypes == nil ||
		len(*q.RoomTypes) != 2 || (*q.RoomTypes)[0] != nil || *(*q.RoomTypes)[1] != "m.space" {
		t.Errorf("POST with a filter: %+v", q)
	}
	if q := got[5]; q.RoomTypes != nil || q.Limit != 0 {
		t.Errorf("POST {}: %+v", q)
	}

	// Without the hook the directory is empty; unsigned requests are
	// refused.
	empty := newLookupFixture(t, Lookups{}, nil, nil)
	runLookupCases(t, empty, []lookupCase{
		{"GET", p, "", 200, `{"chunk":[],"total_room_count_estimate":0}`},
		{"POST", p, `{"limit":1}`, 200, `{"chunk":[],"total_room_count_estimate":0}`},
	})
	if status, v := empty.do(t, "GET", p, nil, func(xmatrix.Header) string { return "" }); status != 401 || v.Get("errcode").StrOr("") != "M_UNAUTHORIZED" {
		t.Errorf("unsigned: %d %s", status, v)
	}
}

func TestUserDevices(t *testing.T) {
	f := newLookupFixture(t, Lookups{Devices: func(_ context.Context, userID string) (DeviceList, error) {
		switch userID {
		case "@alice:our.test":
			return DeviceList{StreamID: 42, Devices: []Device{{DeviceID: "AAA", DisplayName: "Phone"}, {DeviceID: "BBB"}}}, nil
		case "@gone:our.test": // every device deleted: the list is empty, its stream ID is not
			return DeviceList{StreamID: 9}, nil
		case "@broken:our.test":
			return DeviceList{}, errors.New("database down")
		}
		return DeviceList{}, nil
	}}, nil, nil)
	const p = "/_matrix/federation/v1/user/devices/"
	runLookupCases(t, f, []lookupCase{
		{"GET", p + "@alice:our.test", "", 200,
			`{"devices":[{"device_display_name":"Phone","device_id":"AAA","keys":{}},{"device_id":"BBB","keys":{}}],"stream_id":42,"user_id":"@alice:our.test"}`},
		{"GET", p + "%40alice%3Aour.test", "", 200,
			`{"devices":[{"device_display_name":"Phone","device_id":"AAA","keys":{}},{"device_id":"BBB","keys":{}}],"stream_id":42,"user_id":"@alice:our.test"}`},
		{"GET", p + "@nobody:our.test", "", 200, `{"devices":[],"stream_id":0,"user_id":"@nobody:our.test"}`},
		{"GET", p + "@gone:our.test", "", 200, `{"devices":[],"stream_id":9,"user_id":"@gone:our.test"}`},
		{"GET", p + "@carol:remote.test", "", 400, "M_INVALID_PARAM"},
		{"GET", p + "alice", "", 400, "M_INVALID_PARAM"},
		{"GET", p + "@broken:our.test", "", 500, "M_UNKNOWN"},
	})
	runLookupCases(t, newLookupFixture(t, Lookups{}, nil, nil), []lookupCase{
		{"GET", p + "@alice:our.test", "", 200, `{"devices":[],"stream_id":0,"user_id":"@alice:our.test"}`},
	})
}

func TestUserKeys(t *testing.T) {
	f := newLookupFixture(t, Lookups{}, nil, nil)
	const q, c = "/_matrix/federation/v1/user/keys/query", "/_matrix/federation/v1/user/keys/claim"
	runLookupCases(t, f, []lookupCase{
		{"POST", q, `{"device_keys":{"@alice:our.test":[],"@bob:our.test":["DEV1","DEV2"]}}`, 200,
			`{"device_keys":{"@alice:our.test":{},"@bob:our.test":{}},"master_keys":{},"self_signing_keys":{}}`},
		{"POST", q, `{"device_keys":{}}`, 200, `{"device_keys":{},"master_keys":{},"self_signing_keys":{}}`},
		{"POST", q, `{"device_keys":{"@carol:remote.test":[]}}`, 400, "M_INVALID_PARAM"},
		{"POST", q, `{"device_keys":{"alice":[]}}`, 400, "M_INVALID_PARAM"},
		{"POST", q, `{"device_keys":{"@alice:our.test":"DEV1"}}`, 400, "M_BAD_JSON"},
		{"POST", q, `{"device_keys":{"@alice:our.test":[1]}}`, 400, "M_BAD_JSON"},
		{"POST", q, `{"device_keys":[]}`, 400, "M_BAD_JSON"},
		{"POST", q, `{}`, 400, "M_BAD_JSON"},
		{"POST", q, `"x"`, 400, "M_BAD_JSON"},
		{"POST", q, ``, 400, "M_NOT_JSON"},
		{"POST", c, `{"one_time_keys":{"@alice:our.test":{"DEV1":"signed_curve25519"}}}`, 200, `{"one_time_keys":{"@alice:our.test":{}}}`},
		{"POST", c, `{"one_time_keys":{}}`, 200, `{"one_time_keys":{}}`},
		{"POST", c, `{"one_time_keys":{"@carol:remote.test":{"DEV1":"signed_curve25519"}}}`, 400, "M_INVALID_PARAM"},
		{"POST", c, `{"one_time_keys":{"@alice:our.test":{"DEV1":5}}}`, 400, "M_BAD_JSON"},
		{"POST", c, `{"one_time_keys":{"@alice:our.test":["DEV1"]}}`, 400, "M_BAD_JSON"},
		{"POST", c, `{"device_keys":{}}`, 400, "M_BAD_JSON"},
		{"POST", c, ``, 400, "M_NOT_JSON"},
	})
}

func TestOpenIDUserInfo(t *testing.T) {
	f := newLookupFixture(t, Lookups{OpenIDUser: func(_ context.Context, token string) (string, error) {
		switch token {
		case "good":
			return "@alice:our.test", nil
		case "broken":
			return "", errors.New("database down")
		}
		return "", nil
	}}, nil, nil)
	const p = "/_matrix/federation/v1/openid/userinfo"
	// No X-Matrix signature is needed (nor looked at).
	unsigned := func(xmatrix.Header) string { return "" }
	for _, c := range []struct {
		uri    string
		status int
		want   string
	}{
		{p + "?access_token=good", 200, `{"sub":"@alice:our.test"}`},
		{p + "?access_token=expired", 401, "M_UNKNOWN_TOKEN"},
		{p, 401, "M_MISSING_TOKEN"},
		{p + "?access_token=broken", 500, "M_UNKNOWN"},
	} {
		for name, auth := range map[string]func(xmatrix.Header) string{"unsigned": unsigned, "signed": signed} {
			status, v := f.do(t, "GET", c.uri, nil, auth)
			got := v.String()
			if status != 200 {
				got = v.Get("errcode").StrOr("")
			}
			if status != c.status || got != c.want {
				t.Errorf("%s (%s): %d %s, want %d %s", c.uri, name, status, got, c.status, c.want)
			}
		}
	}
	// Without the hook no token is valid.
	none := newLookupFixture(t, Lookups{}, nil, nil)
	if status, v := none.do(t, "GET", p+"?access_token=good", nil, unsigned); status != 401 || v.Get("errcode").StrOr("") != "M_UNKNOWN_TOKEN" {
		t.Errorf("without a hook: %d %s", status, v)
	}
}
