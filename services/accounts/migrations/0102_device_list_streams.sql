-- 0102_device_list_streams: each local user's device-list stream ID
-- (devicelist.go).
--
-- stream_id counts the changes of the user's device list: every device
-- added (login, registration), deleted (logout, device deletion, password
-- change, deactivation) or renamed adds one, in the transaction of the
-- change. It is the stream_id of the m.device_list_update EDUs that
-- announce the changes and of the federation /user/devices answer. A user
-- without a row has had no change counted (stream ID 0): accounts created
-- before this migration start counting at their next change. Rows are
-- kept for deactivated accounts too, so that their last deletions keep
-- their place in the sequence.
CREATE TABLE IF NOT EXISTS accounts_device_lists (
	user_id   {{text}} PRIMARY KEY,
	stream_id {{bigint}} NOT NULL
);
