package main

import (
	"testing"
)

// TestUserDirectory checks who can be found: members of a shared room and
// of public rooms, by user ID or displayname, case-insensitively; not users
// only in private rooms the searcher is not in.
func TestUserDirectory(t *testing.T) {
	ts := startServer(t, backends()[0])
	alice, bob, carol, dave := ts.register("alice"), ts.register("bob"), ts.register("carol"), ts.register("dave")
	private := alice.createRoom(map[string]any{"preset": "private_chat", "invite": []string{bob.UserID}})
	bob.must("POST", "/join/"+apiEsc(private), map[string]any{})
	hidden := carol.createRoom(map[string]any{"preset": "private_chat"})
	_ = hidden
	dave.createRoom(map[string]any{"preset": "public_chat"})
	dave.must("PUT", "/profile/"+apiEsc(dave.UserID)+"/displayname", map[string]any{"displayname": "Dave Grohl"})

	search := func(term string) []string {
		t.Helper()
		resp := alice.must("POST", "/user_directory/search", map[string]any{"search_term": term})
		var ids []string
		for _, r := range resp["results"].([]any) {
			ids = append(ids, r.(map[string]any)["user_id"].(string))
		}
		return ids
	}
	if got := search("BOB"); len(got) != 1 || got[0] != bob.UserID {
		t.Errorf("search bob: %v", got)
	}
	if got := search("carol"); len(got) != 0 {
		t.Errorf("carol is only in a private room alice is not in, found %v", got)
	}
	if got := search("grohl"); len(got) != 1 || got[0] != dave.UserID {
		t.Errorf("search by displayname: %v", got)
	}
	if r := alice.do("POST", "/user_directory/search", map[string]any{"limit": 3}); r.Status != 400 || r.Body["errcode"] != "M_MISSING_PARAM" {
		t.Errorf("missing search_term: %d %s", r.Status, r.Raw)
	}
}
