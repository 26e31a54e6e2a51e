-- 0700_keys: other servers' signing keys, as fetched (services/keyserver).
--
-- server_key_docs keeps the newest keys document of each server exactly as
-- it was received (canonical JSON, signatures included): the notary
-- endpoints serve it again, with this server's signature added, also while
-- its owner is unreachable. "Newest" is by the document's valid_until_ts.
CREATE TABLE IF NOT EXISTS server_key_docs (
	server_name    {{text}} PRIMARY KEY,
	doc            {{bytes}} NOT NULL,
	valid_until_ts {{bigint}} NOT NULL,
	fetched_ts     {{bigint}} NOT NULL
);

-- server_keys holds every key ever learnt for a server, one row per key
-- ID. verify_until_ts is the last millisecond at which the key verifies a
-- signature in room versions that enforce key validity: for a key in use,
-- valid_until_ts capped at seven days after fetched_ts; for an old key, its
-- expired_ts (old = true). A key that a newer document no longer lists is
-- kept: it still checks what it signed.
CREATE TABLE IF NOT EXISTS server_keys (
	server_name     {{text}} NOT NULL,
	key_id          {{text}} NOT NULL,
	public_key      {{text}} NOT NULL,
	verify_until_ts {{bigint}} NOT NULL,
	old             {{bool}} NOT NULL,
	fetched_ts      {{bigint}} NOT NULL,
	PRIMARY KEY (server_name, key_id)
);
