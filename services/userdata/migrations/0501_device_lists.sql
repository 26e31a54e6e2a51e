-- 0501_device_lists: other servers' users whose device lists changed
-- (m.device_list_update EDUs), for /sync's device_lists.changed.
--
-- One row per remote user: the stream_id of the last update received and
-- the userdata position at which it was recorded. A /sync reports the
-- users whose row changed in (since, now] and who share a room with the
-- syncing user; their clients then query the keys again. No device
-- details are kept: there is no end-to-end key store yet.
CREATE TABLE IF NOT EXISTS userdata_device_lists (
	user_id   {{text}} PRIMARY KEY,
	stream_id {{bigint}} NOT NULL,
	pos       {{bigint}} NOT NULL
);
CREATE INDEX IF NOT EXISTS userdata_device_lists_pos ON userdata_device_lists (pos);
