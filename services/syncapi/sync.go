package syncapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/services/pushrules"
	"github.com/axon-hs/axon/services/roomserver"
	"github.com/axon-hs/axon/services/userdata"
)

// Authenticator resolves a request's access token to its user and device.
// Its errors are *httpx.Error (M_MISSING_TOKEN, M_UNKNOWN_TOKEN).
type Authenticator func(r *http.Request) (userID, deviceID string, err error)

// Config configures the sync API.
type Config struct {
	// MaxTimeout caps a long-poll's timeout (default 60s).
	MaxTimeout time.Duration
	// UserData serves the streams besides room timelines; nil leaves
	// their sections empty.
	UserData UserData
	// PushRules loads a user's push rules for the unread counts; nil
	// counts with the server-default rules for everyone.
	PushRules func(ctx context.Context, userID string) (*pushrules.Rules, error)
	Now       func() time.Time
	Logger    *slog.Logger
}

// UserData is what /sync needs from services/userdata: the per-user and
// ephemeral streams (account data, receipts, typing, to-device, presence).
type UserData interface {
	Position(ctx context.Context) (int64, error)
	TypingPosition() int64
	Sync(ctx context.Context, q userdata.SyncQuery) (*userdata.SyncData, error)
	AckToDevice(ctx context.Context, userID, deviceID string, upTo int64) error
	SyncPresence(ctx context.Context, userID, setPresence string) error
}

// API serves /sync and the filter endpoints.
type API struct {
	db       *store.DB
	rooms    *roomserver.Reader
	auth     Authenticator
	notifier *Notifier
	cfg      Config
	draining chan struct{}
	// unreadCache keeps unread counts incremental (see unread.go).
	unreadCache unreadCache
	rules       *rulesCache
	joined      joinedCache
}

// joinedCache keeps each user's joined rooms as their last /sync
// computed them: the rooms a request's first wake-up mark covers. A list
// that went stale costs at most one spare computation: Wait returns at
// once for a room the mark lacks, and a join or leave since wakes the
// user, whose bucket every mark covers (see Notifier).
type joinedCache struct {
	mu sync.Mutex
	m  map[string][]string
}

// maxJoinedCached bounds joinedCache; it is emptied when full.
const maxJoinedCached = 100_000

func (c *joinedCache) get(userID string) ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rooms, ok := c.m[userID]
	return rooms, ok
}

// put records rooms, which nobody may change afterwards.
func (c *joinedCache) put(userID string, rooms []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxJoinedCached {
		c.m = make(map[string][]string)
	}
	c.m[userID] = rooms
}

// NewAPI returns the sync API.
func NewAPI(db *store.DB, n *Notifier, auth Authenticator, cfg Config) *API {
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = 60 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &API{db: db, rooms: roomserver.NewReader(db), auth: auth, notifier: n, cfg: cfg, draining: make(chan struct{}),
		rules: &rulesCache{load: cfg.PushRules, now: cfg.Now}}
}

// Waiters is how many long-polls are waiting.
func (a *API) Waiters() int { return a.notifier.Waiters() }

// Drain ends every long-poll early (SIGTERM: clients reconnect to another
// worker with the token they got).
func (a *API) Drain() {
	select {
	case <-a.draining:
	default:
		close(a.draining)
	}
}

// Routes registers /sync, the sync role's endpoint.
func (a *API) Routes(mux *http.ServeMux) {
	for _, v := range []string{"v3", "r0"} {
		mux.Handle("GET /_matrix/client/"+v+"/sync", httpx.Handle(a.sync))
	}
}

// FilterRoutes registers the filter API. It is a client role endpoint
// (the Ingress routes only /sync to the sync role) that the sync role
// reads, so a process with either role serves it.
func (a *API) FilterRoutes(mux *http.ServeMux) {
	for _, v := range []string{"v3", "r0"} {
		p := "/_matrix/client/" + v
		mux.Handle("POST "+p+"/user/{userId}/filter", httpx.Handle(a.postFilter))
		mux.Handle("GET "+p+"/user/{userId}/filter/{filterId}", httpx.Handle(a.getFilter))
	}
}

type syncResponse struct {
	NextBatch              string         `json:"next_batch"`
	Rooms                  *roomsResponse `json:"rooms,omitempty"`
	AccountData            rawList        `json:"account_data"`
	Presence               rawList        `json:"presence"`
	ToDevice               rawList        `json:"to_device"`
	DeviceLists            deviceLists    `json:"device_lists"`
	DeviceOneTimeKeysCount map[string]int `json:"device_one_time_keys_count"`
	DeviceUnusedFallback   []string       `json:"device_unused_fallback_key_types"`
}

type deviceLists struct {
	Changed []string `json:"changed"`
	Left    []string `json:"left"`
}

type rawList struct {
	Events []json.RawMessage `json:"events"`
}

type roomsResponse struct {
	Join   map[string]*joinedRoom  `json:"join"`
	Invite map[string]*invitedRoom `json:"invite"`
	Leave  map[string]*leftRoom    `json:"leave"`
	Knock  map[string]*knockedRoom `json:"knock"`
}

