package federation

import (
	"context"
	"errors"

	"github.com/axon-hs/axon/matrix/auth"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/id"
	"github.com/axon-hs/axon/matrix/roomversion"
	"github.com/axon-hs/axon/services/roomserver"
)

// forServer applies history visibility to events another server asked for
// (spec "History visibility", server behaviour: a server may see what one
// of its users could). The rules need the state before each event: its
// m.room.history_visibility (shared when absent or not understood) and the
// memberships of the server's users. world_readable and shared events are
// served as they are (the DAG reads already require a user of the server
// joined now, which shared asks for); an invited or joined one only when
// a user of the server was invited (for invited) or joined at that point.
// Others are served redacted, so the server can still follow the DAG
// without seeing their content. Outliers, whose state is not known here,
// are served as they are.
func (a *API) forServer(ctx context.Context, v *roomversion.Version, room, server string, evs []*event.Event) ([]*event.Event, error) {
	out := make([]*event.Event, len(evs))
	for i, ev := range evs {
		ok, err := a.visibleTo(ctx, v, room, server, ev)
		if err != nil {
			return nil, err
		}
		if ok {
			out[i] = ev
		} else {
			out[i] = ev.Redacted()
		}
	}
	return out, nil
}

func (a *API) visibleTo(ctx context.Context, v *roomversion.Version, room, server string, ev *event.Event) (bool, error) {
	state, err := a.cfg.Reader.StateIDsBefore(ctx, room, ev.ID())
	if errors.Is(err, roomserver.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	var ids []string
	hvID := state[auth.StateKey{Type: "m.room.history_visibility"}]
	if hvID != "" {
		ids = append(ids, hvID)
	}
	for k, sid := range state {
		if k.Type != "m.room.member" {
			continue
		}
		if uid, err := id.ParseUserID(k.StateKey); err == nil && string(uid.Server()) == server {
			ids = append(ids, sid)
		}
	}
	evs, err := a.cfg.Reader.PDUs(ctx, v, room, ids)
	if err != nil {
		return false, err
	}
	visibility := "shared"
	if hv := evs[hvID]; hv != nil {
		switch s := hv.Content().Get("history_visibility").StrOr(""); s {
		case "world_readable", "shared", "invited", "joined":
			visibility = s
		}
	}
	if visibility == "world_readable" || visibility == "shared" {
		return true, nil
	}
	for _, m := range evs {
		if m.Type() != "m.room.member" {
			continue
		}
		switch m.Membership() {
		case "join":
			return true, nil
		case "invite":
			if visibility == "invited" {
				return true, nil
			}
		}
	}
	return false, nil
}
