-- 0900_sender: the outbound federation queues (services/sender).
--
-- sender_queue holds, per destination server, the events this server made
-- that the destination has not acknowledged yet, in ROOM_EVENTS order
-- (seq is the event's stream sequence). Rows are written when the event is
-- relayed and deleted when a transaction carrying them succeeds, so a
-- queue survives any worker's death.
CREATE TABLE IF NOT EXISTS sender_queue (
	destination {{text}} NOT NULL,
	seq         {{bigint}} NOT NULL,
	room_id     {{text}} NOT NULL,
	event_id    {{text}} NOT NULL,
	pdu         {{bytes}} NOT NULL,
	PRIMARY KEY (destination, seq)
);

-- sender_destinations holds the backoff of destinations that failed: the
-- consecutive failures and when to try again.
CREATE TABLE IF NOT EXISTS sender_destinations (
	destination {{text}} PRIMARY KEY,
	failures    {{bigint}} NOT NULL,
	retry_at    {{bigint}} NOT NULL
);
