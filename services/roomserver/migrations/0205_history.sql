-- 0205_history: events from before this server joined a room, fetched
-- from another server (federation /backfill) when a client pages back
-- past the start of the room's timeline here. They are stored as
-- outliers (they take no part in the room's state or timeline order) and
-- listed here in their own order: hist_seq counts down from -1, each
-- backfill continuing below the last, so that together with the
-- timeline's room_seq (from 1 up) one number orders everything a client
-- pages through.
CREATE TABLE IF NOT EXISTS history_events (
	room_id  {{text}} NOT NULL,
	hist_seq {{bigint}} NOT NULL,
	event_id {{text}} NOT NULL,
	PRIMARY KEY (room_id, hist_seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS history_events_event ON history_events (event_id);
