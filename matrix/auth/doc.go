// Package auth implements the Matrix authorisation rules of room versions 1
// to 12 (spec "Room Versions", each version's "Authorisation rules"), the
// auth events selection of the server-server API, and the power level
// arithmetic those rules rely on.
//
// # What it does
//
//   - [Check] decides whether an event is allowed against a room state: every
//     numbered rule of the event's room version except those about the
//     shape of its auth_events list. Callers run it against the state formed
//     by the event's auth events, against the state before the event, and
//     against the current state (for soft failure), as "Checks performed on
//     receipt of a PDU" requires.
//   - [CheckAuthEvents] applies the rules about the auth_events list itself
//     (rule 2 in room versions 1–11, rule 3 in 12): duplicates, entries the
//     selection algorithm does not select, rejected entries, a missing
//     m.room.create (before v12) or a listed one (v12), and entries from
//     another room.
//   - [Selection] lists the state keys an event should cite as auth events.
//   - [PowerLevels] reads m.room.power_levels content with the defaults of
//     the spec and the creator rules of the room version; [SenderPowerLevel]
//     is the shortcut state resolution needs.
//   - [RedactionApplies] decides whether a redaction that passed the rules
//     takes effect on its target ("Handling redactions", v3+: the redact
//     level or the same server as the target's sender).
//
// A rejection is a [*Rejection] (errors.Is(err, [ErrRejected])) naming the
// rule with the numbering of that room version's own list in the spec text:
// the same rule has different numbers in different versions (the
// m.room.member rule is 5 in v1–5 and v12, 4 in v6–11). Room version
// families share code and differ only where their flags in
// matrix/roomversion say so; the package never compares version strings.
//
// # What it does not do
//
//   - It verifies no event signatures or hashes: the event package does that
//     on receipt. The rule "if the event is not validly signed by the
//     homeserver of the user ID denoted by join_authorised_via_users_server"
//     is checked with event.HasSignatureFrom, because signatures were
//     verified (event.Verify with RequiredSigners) before authorisation. The
//     one signature it does verify is that of a third-party invite's signed
//     object against the public keys of the m.room.third_party_invite event,
//     which no earlier step covers.
//   - It checks no event format (size limits, ID grammar, canonical JSON):
//     events reach it already parsed by the event package.
//   - It does not decide whether the creator of an m.room.create event is
//     allowed to create rooms, whether a restricted join's allow conditions
//     hold (that is the authorising server's job; the rules check only its
//     signature, membership and invite level), or whether a redaction
//     should be applied (from v3 a redaction is authorised like any event;
//     "Handling redactions" is for the caller).
//   - It does not fetch missing events or know which events were rejected:
//     callers pass the state and a rejected(eventID) predicate.
//
// # Interpretations
//
// Where the spec leaves a choice open, or where its text and the reference
// implementation (whose decisions most of the federation shares) disagree,
// this package decides as follows. Deciding differently from the rest of a
// room's servers splits the room, so agreement wins over the letter.
//
//   - A room without an m.room.join_rules event, or whose event has no
//     join_rule, is treated as having join rule "invite" (the spec gives no
//     default; the rules would otherwise forbid even a joined member from
//     updating their own membership). A join_rule that is not a string
//     lets nobody join.
//   - content.join_authorised_via_users_server is checked (signature of its
//     server) on joins only, as the reference implementation does; the spec
//     text checks it on every membership.
//   - m.federate: any value other than absent or true means the room is not
//     federated; then a membership event's target, not only the sender,
//     must be on the creator's server.
//   - The keys of content.users need only the shape "@…:…"; their values,
//     and every other power level in v1–9, are read as Python's int() reads
//     them (see below).
//   - A power levels event with a state key other than "" replaces nothing:
//     the change rules compare it with the event of its own state key, and
//     allow it when there is none.
//   - Defaults without a power levels event: the room creator has 100 in v1–11
//     (content.creator before v11, the create event's sender from v11), and
//     every other user 0; state_default is 50, events_default 0, invite 0,
//     kick, ban and redact 50 (m.room.power_levels schema and server-server
//     "Definitions"). In v12 the creators (the create event's sender and
//     content.additional_creators) have [Infinite] power whether or not
//     there is a power levels event.
//   - A missing users property of m.room.power_levels is allowed (the rule
//     rejects a users property that is not an object of valid values, not
//     its absence), as is a missing property of any other kind.
//   - Power level values: integers in every version; in v1–9 also booleans
//     (1 and 0) and strings as Python's int() reads them: surrounding white
//     space (Unicode white space and U+001C–U+001F), one optional sign,
//     decimal digits of any script with single underscores between them,
//     at most 4,300 digits; in v1–5 also any number,
//     truncated toward zero (a number beyond the range of an IEEE 754
//     double never gets this far: the event's JSON is refused by
//     matrix/cjson; a value built in code that is out of range rejects the
//     power levels event under the power levels rule itself, e.g. "10", or
//     "10.1" in users). In v1–9 an invalid value outside users is not a
//     rejection (only users is checked by the rules); it counts as absent,
//     so its default applies. (The reference implementation fails to
//     process such an event at all; we cannot express "drop" here, and
//     note the difference.) In v10+ any non-integer rejects the event.
//   - Values beyond the int64 range (possible in v1–9) are compared exactly;
//     [PowerLevels] accessors clamp them to the int64 range.
//   - Changes of power levels are compared by value: "50" and 50 are equal.
//   - A join with join rule "invite" (or "knock") by a user who is not
//     invited is rejected by the final "Otherwise, reject" sub-rule of the
//     join rule, since the rule naming the join rule only allows.
//   - A present but non-string content.membership is an unknown membership;
//     a non-string join_authorised_via_users_server fails the signature rule.
//   - Third-party invite public keys are accepted in standard or URL-safe
//     unpadded base64; only the first ed25519 signature of signed (in
//     signer, then key ID order) is tried, against each key, whatever name
//     it is filed under, as the reference implementation does.
//   - In room version 12 the rule about auth events from another room is
//     numbered "3.5", as the spec text writes it (the list skips 3.4, which
//     was removed; a Markdown renderer would show it as 3.4).
//   - In room version 12 rule 2 (the room ID names the accepted create
//     event) is checked by Check against the create event of the state; the
//     caller vouches that this create event was accepted. Before v12, Check
//     rejects a state without a create event under rule 2.4.
//   - Rule 1 decides m.room.create events before the auth events rule is
//     reached, so CheckAuthEvents returns nil for them.
//   - SenderPowerLevel of an m.room.create event (whose auth events are
//     empty) treats the event as its own create event.
//
// Some rejections cannot be produced by events that the event package
// accepts (a v12 create event with a room_id fails its format check
// first); Check still applies those rules to whatever it is given.
package auth
