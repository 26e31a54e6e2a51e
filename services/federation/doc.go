// Package federation is the federation role's inbound side: the
// Server-Server API that other homeservers call (spec "Server-Server
// API").
//
// Every endpoint under /_matrix/federation/ except /version requires a
// signed request: the X-Matrix Authorization header is checked
// (matrix/xmatrix) against the origin's key, which services/keyserver
// finds, fetches and caches. A request whose header is missing, malformed,
// names another destination, or whose signature does not verify with a
// key the origin published is refused with 401 M_UNAUTHORIZED before any
// endpoint runs; the endpoint gets the authenticated origin and the body
// as read (bounded by Config.BodyLimit).
//
// The endpoints so far are the queries that need no room machinery:
// /query/profile and /query/directory. Transactions, joins, invites,
// backfill and the room reads come with the federated room pipeline.
//
// # What it must never do
//
// Run an endpoint for an unauthenticated request; trust an origin named
// anywhere but in a verified header; let one remote server's request
// affect another's (each request is bounded in size and time).
package federation