type timeline struct {
	Events    []roomserver.ClientEvent `json:"events"`
	Limited   bool                     `json:"limited"`
	PrevBatch string                   `json:"prev_batch,omitempty"`
	// window is what every event of the timeline's range adds to the
	// unread counts, when the timeline holds all of them (not limited).
	window *unreadWindow
}

type stateList struct {
	Events []roomserver.ClientEvent `json:"events"`
}

type joinedRoom struct {
	Timeline            timeline       `json:"timeline"`
	State               stateList      `json:"state"`
	AccountData         rawList        `json:"account_data"`
	Ephemeral           rawList        `json:"ephemeral"`
	Summary             map[string]any `json:"summary"`
	UnreadNotifications unreadCounts   `json:"unread_notifications"`
}

type unreadCounts struct {
	HighlightCount    int `json:"highlight_count"`
	NotificationCount int `json:"notification_count"`
}

type invitedRoom struct {
	InviteState strippedList `json:"invite_state"`
}

// strippedEvent is the spec's StrippedStateEvent.
type strippedEvent struct {
	Content  cjson.Value `json:"content"`
	Sender   string      `json:"sender"`
	StateKey string      `json:"state_key"`
	Type     string      `json:"type"`
}

type strippedList struct {
	Events []strippedEvent `json:"events"`
}

type knockedRoom struct {
	KnockState strippedList `json:"knock_state"`
}

type leftRoom struct {
	Timeline    timeline  `json:"timeline"`
	State       stateList `json:"state"`
	AccountData rawList   `json:"account_data"`
}

func (a *API) sync(w http.ResponseWriter, r *http.Request) error {
	userID, deviceID, err := a.auth(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var since *Token
	if s := q.Get("since"); s != "" {
		t, ok := ParseToken(s)
		if !ok {
			return httpx.InvalidParam("since is not a sync token of this server")
		}
		since = &t
	}
	timeout := time.Duration(0)
	if s := q.Get("timeout"); s != "" {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil || ms < 0 {
			return httpx.InvalidParam("timeout must be a non-negative integer of milliseconds")
		}
		timeout = min(time.Duration(ms)*time.Millisecond, a.cfg.MaxTimeout)
	}
	fullState := false
	switch q.Get("full_state") {
	case "", "false":
	case "true":
		fullState = true
	default:
		return httpx.InvalidParam("full_state must be true or false")
	}
	switch q.Get("set_presence") {
	case "", "online", "offline", "unavailable":
	default:
		return httpx.InvalidParam("set_presence must be online, offline or unavailable")
	}
	f, err := a.resolveFilter(r.Context(), userID, q.Get("filter"))
	if err != nil {
		return err
	}
	req := &syncRequest{api: a, userID: userID, deviceID: deviceID, since: since, fullState: fullState, filter: f}
	ctx := r.Context()
	if ud := a.cfg.UserData; ud != nil {
		if since != nil {
			if err := ud.AckToDevice(ctx, userID, deviceID, since.UserData); err != nil {
				return err
			}
		}
		if err := ud.SyncPresence(ctx, userID, q.Get("set_presence")); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(timeout)
	// The mark is taken before each computation with the rooms the user
	// is in, so a change landing between the computation and the wait
	// ends the wait at once (see Notifier). The first mark takes the rooms
	// the user's previous /sync found (joinedCache).
	rooms, ok := a.joined.get(userID)
	if !ok {
		if rooms, err = a.rooms.RoomsOf(ctx, userID, "join"); err != nil {
			return err
		}
	}
	for {
		mark := a.notifier.Mark(userID, rooms)
		resp, joined, err := req.compute(ctx)
		if err != nil {
			return err
		}
		rooms = joined
		a.joined.put(userID, joined)
		if !resp.empty() || since == nil || fullState || timeout == 0 || !time.Now().Before(deadline) {
			return httpx.WriteJSON(w, http.StatusOK, resp.out)
		}
		wctx, cancel := context.WithDeadline(ctx, deadline)
		done := make(chan struct{})
		go func() {
			select {
			case <-a.draining:
				cancel()
			case <-done:
			}
		}()
		a.notifier.Wait(wctx, userID, rooms, mark)
		close(done)
		cancel()
		if ctx.Err() != nil {
			return nil // the client went away
		}
		select {
		case <-a.draining:
			resp, _, err := req.compute(ctx)
			if err != nil {
				return err
			}
			return httpx.WriteJSON(w, http.StatusOK, resp.out)
		default:
		}
	}
}

func (a *API) resolveFilter(ctx context.Context, userID, param string) (*Filter, error) {
	f := &Filter{}
	if param == "" {
		return f, nil
	}
	var raw []byte
	if param[0] == '{' {
		raw = []byte(param)
	} else {
		err := a.db.QueryRow(ctx, `SELECT filter FROM filters WHERE user_id = $1 AND filter_id = $2`, userID, param).Scan(&raw)
		if errors.Is(err, store.ErrNoRows) {
			return nil, httpx.NotFound("no filter " + strconv.Quote(param) + " for this user")
		}
		if err != nil {
			return nil, err
		}
	}
	if err := json.Unmarshal(raw, f); err != nil {
		return nil, httpx.BadJSON("the filter is not a valid Filter: " + err.Error())
	}
	return f, nil
}
