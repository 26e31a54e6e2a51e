package xmatrix

import (
	"errors"
	"fmt"
	"strings"

	"github.com/axon-hs/axon/matrix/id"
	"github.com/axon-hs/axon/matrix/keys"
)

// Scheme is the authorization scheme of Matrix server-server requests.
const Scheme = "X-Matrix"

// ErrMalformedHeader is matched by every error about an Authorization
// header that is not a usable X-Matrix header.
var ErrMalformedHeader = errors.New("malformed X-Matrix Authorization header")

// Header is the content of an `Authorization: X-Matrix ...` header.
type Header struct {
	// Origin is the sending server's name.
	Origin string
	// Destination is the receiving server's name as the sender gave it;
	// empty when the header had no destination parameter (servers before
	// spec v1.3 did not send one).
	Destination string
	// Key is the ID of the origin's key that made Sig.
	Key keys.KeyID
	// Sig is the signature as sent: unpadded base64, not yet decoded.
	Sig string
}

// ParseHeader parses an Authorization header value of the X-Matrix scheme.
// Every error matches ErrMalformedHeader; its message says what was wrong.
func ParseHeader(value string) (Header, error) {
	p := parser{s: value}
	p.skipOWS()
	scheme := p.token(false)
	if !strings.EqualFold(scheme, Scheme) {
		if scheme == "" {
			return Header{}, p.errorf("expected the scheme %s, found %s", Scheme, p.describe())
		}
		return Header{}, malformed("scheme %q is not %s", scheme, Scheme)
	}
	if p.eof() || p.s[p.pos] != ' ' {
		return Header{}, p.errorf("expected a space after %s, found %s", Scheme, p.describe())
	}
	for !p.eof() && p.s[p.pos] == ' ' {
		p.pos++
	}

	var (
		h                                      Header
		key                                    string
		seenOrigin, seenDest, seenKey, seenSig bool
		seenOther                              map[string]struct{}
	)
	for {
		// Elements of the list, with empty elements skipped (RFC 9110
		// section 5.6.1).
		p.skipOWS()
		if p.eof() {
			break
		}
		if p.s[p.pos] == ',' {
			p.pos++
			continue
		}
		start := p.pos
		name := p.token(false)
		if name == "" {
			return Header{}, p.errorf("expected a parameter name, found %s", p.describe())
		}
		p.skipOWS()
		if p.eof() || p.s[p.pos] != '=' {
			return Header{}, p.errorf("expected '=' after parameter %q, found %s", name, p.describe())
		}
		p.pos++
		p.skipOWS()
		val, err := p.value()
		if err != nil {
			return Header{}, fmt.Errorf("%w (parameter %q)", err, name)
		}

		var seen *bool
		var dst *string
		switch {
		case strings.EqualFold(name, "origin"):
			seen, dst = &seenOrigin, &h.Origin
		case strings.EqualFold(name, "destination"):
			seen, dst = &seenDest, &h.Destination
		case strings.EqualFold(name, "key"):
			seen, dst = &seenKey, &key
		case strings.EqualFold(name, "sig"):
			seen, dst = &seenSig, &h.Sig
		default:
			// Unknown parameters are ignored, but like every parameter
			// may appear only once (RFC 9110 section 11.2).
			lower := strings.ToLower(name)
			if _, dup := seenOther[lower]; dup {
				return Header{}, malformed("parameter %q at byte %d appears twice", name, start)
			}
			if seenOther == nil {
				seenOther = map[string]struct{}{}
			}
			seenOther[lower] = struct{}{}
		}
		if seen != nil {
			if *seen {
				return Header{}, malformed("parameter %q at byte %d appears twice", name, start)
			}
			*seen = true
			*dst = val
		}

		p.skipOWS()
		if p.eof() {
			break
		}
		if p.s[p.pos] != ',' {
			return Header{}, p.errorf("expected ',' after the value of %q, found %s", name, p.describe())
		}
		p.pos++
	}

	for _, req := range []struct {
		name string
		seen bool
	}{{"origin", seenOrigin}, {"key", seenKey}, {"sig", seenSig}} {
		if !req.seen {
			return Header{}, malformed("missing the %s parameter", req.name)
		}
	}
	if seenDest && h.Destination == "" {
		return Header{}, malformed("destination is empty")
	}
	h.Key = keys.KeyID(key)
	if err := h.check(); err != nil {
		return Header{}, err
	}
	return h, nil
}

