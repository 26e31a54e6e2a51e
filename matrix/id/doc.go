// Package id parses and validates Matrix identifiers (spec appendix
// "Identifier Grammar" and the room version grammar): server names, user
// IDs, room IDs, room aliases, event IDs, room version identifiers and the
// Common Namespaced Identifier Grammar.
//
// Each identifier is a string type ([ServerName], [UserID], [RoomID],
// [RoomAlias], [EventID]) so it costs nothing to store, compare, use as a
// map key or marshal as JSON. A Parse function validates a string and
// returns it typed; accessors slice the string without allocating. Parsing
// a valid identifier does not allocate. Converting an unchecked string to
// one of these types is allowed but skips validation; the accessors never
// panic, whatever the value.
//
// # What is accepted
//
//   - Server names follow the grammar exactly and are case-sensitive;
//     nothing is lowercased or normalised. IPv4 literals must have groups of
//     at most 255 (leading zeros are allowed and mean decimal); IPv6
//     literals must be real IPv6 addresses without zones; DNS names are
//     1-255 characters of A-Z, a-z, 0-9, '-' and '.', with the RFC 1123
//     label conventions and the 230-character recommendation not enforced
//     ("a..b" and "-x-" are accepted). Ports are 1-5 digits up to 65535.
//   - User IDs, room aliases, and room and event IDs with a server name split
//     at the first ':' after the sigil (a localpart cannot contain ':'; the
//     server name can, for its port or IPv6 literal). The localpart may be
//     empty and may hold any Unicode scalar value except NUL: this is the
//     historical user ID grammar that servers must still accept. The whole
//     identifier must be valid UTF-8 (surrogate code points encoded in
//     UTF-8 are invalid UTF-8 and are rejected) and at most [MaxIDLength]
//     (255) bytes.
//   - The current, strict user ID grammar (non-empty localpart of a-z, 0-9
//     and ._=-/+) is a separate check: [ValidateUserIDStrict] and
//     [UserID.IsCompliant]. Use it when creating users.
//   - Hash-form event IDs (room version 3 onwards) and room IDs (room
//     version 12 onwards) are the sigil and exactly 43 characters of
//     unpadded base64, the encoding of a 32-byte SHA-256 reference hash.
//     [ParseEventID] accepts either alphabet (but not both mixed in one ID);
//     [ValidateEventIDForFormat] insists on one room version's format.
//     [ParseRoomID] accepts only URL-safe base64 for hash room IDs. The
//     encoding must be canonical (the unused low bits of the last character
//     are zero), as any real hash's is, so each hash has exactly one ID.
//
// # What is not done
//
//   - No IDNA or punycode conversion: internationalised domain names must
//     already be in their ASCII ("xn--") form.
//   - No case folding or other normalisation of any identifier.
//   - No check that a room version is known, that a server name resolves,
//     or that a room or event ID suits a given room version beyond the
//     helpers above ([RoomID.IsHashDerived], [ValidateEventIDForFormat]).
//   - No mapping from other character sets onto user ID localparts.
//
// # Errors
//
// Every validation error is an [*Error] naming the kind of identifier, the
// input and what exactly is wrong, and matches one sentinel ([ErrTooLong],
// [ErrInvalidChar], [ErrPort], ...) with errors.Is. A bad server name inside
// another identifier wraps the server name's own *Error.
package id
