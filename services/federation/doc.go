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
// again. A gap that remains is crossed: /state_ids gives the state before
// the PDU, the events of it this server lacks are fetched (/event, or
// /state when more than 50 are missing) and checked, and the room role
// places the PDU on that state (roomserver Input.GapStates); what cannot
// be fetched is answered with an error. Rejected PDUs are answered with
// an error, soft-failed ones without.
//
// Server ACLs (matrix/acl) are applied per room: the PDUs of a room whose
// current m.room.server_acl denies the origin are answered with an error
// and not processed, and the DAG reads of such a room are refused with 403
// M_FORBIDDEN.
//
// # EDUs (edus.go)
//
// A transaction's EDUs are applied after its PDUs, in order, through
// Config.EDUs (an EDUReceiver: one func per kind; a nil one drops that
// kind with a debug log). Each is checked here first. Its user (the
// sender of a send-to-device message) must belong to the origin. m.typing
// and m.receipt must name a room this server is in, whose current server
// ACL allows the origin, and a user joined to it now; receipts are taken
// room by room, so a denied room drops all of its receipts, and only
// m.read receipts travel between servers. m.presence entries are taken
// only for users joined to a room that a user of this server is joined
// to. m.direct_to_device messages are kept only for users of this server.
// m.device_list_update needs user_id, device_id and stream_id;
// m.signing_key_update and unknown types are dropped. At most 1,000
// presence updates and 1,000 receipts are applied per transaction.
//
// What fails a check, is malformed, or fails (or panics) in the receiver
// is dropped with a log. EDU outcomes never change the /send answer, never
// affect the other EDUs or the PDUs, and are not applied again for a
// transaction sent again (its stored answer is replayed). In production
// the receiver is a userdata service of the federation role's own
// (cmd/axon), built from the database and NATS, so a federation-only
// process needs no client role: receipts, presence, send-to-device
// messages and device list changes are written through userdata's own
// paths and wake the sync workers over NATS; remote typing reaches every
// process on userdata.TypingSubject. Outbound EDUs are the sender role's
// (services/sender).
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
// /event, /get_missing_events and /backfill apply history visibility
// for the requesting server (visibility.go): an event whose state before
// it makes it visible to joined (or invited) members only, while no user
// of that server was joined (or invited) then, is served redacted, so the
// server can follow the DAG without its content. /state and /state_ids
// serve the state, which a joined server may see.
//
// # Joins, as the resident server
//
// /make_join answers a join template built on the room's current forward
// extremities and state, after checking that the user belongs to the
// origin, that the origin supports the room's version (400
// M_INCOMPATIBLE_ROOM_VERSION otherwise) and that the join rules and the
// user's membership can allow it: public rooms, or an invite. For a
// restricted room (restricted.go) the user must be joined to one of the
// rooms its join rule allows, which this server must be in to tell (400
// M_UNABLE_TO_AUTHORISE_JOIN otherwise; 403 when the user is in none); a
// user of this server joined to the room who may invite is named in
// join_authorised_via_users_server (400 M_UNABLE_TO_GRANT_JOIN when there
// is none, so the joining server tries another). /send_join (v2) checks
// the signed event (a join of its sender, a user of the origin, with
// valid signatures), checks a restricted join again and signs it, has the
// room role accept it like any received PDU, and answers the state before
// it with the auth chain (and the join, when signed here); members are
// never omitted.
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
// sender role (services/sender). A local user joining a room that every
// local user has left joins the same way, through a server still in it:
// this server's copy of the room is stale.
//
// A user who joined late pages back through the room's history: the
// client API asks Joiner.Backfill, which sends /backfill from the
// room's backward extremities to at most three servers in the room (50
// events), verifies what comes back and has the room role add it to the
// room's history (roomserver "History from before this server joined").
//
// # Invites and leaves (membership.go, memberclient.go)
//
// As the inviting server (Joiner.Invite): the invite is built on the
// room's current state, checked against the auth rules and signed here,
// then sent to the invitee's server with /v2/invite together with the
// room's identifying state (create, join rules, name, topic, avatar,
// canonical alias, encryption, and the inviter's membership, as full
// PDUs). The countersigned event that comes back is verified and handed
// to the room role like a received PDU; the sender role delivers it to
// the room's servers. A refusal by the invitee's server reaches the
// client as it came.
//
// As the invited server (PUT /v2/invite): the room version must be one
// this server supports (400 M_INCOMPATIBLE_ROOM_VERSION otherwise); the
// event must be an invite sent by a user of the origin to a user of this
// server, with good signatures, as must every event of invite_room_state,
// which must hold the room's create event (M_INVALID_PARAM otherwise).
// A known room's server ACL applies. The invite is countersigned; if no
// local user is in the room it is kept (roomserver Invites) and the
// invitee's /sync shows it with that state. Joining then goes through
// the inviting server; declining goes through it too, with make_leave and
// send_leave v2, after which the invite is retired and /sync shows the
// room left.
//
// As the resident server, /make_leave answers a leave template for a
// user of the origin who is joined, invited or knocking, and /send_leave
// (v2) accepts the signed leave like /send_join accepts a join.
//
// Not yet: invites of room versions 1 and 2 through the v1 endpoint, and
// third-party invites.
//
// # Knocks (knocks.go, knockclient.go)
//
// As the resident server, /make_knock answers a knock template for a user
// of the origin when the origin lists the room's version in ver (400
// M_INCOMPATIBLE_ROOM_VERSION otherwise, and for versions before 7, which
// have no knocking), the join rule is knock (or knock_restricted where the
// version has it) and the user is not joined, invited or banned (403
// M_FORBIDDEN). /send_knock checks the signed event (a knock of its
// sender, a user of the origin, with good signatures: M_INVALID_PARAM
// otherwise), has the room role accept it like a received PDU (403 when
// the auth rules refuse it) and answers knock_room_state: the room's
// identifying state (the invite's types, the create event among them) as
// full PDUs.
//
// As the knocking server (Joiner.Knock): make_knock with every supported
// version through the servers the client named and the room ID's server,
// the template checked as the spec asks, completed with the reason and
// the user's profile, signed here and sent with send_knock. The state
// that comes back is verified (what fails is dropped) and kept with the
// knock in roomserver Invites as an out-of-room membership "knock", so
// that the user's /sync shows the room under rooms.knock. An invite from
// the room (the knock accepted) replaces it; a join retires it; leaving
// rescinds it through the server the knock went through (make_leave,
// send_leave), like declining an invite.
//
// # Lookups (lookups.go, hierarchy.go)
//
// /query/profile and /query/directory answer for local users and aliases.
// /publicRooms (GET and POST) lists this server's published room
// directory through Config.Lookups.PublicRooms, which is the client API's
// directory (clientapi.Directory), so both APIs list the same rooms the
// same way: by joined members then room ID, pages of at most 500 with
// offset tokens, filter.generic_search_term and filter.room_types. No
// rooms of third-party networks are published here, so a
// third_party_instance_id lists nothing, and one given together with
// include_all_networks is 400 M_INVALID_PARAM.
//
// /hierarchy/{roomId} answers from this server's current state of the
// room and of its m.space.child children (those with a non-empty via and
// a room ID as state key; suggested_only keeps the suggested ones), in the
// spec's child order, at most 50 children. A room is shown to the
// requesting server when its server ACL allows that server and the room
// is world-readable, public or knockable (in a version that has
// knocking), or one of the server's users is joined or invited, or, for a
// restricted room, one of its users is joined to one of the first 20
// allowed rooms that this server knows. Otherwise the room is listed in
// inaccessible_children, or, for the room asked about, answered 404
// M_NOT_FOUND. Children this server is not in are left out. There is no
// recursion and no cache.
//
// /user/devices/{userId} answers a local user's devices with their
// display names and the list's stream ID (Config.Lookups.Devices): the
// stream_id of the user's last m.device_list_update EDU, counted by
// services/accounts (see its DeviceList), so that the requesting server
// can apply the EDUs that follow. No end-to-end keys are stored yet, so
// each device's keys field is an empty object and there are no
// cross-signing keys; /user/keys/query and /user/keys/claim answer every
// requested user with no keys. A user of another server, or an
// invalid user ID, is 400 M_INVALID_PARAM; a body of the wrong shape is
// M_BAD_JSON.
//
// /openid/userinfo is the one endpoint under /_matrix/federation/ besides
// /version that needs no X-Matrix signature: a third party calls it with
// the OpenID token that a local user got from the Client-Server
// request_token endpoint (services/accounts). It answers {"sub": user ID},
// or 401 M_UNKNOWN_TOKEN for an unknown or expired token (M_MISSING_TOKEN
// without one). A nil hook answers what a server with nothing to tell
// would: an empty directory, no devices, no valid token.
//
// # What it must never do
//
// Run an endpoint for an unauthenticated request; trust an origin named
// anywhere but in a verified header; let one remote server's request
// affect another's (each request is bounded in size and time).
package federation
