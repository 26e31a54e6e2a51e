-- 0300_sync: the sync role's index of ROOM_EVENTS.
--
-- pos is the event's ROOM_EVENTS stream sequence: one total order over all
-- rooms, the "events" part of a sync token. The indexer writes rows in
-- stream order and advances sync_positions in the same transaction, so
-- every position up to the stored one is indexed.
CREATE TABLE IF NOT EXISTS sync_events (
	pos       {{bigint}} PRIMARY KEY,
	room_id   {{text}} NOT NULL,
	event_id  {{text}} NOT NULL,
	room_seq  {{bigint}} NOT NULL,
	type      {{text}} NOT NULL,
	state_key {{text}},
	sender    {{text}} NOT NULL,
	device_id {{text}},
	txn_id    {{text}},
	-- notifies: the event counts for unread notifications (a message,
	-- encrypted message or sticker); mentions: " @a:x @b:y " from
	-- content.m.mentions.user_ids (bounded).
	notifies  {{bool}} NOT NULL DEFAULT FALSE,
	mentions  {{text}}
);
CREATE INDEX IF NOT EXISTS sync_events_room ON sync_events (room_id, pos);
CREATE INDEX IF NOT EXISTS sync_events_event ON sync_events (event_id);

-- sync_memberships logs every membership change, by user, in stream
-- order: a user's rooms at position P are the latest row per room with
-- pos <= P.
CREATE TABLE IF NOT EXISTS sync_memberships (
	user_id    {{text}} NOT NULL,
	pos        {{bigint}} NOT NULL,
	room_id    {{text}} NOT NULL,
	membership {{text}} NOT NULL,
	sender     {{text}} NOT NULL,
	PRIMARY KEY (user_id, pos)
);

-- sync_positions holds the high-water mark of each indexed stream.
CREATE TABLE IF NOT EXISTS sync_positions (
	stream {{text}} PRIMARY KEY,
	pos    {{bigint}} NOT NULL
);

-- filters stores the filters clients upload (POST /user/{userId}/filter).
-- filter_id is chosen by the server (random), so no counter is needed.
CREATE TABLE IF NOT EXISTS filters (
	user_id    {{text}} NOT NULL,
	filter_id  {{text}} NOT NULL,
	filter     {{bytes}} NOT NULL,
	created_at {{bigint}} NOT NULL,
	PRIMARY KEY (user_id, filter_id)
);
