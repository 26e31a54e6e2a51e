package event

import (
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// Top-level keys that survive redaction.
var (
	keepTopV1 = []string{"auth_events", "content", "depth", "event_id", "hashes", "membership",
		"origin", "origin_server_ts", "prev_events", "prev_state", "room_id", "sender",
		"signatures", "state_key", "type"}
	keepTopV11 = []string{"auth_events", "content", "depth", "event_id", "hashes",
		"origin_server_ts", "prev_events", "room_id", "sender", "signatures", "state_key", "type"}
)

// contentKeys returns the content keys that survive redaction for an event
// type under the rules; all=true means the whole content survives.
func contentKeys(rules roomversion.RedactionRules, typ string) (keys []string, all bool) {
	switch typ {
	case "m.room.member":
		if rules >= roomversion.RedactV9 {
			return []string{"join_authorised_via_users_server", "membership"}, false
		}
		return []string{"membership"}, false
	case "m.room.create":
		if rules >= roomversion.RedactV11 {
			return nil, true
		}
		return []string{"creator"}, false
	case "m.room.join_rules":
		if rules >= roomversion.RedactV8 {
			return []string{"allow", "join_rule"}, false
		}
		return []string{"join_rule"}, false
	case "m.room.power_levels":
		if rules >= roomversion.RedactV11 {
			return []string{"ban", "events", "events_default", "invite", "kick", "redact",
				"state_default", "users", "users_default"}, false
		}
		return []string{"ban", "events", "events_default", "kick", "redact",
			"state_default", "users", "users_default"}, false
	case "m.room.aliases":
		if rules == roomversion.RedactV1 {
			return []string{"aliases"}, false
		}
	case "m.room.history_visibility":
		return []string{"history_visibility"}, false
	case "m.room.redaction":
		if rules >= roomversion.RedactV11 {
			return []string{"redacts"}, false
		}
	}
	return nil, false
}

func containsSorted(list []string, k string) bool {
	for _, s := range list {
		if s == k {
			return true
		}
	}
	return false
}

// Redact applies the room version's redaction algorithm to an event object
// and returns the stripped copy; obj itself is not changed. Non-objects are
// returned as they are. The result has no `unsigned`: callers that serve a
// redacted event to clients add their own.
func Redact(rules roomversion.RedactionRules, obj cjson.Value) cjson.Value {
	if obj.Kind() != cjson.Object {
		return obj
	}
	top := keepTopV1
	if rules >= roomversion.RedactV11 {
		top = keepTopV11
	}
	out := obj.Keep(func(k string) bool { return containsSorted(top, k) })
	content := obj.Get("content")
	if !content.Exists() {
		return out
	}
	typ, _ := obj.Get("type").Str()
	keys, all := contentKeys(rules, typ)
	if all {
		return out
	}
	if content.Kind() != cjson.Object {
		return out.With("content", cjson.ObjectValue())
	}
	newContent := content.Keep(func(k string) bool { return containsSorted(keys, k) })
	if rules >= roomversion.RedactV11 && typ == "m.room.member" {
		// v11 keeps third_party_invite.signed and nothing else of it. An
		// object without signed stays as {}, as the reference
		// implementation keeps it; dropping it would change event IDs.
		if tpi := content.Get("third_party_invite"); tpi.Kind() == cjson.Object {
			newContent = newContent.With("third_party_invite", cjson.ObjectValue(cjson.Member{Key: "signed", Value: tpi.Get("signed")}))
		}
	}
	return out.With("content", newContent)
}
