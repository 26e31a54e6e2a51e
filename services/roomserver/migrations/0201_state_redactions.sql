-- 0201_state_redactions: state_history.redacted_by mirrors
-- events.redacted_by for the state event of each row, written in the same
-- transaction as the redaction. The state of a room can then be read from
-- state_history alone when the Reader's event cache holds the events in
-- that state (see Reader.EventsByKey).
ALTER TABLE state_history ADD COLUMN IF NOT EXISTS redacted_by {{text}};
UPDATE state_history SET redacted_by = (SELECT e.redacted_by FROM events e WHERE e.event_id = state_history.event_id)
	WHERE event_id IN (SELECT event_id FROM events WHERE redacted_by IS NOT NULL);
