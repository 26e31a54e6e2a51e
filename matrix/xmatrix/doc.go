// Package xmatrix owns the authentication of server-server requests (spec,
// server-server API, "Request Authentication"): the `X-Matrix` scheme of the
// Authorization header, the JSON object a request's signature covers, and
// signing and verifying that object for one request.
//
// # What it does
//
//   - [ParseHeader] reads an Authorization header value under RFC 9110's
//     auth-param syntax, as the spec requires: a case-insensitive scheme
//     name, one or more spaces, then comma-separated name=value parameters
//     with optional spaces and tabs around commas and '=', case-insensitive
//     names, values that are tokens or quoted-strings (backslash escapes
//     removed). As the spec asks for older senders, an unquoted value may
//     also contain ':'. Unknown parameters are ignored; any parameter given
//     twice is an error. origin, key and sig are required; destination is
//     optional on receipt (an empty [Header.Destination] means the sender
//     did not name one, and [Verify] then uses the receiver's own name).
//   - [Header.String] writes the form senders should use: lower-case names,
//     one space after the scheme, no spaces around commas, every value
//     quoted.
//   - [RequestJSON] builds the signed object {method, uri, origin,
//     destination, content}; [Sign] signs it as the origin server; [Verify]
//     checks the one signature the header names, and nothing else.
//
// Errors are matched with errors.Is against [ErrMalformedHeader],
// [ErrWrongDestination], [ErrUnknownKey] and [ErrBadSignature], which the
// HTTP layer maps to 401 M_UNAUTHORIZED (a request whose signature cannot be
// checked or does not verify, or that names another destination, which
// the spec requires to be denied with 401), and [ErrContentNotJSON] and
// [ErrInvalidRequest] for inputs that are not a well-formed request.
//
// # What it never does
//
// It does no I/O: it fetches no keys (the caller passes a [keys.KeyLookup]
// that answers from what it already holds), reads no clock (the caller
// passes the time at which the key must be valid), and has no globals and
// starts no goroutines. It does not decide which server names are ours or
// whether an origin is allowed to talk to us.
package xmatrix
