-- 0201_input_progress: the last ROOM_INPUT stream sequence each partition
-- has applied, written in the same transaction as the events. A message
-- delivered again after a crash (between the commit and the ack) has a
-- sequence at or below it and is skipped, so no input is applied twice,
-- with or without a client transaction ID. stream_created identifies the
-- stream the sequence belongs to (its creation time in ns): if ROOM_INPUT
-- was recreated (its store lost), sequences start again at 1 and the
-- recorded one no longer applies.
CREATE TABLE IF NOT EXISTS room_input_progress (
	partition      {{bigint}} PRIMARY KEY,
	last_seq       {{bigint}} NOT NULL,
	stream_created {{bigint}} NOT NULL
);
