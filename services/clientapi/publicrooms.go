package clientapi

import (
	"context"
	"strconv"
	"strings"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/services/roomserver"
)

// maxPublicRoomsLimit bounds one page of the directory.
const maxPublicRoomsLimit = 500

// maxListedRooms bounds the published rooms one listing considers.
const maxListedRooms = 10000

// Directory lists this server's published room directory. The Client-Server
// API (/publicRooms) and the federation role (federation /publicRooms) both
// answer from it, so the listing is the same whoever asks. It only reads.
type Directory struct {
	db    *store.DB
	rooms *roomserver.Reader
}

// NewDirectory returns the directory over db (the schema of this package's
// and the room role's migrations).
func NewDirectory(db *store.DB, rooms *roomserver.Reader) *Directory {
	return &Directory{db: db, rooms: rooms}
}

// PublicRoomsQuery asks for a page of the directory.
type PublicRoomsQuery struct {
	// Limit is the page size; 0 (or more than 500) means 500.
	Limit int
	// Since is a next_batch or prev_batch token of an earlier page.
	Since string
	// SearchTerm, when set, keeps rooms whose name, topic or canonical
	// alias contains it, ignoring case (filter.generic_search_term).
	SearchTerm string
	// RoomTypes, when not nil, keeps rooms of these types; a nil element
	// stands for rooms without a type (filter.room_types).
	RoomTypes *[]*string
	// IncludeAllNetworks and ThirdPartyInstanceID select the third-party
	// networks of application services. This server publishes no rooms
	// of such networks, so naming an instance lists nothing; naming one
	// together with IncludeAllNetworks is M_INVALID_PARAM, as the spec
	// allows an instance only without it.
	IncludeAllNetworks   bool
	ThirdPartyInstanceID string
}

// PublicRoom is a published room (the spec's PublishedRoomsChunk).
type PublicRoom struct {
	RoomID           string  `json:"room_id"`
	Name             *string `json:"name,omitempty"`
	Topic            *string `json:"topic,omitempty"`
	CanonicalAlias   *string `json:"canonical_alias,omitempty"`
	AvatarURL        *string `json:"avatar_url,omitempty"`
	NumJoinedMembers int     `json:"num_joined_members"`
	WorldReadable    bool    `json:"world_readable"`
	GuestCanJoin     bool    `json:"guest_can_join"`
	JoinRule         string  `json:"join_rule,omitempty"`
	RoomType         *string `json:"room_type,omitempty"`
}

// PublicRoomsPage is one page of the directory (the spec's
// PublicRoomsResponse).
type PublicRoomsPage struct {
	Chunk                  []PublicRoom `json:"chunk"`
	NextBatch              string       `json:"next_batch,omitempty"`
	PrevBatch              string       `json:"prev_batch,omitempty"`
	TotalRoomCountEstimate int          `json:"total_room_count_estimate"`
}

// PublicRooms answers a page of the published rooms, by descending joined
// member count, then room ID. "since" tokens are offsets ("o<n>"), so
// pages are stable only while the list does not change, which is all the
// spec asks. Its errors for bad input are *httpx.Error (M_INVALID_PARAM).
func (d *Directory) PublicRooms(ctx context.Context, q PublicRoomsQuery) (PublicRoomsPage, error) {
	page := PublicRoomsPage{Chunk: []PublicRoom{}}
	if q.IncludeAllNetworks && q.ThirdPartyInstanceID != "" {
		return page, httpx.InvalidParam("third_party_instance_id can only be used when include_all_networks is false")
	}
	if q.Limit < 0 {
		return page, httpx.InvalidParam("limit must be a non-negative integer")
	}
	limit := q.Limit
	if limit == 0 || limit > maxPublicRoomsLimit {
		limit = maxPublicRoomsLimit
	}
	offset := 0
	if q.Since != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(q.Since, "o"))
		if err != nil || n < 0 || !strings.HasPrefix(q.Since, "o") {
			return page, httpx.InvalidParam("since is not a directory token of this server")
		}
		offset = n
	}
	if q.ThirdPartyInstanceID != "" {
		return page, nil // no rooms of third-party networks are published here
	}
	all, err := d.published(ctx)
	if err != nil {
		return page, err
	}
	term := strings.ToLower(q.SearchTerm)
	matched := 0
	if term == "" && q.RoomTypes == nil {
		// Every room matches: only the page needs describing.
		matched = len(all)
		start := min(offset, len(all))
		for _, e := range all[start : start+min(limit, len(all)-start)] {
			pr, err := d.describe(ctx, e.roomID, e.joined)
			if err != nil {
				return page, err
			}
			page.Chunk = append(page.Chunk, pr)
		}
	} else {
		for _, e := range all {
			pr, err := d.describe(ctx, e.roomID, e.joined)
			if err != nil {
				return page, err
			}
			if (term != "" && !matches(pr, term)) || (q.RoomTypes != nil && !typeMatches(pr.RoomType, *q.RoomTypes)) {
				continue
			}
			matched++
			if matched > offset && len(page.Chunk) < limit {
				page.Chunk = append(page.Chunk, pr)
			}
		}
	}
	page.TotalRoomCountEstimate = matched
	if offset+len(page.Chunk) < matched {
		page.NextBatch = "o" + strconv.Itoa(offset+len(page.Chunk))
	}
	if offset > 0 {
		page.PrevBatch = "o" + strconv.Itoa(max(offset-limit, 0))
	}
	return page, nil
}

