// Package matrix is the root of Axon's Matrix protocol core. It holds no code
// of its own besides cross-package benchmarks; the work is in its
// sub-packages, each pure (no I/O, no goroutines, no mutable globals) so that
// they can be fuzzed and benchmarked in isolation:
//
//   - cjson: canonical JSON decoding (per room version number rules) and
//     encoding.
//   - id: user IDs (including historical ones), room IDs (including v12
//     hash-derived ones), event IDs, aliases, server names.
//   - keys: unpadded base64, ed25519 signing keys and the Synapse-compatible
//     key file, signing and verifying JSON.
//   - roomversion: room versions 1–12 as data.
//   - event: PDUs of every room version: parsing and validation, event IDs,
//     content and reference hashes, signing, verification, redaction.
//   - auth: the authorisation rules of every room version.
//   - stateres: state resolution v1, v2 and v2.1.
//
// Imports flow downward only: nothing here imports services/ or internal/.
package matrix
