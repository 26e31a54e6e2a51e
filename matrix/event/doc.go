// Package event implements Matrix PDUs (room events as servers exchange
// them) for room versions 1 to 12.
//
// What it does:
//   - Parse/FromValue validate a PDU against its room version's format:
//     required fields and their types; v1–v2 `event_id` in the body and
//     [id, hash] pairs in prev_events/auth_events; hash IDs in standard
//     (v3) or URL-safe (v4+) base64; v12 create events without room_id
//     (the room ID is derived from the event ID) and hash-derived room IDs
//     elsewhere; `redacts` at the top level (v1–10) or in content (v11+);
//     the spec's size limits (65,536 bytes canonical, 255-byte type,
//     state_key, sender and room_id, 20 prev_events, 10 auth_events). In
//     room versions 1–10 a field over 255 bytes but within 255 code points
//     does not make the event invalid: LimitViolation reports it, and the
//     caller stores the event as rejected, as the reference implementation
//     does, so that events citing it can still be processed.
//   - Unsigned data is not signed, so it never decides validity: a PDU's
//     unsigned that is not an object is dropped, and only age,
//     invite_room_state and knock_room_state are kept, before the room
//     version's number rules and the size limit are applied.
//   - Event IDs from the reference hash (v3+), content hashes (which, like
//     the reference implementation's, also leave out the transit keys
//     age_ts, outlier and destinations), signing of outgoing events
//     (HashAndSign, Build) and extra signatures (Sign).
//   - Verify: signatures of every required server (the sender's, except
//     for invites made from third-party invites; the event ID's in v1–2;
//     the authorising server of a restricted join) over the redacted event,
//     honouring key validity windows from v5, then the content hash; a
//     content-hash failure is reported separately (ErrContentHash) because
//     the spec keeps such events, redacted.
//   - Redact: the v1, v6, v8, v9 and v11 redaction algorithms.
//
// What it does not do: fetch keys (callers pass a keys.KeyLookup), apply
// authorisation rules (package auth), or decide whether a redaction should
// be applied (that needs the redacting sender's power, see auth). In room
// versions 3 and later an `event_id` in a received body is not part of the
// format and is dropped before hashing.
package event
