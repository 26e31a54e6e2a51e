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
// Reads are checked against history visibility in its simplest correct
// form: members read everything, former members up to their leave or ban,
// others only world-readable rooms.
package clientapi
