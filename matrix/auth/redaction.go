package auth

import (
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/id"
)

// RedactionApplies reports whether an m.room.redaction that passed the
// authorisation rules should be applied to target, with state the room
// state before the redaction (spec "Handling redactions", room versions 3
// and later): it applies when the redaction's sender has at least the
// redact level, or when the sender's server is the target sender's server.
// In room versions 1 and 2 the auth rules themselves decide, so a
// redaction that passed them applies. A redaction naming another event or
// coming from another room never applies.
func RedactionApplies(redaction, target *event.Event, state State) bool {
	if redaction.Type() != "m.room.redaction" || redaction.Redacts() != target.ID() || redaction.RoomID() != target.RoomID() {
		return false
	}
	if redaction.Version().RedactionAuthRule {
		return true
	}
	create := state.Get(typeCreate, "")
	p := lenientPowerLevels(redaction.Version(), create, state.Get(typePowerLevels, ""))
	if p.level(redaction.Sender()).cmp(p.prop(propRedact)) >= 0 {
		return true
	}
	a, errA := id.ParseUserID(redaction.Sender())
	b, errB := id.ParseUserID(target.Sender())
	return errA == nil && errB == nil && a.Server() == b.Server()
}
