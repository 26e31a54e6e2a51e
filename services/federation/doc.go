// Package federation is the federation role's inbound side: the
// Server-Server API that other homeservers call (spec "Server-Server
// API").
//
// Every endpoint under /_matrix/federation/ except /version requires a
// signed request: the X-Matrix Authorization header is checked
// (matrix/xmatrix) against the origin's key, which services/keyserver
// finds, fetches and caches. A request whose header is missing, malformed,
// names another destination, or whose signature does not verify with a
// key the origin published is refused with 401 M_UNAUTHORIZED before any
// endpoint runs; the endpoint gets the authenticated origin and the body
// as read (bounded by Config.BodyLimit).
//
// # Transactions (/send)
//
// A transaction holds at most 50 PDUs and 100 EDUs, and its origin must be
// the server that signed the request. Its answer is stored
// (federation_txns, kept a day), so a transaction sent again is answered
// the same and not processed twice. Each PDU of a room this server is in
// is parsed with the room's version (an unparsable one is dropped, as the
// spec says), its signatures checked with the keys of every required
// signer valid at its origin_server_ts (a failure drops it with an error
// answer) and its content hash (a failure keeps it redacted). The PDUs are
// then handed to the room role, one Input per room in transaction order,
// which authorises and persists them (services/roomserver, "Events from
// other servers"). A PDU the room role cannot place because prev_events
// or auth events are unknown is completed once from the origin
// (/get_missing_events, at most 20 events, or /event_auth) and submitted
// again; a gap that remains is answered with an error. Rejected PDUs are
// answered with an error, soft-failed ones without.
//
// Server ACLs (matrix/acl) are applied per room: the PDUs of a room whose
// current m.room.server_acl denies the origin are answered with an error
// and not processed, and the DAG reads of such a room are refused with 403
// M_FORBIDDEN.
//
// Not yet: EDUs are counted and dropped (so the ACL rules for typing and
// receipts have nothing to apply to); a gap that /get_missing_events does
// not close is not bridged with /state_ids.
//
// # Reading a room's DAG
//
// /event, /state, /state_ids (the state before an event, with its auth
// chain), /event_auth, /get_missing_events (a walk back along
// prev_events from latest_events, never past earliest_events, at most
// 100 events) and /backfill (the same walk from the v events, them
// included, at most 100) answer servers that have a user joined to the
// room now; others get 403 M_FORBIDDEN. Rejected and soft-failed events
// are served like any other: other servers need them to follow the DAG.
// History visibility for servers is not applied beyond that membership
// test yet.
//
// # Joins, as the resident server
//
// /make_join answers a join template built on the room's current forward
// extremities and state, after checking that the user belongs to the
// origin, that the origin supports the room's version (400
// M_INCOMPATIBLE_ROOM_VERSION otherwise) and that the join rules and the
// user's membership can allow it: public rooms, or an invite. Restricted
// joins, which need a user of this server to authorise them, are refused
// for now. /send_join (v2) checks the signed event (a join of its sender,
// a user of the origin, with valid signatures), has the room role accept
// it like any received PDU, and answers the state before it with the
// auth chain; members are never omitted.
//
// # Joins, as the joining server (joiner.go)
//
// A local user joining a room this server is not in goes through the
// servers the client named (via, server_name), the room ID's server and,
// for an alias of another server, its /query/directory answer: make_join
// with every room version this server supports, the template completed
// with the user's profile and signed here, send_join v2, every event of
// the answer checked (signatures, hashes), and the room created by the
// room role from that state (roomserver Input.Join). A resident server's
// Matrix error (a private room, an unsupported version) reaches the
// client as it came.
//
// Events made here after the join reach the other servers through the
// sender role (services/sender). Not yet: invites, leaves and knocks
// across servers.
//
// The other endpoints so far are /query/profile and /query/directory.
//
// # What it must never do
//
// Run an endpoint for an unauthenticated request; trust an origin named
// anywhere but in a verified header; let one remote server's request
// affect another's (each request is bounded in size and time).
package federation
