// Package syncapi is the sync role: it indexes ROOM_EVENTS for /sync and
// answers /sync, including long-polls, and the filter API.
//
// # The index
//
// One indexer at a time (a coordinator resource with one partition)
// reads the whole ROOM_EVENTS stream in its total order, with an ordered
// consumer started after the stored position (bus.ConsumeOrdered), writes
// sync_events and sync_memberships keyed by the stream sequence, then
// advances sync_positions in the same transaction, writing nothing at or
// before the stored position (another indexer's late batch). So every
// position up to the stored one is indexed, and a sync token (the
// position) never skips an event. After each batch it wakes its own
// process's Notifier and publishes the wake-up on core NATS for the other
// sync workers (WakePublisher; a process ignores its own wake-ups coming
// back).
// An out-of-room membership (roomserver Output.OutOfRoom: an invite from
// another server to a room this server is not in, or its rejection) is
// indexed as a membership only; /sync shows such an invite with the state
// that came with it, and its rejection as a left room with nothing else.
// A knock shows as rooms.knock with knock_state: the state the resident
// server answered for a room this server is not in, else the room's
// identifying state and the knock.
//
// # /sync
//
// A response covers (since, current]: the rooms whose membership or
// timeline changed, with the last `limit` events of each timeline
// (limited and prev_batch when more happened), the state between since
// and the start of the timeline when limited (all of it for a room joined
// in the window, on an initial sync and with full_state), invites with
// stripped state, and leaves once. State comes from the room role's
// state_history at the room position of the timeline's start, so it is
// right across gaps, leaves and rejoins. A timeline that holds the user's
// own membership events shows the events at or before the last of them
// only as history visibility allows (roomserver.Visibility, loaded for
// that room only); after it the user was joined, or it is their leave, so
// the rest needs no check. Hidden events leave the timeline shorter than
// its limit. An empty incremental response
// waits on the Notifier (by room and user, not a broadcast) until
// something concerning the user happens or the timeout ends; Drain ends
// every wait at shutdown.
//
// Account data, typing, receipts, presence and to-device messages come
// from the userdata area (services/userdata) through its Sync call, with
// their own parts of the token.
//
// # Cost of a sync
//
// An incremental sync finds the joined rooms with news in one query and
// reads only their timelines. The timelines, read positions and (for
// rooms that get it) whole state of all the rooms of a response take a
// few queries in all, not a few per room, and the userdata streams are
// read at the same time: on PostgreSQL every round trip counts. Events
// and state are read by (event ID, redaction) from the room role's
// Reader, whose cache serves the events it has parsed before: the index
// mirrors each event's redaction as of its position (the indexer sets it
// when it indexes the redaction), so a cached event is served in the
// state the index shows, and the events table is read only for the
// others. Room
// summaries are sent on a room's first
// appearance and when a member, name or canonical alias event comes by
// (the spec lets unchanged summaries be left out); with the whole state at
// hand they are computed from it. Unread counts are cached per user and
// room and grow by the new range only, which an unlimited timeline has
// already read; the ranges left are counted by one query (unread.go).
//
// Unread and highlight counts follow each user's push rules (unread.go).
//
// Not yet here: device lists and one-time key counts (empty, with the
// right shapes, until the E2EE APIs), and sliding sync.
//
// # What it must never do
//
// Write room tables, or answer with a token beyond what is indexed.
package syncapi
