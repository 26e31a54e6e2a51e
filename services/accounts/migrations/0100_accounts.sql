-- 0100_accounts: the accounts package's tables (services/accounts).
--
-- Every timestamp is milliseconds since the Unix epoch, computed in Go from
-- the service's injected clock. Secrets that authenticate a user (access,
-- refresh and login tokens) are stored only as SHA-256 hashes; passwords only
-- as bcrypt hashes (see password.go).

-- accounts_users holds one row per local account, guests included. A
-- deactivated account keeps its row forever so that its user ID is never
-- handed out again. displayname and avatar_url are the two profile fields
-- that m.room.member events carry; other profile fields live in
-- accounts_profile_fields.
CREATE TABLE IF NOT EXISTS accounts_users (
	user_id       {{text}} PRIMARY KEY,
	password_hash {{text}},
	is_guest      {{bool}} NOT NULL,
	is_admin      {{bool}} NOT NULL,
	deactivated   {{bool}} NOT NULL,
	displayname   {{text}},
	avatar_url    {{text}},
	created_at    {{bigint}} NOT NULL
);

-- accounts_profile_fields holds the profile fields other than displayname
-- and avatar_url (m.tz and custom namespaced keys), each value as compact
-- JSON.
CREATE TABLE IF NOT EXISTS accounts_profile_fields (
	user_id    {{text}} NOT NULL,
	field      {{text}} NOT NULL,
	value      {{bytes}} NOT NULL,
	updated_at {{bigint}} NOT NULL,
	PRIMARY KEY (user_id, field)
);

-- accounts_devices holds the devices of local users. last_seen_* are
-- refreshed at most about once a minute per device (see authn.go).
CREATE TABLE IF NOT EXISTS accounts_devices (
	user_id      {{text}} NOT NULL,
	device_id    {{text}} NOT NULL,
	display_name {{text}},
	created_at   {{bigint}} NOT NULL,
	last_seen_ts {{bigint}},
	last_seen_ip {{text}},
	PRIMARY KEY (user_id, device_id)
);

-- accounts_access_tokens: expires_at is 0 for a token that never expires.
-- refresh_hash is the refresh token issued together with this token, if any.
-- revokes_refresh is the refresh token that this token's refresh replaced:
-- the first use of this token revokes that refresh token and its access
-- token (the spec's "the old refresh token remains valid until the new
-- access token or refresh token is used"), and clears the column.
CREATE TABLE IF NOT EXISTS accounts_access_tokens (
	token_hash      {{bytes}} PRIMARY KEY,
	user_id         {{text}} NOT NULL,
	device_id       {{text}} NOT NULL,
	created_at      {{bigint}} NOT NULL,
	expires_at      {{bigint}} NOT NULL,
	refresh_hash    {{bytes}},
	revokes_refresh {{bytes}}
);
CREATE INDEX IF NOT EXISTS accounts_access_tokens_device ON accounts_access_tokens (user_id, device_id);

-- accounts_refresh_tokens: access_hash is the access token issued together
-- with this refresh token; parent_hash the refresh token it replaced, revoked
-- when this one (or its access token) is first used.
CREATE TABLE IF NOT EXISTS accounts_refresh_tokens (
	token_hash  {{bytes}} PRIMARY KEY,
	user_id     {{text}} NOT NULL,
	device_id   {{text}} NOT NULL,
	created_at  {{bigint}} NOT NULL,
	access_hash {{bytes}} NOT NULL,
	parent_hash {{bytes}}
);
CREATE INDEX IF NOT EXISTS accounts_refresh_tokens_device ON accounts_refresh_tokens (user_id, device_id);
CREATE INDEX IF NOT EXISTS accounts_refresh_tokens_parent ON accounts_refresh_tokens (parent_hash);

-- accounts_login_tokens are the single-use m.login.token tokens made by
-- POST /login/get_token.
CREATE TABLE IF NOT EXISTS accounts_login_tokens (
	token_hash {{bytes}} PRIMARY KEY,
	user_id    {{text}} NOT NULL,
	created_at {{bigint}} NOT NULL,
	expires_at {{bigint}} NOT NULL
);
CREATE INDEX IF NOT EXISTS accounts_login_tokens_expires ON accounts_login_tokens (expires_at);

-- accounts_uia_sessions holds User-Interactive Authentication sessions, so
-- that any worker can continue a session another one started. operation and
-- bind_hash tie a session to one request (see uia.go); completed is a JSON
-- array of the stages done, in order; user_id is '' until known;
-- registration_token is the token that the m.login.registration_token
-- stage accepted, counted as used only when the registration commits.
CREATE TABLE IF NOT EXISTS accounts_uia_sessions (
	session_id         {{text}} PRIMARY KEY,
	operation          {{text}} NOT NULL,
	user_id            {{text}} NOT NULL,
	bind_hash          {{bytes}} NOT NULL,
	completed          {{text}} NOT NULL,
	registration_token {{text}},
	created_at         {{bigint}} NOT NULL,
	expires_at         {{bigint}} NOT NULL
);
CREATE INDEX IF NOT EXISTS accounts_uia_sessions_expires ON accounts_uia_sessions (expires_at);
CREATE INDEX IF NOT EXISTS accounts_uia_sessions_user ON accounts_uia_sessions (user_id);

-- accounts_registration_tokens are the tokens of token-authenticated
-- registration. uses_allowed NULL is unlimited; expires_at NULL never
-- expires; completed counts the registrations that used the token.
CREATE TABLE IF NOT EXISTS accounts_registration_tokens (
	token        {{text}} PRIMARY KEY,
	uses_allowed {{bigint}},
	completed    {{bigint}} NOT NULL,
	expires_at   {{bigint}},
	created_at   {{bigint}} NOT NULL
);

-- accounts_admin_nonces are the single-use nonces of shared-secret
-- registration (/_synapse/admin/v1/register).
CREATE TABLE IF NOT EXISTS accounts_admin_nonces (
	nonce      {{text}} PRIMARY KEY,
	expires_at {{bigint}} NOT NULL
);
CREATE INDEX IF NOT EXISTS accounts_admin_nonces_expires ON accounts_admin_nonces (expires_at);
