package id

import (
	"net/netip"
	"strconv"
	"strings"
)

// Limits of the server name grammar.
const (
	maxDNSName     = 255 // dns-name = 1*255dns-char
	maxIPv6Literal = 45  // IPv6address = 2*45IPv6char (without the brackets)
	maxPortDigits  = 5   // port = 1*5DIGIT
)

// ServerName is a homeserver's name: hostname [":" port], where hostname is
// a dotted-quad IPv4 literal, a bracketed IPv6 literal or a DNS name.
//
// Server names are case-sensitive: "example.org" and "EXAMPLE.org" are
// different names, and nothing here folds case. Values obtained from
// [ParseServerName] (or from the Server method of a parsed identifier) are
// valid; the accessors never panic on other values, but their results are
// then unspecified.
type ServerName string

// ParseServerName validates s against the server name grammar.
//
//   - An IPv4 literal is four groups of 1-3 decimal digits, each at most
//     255. Leading zeros are allowed by the grammar and are read as decimal
//     ("010.0.0.1" is 10.0.0.1, never octal); see [ServerName.IP].
//   - An IPv6 literal must parse as an IPv6 address (RFC 4291 text form,
//     including the embedded-IPv4 form); zones ("%eth0") are not allowed,
//     and neither is an IPv4 address in brackets.
//   - Anything else is a DNS name: 1-255 characters of A-Z, a-z, 0-9, '-'
//     and '.'. The label conventions of RFC 1123 (no empty labels, no
//     leading or trailing '-') are only a recommendation in the spec and are
//     not enforced, and neither are the recommended 230-character limit and
//     lowercase. A name made only of digits and dots that is not a dotted
//     quad, such as "1.2.3" or "1.2.3.4.5", is a DNS name by the grammar.
//   - The optional port is 1-5 decimal digits with a value of at most 65535.
//     Port 0 and leading zeros are allowed by the grammar and accepted.
func ParseServerName(s string) (ServerName, error) {
	if err := checkServerName(s); err != nil {
		return "", err
	}
	return ServerName(s), nil
}

// checkServerName validates s; errors have Kind KindServerName.
func checkServerName(s string) *Error {
	if s == "" {
		return newError(KindServerName, s, ErrEmpty, "server name is empty")
	}
	var rest string
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return newError(KindServerName, s, ErrIPLiteral, "IPv6 literal has no closing ']'")
		}
		if err := checkIPv6(s, s[1:end]); err != nil {
			return err
		}
		rest = s[end+1:]
		if rest != "" && rest[0] != ':' {
			return newError(KindServerName, s, ErrInvalidChar, "unexpected "+describeChar(s, end+1)+
				" at byte "+strconv.Itoa(end+1)+" after the IPv6 literal (expected ':' and a port)")
		}
	} else {
		end, err := checkHostname(s)
		if err != nil {
			return err
		}
		rest = s[end:]
	}
	if rest == "" {
		return nil
	}
	return checkPort(s, rest[1:], len(s)-len(rest)+1)
}

// checkHostname validates the DNS name or IPv4 literal at the start of s,
// which ends at the first ':' (returned as end) or at the end of s.
func checkHostname(s string) (end int, err *Error) {
	digitsAndDots := true
	for ; end < len(s); end++ {
		c := s[end]
		switch {
		case '0' <= c && c <= '9', c == '.':
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '-':
			digitsAndDots = false
		case c == ':':
			goto done
		default:
			return 0, newError(KindServerName, s, ErrInvalidChar, "hostname contains "+describeChar(s, end)+
				" at byte "+strconv.Itoa(end)+" (only A-Z, a-z, 0-9, '-' and '.' are allowed)")
		}
	}
done:
	host := s[:end]
	if host == "" {
		return 0, newError(KindServerName, s, ErrEmpty, "hostname is empty")
	}
	if len(host) > maxDNSName {
		return 0, newError(KindServerName, s, ErrTooLong, "hostname is "+strconv.Itoa(len(host))+
			" bytes long (max "+strconv.Itoa(maxDNSName)+")")
	}
	if !digitsAndDots {
		return end, nil
	}
	octets, ok := splitIPv4(host)
	if !ok {
		return end, nil // digits and dots, but not a dotted quad: a dns-name
	}
	for _, o := range octets {
		if o > 255 {
			return 0, newError(KindServerName, s, ErrIPLiteral, "IPv4 address component "+
				strconv.Itoa(o)+" is out of range (0-255)")
		}
	}
	return end, nil
}

// splitIPv4 matches the IPv4address production (four dot-separated groups
// of 1-3 digits) and returns the groups' decimal values, which may exceed
// 255. ok is false when host is not of that shape.
func splitIPv4(host string) (octets [4]int, ok bool) {
	n, digits := 0, 0
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case '0' <= c && c <= '9':
			if digits == 3 {
				return octets, false
			}
			octets[n] = octets[n]*10 + int(c-'0')
			digits++
		case c == '.' && digits > 0 && n < 3:
			n++
			digits = 0
		default:
			return octets, false
		}
	}
	return octets, n == 3 && digits > 0
}