// check validates the fields of h: server names, key ID and the signature's
// alphabet. Destination may be empty.
func (h Header) check() error {
	if _, err := id.ParseServerName(h.Origin); err != nil {
		return fmt.Errorf("%w: origin: %w", ErrMalformedHeader, err)
	}
	if h.Destination != "" {
		if _, err := id.ParseServerName(h.Destination); err != nil {
			return fmt.Errorf("%w: destination: %w", ErrMalformedHeader, err)
		}
	}
	if _, err := keys.ParseKeyID(string(h.Key)); err != nil {
		return fmt.Errorf("%w: key: %w", ErrMalformedHeader, err)
	}
	if h.Sig == "" {
		return malformed("sig is empty")
	}
	// Base64 of either alphabet, padded or not, as keys.DecodeBase64
	// accepts; whether it decodes to a signature is Verify's question.
	for i := 0; i < len(h.Sig); i++ {
		if c := h.Sig[i]; !isBase64Char(c) {
			return malformed("sig has %q at byte %d, which is not a base64 character", c, i)
		}
	}
	return nil
}

// String formats h as senders should: `X-Matrix origin="...",
// destination="...",key="...",sig="..."` with no space after the commas,
// every value quoted and `"` and `\` escaped. The destination parameter is
// left out when Destination is empty. For every Header that ParseHeader
// returns, ParseHeader(h.String()) returns h again; a hand-built Header with
// control characters (other than tab) in a field has no such form.
func (h Header) String() string {
	var b strings.Builder
	b.Grow(len(Scheme) + len(h.Origin) + len(h.Destination) + len(h.Key) + len(h.Sig) + 48)
	b.WriteString(Scheme)
	b.WriteString(" origin=")
	writeQuoted(&b, h.Origin)
	if h.Destination != "" {
		b.WriteString(",destination=")
		writeQuoted(&b, h.Destination)
	}
	b.WriteString(",key=")
	writeQuoted(&b, string(h.Key))
	b.WriteString(",sig=")
	writeQuoted(&b, h.Sig)
	return b.String()
}

func writeQuoted(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedHeader, fmt.Sprintf(format, args...))
}

// parser reads a header value byte by byte.
type parser struct {
	s   string
	pos int
}

func (p *parser) eof() bool { return p.pos >= len(p.s) }

func (p *parser) errorf(format string, args ...any) error {
	return malformed(format, args...)
}

// describe names what is at the current position, for error messages.
func (p *parser) describe() string {
	if p.eof() {
		return "the end of the header"
	}
	return fmt.Sprintf("%q at byte %d", p.s[p.pos], p.pos)
}

// skipOWS skips optional whitespace: spaces and horizontal tabs.
func (p *parser) skipOWS() {
	for !p.eof() && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

// token reads 1*tchar (also ':' when colon is set) and returns "" when
// there is none.
func (p *parser) token(colon bool) string {
	start := p.pos
	for !p.eof() && (isTchar(p.s[p.pos]) || colon && p.s[p.pos] == ':') {
		p.pos++
	}
	return p.s[start:p.pos]
}

// value reads a parameter value: a quoted-string, or a token in which ':'
// is also allowed (the spec asks recipients to accept unquoted colons from
// older senders).
func (p *parser) value() (string, error) {
	if p.eof() {
		return "", p.errorf("expected a value, found the end of the header")
	}
	if p.s[p.pos] != '"' {
		v := p.token(true)
		if v == "" {
			return "", p.errorf("expected a token or a quoted string, found %s", p.describe())
		}
		return v, nil
	}
	open := p.pos
	p.pos++
	start := p.pos
	var b *strings.Builder // only when the string has escapes
	for !p.eof() {
		c := p.s[p.pos]
		switch {
		case c == '"':
			v := p.s[start:p.pos]
			if b != nil {
				b.WriteString(v)
				v = b.String()
			}
			p.pos++
			return v, nil
		case c == '\\':
			if b == nil {
				b = new(strings.Builder)
			}
			b.WriteString(p.s[start:p.pos])
			p.pos++
			if p.eof() {
				return "", p.errorf("quoted string opened at byte %d ends with a lone backslash", open)
			}
			if e := p.s[p.pos]; !isQuotedPairChar(e) {
				return "", p.errorf("%q at byte %d cannot be escaped in a quoted string", e, p.pos)
			}
			start = p.pos // the escaped byte is kept
			p.pos++
		case isQdtext(c):
			p.pos++
		default:
			return "", p.errorf("%q at byte %d is not allowed in a quoted string", c, p.pos)
		}
	}
	return "", p.errorf("quoted string opened at byte %d is not closed", open)
}

// isTchar reports whether c may appear in an RFC 9110 token.
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// isQdtext reports whether c may appear unescaped in a quoted-string.
func isQdtext(c byte) bool {
	return c == '\t' || c == ' ' || c == 0x21 || 0x23 <= c && c <= 0x5b || 0x5d <= c && c <= 0x7e || c >= 0x80
}

// isQuotedPairChar reports whether c may follow a backslash.
func isQuotedPairChar(c byte) bool {
	return c == '\t' || c == ' ' || 0x21 <= c && c <= 0x7e || c >= 0x80
}

func isBase64Char(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c == '+' || c == '/' || c == '-' || c == '_' || c == '='
}
