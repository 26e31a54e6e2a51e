package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/matrix/roomversion"
	"github.com/axon-hs/axon/services/keyserver"
	"github.com/axon-hs/axon/services/roomserver"
)

// Transaction limits (spec "Transactions").
const (
	maxTxnPDUs = 50
	maxTxnEDUs = 100
	// maxMissingEvents bounds the events asked for with
	// /get_missing_events to fill one gap.
	maxMissingEvents = 20
)

// pduResult is one entry of a /send answer's pdus map.
type pduResult struct {
	Error string `json:"error,omitempty"`
}

// sendResponse is the answer to /send.
type sendResponse struct {
	PDUs map[string]pduResult `json:"pdus"`
}

func (a *API) send(w http.ResponseWriter, r *http.Request, req *Request) error {
	txnID := r.PathValue("txnId")
	if txnID == "" {
		return httpx.MissingParam("the transaction ID is empty")
	}
	var body struct {
		Origin string            `json:"origin"`
		PDUs   []json.RawMessage `json:"pdus"`
		EDUs   []json.RawMessage `json:"edus"`
	}
	if len(req.Body) == 0 {
		return httpx.NotJSON("a transaction needs a body")
	}
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return httpx.BadJSON("the transaction is not a valid object: " + err.Error())
	}
	if body.Origin != "" && body.Origin != req.Origin {
		return httpx.Forbidden("the transaction's origin is not the server that signed the request")
	}
	if len(body.PDUs) > maxTxnPDUs || len(body.EDUs) > maxTxnEDUs {
		return httpx.BadJSON(fmt.Sprintf("a transaction holds at most %d PDUs and %d EDUs", maxTxnPDUs, maxTxnEDUs))
	}
	if cached, ok, err := a.txns.lookup(r.Context(), req.Origin, txnID); err != nil {
		return err
	} else if ok {
		return httpx.WriteJSON(w, http.StatusOK, raw(cached))
	}
	res, err := a.processPDUs(r.Context(), req.Origin, body.PDUs)
	if err != nil {
		return err
	}
	a.processEDUs(r.Context(), req.Origin, body.EDUs)
	out, err := json.Marshal(res)
	if err != nil {
		return err
	}
	if err := a.txns.store(r.Context(), req.Origin, txnID, out); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, raw(out))
}

// raw is a response body encoded already.
type raw []byte

func (b raw) AppendJSON(dst []byte) ([]byte, error) { return append(dst, b...), nil }

// received is one PDU of a transaction.
type received struct {
	ev   *event.Event
	room string
}

// processPDUs checks the transaction's PDUs (format, signatures, hashes)
// and hands them to the room role, room by room, fetching what the room
// role reports missing from the origin.
func (a *API) processPDUs(ctx context.Context, origin string, pdus []json.RawMessage) (sendResponse, error) {
	out := sendResponse{PDUs: map[string]pduResult{}}
	versions := map[string]*roomversion.Version{}
	var evs []received
	for _, raw := range pdus {
		obj, err := event.Decode(raw)
		if err != nil {
			continue // invalid events are dropped (step 1)
		}
		roomID, _ := obj.Get("room_id").Str()
		if roomID == "" {
			continue // no room: no version to read it with, no ID to answer under
		}
		v, ok := versions[roomID]
		if !ok {
			if v, err = a.cfg.RoomVersion(ctx, roomID); err != nil {
				return out, err
			}
			versions[roomID] = v
		}
		if v == nil {
			continue // a room this server is not in
		}
		ev, err := event.FromValue(v, obj)
		if err != nil {
			continue // invalid events are dropped (step 1)
		}
		evs = append(evs, received{ev: ev, room: roomID})
	}
	checked, errs, err := a.verify(ctx, evs)
	if err != nil {
		return out, err
	}
	for id, msg := range errs {
		out.PDUs[id] = pduResult{Error: msg}
	}
	// One Input per room, in the transaction's order.
	var rooms []string
	byRoom := map[string][]*event.Event{}
	for _, rc := range checked {
		if _, ok := byRoom[rc.room]; !ok {
			rooms = append(rooms, rc.room)
		}
		byRoom[rc.room] = append(byRoom[rc.room], rc.ev)
	}
	for _, room := range rooms {
		if err := a.checkACL(ctx, room, origin); err != nil {
			if _, denied := errors.AsType[*httpx.Error](err); !denied {
				return out, err
			}
			for _, ev := range byRoom[room] {
				out.PDUs[ev.ID()] = pduResult{Error: err.Error()}
			}
			continue
		}
		results, err := a.submitWithGaps(ctx, origin, room, byRoom[room])
		if err != nil {
			return out, err
		}
		for id, outcome := range results {
			out.PDUs[id] = resultOf(outcome)
		}
	}
	return out, nil
}

