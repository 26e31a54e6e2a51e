// Package discovery owns how this server reaches another one: it resolves
// a server name to the addresses to connect to, the Host header to send
// and the name the server's certificate must be valid for, exactly as the
// spec's "Resolving server names" (server-server API) says, and it carries
// federation requests over verified TLS with bounded connection pools.
//
// # Resolution
//
// [Resolver.Resolve] follows the spec's steps in order; [Result.Method]
// says which one applied:
//
//  1. An IP literal ("192.0.2.1", "[2001:db8::1]:8448") is dialled as is,
//     on its port or 8448. Host is the server name as written; the
//     certificate must be valid for the IP address (no SNI is sent).
//  2. A hostname with a port is looked up (CNAME, AAAA, A) and dialled on
//     that port. Host is hostname:port, the certificate is for hostname.
//  3. Otherwise https://<hostname>/.well-known/matrix/server is fetched.
//     A valid document delegates to its m.server, which is handled like
//     steps 1 and 2 when it is an IP literal or has a port (Host and
//     certificate from the delegated name), and else through SRV
//     _matrix-fed._tcp, then the deprecated _matrix._tcp, then AAAA/A on
//     8448, with Host and certificate the delegated hostname — never an
//     SRV target.
//  4. Without a valid well-known: SRV _matrix-fed._tcp.<hostname>, then
//     _matrix._tcp.<hostname>, then AAAA/A on 8448; Host and certificate
//     are the hostname.
//
// SRV records are used in the order the DNS resolver gives (priority, then
// weight); a target of "." or a port of 0 counts as no record. An SRV
// lookup that fails other than with "not found" (a timeout, SERVFAIL) is
// an error rather than a reason to fall through, so a DNS blip never sends
// traffic to where the operator did not point it. A Result lists at most
// 32 addresses. Names, delegated names included, are checked against the
// server name grammar (matrix/id); a bad name given to Resolve is an
// ErrInvalidServerName error, a bad delegated name makes the well-known
// invalid.
//
// # Well-known fetches and their cache
//
// A fetch verifies TLS with the configured roots, follows at most 10
// redirects (https only, no loops), reads at most 64 KiB of body, and is
// bounded by Config.WellKnownTimeout (10 s); at most Config.MaxFetches (64)
// run at once. Any failure — network or TLS error, timeout, a status other
// than 200, a body that is not a JSON object with a string "m.server" in
// the server name grammar — means "no well-known", as the spec says; the
// Content-Type is not checked.
//
// The outcome is cached per hostname, in a least-recently-used map of at
// most Config.CacheSize (10,000) hostnames, on the injected clock:
//
//   - a delegation for Cache-Control max-age (less Age), else Expires,
//     else 24 h; never less than 5 min (no-store and no-cache included,
//     so that a hostname is not fetched on every request) nor more than
//     48 h, the spec's recommended maximum;
//   - a failure for 2 min, doubling with each consecutive failure up to
//     1 h (the spec recommends caching errors for up to an hour and
//     backing off exponentially); a success resets the streak, and so does
//     an hour without fetching.
//
// Concurrent resolutions of one hostname share one fetch, which runs
// detached from their contexts: a caller that gives up does not fail the
// others. [Resolver.Close] stops the fetches and waits for them. DNS
// answers are not cached here.
//
// # Transport
//
// [Transport] is the http.RoundTripper of the federation client. A
// request's URL is matrix-fed://<server name>/<path> ([Scheme]): the
// transport resolves the server name, sends the Result's Host header, and
// dials the Result's addresses in order (TransportConfig.DialTimeout per
// address) with TLS: ServerName is the Result's TLSName, the roots those
// of the Resolver. No proxy is used. HTTP/1.1 only. Connections are pooled per destination (server
// name and delegation) and bounded: MaxConnsPerDestination (8) per
// destination, MaxConns (512) in total, counted from the start of a dial
// until the connection closes. A dial beyond MaxConns waits until a
// connection closes or its request's context ends; idle connections hold
// at most MaxIdleConns (MaxConns/2) of the slots, so waiting dials
// progress as requests finish. Idle connections close after
// IdleConnTimeout (90 s); [Transport.CloseIdleConnections] closes them all
// at shutdown.
//
// # What it never does
//
// Skip or weaken certificate verification (there is no option for it);
// follow a well-known redirect to plain http; keep an unbounded cache, an
// unbounded number of connections or of fetches; panic on a malformed
// name or document. It does not filter the addresses it dials (private or
// loopback ranges): that policy belongs to the caller.
package discovery
