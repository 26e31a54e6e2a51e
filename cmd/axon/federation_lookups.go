package main

import (
	"context"

	"github.com/axon-hs/axon/services/accounts"
	"github.com/axon-hs/axon/services/clientapi"
	"github.com/axon-hs/axon/services/federation"
	"github.com/axon-hs/axon/services/roomserver"
)

// federationLookups returns the hooks of the federation lookup endpoints
// (public rooms, devices, OpenID userinfo). They read the database
// through their own readers, so that a process with the federation role
// and without the client role has them too. A failure to set them up
// (an invalid server name, which start-up refuses earlier anyway) leaves
// the hooks nil: the endpoints then answer as a server with nothing to
// tell.
func (s *server) federationLookups(context.Context) federation.Lookups {
	dir := clientapi.NewDirectory(s.db, roomserver.NewReader(s.db))
	out := federation.Lookups{
		PublicRooms: func(ctx context.Context, q federation.PublicRoomsQuery) (any, error) {
			return dir.PublicRooms(ctx, clientapi.PublicRoomsQuery{Limit: q.Limit, Since: q.Since, SearchTerm: q.SearchTerm,
				RoomTypes: q.RoomTypes, IncludeAllNetworks: q.IncludeAllNetworks, ThirdPartyInstanceID: q.ThirdPartyInstanceID})
		},
	}
	acc, err := accounts.New(s.db, accounts.Config{ServerName: s.cfg.ServerName, Logger: s.log.With("role", "federation")})
	if err != nil {
		s.log.Error("federation: lookups without accounts", "err", err)
		return out
	}
	out.Devices = func(ctx context.Context, userID string) (federation.DeviceList, error) {
		list, stream, err := acc.DeviceList(ctx, userID)
		if err != nil {
			return federation.DeviceList{}, err
		}
		devices := make([]federation.Device, len(list))
		for i, d := range list {
			devices[i] = federation.Device{DeviceID: d.DeviceID, DisplayName: d.DisplayName}
		}
		return federation.DeviceList{StreamID: stream, Devices: devices}, nil
	}
	out.OpenIDUser = func(ctx context.Context, token string) (string, error) {
		u, err := acc.OpenIDUser(ctx, token)
		return string(u), err
	}
	return out
}