// resultOf turns a room role outcome into a /send result: soft-failed
// events were handled (stored), so they carry no error.
func resultOf(outcome string) pduResult {
	if outcome == "" || strings.HasPrefix(outcome, roomserver.OutcomeSoftFailed) {
		return pduResult{}
	}
	return pduResult{Error: outcome}
}

// verify checks the events' signatures and hashes (steps 2 and 3): a
// failing signature drops the event (with an error answer), a failing
// content hash keeps it redacted.
func (a *API) verify(ctx context.Context, evs []received) ([]received, map[string]string, error) {
	return verifyEvents(ctx, a.cfg.Keys, evs)
}

// verifyEvents is API.verify with the key server ks.
func verifyEvents(ctx context.Context, ks *keyserver.Service, evs []received) ([]received, map[string]string, error) {
	var reqs []keyserver.Request
	for _, rc := range evs {
		atTS := int64(0)
		if rc.ev.Version().EnforceKeyValidity {
			atTS = rc.ev.OriginServerTS()
		}
		for _, server := range rc.ev.RequiredSigners() {
			for _, m := range rc.ev.Signatures().Get(server).Members() {
				reqs = append(reqs, keyserver.Request{Server: server, KeyID: keys.KeyID(m.Key), AtTS: atTS})
			}
		}
	}
	lookup, err := ks.Keys(ctx, reqs)
	if err != nil {
		return nil, nil, err
	}
	errs := map[string]string{}
	out := make([]received, 0, len(evs))
	for _, rc := range evs {
		err := rc.ev.Verify(lookup)
		switch {
		case err == nil:
		case errors.Is(err, event.ErrContentHash):
			rc.ev = rc.ev.Redacted()
		default:
			errs[rc.ev.ID()] = "the event's signatures do not verify: " + err.Error()
			continue
		}
		out = append(out, rc)
	}
	return out, errs, nil
}

// submitWithGaps submits a room's events; for those the room role cannot
// place, it fetches the missing prev_events (/get_missing_events) or auth
// events (/event_auth) from origin, once, and submits again.
func (a *API) submitWithGaps(ctx context.Context, origin, room string, evs []*event.Event) (map[string]string, error) {
	results, err := a.submit(ctx, origin, room, evs, nil)
	if err != nil {
		return nil, err
	}
	for _, ev := range evs {
		var pdus, outliers []*event.Event
		switch results[ev.ID()] {
		case roomserver.OutcomeMissingPrev:
			pdus = a.missingEvents(ctx, origin, room, ev)
		case roomserver.OutcomeMissingAuth:
			outliers = a.authChain(ctx, origin, room, ev)
		default:
			continue
		}
		if len(pdus) == 0 && len(outliers) == 0 {
			continue
		}
		again, err := a.submit(ctx, origin, room, append(pdus, ev), outliers)
		if err != nil {
			return nil, err
		}
		results[ev.ID()] = again[ev.ID()]
		if again[ev.ID()] == roomserver.OutcomeMissingPrev {
			// The gap is wider than /get_missing_events reaches: the
			// event is placed on the state its origin says it follows.
			if results[ev.ID()], err = a.acrossGap(ctx, origin, room, ev); err != nil {
				return nil, err
			}
		}
	}
	return results, nil
}

