package main

import (
	"testing"
)

// A process with the client role alone serves the filter API, which the
// Ingress routes to the client role (only /sync goes to the sync role):
// clients upload a filter before their first /sync.
func TestFilterAPIOnClientRole(t *testing.T) {
	ts := startServer(t, backends()[0], "--roles", "client")
	alice := apiUser(t, ts, "flt")
	r := alice.apiCall(t, "POST", "/user/"+apiEsc(alice.UserID)+"/filter", map[string]any{"room": map[string]any{"timeline": map[string]any{"limit": 5}}})
	if r.Status != 200 {
		t.Fatalf("upload a filter: %d %s", r.Status, r.Raw)
	}
	id, _ := r.Body["filter_id"].(string)
	if r := alice.apiCall(t, "GET", "/user/"+apiEsc(alice.UserID)+"/filter/"+apiEsc(id), nil); r.Status != 200 {
		t.Errorf("read the filter back: %d %s", r.Status, r.Raw)
	}
	// /sync is the sync role's.
	apiWantErr(t, alice.apiCall(t, "GET", "/sync", nil), 404, "M_UNRECOGNIZED")
}
