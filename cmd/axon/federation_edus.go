package main

import (
	"context"
	"errors"
	"net/http"

	"github.com/axon-hs/axon/services/accounts"
	"github.com/axon-hs/axon/services/federation"
	"github.com/axon-hs/axon/services/roomserver"
	"github.com/axon-hs/axon/services/syncapi"
	"github.com/axon-hs/axon/services/userdata"
)

// eduReceiver returns what applies inbound EDUs: a userdata service of the
// federation role's own, built from the database and NATS only (the
// client role may run elsewhere). Its writes wake the sync workers over
// NATS like the client role's; typing reaches every process on
// userdata.TypingSubject. On a failure to build it, EDUs are dropped.
func (s *server) eduReceiver(ctx context.Context) federation.EDUReceiver {
	log := s.log.With("role", "federation", "area", "userdata")
	acc, err := accounts.New(s.db, accounts.Config{ServerName: s.cfg.ServerName, Logger: log})
	if err != nil {
		log.Error("federation: EDUs will be dropped", "err", err)
		return federation.EDUReceiver{}
	}
	wakes, err := syncapi.NewWakePublisher(s.bus.Conn(), nil, log)
	if err != nil {
		log.Error("federation: EDUs will be dropped", "err", err)
		return federation.EDUReceiver{}
	}
	ud := s.newUserData(roomserver.NewReader(s.db), wakes, acc,
		func(*http.Request) (userdata.Device, error) { return userdata.Device{}, errNoClientAPI },
		func(c *userdata.Config) {
			c.Logger = log
			// Remote typing reaches the sync workers (this process's
			// too) as their own userdata services' ReceiveTyping.
			c.LocalWake = func([]string, []string) {}
		})
	// Typing expiry of its own (bounded) state and the transaction ID
	// purge; the client role's service purges too, which is harmless.
	s.goRole("federation-userdata", func() error { ud.Run(ctx); return nil })
	return federation.EDUReceiver{
		Typing:  ud.ReceiveRemoteTyping,
		Receipt: ud.PutRemoteReceipt,
		Presence: func(ctx context.Context, p federation.Presence) error {
			return ud.ReceiveRemotePresence(ctx, userdata.RemotePresence{UserID: p.UserID, Presence: p.Presence,
				StatusMsg: p.StatusMsg, LastActiveAgo: p.LastActiveAgo, CurrentlyActive: p.CurrentlyActive})
		},
		ToDevice: func(ctx context.Context, m federation.ToDevice) error {
			return ud.ReceiveRemoteToDevice(ctx, m.Sender, m.Type, m.MessageID, m.Messages)
		},
		DeviceListUpdate: func(ctx context.Context, u federation.DeviceListUpdate) error {
			return ud.ReceiveDeviceListUpdate(ctx, u.UserID, u.StreamID)
		},
	}
}

// errNoClientAPI answers a client request to the federation role's
// userdata service, which serves none (its routes are not registered).
var errNoClientAPI = errors.New("userdata: the federation role serves no client requests")