// checkIPv6 validates the text between the brackets of an IPv6 literal.
func checkIPv6(s, addr string) *Error {
	if len(addr) < 2 || len(addr) > maxIPv6Literal {
		return newError(KindServerName, s, ErrIPLiteral, "IPv6 literal must be 2-"+
			strconv.Itoa(maxIPv6Literal)+" characters long, not "+strconv.Itoa(len(addr)))
	}
	for i := 0; i < len(addr); i++ {
		c := addr[i]
		if !isHexDigit(c) && c != ':' && c != '.' {
			return newError(KindServerName, s, ErrIPLiteral, "IPv6 literal contains "+
				describeChar(s, i+1)+" at byte "+strconv.Itoa(i+1)+
				" (only hexadecimal digits, ':' and '.' are allowed)")
		}
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return newError(KindServerName, s, ErrIPLiteral, "not a valid IPv6 address")
	}
	if !ip.Is6() {
		return newError(KindServerName, s, ErrIPLiteral, "IPv4 address in brackets (only IPv6 literals are bracketed)")
	}
	return nil
}

// checkPort validates the digits after the ':' (at byte offset off of s).
func checkPort(s, port string, off int) *Error {
	if port == "" {
		return newError(KindServerName, s, ErrPort, "port is empty after ':'")
	}
	for i := 0; i < len(port); i++ {
		if c := port[i]; c < '0' || c > '9' {
			reason := "port contains " + describeChar(s, off+i) + " at byte " + strconv.Itoa(off+i) +
				" (only digits are allowed)"
			if c == ':' {
				reason += "; IPv6 literals must be enclosed in '[' and ']'"
			}
			return newError(KindServerName, s, ErrPort, reason)
		}
	}
	if len(port) > maxPortDigits {
		return newError(KindServerName, s, ErrPort, "port has "+strconv.Itoa(len(port))+
			" digits (max "+strconv.Itoa(maxPortDigits)+")")
	}
	if v, _ := parsePort(port); v > 65535 {
		return newError(KindServerName, s, ErrPort, "port "+port+" is out of range (max 65535)")
	}
	return nil
}

// parsePort reads 1-5 decimal digits; ok is false otherwise.
func parsePort(p string) (v int, ok bool) {
	if p == "" || len(p) > maxPortDigits {
		return 0, false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// String returns the server name.
func (s ServerName) String() string { return string(s) }

// split returns the hostname and the text after the port's ':' (hasPort
// reports whether there is such a ':').
func (s ServerName) split() (host, port string, hasPort bool) {
	str := string(s)
	if str != "" && str[0] == '[' {
		end := strings.IndexByte(str, ']')
		if end < 0 {
			return str, "", false
		}
		host, rest := str[:end+1], str[end+1:]
		if rest != "" && rest[0] == ':' {
			return host, rest[1:], true
		}
		return host, "", false
	}
	if i := strings.IndexByte(str, ':'); i >= 0 {
		return str[:i], str[i+1:], true
	}
	return str, "", false
}

// Host returns the hostname without the port, exactly as written; an IPv6
// literal keeps its brackets ("[1234:5678::abcd]"). Use [ServerName.IP] for
// the address itself.
func (s ServerName) Host() string {
	h, _, _ := s.split()
	return h
}

// Port returns the explicit port, if the server name has one.
func (s ServerName) Port() (uint16, bool) {
	_, p, has := s.split()
	if !has {
		return 0, false
	}
	v, ok := parsePort(p)
	if !ok || v > 65535 {
		return 0, false
	}
	return uint16(v), true
}

// IsIPLiteral reports whether the hostname is an IPv4 or IPv6 literal
// rather than a DNS name.
func (s ServerName) IsIPLiteral() bool {
	_, ok := s.IP()
	return ok
}

// IP returns the address of an IP-literal hostname. IPv4 groups are read as
// decimal even with leading zeros. ok is false for DNS names.
func (s ServerName) IP() (addr netip.Addr, ok bool) {
	h, _, _ := s.split()
	if len(h) >= 2 && h[0] == '[' && h[len(h)-1] == ']' {
		ip, err := netip.ParseAddr(h[1 : len(h)-1])
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return netip.Addr{}, false
		}
		return ip, true
	}
	octets, ok := splitIPv4(h)
	if !ok {
		return netip.Addr{}, false
	}
	var b [4]byte
	for i, o := range octets {
		if o > 255 {
			return netip.Addr{}, false
		}
		b[i] = byte(o)
	}
	return netip.AddrFrom4(b), true
}