// maxGapFetches bounds the events of a gap's state fetched one by one
// (/event); a state missing more is fetched whole (/state).
const maxGapFetches = 50

// acrossGap places ev, whose prev_events this server cannot get, on the
// state before it as origin answers /state_ids (spec "Retrieving events
// across a gap"): the state events and auth chain this server lacks are
// fetched, checked and stored as outliers, and the room role places ev on
// that state. It returns ev's outcome.
func (a *API) acrossGap(ctx context.Context, origin, room string, ev *event.Event) (string, error) {
	if a.cfg.Client == nil {
		return roomserver.OutcomeMissingPrev, nil
	}
	q := "?event_id=" + url.QueryEscape(ev.ID())
	var ids struct {
		PDUIDs       []string `json:"pdu_ids"`
		AuthChainIDs []string `json:"auth_chain_ids"`
	}
	if err := a.cfg.Client.GetJSON(ctx, origin, "/_matrix/federation/v1/state_ids/"+url.PathEscape(room)+q, &ids); err != nil {
		a.log.Info("federation: state_ids across a gap failed", "destination", origin, "room_id", room, "err", err)
		return roomserver.OutcomeMissingPrev, nil
	}
	missing, err := a.cfg.Reader.Unknown(ctx, room, append(slices.Clone(ids.PDUIDs), ids.AuthChainIDs...))
	if err != nil {
		return "", err
	}
	var raws []json.RawMessage
	if len(missing) > maxGapFetches {
		var state struct {
			PDUs      []json.RawMessage `json:"pdus"`
			AuthChain []json.RawMessage `json:"auth_chain"`
		}
		if err := a.cfg.Client.GetJSON(ctx, origin, "/_matrix/federation/v1/state/"+url.PathEscape(room)+q, &state); err != nil {
			a.log.Info("federation: state across a gap failed", "destination", origin, "room_id", room, "err", err)
			return roomserver.OutcomeMissingPrev, nil
		}
		raws = append(state.PDUs, state.AuthChain...)
	} else {
		for _, id := range missing {
			var one struct {
				PDUs []json.RawMessage `json:"pdus"`
			}
			if err := a.cfg.Client.GetJSON(ctx, origin, "/_matrix/federation/v1/event/"+url.PathEscape(id), &one); err != nil {
				a.log.Info("federation: an event across a gap could not be fetched", "destination", origin, "event_id", id, "err", err)
				return roomserver.OutcomeMissingPrev, nil
			}
			raws = append(raws, one.PDUs...)
		}
	}
	outliers := a.checkedEvents(ctx, ev.Version(), room, raws, len(raws))
	in := &roomserver.Input{RoomID: room, Origin: origin, PDUs: []json.RawMessage{ev.Canonical()},
		GapStates: map[string][]string{ev.ID(): ids.PDUIDs}}
	for _, o := range outliers {
		in.Outliers = append(in.Outliers, o.Canonical())
	}
	res, err := a.cfg.Submit(ctx, in)
	if err != nil {
		return "", fmt.Errorf("federation: submit to %s: %w", room, err)
	}
	if res.Error != nil {
		return res.Error.Message, nil
	}
	return res.PDUs[ev.ID()], nil
}

// submit hands events (and outliers) of one room to the room role.
func (a *API) submit(ctx context.Context, origin, room string, evs, outliers []*event.Event) (map[string]string, error) {
	in := &roomserver.Input{RoomID: room, Origin: origin}
	for _, ev := range evs {
		in.PDUs = append(in.PDUs, ev.Canonical())
	}
	for _, ev := range outliers {
		in.Outliers = append(in.Outliers, ev.Canonical())
	}
	res, err := a.cfg.Submit(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("federation: submit to %s: %w", room, err)
	}
	out := map[string]string{}
	if res.Error != nil {
		for _, ev := range evs {
			out[ev.ID()] = res.Error.Message
		}
		return out, nil
	}
	for id, o := range res.PDUs {
		out[id] = o
	}
	return out, nil
}

