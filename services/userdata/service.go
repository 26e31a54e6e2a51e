package userdata

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/id"
)

// Device is the authenticated caller of a request.
type Device struct {
	UserID   string
	DeviceID string
	// IsGuest marks a guest account: of these endpoints guests may use
	// only PUT /sendToDevice (spec "Guest Access").
	IsGuest bool
}

// Authenticator resolves a request's access token; its errors are
// *httpx.Error (M_MISSING_TOKEN, M_UNKNOWN_TOKEN).
type Authenticator func(r *http.Request) (Device, error)

// Membership answers whether a user is joined to a room (for authorising
// receipts, typing and writes of room account data).
type Membership func(ctx context.Context, roomID, userID string) (joined bool, err error)

// RoomMembers lists the users joined to any of the rooms, each once (for
// fanning receipt and typing wake-ups out to users, and for presence on an
// initial sync).
type RoomMembers func(ctx context.Context, roomIDs []string) ([]string, error)

// Wake is called with the users (and rooms) whose /sync should wake.
type Wake func(userIDs []string, rooms []string)

// Config configures the service. The zero value of every field is usable.
type Config struct {
	Now    func() time.Time
	Logger *slog.Logger
	// MaxToDevicePerSync bounds the send-to-device messages of one /sync
	// response (default 100, the spec's recommendation).
	MaxToDevicePerSync int
	// MaxToDeviceQueue bounds each device's queue of undelivered
	// send-to-device messages (default 10,000); see doc.go.
	MaxToDeviceQueue int
	// TypingMaxTimeout caps the timeout of a typing notification
	// (default 30s).
	TypingMaxTimeout time.Duration

	// ServerName is this server's name. Send-to-device messages for users
	// of other servers go to Outbound; only local users' data is handed
	// to it. Empty means every user is local (tests, single-server setups).
	ServerName string
	// Devices lists a local user's device IDs: it expands the device ID
	// "*" of send-to-device, and messages to devices it does not list are
	// dropped. Nil: "*" reaches nobody and explicit device IDs are trusted.
	Devices func(ctx context.Context, userID string) ([]string, error)
	// Rooms lists the rooms a user is joined to. It decides who shares a
	// room with a user whose presence changed, which rooms a presence
	// change wakes, and who may GET a user's presence. Nil: every changed
	// presence is checked against RoomMembers of the syncing user's rooms,
	// a presence change wakes only its user, and anyone may GET presence.
	Rooms func(ctx context.Context, userID string) ([]string, error)

	// PublishTyping sends a typing update to every other process (core
	// NATS on TypingSubject, received there by ReceiveTyping). Nil in a
	// single process.
	PublishTyping func(data []byte) error
	// LocalWake wakes this process's /sync waiters after a typing change,
	// which every process learns by itself (see doc.go). Default: the
	// Wake given to New.
	LocalWake Wake

	// Outbound sends local users' typing, public receipts, presence and
	// send-to-device messages for other servers' users to those servers
	// (federation.go). Nil: nothing leaves this server.
	Outbound Outbound
}

// Service owns account data, receipts, read markers, typing,
// send-to-device messages and presence.
type Service struct {
	db      *store.DB
	auth    Authenticator
	member  Membership
	members RoomMembers
	wake    Wake
	cfg     Config
	log     *slog.Logger
	typing  *typingState
	origin  string // this process, in typing updates
}

