package clientapi

import (
	"context"
	"testing"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store/storetest"
	"github.com/axon-hs/axon/internal/testenv"
	"github.com/axon-hs/axon/services/roomserver"
)

// The directory's answers that need no rooms: its input checks, the
// shape of an empty page, and third-party networks (none here). Listings
// of real rooms are tested through both APIs in cmd/axon
// (api_rooms_test.go, federation_lookups_test.go).
func TestDirectoryQueries(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		db := storetest.Open(t, e, roomserver.Migrations(), Migrations())
		d := NewDirectory(db, roomserver.NewReader(db))
		ctx := context.Background()
		for _, c := range []struct {
			name string
			q    PublicRoomsQuery
			code string
		}{
			{"defaults", PublicRoomsQuery{}, ""},
			{"a page", PublicRoomsQuery{Limit: 10, Since: "o20"}, ""},
			{"a huge offset", PublicRoomsQuery{Since: "o9223372036854775807"}, ""},
			{"all networks", PublicRoomsQuery{IncludeAllNetworks: true}, ""},
			{"a network", PublicRoomsQuery{ThirdPartyInstanceID: "irc"}, ""},
			{"a network and all", PublicRoomsQuery{ThirdPartyInstanceID: "irc", IncludeAllNetworks: true}, httpx.CodeInvalidParam},
			{"negative limit", PublicRoomsQuery{Limit: -1}, httpx.CodeInvalidParam},
			{"foreign token", PublicRoomsQuery{Since: "p190q"}, httpx.CodeInvalidParam},
			{"negative token", PublicRoomsQuery{Since: "o-1"}, httpx.CodeInvalidParam},
		} {
			page, err := d.PublicRooms(ctx, c.q)
			if got := httpx.CodeOf(err); (c.code == "" && err != nil) || (c.code != "" && got != c.code) {
				t.Errorf("%s: %v, want %q", c.name, err, c.code)
				continue
			}
			if err == nil && (page.Chunk == nil || len(page.Chunk) != 0 || page.TotalRoomCountEstimate != 0 || page.NextBatch != "") {
				t.Errorf("%s: %+v", c.name, page)
			}
		}
		if page, _ := d.PublicRooms(ctx, PublicRoomsQuery{Limit: 5, Since: "o12"}); page.PrevBatch != "o7" {
			t.Errorf("prev_batch of a later page: %+v", page)
		}
	})
}
