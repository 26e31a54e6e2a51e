-- 0301_sync_redactions: sync_events.redacted_by is the redaction applied
-- to the event, as of the indexed position: the indexer sets it when it
-- indexes the redaction (an Output with redacts). /sync reads a timeline's
-- events by (event_id, redacted_by) from the Reader's cache and goes to
-- the events table only for those it does not hold.
ALTER TABLE sync_events ADD COLUMN IF NOT EXISTS redacted_by {{text}};
UPDATE sync_events SET redacted_by = (SELECT e.redacted_by FROM events e WHERE e.event_id = sync_events.event_id)
	WHERE event_id IN (SELECT event_id FROM events WHERE redacted_by IS NOT NULL);
