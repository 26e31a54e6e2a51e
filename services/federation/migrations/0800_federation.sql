-- 0800_federation: the federation role's tables.
--
-- federation_txns remembers the answer to each transaction another server
-- sent (/send/{txnId}), so that a transaction sent again (the sender did
-- not get the answer) is answered the same without being processed twice.
-- Rows older than a day are deleted in small batches.
CREATE TABLE IF NOT EXISTS federation_txns (
	origin     {{text}} NOT NULL,
	txn_id     {{text}} NOT NULL,
	response   {{bytes}} NOT NULL,
	created_at {{bigint}} NOT NULL,
	PRIMARY KEY (origin, txn_id)
);
CREATE INDEX IF NOT EXISTS federation_txns_created ON federation_txns (created_at);
