-- 0203_remote_invites: invites of local users to rooms this server is not
-- in. Another server's /invite brings the invite event (signed by both
-- servers) and the state it shares to identify the room; the invitee sees
-- it in /sync and joins (make_join) or rejects (make_leave) through the
-- inviting server. The row goes when the user joins or rejects, or when
-- an invite of the same room replaces it.
CREATE TABLE IF NOT EXISTS remote_invites (
	room_id      {{text}} NOT NULL,
	user_id      {{text}} NOT NULL,
	event_id     {{text}} NOT NULL,
	room_version {{text}} NOT NULL,
	sender       {{text}} NOT NULL,
	pdu          {{bytes}} NOT NULL,
	room_state   {{bytes}} NOT NULL,
	received_at  {{bigint}} NOT NULL,
	PRIMARY KEY (room_id, user_id)
);
