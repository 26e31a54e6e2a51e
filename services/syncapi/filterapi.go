package syncapi

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
)

// maxFilterSize bounds an uploaded filter.
const maxFilterSize = 64 << 10

func (a *API) postFilter(w http.ResponseWriter, r *http.Request) error {
	userID, _, err := a.auth(r)
	if err != nil {
		return err
	}
	if r.PathValue("userId") != userID {
		return httpx.Forbidden("cannot create filters for other users")
	}
	var raw json.RawMessage
	if err := httpx.DecodeJSON(r, maxFilterSize, &raw); err != nil {
		return err
	}
	var f Filter
	if err := json.Unmarshal(raw, &f); err != nil {
		return httpx.BadJSON("not a valid Filter: " + err.Error())
	}
	var b [8]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		return err
	}
	id := hex.EncodeToString(b[:])
	if _, err := a.db.Exec(r.Context(), `INSERT INTO filters (user_id, filter_id, filter, created_at) VALUES ($1, $2, $3, $4)`,
		userID, id, []byte(raw), a.cfg.Now().UnixMilli()); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]string{"filter_id": id})
}

func (a *API) getFilter(w http.ResponseWriter, r *http.Request) error {
	userID, _, err := a.auth(r)
	if err != nil {
		return err
	}
	if r.PathValue("userId") != userID {
		return httpx.Forbidden("cannot read other users' filters")
	}
	var raw []byte
	err = a.db.QueryRow(r.Context(), `SELECT filter FROM filters WHERE user_id = $1 AND filter_id = $2`,
		userID, r.PathValue("filterId")).Scan(&raw)
	if errors.Is(err, store.ErrNoRows) {
		return httpx.NotFound("no such filter")
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(raw)
	return err
}
