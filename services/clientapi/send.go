package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/services/roomserver"
)

// maxTxnIDLength bounds a client's transaction ID.
const maxTxnIDLength = 255

func readContent(r *http.Request) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := httpx.DecodeJSON(r, event.MaxEventSize, &raw); err != nil {
		return nil, err
	}
	if len(raw) == 0 || raw[0] != '{' {
		return nil, httpx.BadJSON("the event content must be a JSON object")
	}
	return raw, nil
}

func (a *API) send(w http.ResponseWriter, r *http.Request, d Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	typ, txn := r.PathValue("eventType"), r.PathValue("txnId")
	if typ == "" || len(typ) > 255 {
		return httpx.InvalidParam("the event type must be 1–255 bytes")
	}
	if txn == "" || len(txn) > maxTxnIDLength {
		return httpx.InvalidParam("the transaction ID must be 1–255 bytes")
	}
	content, err := readContent(r)
	if err != nil {
		return err
	}
	res, err := a.submit.Submit(r.Context(), &roomserver.Input{RoomID: roomID, Events: []roomserver.Template{{
		Type: typ, Sender: d.UserID, Content: content, Txn: &roomserver.Txn{DeviceID: d.DeviceID, TxnID: txn, Scope: "send " + roomID + " " + typ},
	}}})
	if err := submitErr(res, err); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]string{"event_id": res.EventIDs[0]})
}

func (a *API) putState(w http.ResponseWriter, r *http.Request, d Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	typ, sk := r.PathValue("eventType"), r.PathValue("stateKey")
	if typ == "" || len(typ) > 255 || len(sk) > 255 {
		return httpx.InvalidParam("the event type must be 1–255 bytes and the state key at most 255")
	}
	if typ == "m.room.create" {
		return httpx.Forbidden("the create event cannot be replaced")
	}
	content, err := readContent(r)
	if err != nil {
		return err
	}
	res, err := a.submit.Submit(r.Context(), &roomserver.Input{RoomID: roomID, Events: []roomserver.Template{{
		Type: typ, StateKey: &sk, Sender: d.UserID, Content: content,
	}}})
	if err := submitErr(res, err); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]string{"event_id": res.EventIDs[0]})
}

func (a *API) redact(w http.ResponseWriter, r *http.Request, d Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	target, txn := r.PathValue("eventId"), r.PathValue("txnId")
	if txn == "" || len(txn) > maxTxnIDLength {
		return httpx.InvalidParam("the transaction ID must be 1–255 bytes")
	}
	var body struct {
		Reason *string `json:"reason"`
	}
	if err := optionalBody(r, &body); err != nil {
		return err
	}
	content := json.RawMessage(`{}`)
	if body.Reason != nil {
		content, _ = json.Marshal(map[string]string{"reason": *body.Reason})
	}
	res, err := a.submit.Submit(r.Context(), &roomserver.Input{RoomID: roomID, Events: []roomserver.Template{{
		Type: "m.room.redaction", Sender: d.UserID, Content: content, Redacts: target,
		Txn: &roomserver.Txn{DeviceID: d.DeviceID, TxnID: txn, Scope: "redact " + roomID + " " + target},
	}}})
	if err := submitErr(res, err); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]string{"event_id": res.EventIDs[0]})
}
