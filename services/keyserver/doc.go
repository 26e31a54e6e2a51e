// Package keyserver owns signing keys between servers: it publishes this
// server's keys, finds and remembers other servers' keys, and acts as a
// notary for them.
//
// # This server's keys
//
// GET /_matrix/key/v2/server answers a document listing the keys in use
// (verify_keys; each of them signs the document) and the keys rotated out
// (old_verify_keys, with the time each stopped being used; see
// internal/signingkey and axon key rotate). The document says it is valid
// for Config.Validity (default one day) and is signed again once half of
// that has passed, so a notary that caches it for half its lifetime, as the
// spec asks, never serves it expired.
//
// # Other servers' keys
//
// Service.Keys answers "which key is K of server S, and until when does it
// verify signatures" for a batch of such questions, from a bounded memory
// cache, then the database (shared by every worker), then the network:
// first the server itself (GET /_matrix/key/v2/server), then the trusted
// notaries of Config.Notaries in order (POST /_matrix/key/v2/query) for
// whatever is still missing. A document is accepted only when it is signed
// by its own server with the keys it lists, names the server asked for and,
// when it came from a notary, carries a valid signature of that notary by
// a configured key. A key in use verifies until the lesser of the
// document's valid_until_ts and seven days after it was fetched; an old key
// until its expired_ts. A key missing or not valid for the time asked
// about is fetched again, but one server is asked at most once per
// Config.RefetchInterval (default one minute) by each process, or once
// per Config.UnknownKeyRefetchInterval (default 5 s) when the key ID asked
// for was never seen (the server has just rotated its key); concurrent
// questions about the same server share one fetch.
//
// # The notary
//
// GET /_matrix/key/v2/query/{serverName} and POST /_matrix/key/v2/query
// answer with the newest document this server holds for each server
// asked about (fetching it first when it is missing or expires before the
// requested minimum_valid_until_ts), with this server's signature added. A
// server that cannot be reached is answered from the stored document, even
// an expired one, so that old signatures can still be checked; one never
// seen is left out. A bulk query names at most MaxQueryServers servers.
//
// # What it must never do
//
// Trust a key that its server did not sign; ask other notaries on behalf
// of a notary query (a notary answers from its own view, so that two
// notaries asked cannot be the same one twice); keep an unbounded cache;
// log key material.
package keyserver
