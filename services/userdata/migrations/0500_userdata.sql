-- 0500_userdata: per-user and ephemeral data that /sync delivers besides
-- room timelines (account data, receipts, send-to-device, presence).
-- Typing notifications are not here: they live in memory (see typing.go).
--
-- Every write takes its position from the one-row userdata_counter in the
-- same transaction (an upsert that adds one … RETURNING pos). The row is
-- the serialisation point: a transaction holding position N commits before
-- one holding N+1 can take it, so whoever reads the counter at N sees every
-- row with pos <= N. That position is the "userdata" part of a sync token.
CREATE TABLE IF NOT EXISTS userdata_counter (
	id  {{bigint}} PRIMARY KEY,
	pos {{bigint}} NOT NULL
);

-- userdata_account_data holds global (room_id '') and per-room account
-- data, one row per (user, room, type), rewritten with a new pos on every
-- change.
CREATE TABLE IF NOT EXISTS userdata_account_data (
	user_id {{text}} NOT NULL,
	room_id {{text}} NOT NULL,
	type    {{text}} NOT NULL,
	content {{bytes}} NOT NULL,
	pos     {{bigint}} NOT NULL,
	PRIMARY KEY (user_id, room_id, type)
);
CREATE INDEX IF NOT EXISTS userdata_account_data_pos ON userdata_account_data (user_id, pos);

-- userdata_receipts holds each user's latest receipt per room, receipt
-- type and thread (thread_id '' is an unthreaded receipt).
CREATE TABLE IF NOT EXISTS userdata_receipts (
	room_id      {{text}} NOT NULL,
	user_id      {{text}} NOT NULL,
	receipt_type {{text}} NOT NULL,
	thread_id    {{text}} NOT NULL,
	event_id     {{text}} NOT NULL,
	ts           {{bigint}} NOT NULL,
	pos          {{bigint}} NOT NULL,
	PRIMARY KEY (room_id, user_id, receipt_type, thread_id)
);
CREATE INDEX IF NOT EXISTS userdata_receipts_pos ON userdata_receipts (room_id, pos);

-- userdata_to_device is each device's queue of send-to-device messages,
-- deleted once a /sync proves that the device received them. One
-- transaction sends at most one message to a device, so pos is unique per
-- device.
CREATE TABLE IF NOT EXISTS userdata_to_device (
	user_id    {{text}} NOT NULL,
	device_id  {{text}} NOT NULL,
	pos        {{bigint}} NOT NULL,
	sender     {{text}} NOT NULL,
	type       {{text}} NOT NULL,
	content    {{bytes}} NOT NULL,
	created_ts {{bigint}} NOT NULL,
	PRIMARY KEY (user_id, device_id, pos)
);

-- userdata_to_device_queue counts each device's queued messages, kept in
-- step with userdata_to_device in the same transactions, to bound a queue
-- without counting it.
CREATE TABLE IF NOT EXISTS userdata_to_device_queue (
	user_id   {{text}} NOT NULL,
	device_id {{text}} NOT NULL,
	queued    {{bigint}} NOT NULL,
	PRIMARY KEY (user_id, device_id)
);

-- userdata_to_device_txns remembers the transaction IDs of
-- PUT /sendToDevice per device, so a retransmission sends nothing twice.
-- Rows older than a day are deleted in batches (Service.Run).
CREATE TABLE IF NOT EXISTS userdata_to_device_txns (
	user_id    {{text}} NOT NULL,
	device_id  {{text}} NOT NULL,
	txn_id     {{text}} NOT NULL,
	created_ts {{bigint}} NOT NULL,
	PRIMARY KEY (user_id, device_id, txn_id)
);
CREATE INDEX IF NOT EXISTS userdata_to_device_txns_created ON userdata_to_device_txns (created_ts);

-- userdata_presence holds each user's presence as last set (explicitly or
-- by /sync's set_presence). Idle and offline are derived from
-- last_active_ts when read.
CREATE TABLE IF NOT EXISTS userdata_presence (
	user_id        {{text}} PRIMARY KEY,
	presence       {{text}} NOT NULL,
	status_msg     {{text}},
	last_active_ts {{bigint}} NOT NULL,
	pos            {{bigint}} NOT NULL
);
CREATE INDEX IF NOT EXISTS userdata_presence_pos ON userdata_presence (pos);

-- The counter's row, last: CockroachDB refuses DDL after a write in one
-- transaction. (nextPos also creates it if missing.)
INSERT INTO userdata_counter (id, pos) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
