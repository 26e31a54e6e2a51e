// Package accounts owns local user accounts and everything that proves who
// a client is: devices, access and refresh tokens, User-Interactive
// Authentication (UIA) sessions, registration tokens, login tokens, the
// nonces of shared-secret registration, and user profiles. It serves the
// Client-Server API endpoints for them (legacy authentication API: register,
// login, refresh, logout, whoami, devices, password, deactivation, profile,
// OpenID tokens) and Synapse's shared-secret admin registration, and gives
// the other packages Authenticate/Authed to turn an access token into a
// Device, OpenIDUser to turn an OpenID token into its user, and DeviceList
// for the federation device list. It counts the changes of each user's
// device list and hands them to Config.OnDeviceListChange, for the
// m.device_list_update EDUs and /sync's device_lists.
//
// # What it must never do
//
//   - Keep state in memory that another worker needs: every account, token,
//     UIA session, nonce and counter lives in the database (tables
//     accounts_*, migrations 0100–0199), so any worker may serve the next
//     request of a flow another one started. The one in-memory structure is
//     a bounded, short-lived cache of access tokens.
//   - Store or log a secret in the clear: access, refresh and login tokens
//     are stored as SHA-256 hashes, passwords as bcrypt hashes, and none of
//     them (nor request bodies) are ever logged.
//   - Leave half an operation behind: each operation is one transaction
//     (a UIA session is consumed in the transaction of the operation it
//     authorises), and a rejected request writes nothing but, at most, the
//     progress of a UIA session or the consumption of a shared-secret nonce.
//   - Call other roles or the network inside a transaction. Effects on
//     rooms, keys and presence happen through the Config hooks, after the
//     commit.
//   - Speak the OAuth 2.0 API or application-service login; third-party
//     identifiers (3PIDs) are not supported.
//
// # Choices where the spec is silent or leaves a choice
//
// Tokens. Access, refresh and login tokens are 32 random bytes from
// Config.Rand in unpadded URL-safe base64 behind a kind prefix ("axa_",
// "axr_", "axl_"). Clients that send refresh_token: true get access tokens
// that expire after Config.AccessTokenLifetime (default 5 minutes) and a
// refresh token; other clients get non-expiring access tokens. An expired
// token answers 401 M_UNKNOWN_TOKEN with soft_logout true; an unknown or
// revoked one soft_logout false. The deprecated ?access_token= query
// parameter is still accepted (spec v1.19), after the Authorization header.
// POST /logout accepts an expired token, so that a client can still clean
// up.
//
// Refresh rotation follows the spec's preferred behaviour: the old refresh
// token (and the access token issued with it) stays valid until the new
// access or refresh token is first used, then both are revoked; refreshing
// again with the old token revokes the earlier attempt's new pair. See
// refresh.go.
//
// Token cache. Authenticate caches what the database says about a token for
// Config.TokenCacheTTL (default 30 s), in at most Config.TokenCacheSize
// entries (default 10000, random eviction when full). Logout, device
// deletion, password change and deactivation drop the entries on the worker
// that served them at once; on other workers a revoked token keeps working
// for at most the TTL. Unknown tokens are not cached (rate limiting is the
// defence against token guessing floods). A device's last_seen_ts and
// last_seen_ip are written at most about once a minute per device, not per
// request; last_seen_ip is the request's RemoteAddr, so a trusted proxy
// must rewrite RemoteAddr if the client address is wanted.
//
// Passwords. bcrypt at Config.BcryptCost (default 12) over an HMAC-SHA-256
// pre-hash, so that passwords longer than bcrypt's 72 bytes count in full
// (password.go); at most 1024 bytes; hashing runs at most GOMAXPROCS at a
// time. The server enforces no complexity rules (no M_WEAK_PASSWORD).
// Unknown users cost a bcrypt comparison too, so timing does not tell them
// apart. Login tries the lower-cased localpart when an exact user ID does
// not exist, since accounts are created lower-case only. A deactivated
// account keeps its password hash, so that its owner gets 403
// M_USER_DEACTIVATED rather than "wrong password" (others get M_FORBIDDEN).
//
// Registration. Config.Registration "open" offers the UIA flow
// [m.login.dummy] and allows guests; "token" offers
// [m.login.registration_token] and no guests; "closed" answers 403
// M_FORBIDDEN (the validity endpoint too). Usernames are not mapped: any
// that breaks the strict localpart grammar (including upper case) is
// M_INVALID_USERNAME, and taken ones M_USER_IN_USE, both before UIA starts.
// A password is required for user accounts. Without a username, and for
// guests, the localpart is 12 random characters of [a-z0-9] (no counter row
// for every registration to contend on). New accounts get their localpart
// as displayname. A registration token is counted as used only when the
// registration commits, in its transaction, so a token is never used more
// often than allowed however many sessions passed its stage. Guests are
// upgraded with guest_access_token as the guest access module describes;
// the account keeps its user ID. Registration tokens are stored in the
// clear (admins list them), follow the opaque identifier grammar and are
// at most 64 characters long.
//
// UIA. Sessions live in the database for 15 minutes and are bound to the
// operation, the user (when known) and the request's security-relevant
// parameters (the device IDs to delete, the erase flag); a live session
// used for anything else is refused with 403 M_FORBIDDEN. A session is
// consumed by the operation it authorises, in the same transaction, so
// every operation needs its own authentication (and /login/get_token
// always re-prompts, as the spec requires). A request naming an unknown or
// expired session gets a fresh one, in which a stage sent along is
// processed. Protected operations (device deletion, password change,
// deactivation, login tokens) offer [m.login.password]; password change and
// deactivation also work without an access token, the password stage then
// naming the user. Guests are refused those operations with
// M_GUEST_ACCESS_FORBIDDEN.
//
// Logins. Login with a client-chosen device_id that the user already has
// revokes that device's tokens and keeps its display name. Third-party
// identifiers (m.id.thirdparty, m.id.phone, the deprecated medium/address)
// are answered 403 M_FORBIDDEN, which is what the spec requires for a 3PID
// the server does not know; GET /account/3pid answers an empty list. Login
// tokens live 2 minutes and are single-use.
//
// Logout and devices. Logging out deletes the device, as the spec says;
// Config.OnDevicesDeleted lets the key store delete its keys. Password
// change with logout_devices (default true) deletes every other device of
// the user. PUT /devices/{id} only updates existing devices (creating
// devices is for application services).
//
// Deactivation deletes every device, token and session of the account and
// marks it deactivated forever (its user ID is never reused); erase: true
// also removes every profile field. Config.OnDeactivate makes the user
// leave their rooms.
//
// Profiles. displayname and avatar_url live on the account row, other
// fields (m.tz and namespaced custom keys) as JSON in
// accounts_profile_fields; the whole profile is kept under 64 KiB
// (M_PROFILE_TOO_LARGE) and keys at most 255 bytes (M_KEY_TOO_LARGE).
// displayname is at most 256 characters; avatar_url must be an mxc:// URI;
// an empty string clears either; JSON null is refused for them. Only one's
// own profile can be changed; guests may change only their displayname.
// Profiles are public (no visibility check); unknown users are 404. Users
// of other servers are looked up through Config.RemoteProfile.
//
// Shared-secret registration. With Config.SharedSecret empty the endpoint
// answers 404 M_UNRECOGNIZED, as for any endpoint the server does not
// offer, which tells a script plainly that the feature is off without
// revealing anything. A nonce lives 60 s in the database and is consumed by
// any attempt, so a wrong MAC cannot be retried against it; MACs are
// compared in constant time. An unknown nonce is 400 M_INVALID_PARAM and a
// wrong MAC 403 M_FORBIDDEN. It ignores Config.Registration.
//
// Hooks are called after the commit, before the response, and are
// best-effort: their errors are logged, and a worker killed between commit
// and hook skips it (an outbox row written in the operation's transaction
// would make them at-least-once; not done yet).
//
// OpenID tokens (openid.go). POST /user/{userId}/openid/request_token, for
// the access token's own user only (403 M_FORBIDDEN otherwise; guests get
// M_GUEST_ACCESS_FORBIDDEN), answers a token ("axo_" prefix, stored as a
// SHA-256 hash in accounts_openid_tokens) that lives OpenIDTokenLifetime
// (an hour). It is good for nothing but OpenIDUser, which the federation
// /openid/userinfo endpoint calls: an unknown or expired token, or one
// whose account was deactivated since, names no one. Cleanup (the
// janitor) deletes expired ones with the other expiring rows.
//
// Device list (devicelist.go). Every change of a user's device list is
// counted in the transaction that makes it: a device added (login or
// registration with a device ID the user does not have; logging in again
// with one they have changes nothing), deleted (logout, logout/all,
// DELETE /devices/{id}, /delete_devices, password change, deactivation)
// or renamed (PUT /devices/{id} with a display name other than the stored
// one). The counter is a row per user (accounts_device_lists, migration
// 0102), bumped with one upsert, so that concurrent changes of one user
// conflict on it and are retried rather than given the same number; no
// sequence. Each change gets the next stream ID, and a transaction that
// changes several devices (logout/all, /delete_devices, password change,
// deactivation; deletions in device ID order) consecutive ones, each
// change's prev_id being the one before: the chain the spec's
// m.device_list_update EDUs carry. After the commit the changes go to
// Config.OnDeviceListChange (after OnDevicesDeleted for deletions), whose
// users send the EDUs (services/sender) and list the user in local
// users' device_lists.changed (services/userdata). Like every hook it is
// best-effort: a change whose hook is lost leaves a gap in the chain that
// other servers notice by prev_id and repair by fetching the list again.
// DeviceList gives other servers a user's devices (at most 1000, with
// their display names) and the current stream ID, read before the
// devices (see DeviceList for why); 0 for a user with no change counted.
// Accounts whose devices predate migration 0102 have stream ID 0 until
// their next change; the stream IDs answered before it were hashes of
// the list, outside this sequence, and never announced in an EDU.
//
// Maintenance. Expired UIA sessions, login tokens and nonces are never
// honoured; Cleanup (or RunJanitor, in a goroutine the caller owns) deletes
// them in small batches.
package accounts