// missingEvents asks origin for the events between the room's forward
// extremities and ev, verified and oldest first. Failures give nothing:
// ev then stays refused, and its sender retries later.
func (a *API) missingEvents(ctx context.Context, origin, room string, ev *event.Event) []*event.Event {
	if a.cfg.Client == nil || a.cfg.Extremities == nil {
		return nil
	}
	earliest, err := a.cfg.Extremities(ctx, room)
	if err != nil {
		return nil
	}
	body := map[string]any{"earliest_events": earliest, "latest_events": []string{ev.ID()},
		"limit": maxMissingEvents, "min_depth": 0}
	var resp struct {
		Events []json.RawMessage `json:"events"`
	}
	path := "/_matrix/federation/v1/get_missing_events/" + url.PathEscape(room)
	if err := a.cfg.Client.SendJSON(ctx, origin, http.MethodPost, path, body, &resp); err != nil {
		a.log.Info("federation: get_missing_events failed", "destination", origin, "room_id", room, "err", err)
		return nil
	}
	return a.checkedEvents(ctx, ev.Version(), room, resp.Events, maxMissingEvents)
}

// authChain asks origin for ev's auth chain (/event_auth), verified.
func (a *API) authChain(ctx context.Context, origin, room string, ev *event.Event) []*event.Event {
	if a.cfg.Client == nil {
		return nil
	}
	var resp struct {
		AuthChain []json.RawMessage `json:"auth_chain"`
	}
	path := "/_matrix/federation/v1/event_auth/" + url.PathEscape(room) + "/" + url.PathEscape(ev.ID())
	if err := a.cfg.Client.GetJSON(ctx, origin, path, &resp); err != nil {
		a.log.Info("federation: event_auth failed", "destination", origin, "room_id", room, "err", err)
		return nil
	}
	return a.checkedEvents(ctx, ev.Version(), room, resp.AuthChain, 1000)
}

// checkedEvents parses and verifies events fetched from another server,
// keeping at most max of those of room, sorted by depth (then ID) so that
// each comes after what it cites.
func (a *API) checkedEvents(ctx context.Context, v *roomversion.Version, room string, raws []json.RawMessage, max int) []*event.Event {
	var evs []received
	for _, raw := range raws {
		if len(evs) >= max {
			break
		}
		ev, err := event.Parse(v, raw)
		if err != nil || ev.RoomID() != room {
			continue
		}
		evs = append(evs, received{ev: ev, room: room})
	}
	checked, _, err := a.verify(ctx, evs)
	if err != nil {
		return nil
	}
	out := make([]*event.Event, len(checked))
	for i, rc := range checked {
		out[i] = rc.ev
	}
	slices.SortFunc(out, func(x, y *event.Event) int {
		if x.Depth() != y.Depth() {
			return int(x.Depth() - y.Depth())
		}
		return strings.Compare(x.ID(), y.ID())
	})
	return out
}

// processEDUs applies the transaction's EDUs through Config.EDUs, in
// order (edus.go). Each is checked first: its user must belong to the
// origin; typing and receipts must be of rooms this server is in, whose
// server ACL allows the origin, by users joined to them; presence is
// taken only for users who share a room with a user of this server;
// send-to-device messages only for users of this server. What fails a
// check, is malformed or fails to apply is dropped with a log: EDU
// outcomes never reach the answer and never affect the other EDUs or the
// PDUs.
func (a *API) processEDUs(ctx context.Context, origin string, edus []json.RawMessage) {
	r := a.newEDURun(origin)
	for i, raw := range edus {
		r.one(ctx, i, raw)
	}
}
