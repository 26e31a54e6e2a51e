package keys

import "crypto/ed25519"

// Go's ed25519.Verify accepts some keys and signatures that libsodium, which
// the reference implementation verifies with, refuses: public keys that are
// not canonical encodings or are points of small order, and signatures whose
// R is a point of small order. With such a key a server could make
// signatures that verify here and nowhere else (a small-order key even lets
// anyone forge them). verifyStrict refuses the same inputs libsodium does.

// smallOrder lists the encodings of the points of order 1, 2, 4 and 8 (and
// the non-canonical encodings p and p+1 of y), compared with the sign bit of
// the last byte cleared. TestSmallOrderBlocklist derives them.
var smallOrder = [7][32]byte{
	{},     // y = 0: order 4
	{0x01}, // y = 1: the identity, order 1
	{0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
		0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05}, // order 8
	{0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
		0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a}, // order 8
	fieldEnc(0xec), // y = p-1: order 2
	fieldEnc(0xed), // y = p (non-canonical 0): order 4
	fieldEnc(0xee), // y = p+1 (non-canonical 1): order 1
}

// fieldEnc returns the little-endian encoding of 2^255 - 19 - 0xed + low.
func fieldEnc(low byte) [32]byte {
	var b [32]byte
	b[0] = low
	for i := 1; i < 31; i++ {
		b[i] = 0xff
	}
	b[31] = 0x7f
	return b
}

// hasSmallOrder reports whether the encoding is in the blocklist.
func hasSmallOrder(s []byte) bool {
	for _, bad := range &smallOrder {
		diff := (s[31] & 0x7f) ^ bad[31]
		for i := 0; i < 31; i++ {
			diff |= s[i] ^ bad[i]
		}
		if diff == 0 {
			return true
		}
	}
	return false
}

// isCanonical reports whether the encoded y is below p = 2^255 - 19.
func isCanonical(s []byte) bool {
	if s[31]&0x7f != 0x7f || s[0] < 0xed {
		return true
	}
	for i := 1; i < 31; i++ {
		if s[i] != 0xff {
			return true
		}
	}
	return false
}

// CheckPublicKey reports whether an ed25519 public key is one that
// signatures can be verified with: 32 bytes, canonically encoded, not of
// small order. Key servers' answers should be checked with it when keys are
// stored.
func CheckPublicKey(pub ed25519.PublicKey) bool {
	return len(pub) == ed25519.PublicKeySize && isCanonical(pub) && !hasSmallOrder(pub)
}

// verifyStrict is ed25519.Verify with libsodium's extra refusals.
func verifyStrict(pub ed25519.PublicKey, msg, sig []byte) bool {
	if len(sig) != ed25519.SignatureSize || !CheckPublicKey(pub) || hasSmallOrder(sig[:32]) {
		return false
	}
	return ed25519.Verify(pub, msg, sig)
}
