-- 0202_federation: events received from other servers.
--
-- A received event may follow events other than the room's forward
-- extremities (a fork of the DAG), so the state before it is not always
-- the room's current state after the previous event. state_base says
-- where it is: NULL for the usual case, the current state after room_seq
-- - 1; otherwise the current state after room_seq state_base, overlaid by
-- the event's rows in event_state_deltas (state_event_id '' removes a
-- key). The state after an event is the state before it plus the event
-- itself when it is an accepted state event.
ALTER TABLE events ADD COLUMN IF NOT EXISTS state_base {{bigint}};
-- soft_failed events passed the authorisation rules against the state
-- before them but not against the room's current state: they are kept in
-- the DAG and in state resolution, never shown to clients nor cited as a
-- prev_event by this server.
ALTER TABLE events ADD COLUMN IF NOT EXISTS soft_failed {{bool}} NOT NULL DEFAULT FALSE;

CREATE TABLE IF NOT EXISTS event_state_deltas (
	event_id       {{text}} NOT NULL,
	type           {{text}} NOT NULL,
	state_key      {{text}} NOT NULL,
	state_event_id {{text}} NOT NULL,
	PRIMARY KEY (event_id, type, state_key)
);

-- outlier events are known to this server without being part of the
-- room's timeline here: the auth events and state that other servers sent
-- along with an event (a join's room state, the state across a gap). They
-- take a room_seq like any event but are never shown to clients, never
-- published to ROOM_EVENTS and never part of state_history by themselves;
-- authorisation, state resolution and state reads use them. An outlier
-- that later arrives as part of the timeline stops being one.
ALTER TABLE events ADD COLUMN IF NOT EXISTS outlier {{bool}} NOT NULL DEFAULT FALSE;
