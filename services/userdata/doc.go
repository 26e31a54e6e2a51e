// Package userdata owns the per-user and ephemeral data that /sync delivers
// besides room timelines: global and per-room account data (with the m.tag
// tags endpoints and the m.fully_read read marker), receipts (m.read,
// m.read.private, threaded), typing notifications, send-to-device messages,
// presence and device list changes (of other servers' users and of its
// own, for device_lists.changed). It serves their
// Client-Server endpoints (Routes), gives the sync role what it needs to
// fill a /sync response (Position, TypingPosition, Sync, AckToDevice,
// SyncPresence), applies what other servers send (federation.go) and hands
// its users' data for other servers to Config.Outbound.
//
// # What it must never do
//
//   - Keep durable state in memory: everything but typing lives in the
//     userdata_* tables (migrations 0500–0599), so any worker may serve
//     any request. Typing is in memory by design (below).
//   - Call another role or the network inside a transaction: membership,
//     devices, wake-ups and publishing happen before or after the commit.
//   - Show an m.read.private receipt to anyone but its sender, or one
//     user's account data to another.
//   - Read or write other areas' tables: membership, devices and rooms
//     come through the Membership, RoomMembers, Config.Devices and
//     Config.Rooms hooks, and outbound EDUs leave through Config.Outbound
//     (services/sender's Queue, which writes the sender's tables).
//   - Send data it received from another server out again, or check who
//     may send it: the federation role checks inbound EDUs (origin, room,
//     ACL, membership) before calling the Receive* functions.
//
// # Positions
//
// Account data, receipts, send-to-device messages, presence and device
// list changes share one stream. Every write takes the next position from the one-row
// userdata_counter in its own transaction, so commits happen in position
// order and Position (the counter) never runs ahead of what is readable.
// A write that changes nothing (the same account data, receipt or marker
// again; a typing refresh) takes no position and wakes nobody. The one row
// is a serialisation point: it caps userdata writes at what one row can
// take under contention (thousands per second on CockroachDB). If that
// becomes the limit, the way out is a counter per stream, each its own
// part of the sync token; the tables already carry what that needs.
//
// # How the sync role uses it
//
// At the start of a /sync: To = Position, ToTyping = TypingPosition; if
// the since token carries a to-device position, AckToDevice with it; then
// Sync with the token's positions as From and FromTyping (Initial without
// a since token) and NewlyJoinedRooms for rooms joined since the token, and
// SyncPresence with the set_presence parameter. The next token carries To,
// ToTyping and, for send-to-device, ToDeviceUpTo (To unless the messages
// were cut at Config.MaxToDevicePerSync). A token with a single userdata
// position may use min(To, ToDeviceUpTo) for it: the account data and
// receipts then sent again are idempotent. Send-to-device messages are the
// device's pending ones up to To whatever From is, so a lost response is
// delivered again; they are deleted only by AckToDevice. SyncData.Empty
// tells a long-poll to wait.
//
// Wake is called in the process that committed a change: with the user for
// account data, markers and private receipts; with the room's members and
// the room for public receipts; with the recipients for send-to-device;
// with the user and (when Config.Rooms is set) the user's rooms for
// presence and for a local user's device list change; with the user's
// rooms for another server's user's device list change. These must reach every sync worker (publish them on NATS).
// Config.LocalWake is called for typing changes, which every process
// learns by itself, and must wake only this process's waiters.
//
// # Typing
//
// Typing is kept in memory, per process, with expiry: at most 100,000 rooms
// and 1,000 typing users per room (updates beyond are dropped with a log).
// A local change is published with Config.PublishTyping (core NATS on
// TypingSubject) and applied by every other process's ReceiveTyping;
// timeouts travel as durations, so clock skew does not matter, and a
// process ignores its own updates echoed back. Each process expires
// entries itself (Run, every second) and forgets rooms with nobody typing a
// minute (or twice the maximum timeout) after their last change. Timeouts
// are capped at Config.TypingMaxTimeout (30s); a start without a timeout
// lasts that long. A restarted process forgets who was typing.
//
// A typing position is epoch<<40 | counter, where the epoch is random per
// process start. A FromTyping that is not of this process's epoch, or that
// it has not reached (another worker's token, one from before a restart,
// or 0), is treated as "send the current typing state again": every joined
// room this process tracks gets its list, empty ones included, so clients
// drop typing users they were told of elsewhere. Those lists are not news
// for SyncData.Empty, so a client whose syncs land on a different worker
// each time does not spin; routing a client's /sync to the same worker
// (e.g. by access token) makes them rare.
//
// # Choices where the spec is silent
//
// Account data: m.fully_read and m.push_rules are refused with 405
// M_BAD_JSON on both PUT endpoints (readable as usual). Writes to a room's
// account data and tags need the user to be joined (so that the rows a
// user can create are bounded by their rooms); reads and tag deletion do
// not. Bounds: 1,000 global types per user, 100 types per room, 1 MiB per
// global item and 64 KiB per room item (M_TOO_LARGE beyond), type names of
// at most 255 bytes, at most 100 tags per room. A missing item is 404
// M_NOT_FOUND. Content is stored compacted, as sent.
//
// Receipts: the body of POST /receipt may be empty (clients have long sent
// none). thread_id must be "main" or an event ID and is refused with
// m.fully_read. A receipt replaces the user's previous one of the same type
// and thread, wherever it pointed: the server does not know event order
// here and does not check that the event exists in the room. A /sync
// aggregates each room's receipts into one m.receipt event (more only when
// one user has receipts of one type on one event in several threads) and
// sends at most the newest 1,000 receipts per room. /read_markers writes
// its marker and receipts in one transaction.
//
// Send-to-device: only local users' devices are queued here (by
// Config.ServerName); messages for other servers' users go to
// Config.Outbound (see Federation). "*" reaches every device
// Config.Devices lists; a device also named explicitly gets its own
// message; device IDs it does not list are skipped. A request may reach
// at most 10,000 devices, local and remote together
// (M_TOO_LARGE). Each device queues at most Config.MaxToDeviceQueue
// (10,000) messages; messages for a full queue are dropped with a log and
// the request still succeeds, because one abandoned device must not stop a
// sender's messages to everyone else (429 would make clients retry the
// whole request forever). Transaction IDs are remembered per device for a
// day. DeleteDevice drops a deleted device's queue.
//
// Presence: PUT sets the state and status message (absent clears it) and
// marks the user active. SyncPresence marks a syncing user online (or
// unavailable) and refreshes the last active time at most once a minute
// without a new position. Without activity, online reads as unavailable
// after 5 minutes and anything as offline after 30; currently_active is
// set while online. A user who never set presence reads as offline. GET of
// another user's presence needs a shared room (when Config.Rooms is set).
// An initial /sync has the presence of the members of the user's rooms who
// are not offline (and the user's own), an incremental one the changes of
// users sharing a room, the newest 1,000 at most.
//
// Users in the syncing user's m.ignored_user_list are left out of typing,
// receipts, presence and send-to-device (their messages are acknowledged
// with the rest). Guests may only use PUT /sendToDevice here (spec "Guest
// Access"); the others answer 403 M_GUEST_ACCESS_FORBIDDEN.
//
// # Federation (federation.go, devicelists.go)
//
// Outbound: Config.Outbound gets a local user's typing change (every PUT,
// refreshes included, so that other servers' timeouts are renewed), each
// changed m.read receipt (never m.read.private, never an unchanged one),
// each stored presence change (PUT, or /sync's set_presence changing the
// state; not the once-a-minute last-active refresh), and the messages of
// PUT /sendToDevice for users of other servers, one call per server with a
// message_id derived from the device, the transaction ID and the server.
// Receipts and send-to-device messages are handed over before they are
// stored here (and before the transaction ID is recorded): a failure fails
// the request with 500 and the client's retry hands the same data over
// again, which the sender's queue and the destination de-duplicate.
// Typing and presence are best effort: a failure is logged. Nil Outbound
// keeps everything on this server (messages for other servers' users are
// dropped with a log).
//
// Inbound, after the federation role's checks: ReceiveRemoteTyping lasts
// TypingMaxTimeout unless renewed or stopped (the m.typing EDU has no
// timeout) and is published to every process like a local change;
// PutRemoteReceipt stores an m.read receipt with the remote ts through the
// local write path; ReceiveRemotePresence stores the state and status as
// last active last_active_ago ago (an update changing neither only
// refreshes the last active time, at most once a minute, without a
// position or wake-up); ReceiveRemoteToDevice queues messages for local
// devices as PUT /sendToDevice does ("*", unknown devices, queue bounds),
// de-duplicated by (sender, message_id) for a day in the transaction ID
// table (device ""); ReceiveDeviceListUpdate records, per remote user, the
// last stream_id at a new position, and an incremental /sync lists in
// device_lists.changed (SyncData.DeviceListsChanged) the users changed
// since its token who share a room with the syncing user, at most 1,000.
// Device details, prev_id gaps and /user/keys/query resyncs are not kept
// or done: there is no end-to-end key store yet. Malformed remote data
// returns an error wrapping ErrInvalid.
//
// Local users' device lists (devicelists.go): LocalDeviceListChanged,
// called after services/accounts committed a device added, deleted or
// renamed (its OnDeviceListChange), records the user's device-list stream
// ID at a new position in the same table, one row per user, so that the
// same incremental /sync lists them in device_lists.changed: for the
// local users sharing a room with them, and for the user themselves,
// whose other devices must learn of the new or deleted one (the spec
// lists "users who have updated their device identity" and leaves no one
// out). A stream ID not above the recorded one (the hook called again, or
// two workers' calls crossing) takes no position. It wakes the user and
// their rooms. The m.device_list_update EDUs for other servers are not
// sent from here: the same hook hands the changes to services/sender's
// Queue.DeviceListUpdate.
//
// # Not done yet
//
// Presence transitions by timeout are computed when read but produce no
// event, wake-up or outbound EDU; displayname/avatar_url in presence; push
// rules (the server-managed m.push_rules is never written here); sync
// filters (the sync role applies them to SyncData); rate limits (wrap the
// routes); metrics; device_lists.left (users no longer sharing any room),
// and device_lists.changed for users who newly share a room with the
// syncing user without having changed their devices (the spec's "or who
// now share an encrypted room with the client"), both of which follow
// from other users' membership changes, which this package is not told
// of (NewlyJoinedRooms covers only the syncing user's own joins).
package userdata
