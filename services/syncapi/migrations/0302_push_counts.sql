-- 0302_push_counts: what the server-default push rules decide for each
-- indexed event, for the unread counts of users whose rules are the
-- defaults in its room (see unread.go): push_plain for a user the event
-- does not mention, push_mention for one it mentions in
-- content.m.mentions.user_ids (the mentions column). Each is a bit set:
-- 1 = notify, 2 = highlight. Rows indexed before this migration get the
-- decision the notifies column stood for.
ALTER TABLE sync_events ADD COLUMN IF NOT EXISTS push_plain {{bigint}} NOT NULL DEFAULT 0;
ALTER TABLE sync_events ADD COLUMN IF NOT EXISTS push_mention {{bigint}} NOT NULL DEFAULT 0;
UPDATE sync_events SET push_plain = 1, push_mention = 3 WHERE notifies AND push_plain = 0 AND push_mention = 0;
