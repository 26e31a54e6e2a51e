-- 0101_openid_tokens: the OpenID tokens of POST
-- /user/{userId}/openid/request_token (openid.go), which another party
-- exchanges for the user's ID at the federation /openid/userinfo endpoint.
-- Stored only as SHA-256 hashes; a token is honoured until expires_at (ms),
-- and expired rows are deleted in small batches.
CREATE TABLE IF NOT EXISTS accounts_openid_tokens (
	token_hash {{bytes}} PRIMARY KEY,
	user_id    {{text}} NOT NULL,
	created_at {{bigint}} NOT NULL,
	expires_at {{bigint}} NOT NULL
);
CREATE INDEX IF NOT EXISTS accounts_openid_tokens_expires ON accounts_openid_tokens (expires_at);
