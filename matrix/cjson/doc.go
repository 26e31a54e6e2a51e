// Package cjson implements Matrix canonical JSON: a decoder that builds a
// compact value tree while enforcing a room version's number rules, and an
// encoder that writes the canonical form of that tree.
//
// Canonical JSON (spec appendix "Canonical JSON") is the shortest UTF-8
// encoding with object keys sorted by Unicode code point, no insignificant
// whitespace, only the escapes `\"`, `\\`, `\b`, `\t`, `\n`, `\f`, `\r` and
// lowercase `\u00XX` for other control characters, and integers only.
//
// # Decoding
//
// [Parse] reads any RFC 8259 JSON text into a [Value] in one pass. Objects are
// stored with their members sorted by key at parse time, so encoding never
// sorts again and lookups are binary searches. The [Rules] select how numbers
// are treated:
//
//   - [Strict] (room versions 6 and later, and everything that is not an
//     event): every number must be an integer in [-(2^53)+1, 2^53-1] written
//     without fraction or exponent. 1.0 and 1e10 are rejected although their
//     values are integral: the reference implementation reads them as floats
//     and drops such events, and a server that accepted them would split
//     rooms. (-0 is an integer literal and reads as 0.) Violations are
//     reported with the byte offset and the JSON path of the value.
//   - [Lenient] (room versions 1–5, whose history holds events that break
//     the integer rules): integer literals are kept exactly whatever their
//     size (up to 4,300 digits, the reference implementation's limit), and
//     any literal with a fraction or exponent is a float: read as an IEEE
//     double and written back as the reference implementation writes
//     floats (1.0, -0.0, 1e+16, 1.5e-07), so that hashes and signatures of
//     old rooms' events agree with other servers. Infinite values are
//     rejected.
//
// [Value.CheckStrict] applies the strict number rules to a tree, for a
// caller that parses leniently and removes parts that do not count first.
//
// Both rule sets reject invalid UTF-8, lone UTF-16 surrogates in `\u`
// escapes, and nesting deeper than [MaxDepth] (512: deeper than any real
// event needs; parsers of other servers differ here, from about 128 to
// about 1,000 levels, so no choice agrees with all of them). A repeated object key keeps
// its last value, as the reference implementation's parser does: rejecting
// it would drop events that other servers accept.
//
// # What it does not do
//
// It does not map JSON onto Go structs by reflection; callers read the tree
// with the accessors of [Value]. [Value] implements json.Marshaler and
// json.Unmarshaler (strict rules) so it can sit inside ordinary structs at
// the edges of the server.
package cjson
