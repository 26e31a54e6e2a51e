// Package clientapi serves the Client-Server API's room endpoints:
// /versions, capabilities, createRoom, membership (join, invite, leave,
// forget, kick, ban, unban), sending and state, redaction, reading
// (state, events, members, /messages, /context, joined rooms), aliases and
// the public room directory. Accounts, devices, tokens and profiles live in
// services/accounts; /sync in services/syncapi.
//
// Every write goes to the room role through roomserver.Submitter and
// waits for its answer; this package never writes room tables. It writes
// only its own small tables (forgotten rooms) and the room role's alias
// and directory tables, which are not part of any room's DAG.
//
// The public room directory's listing is Directory (publicrooms.go), which
// the federation role builds for its own /publicRooms, so both APIs list
// the same rooms the same way: by joined members, then room ID, in pages
// of at most 500 with offset tokens ("o<n>"). No rooms of third-party
// networks are published, so naming a third_party_instance_id lists none
// (and naming one with include_all_networks is M_INVALID_PARAM).
//
// Reads are checked against history visibility: members read up to now,
// former members up to their leave or ban, others only world-readable
// rooms; within that, each event at or before the user's latest
// membership change is shown only if the room's history visibility and
// the user's membership at that event allow it (roomserver.Visibility:
// /messages, /context and /event; the sync role applies the same to
// timelines). Events after it need no check.
//
// /messages pages through one ordering: the timeline's room_seq from 1 up
// and, below it, the history that other servers sent for a room this
// server joined late (roomserver History, hist_seq from 0 down); tokens
// are "r<position>". Paging back past the oldest event this server has
// asks Config.Backfill once per request to extend the history from a
// server in the room (federation /backfill); a page that grew that way
// carries an end token even when it is short, so clients keep paging
// until the room's creation.
package clientapi
