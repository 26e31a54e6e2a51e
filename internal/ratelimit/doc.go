// Package ratelimit is per-key request rate limiting for Axon's HTTP APIs:
// a bounded, sharded set of token buckets ([Limiter]), an HTTP middleware
// that answers the spec's 429 M_LIMIT_EXCEEDED with Retry-After and
// retry_after_ms ([Middleware]), and the client address to key it by when
// the server sits behind reverse proxies ([ClientIP], [IPKey]).
//
// # What it owns
//
//   - The token-bucket arithmetic. Each key's bucket is stored as a single
//     "theoretical arrival time" (the generic cell rate algorithm, GCRA),
//     which is exactly a token bucket of Config.Burst tokens refilled at
//     Config.Rate per second, computed in integer nanoseconds: the
//     retryAfter that a refusal reports is exact, so a client that waits
//     that long is admitted, and one that retries a nanosecond earlier is
//     not.
//   - The bound on memory: at most Config.MaxKeys buckets are tracked.
//     Keys are spread over shards by a seeded hash; each shard evicts its
//     least recently used bucket when it is full. A bucket that has refilled
//     completely carries no information, so evicting an idle one loses
//     nothing; evicting a bucket that is still draining grants that key a
//     fresh burst, which only happens when more than MaxKeys keys are active
//     at once (size MaxKeys for the expected number of active keys). There
//     is no background sweeper goroutine.
//   - Which address a request comes from when X-Forwarded-For can be
//     trusted (see [ClientIP]).
//
// Per-user limits are the caller's business: key a Limiter by the
// authenticated user ID inside the handler (after auth), and key the
// pre-auth Limiter by [IPKey] in [Middleware].
//
// # What it must never do
//
//   - Grow without bound, or start goroutines: memory is O(MaxKeys), and
//     the hot path is one hash, one shard lock and no allocation for a key
//     already tracked.
//   - Trust a client-supplied header by default: X-Forwarded-For is read
//     only when the immediate peer is a configured trusted proxy.
//   - Know about users, rooms or endpoints: the caller chooses the key and
//     the limits. It does not import services/.
//   - Hold global state: every Limiter carries its own clock and config.
package ratelimit
