-- 0200_rooms: the room role's tables.
--
-- rooms holds one row per room with its head: head_seq counts the events
-- persisted in the room and is the compare-and-set guard of every write
-- (see services/roomserver doc.go); extremities are the forward extremities
-- as a JSON array of event IDs.
CREATE TABLE IF NOT EXISTS rooms (
	room_id      {{text}} PRIMARY KEY,
	room_version {{text}} NOT NULL,
	head_seq     {{bigint}} NOT NULL,
	depth        {{bigint}} NOT NULL,
	extremities  {{bytes}} NOT NULL,
	created_at   {{bigint}} NOT NULL
);

-- events holds every persisted event's PDU (canonical JSON, redacted in
-- place once a redaction applies). room_seq is the event's position in its
-- room's persistence order, 1-based. input_stream and input_seq name the
-- ROOM_INPUT message that produced a locally built event (the stream's
-- creation time in ns and the message's sequence): a message delivered
-- again after a crash between the commit and the ack is recognised by
-- them and not applied twice.
CREATE TABLE IF NOT EXISTS events (
	event_id    {{text}} PRIMARY KEY,
	room_id     {{text}} NOT NULL,
	room_seq    {{bigint}} NOT NULL,
	type        {{text}} NOT NULL,
	state_key   {{text}},
	sender      {{text}} NOT NULL,
	origin_ts   {{bigint}} NOT NULL,
	pdu         {{bytes}} NOT NULL,
	rejected    {{bool}} NOT NULL,
	redacted_by {{text}},
	input_stream {{bigint}},
	input_seq    {{bigint}}
);
CREATE UNIQUE INDEX IF NOT EXISTS events_room_seq ON events (room_id, room_seq);
CREATE INDEX IF NOT EXISTS events_input ON events (input_stream, input_seq);

-- state_history records every period during which an event was part of a
-- room's current state, in room_seq terms: from_seq is the room_seq of the
-- event that made it current, to_seq the one that replaced it (NULL while
-- it is current). The state after room_seq S is every row with
-- from_seq <= S and (to_seq IS NULL OR to_seq > S).
CREATE TABLE IF NOT EXISTS state_history (
	room_id   {{text}} NOT NULL,
	type      {{text}} NOT NULL,
	state_key {{text}} NOT NULL,
	from_seq  {{bigint}} NOT NULL,
	to_seq    {{bigint}},
	event_id  {{text}} NOT NULL,
	PRIMARY KEY (room_id, type, state_key, from_seq)
);
CREATE INDEX IF NOT EXISTS state_history_current ON state_history (room_id, to_seq);

-- memberships is the current membership of every user in every room, for
-- "which rooms is this user in" without scanning state.
CREATE TABLE IF NOT EXISTS memberships (
	user_id    {{text}} NOT NULL,
	room_id    {{text}} NOT NULL,
	membership {{text}} NOT NULL,
	event_id   {{text}} NOT NULL,
	room_seq   {{bigint}} NOT NULL,
	PRIMARY KEY (user_id, room_id)
);
CREATE INDEX IF NOT EXISTS memberships_room ON memberships (room_id, membership);

-- client_txns maps a client's transaction ID to the event it produced, so
-- the same device, txnId and request path always yield the same event ID,
-- across restarts and workers. scope is the path's identity (endpoint,
-- room and event type or redacted event): the spec makes a request a
-- retransmission only when both the transaction ID and the path match.
CREATE TABLE IF NOT EXISTS client_txns (
	user_id    {{text}} NOT NULL,
	device_id  {{text}} NOT NULL,
	txn_id     {{text}} NOT NULL,
	scope      {{text}} NOT NULL,
	room_id    {{text}} NOT NULL,
	event_id   {{text}} NOT NULL,
	created_at {{bigint}} NOT NULL,
	PRIMARY KEY (user_id, device_id, txn_id, scope)
);

-- outbox holds committed events not yet published to ROOM_EVENTS. Written
-- in the same transaction as the event; deleted once published.
CREATE TABLE IF NOT EXISTS outbox (
	partition  {{bigint}} NOT NULL,
	room_id    {{text}} NOT NULL,
	room_seq   {{bigint}} NOT NULL,
	payload    {{bytes}} NOT NULL,
	created_at {{bigint}} NOT NULL,
	PRIMARY KEY (partition, room_id, room_seq)
);

-- room_aliases maps aliases to rooms (the directory of this server).
CREATE TABLE IF NOT EXISTS room_aliases (
	alias      {{text}} PRIMARY KEY,
	room_id    {{text}} NOT NULL,
	creator    {{text}} NOT NULL,
	created_at {{bigint}} NOT NULL
);
CREATE INDEX IF NOT EXISTS room_aliases_room ON room_aliases (room_id);

-- room_directory lists rooms published in the public room directory.
CREATE TABLE IF NOT EXISTS room_directory (
	room_id      {{text}} PRIMARY KEY,
	published_at {{bigint}} NOT NULL
);