type publishedRoom struct {
	roomID string
	joined int
}

// published lists the published rooms in directory order, with their
// joined member counts.
func (d *Directory) published(ctx context.Context) ([]publishedRoom, error) {
	rows, err := d.db.Query(ctx, `SELECT d.room_id, (SELECT COUNT(*) FROM memberships m WHERE m.room_id = d.room_id AND m.membership = 'join') AS n
		FROM room_directory d ORDER BY n DESC, d.room_id LIMIT `+strconv.Itoa(maxListedRooms))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var all []publishedRoom
	for rows.Next() {
		var e publishedRoom
		if err := rows.Scan(&e.roomID, &e.joined); err != nil {
			return nil, err
		}
		all = append(all, e)
	}
	return all, rows.Err()
}

func typeMatches(t *string, want []*string) bool {
	for _, w := range want {
		if (w == nil && t == nil) || (w != nil && t != nil && *w == *t) {
			return true
		}
	}
	return false
}

func matches(pr PublicRoom, term string) bool {
	for _, s := range []*string{pr.Name, pr.Topic, pr.CanonicalAlias} {
		if s != nil && strings.Contains(strings.ToLower(*s), term) {
			return true
		}
	}
	return false
}

func (d *Directory) describe(ctx context.Context, roomID string, joined int) (PublicRoom, error) {
	pr := PublicRoom{RoomID: roomID, NumJoinedMembers: joined}
	info, err := d.rooms.Room(ctx, roomID)
	if err != nil {
		return pr, err
	}
	state, err := d.rooms.StateAt(ctx, info.Version, roomID, info.HeadSeq, "m.room.name", "m.room.topic",
		"m.room.canonical_alias", "m.room.avatar", "m.room.history_visibility", "m.room.guest_access", "m.room.join_rules", "m.room.create")
	if err != nil {
		return pr, err
	}
	str := func(ev *roomserver.StoredEvent, key string) *string {
		if s, ok := ev.Content().Get(key).Str(); ok {
			return &s
		}
		return nil
	}
	for _, ev := range state {
		switch ev.Type() {
		case "m.room.name":
			pr.Name = str(ev, "name")
		case "m.room.topic":
			pr.Topic = str(ev, "topic")
		case "m.room.canonical_alias":
			pr.CanonicalAlias = str(ev, "alias")
		case "m.room.avatar":
			pr.AvatarURL = str(ev, "url")
		case "m.room.history_visibility":
			pr.WorldReadable = ev.Content().Get("history_visibility").StrOr("") == "world_readable"
		case "m.room.guest_access":
			pr.GuestCanJoin = ev.Content().Get("guest_access").StrOr("") == "can_join"
		case "m.room.join_rules":
			pr.JoinRule = ev.Content().Get("join_rule").StrOr("")
		case "m.room.create":
			pr.RoomType = str(ev, "type")
		}
	}
	return pr, nil
}
