-- 0901_sender_edus: the outbound EDU queues (services/sender, edus.go).
--
-- sender_edus holds, per destination server, the EDUs of this server's
-- users that the destination has not acknowledged yet. edu_key is the
-- EDU's identity for coalescing: a newer typing state of a user in a room,
-- receipt of a user in a room and thread, or presence of a user replaces
-- the queued one (so those rows are bounded by users and rooms); a
-- send-to-device message is keyed by its sender and message_id and never
-- replaced. queued_ns orders a destination's EDUs and tells a row sent
-- from one replaced meanwhile. expires_ts (ms, 0 = never) drops a typing
-- notification that is stale before it could be sent. Rows are deleted
-- once a transaction carrying them succeeds.
CREATE TABLE IF NOT EXISTS sender_edus (
	destination {{text}} NOT NULL,
	edu_key     {{text}} NOT NULL,
	edu_type    {{text}} NOT NULL,
	content     {{bytes}} NOT NULL,
	queued_ns   {{bigint}} NOT NULL,
	expires_ts  {{bigint}} NOT NULL,
	PRIMARY KEY (destination, edu_key)
);
CREATE INDEX IF NOT EXISTS sender_edus_order ON sender_edus (destination, queued_ns);
