-- 0400_client: the client API's own tables.
--
-- forgotten_rooms records rooms a user has forgotten (POST /forget): they
-- are left out of that user's /sync and room lists until rejoined.
CREATE TABLE IF NOT EXISTS forgotten_rooms (
	user_id      {{text}} NOT NULL,
	room_id      {{text}} NOT NULL,
	forgotten_at {{bigint}} NOT NULL,
	PRIMARY KEY (user_id, room_id)
);