// New returns the service. member, members and wake may be nil in tests
// of parts that do not need them; production wiring passes all of them.
func New(db *store.DB, auth Authenticator, member Membership, members RoomMembers, wake Wake, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxToDevicePerSync <= 0 {
		cfg.MaxToDevicePerSync = 100
	}
	if cfg.MaxToDeviceQueue <= 0 {
		cfg.MaxToDeviceQueue = 10000
	}
	if cfg.TypingMaxTimeout <= 0 {
		cfg.TypingMaxTimeout = 30 * time.Second
	}
	if wake == nil {
		wake = func([]string, []string) {}
	}
	if cfg.LocalWake == nil {
		cfg.LocalWake = wake
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Service{
		db: db, auth: auth, member: member, members: members, wake: wake, cfg: cfg,
		log:    cfg.Logger,
		typing: newTypingState(),
		origin: hex.EncodeToString(b[:]),
	}
}

// Routes registers the endpoints under /v3 and /r0.
func (s *Service) Routes(mux *http.ServeMux) {
	type route struct {
		pattern string
		h       func(w http.ResponseWriter, r *http.Request, d Device) error
		guests  bool
	}
	routes := []route{
		{"PUT /user/{userId}/account_data/{type}", s.putAccountData, false},
		{"GET /user/{userId}/account_data/{type}", s.getAccountData, false},
		{"PUT /user/{userId}/rooms/{roomId}/account_data/{type}", s.putRoomAccountData, false},
		{"GET /user/{userId}/rooms/{roomId}/account_data/{type}", s.getRoomAccountData, false},
		{"GET /user/{userId}/rooms/{roomId}/tags", s.getTags, false},
		{"PUT /user/{userId}/rooms/{roomId}/tags/{tag}", s.putTag, false},
		{"DELETE /user/{userId}/rooms/{roomId}/tags/{tag}", s.deleteTag, false},
		{"POST /rooms/{roomId}/receipt/{receiptType}/{eventId}", s.postReceipt, false},
		{"POST /rooms/{roomId}/read_markers", s.postReadMarkers, false},
		{"PUT /rooms/{roomId}/typing/{userId}", s.putTyping, false},
		{"PUT /sendToDevice/{eventType}/{txnId}", s.putToDevice, true},
		{"GET /presence/{userId}/status", s.getPresence, false},
		{"PUT /presence/{userId}/status", s.putPresence, false},
	}
	for _, v := range []string{"v3", "r0"} {
		for _, rt := range routes {
			method, path := splitPattern(rt.pattern)
			mux.Handle(method+" /_matrix/client/"+v+path, s.authed(rt.h, rt.guests))
		}
	}
}

func splitPattern(p string) (method, path string) {
	for i := range p {
		if p[i] == ' ' {
			return p[:i], p[i+1:]
		}
	}
	return "", p
}

// authed wraps a handler that needs an access token.
func (s *Service) authed(h func(w http.ResponseWriter, r *http.Request, d Device) error, guests bool) http.Handler {
	return httpx.Handle(func(w http.ResponseWriter, r *http.Request) error {
		d, err := s.auth(r)
		if err != nil {
			return err
		}
		if d.IsGuest && !guests {
			return httpx.GuestAccessForbidden("Guest accounts cannot use this endpoint")
		}
		return h(w, r, d)
	}, httpx.WithErrorLogger(s.log))
}

// Run does the background work of a process: it expires typing
// notifications every second and deletes old send-to-device transaction
// IDs every few minutes. It returns when ctx ends. Run it once in every
// process that serves the client or sync role.
func (s *Service) Run(ctx context.Context) {
	typingTick := time.NewTicker(time.Second)
	defer typingTick.Stop()
	purgeTick := time.NewTicker(txnPurgeInterval)
	defer purgeTick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-typingTick.C:
			s.ExpireTyping()
		case <-purgeTick.C:
			if err := s.PurgeTxns(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("userdata: purging send-to-device transaction IDs failed", "err", err)
			}
		}
	}
}

// Position returns the current userdata stream position: every change at
// or before it is committed and visible.
func (s *Service) Position(ctx context.Context) (int64, error) {
	var pos int64
	err := s.db.QueryRow(ctx, `SELECT pos FROM userdata_counter WHERE id = 1`).Scan(&pos)
	if errors.Is(err, store.ErrNoRows) {
		return 0, nil
	}
	return pos, err
}

// requireJoined checks that userID is joined to roomID: M_FORBIDDEN when
// not.
func (s *Service) requireJoined(r *http.Request, roomID, userID string) error {
	if s.member == nil {
		return nil
	}
	ok, err := s.member(r.Context(), roomID, userID)
	if err != nil {
		return err
	}
	if !ok {
		return httpx.Forbidden("You are not joined to room " + roomID)
	}
	return nil
}

// requireSelf refuses a request about another user's data.
func requireSelf(d Device, userID, what string) error {
	if userID != d.UserID {
		return httpx.Forbidden("Cannot " + what + " other users")
	}
	return nil
}

// roomIDParam validates the {roomId} path parameter.
func roomIDParam(r *http.Request) (string, error) {
	s := r.PathValue("roomId")
	if _, err := id.ParseRoomID(s); err != nil {
		return "", httpx.InvalidParam(quote(s) + " is not a valid room ID")
	}
	return s, nil
}

// wakeRoom wakes the room's members (and waiters on the room).
func (s *Service) wakeRoom(ctx context.Context, wake Wake, roomID string) {
	var users []string
	if s.members != nil {
		m, err := s.members(ctx, []string{roomID})
		if err != nil {
			s.log.Warn("userdata: listing room members for a wake-up failed", "room_id", roomID, "err", err)
		}
		users = m
	}
	wake(users, []string{roomID})
}

func writeEmpty(w http.ResponseWriter) error {
	return httpx.WriteJSON(w, http.StatusOK, struct{}{})
}
