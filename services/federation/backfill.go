package federation

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"

	"github.com/axon-hs/axon/services/roomserver"
)

// Backfill limits: the events asked for at once, and the servers asked.
const (
	backfillLimit   = 50
	backfillServers = 3
)

// Backfill fetches a room's events from before the earliest this server
// has (spec "Backfilling and retrieving missing events", /backfill) from
// a server in the room, and has the room role add those it can check to
// the room's history. It reports whether any was added: false when the
// start of the room is reached or no server answered.
func (j *Joiner) Backfill(ctx context.Context, roomID string) (bool, error) {
	v, err := j.Reader.Version(ctx, roomID)
	if err != nil {
		return false, err
	}
	from, err := j.Reader.BackwardExtremities(ctx, v, roomID)
	if err != nil || len(from) == 0 {
		return false, err
	}
	servers, err := j.Reader.ResidentServers(ctx, roomID)
	if err != nil {
		return false, err
	}
	q := url.Values{"limit": {strconv.Itoa(backfillLimit)}}
	for _, id := range from {
		q.Add("v", id)
	}
	asked := 0
	for _, server := range servers {
		if server == j.ServerName || asked == backfillServers {
			continue
		}
		asked++
		var resp struct {
			PDUs []json.RawMessage `json:"pdus"`
		}
		if err := j.Client.GetJSON(ctx, server, "/_matrix/federation/v1/backfill/"+url.PathEscape(roomID)+"?"+q.Encode(), &resp); err != nil {
			if j.Logger != nil {
				j.Logger.Info("federation: backfill failed", "destination", server, "room_id", roomID, "err", err)
			}
			continue
		}
		if len(resp.PDUs) > backfillLimit {
			resp.PDUs = resp.PDUs[:backfillLimit]
		}
		evs, err := j.checked(ctx, v, roomID, resp.PDUs)
		if err != nil {
			return false, err
		}
		if len(evs) == 0 {
			continue
		}
		res, err := j.Submit(ctx, &roomserver.Input{RoomID: roomID, Backfill: evs, Origin: server})
		if err != nil {
			return false, err
		}
		added := false
		for _, outcome := range res.PDUs {
			added = added || outcome == ""
		}
		if added {
			return true, nil
		}
	}
	return false, nil
}
