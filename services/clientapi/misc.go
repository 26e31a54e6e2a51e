package clientapi

import (
	"net/http"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// specVersions are the Client-Server API versions this server speaks.
var specVersions = []string{"r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9",
	"v1.10", "v1.11", "v1.12", "v1.13", "v1.14", "v1.15", "v1.16", "v1.17", "v1.18", "v1.19"}

func (a *API) versions(w http.ResponseWriter, r *http.Request) error {
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{
		"versions":          specVersions,
		"unstable_features": map[string]bool{},
	})
}

func (a *API) wellKnown(w http.ResponseWriter, r *http.Request) error {
	base := "https://" + a.cfg.ServerName
	if a.cfg.PublicBaseURL != "" {
		base = a.cfg.PublicBaseURL
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{
		"m.homeserver": map[string]string{"base_url": base},
	})
}

func (a *API) capabilities(w http.ResponseWriter, r *http.Request, d Device) error {
	avail := map[string]string{}
	for _, v := range roomversion.All() {
		avail[v.ID] = "stable"
	}
	caps := map[string]any{
		"m.room_versions": map[string]any{"default": a.cfg.DefaultRoomVersion, "available": avail},
		"m.3pid_changes":  map[string]bool{"enabled": false},
	}
	if a.cfg.Capabilities != nil {
		for k, v := range a.cfg.Capabilities(d) {
			caps[k] = v
		}
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"capabilities": caps})
}
