package cjson

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The range of integers that canonical JSON allows.
const (
	MaxSafeInt = 1<<53 - 1
	MinSafeInt = -(1<<53 - 1)
)

// MaxDepth is the deepest nesting of arrays and objects that Parse accepts.
const MaxDepth = 512

// maxIntegerDigits bounds integer literals, as the reference
// implementation's integer parsing does (Python's default limit).
const maxIntegerDigits = 4300

// Rules select how the decoder treats numbers.
type Rules uint8

const (
	// Strict enforces canonical JSON: integers in [MinSafeInt, MaxSafeInt]
	// only. Used for room versions 6 and later and for all non-event JSON.
	Strict Rules = iota
	// Lenient accepts integers of any size and non-integral numbers, as
	// room versions 1–5 require.
	Lenient
)

// ErrSyntax is matched (errors.Is) by every error that Parse returns.
var ErrSyntax = errors.New("invalid JSON")

// ErrNumber is matched by errors about numbers that the rules forbid.
var ErrNumber = errors.New("number not allowed in canonical JSON")

// SyntaxError describes why JSON was rejected and where.
type SyntaxError struct {
	Offset int    // byte offset in the input; -1 when found in a tree (CheckStrict)
	Path   string // JSON path of the value, e.g. `content.users["@a:b"]` ("" is the top level)
	Msg    string
	kind   error // ErrSyntax or ErrNumber
}

func (e *SyntaxError) Error() string {
	where := e.Path
	if where == "" {
		where = "top level"
	}
	if e.Offset < 0 {
		return fmt.Sprintf("%s at %s: %s", e.kind, where, e.Msg)
	}
	return fmt.Sprintf("%s at byte %d (%s): %s", e.kind, e.Offset, where, e.Msg)
}

// Is makes errors.Is(err, ErrSyntax) true for every SyntaxError and
// errors.Is(err, ErrNumber) true for number violations.
func (e *SyntaxError) Is(target error) bool {
	return target == ErrSyntax || target == e.kind
}

// Parse decodes one JSON text under the given rules.
func Parse(data []byte, rules Rules) (Value, error) {
	// One copy of the input backs every unescaped string of the tree.
	d := decoder{data: data, src: string(data), rules: rules}
	d.skipSpace()
	v, err := d.value(0)
	if err != nil {
		return Value{}, err
	}
	d.skipSpace()
	if d.pos != len(d.data) {
		return Value{}, d.errf("unexpected %s after the top-level value", d.describe())
	}
	return v, nil
}

// ParseString is Parse for a string input.
func ParseString(s string, rules Rules) (Value, error) { return Parse([]byte(s), rules) }

// Canonicalize parses data under the rules and returns its canonical form.
func Canonicalize(data []byte, rules Rules) ([]byte, error) {
	v, err := Parse(data, rules)
	if err != nil {
		return nil, err
	}
	return v.AppendCanonical(make([]byte, 0, len(data))), nil
}

type decoder struct {
	data  []byte
	src   string // data as a string, sliced for strings without escapes
	pos   int
	rules Rules
	stack []Member // members of the objects and arrays being read
}

// take pops the members pushed since base into an exactly sized slice.
func (d *decoder) take(base int) []Member {
	items := make([]Member, len(d.stack)-base)
	copy(items, d.stack[base:])
	clear(d.stack[base:])
	d.stack = d.stack[:base]
	return items
}

func (d *decoder) errf(format string, args ...any) *SyntaxError {
	return &SyntaxError{Offset: d.pos, Msg: fmt.Sprintf(format, args...), kind: ErrSyntax}
}

func (d *decoder) describe() string {
	if d.pos >= len(d.data) {
		return "end of input"
	}
	c := d.data[d.pos]
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("character %q", c)
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

func (d *decoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// within prefixes a path step to an error's path as it unwinds.
func within(err error, step string) error {
	var se *SyntaxError
	if errors.As(err, &se) {
		if se.Path == "" || se.Path[0] == '[' {
			se.Path = step + se.Path
		} else {
			se.Path = step + "." + se.Path
		}
	}
	return err
}

func keyStep(k string) string {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return "[" + strconv.Quote(k) + "]"
		}
	}
	if k == "" {
		return `[""]`
	}
	return k
}

func (d *decoder) value(depth int) (Value, error) {
	if d.pos >= len(d.data) {
		return Value{}, d.errf("unexpected end of input, expected a value")
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		return d.object(depth + 1)
	case c == '[':
		return d.array(depth + 1)
	case c == '"':
		s, err := d.str()
		return Value{kind: String, str: s}, err
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	case c == 't':
		return d.literal("true", Value{kind: Bool, flag: 1})
	case c == 'f':
		return d.literal("false", Value{kind: Bool})
	case c == 'n':
		return d.literal("null", Value{kind: Null})
	}
	return Value{}, d.errf("unexpected %s, expected a value", d.describe())
}

func (d *decoder) literal(word string, v Value) (Value, error) {
	if !strings.HasPrefix(string(d.data[d.pos:min(len(d.data), d.pos+len(word))]), word) {
		return Value{}, d.errf("unexpected %s, expected %q", d.describe(), word)
	}
	d.pos += len(word)
	return v, nil
}

func (d *decoder) object(depth int) (Value, error) {
	if depth > MaxDepth {
		return Value{}, d.errf("nesting deeper than %d", MaxDepth)
	}
	d.pos++ // '{'
	d.skipSpace()
	base := len(d.stack)
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return Value{kind: Object, items: []Member{}}, nil
	}
	sorted := true
	for {
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return Value{}, d.errf("unexpected %s, expected an object key", d.describe())
		}
		key, err := d.str()
		if err != nil {
			return Value{}, err
		}
		d.skipSpace()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return Value{}, within(d.errf("unexpected %s, expected ':'", d.describe()), keyStep(key))
		}
		d.pos++
		d.skipSpace()
		v, err := d.value(depth)
		if err != nil {
			return Value{}, within(err, keyStep(key))
		}
		if n := len(d.stack); n > base && d.stack[n-1].Key >= key {
			sorted = false
		}
		d.stack = append(d.stack, Member{Key: key, Value: v})
		d.skipSpace()
		if d.pos < len(d.data) && d.data[d.pos] == ',' {
			d.pos++
			d.skipSpace()
			continue
		}
		if d.pos < len(d.data) && d.data[d.pos] == '}' {
			d.pos++
			break
		}
		return Value{}, d.errf("unexpected %s in object, expected ',' or '}'", d.describe())
	}
	items := d.take(base)
	if !sorted {
		// A repeated key keeps its last value, as the reference
		// implementation's parser (and encoding/json) do; rejecting it
		// would drop events other servers accept.
		items = sortMembers(items)
	}
	return Value{kind: Object, items: items}, nil
}

func (d *decoder) array(depth int) (Value, error) {
	if depth > MaxDepth {
		return Value{}, d.errf("nesting deeper than %d", MaxDepth)
	}
	d.pos++ // '['
	d.skipSpace()
	base := len(d.stack)
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		return Value{kind: Array, items: []Member{}}, nil
	}
	for {
		v, err := d.value(depth)
		if err != nil {
			return Value{}, within(err, "["+strconv.Itoa(len(d.stack)-base)+"]")
		}
		d.stack = append(d.stack, Member{Value: v})
		d.skipSpace()
		if d.pos < len(d.data) && d.data[d.pos] == ',' {
			d.pos++
			d.skipSpace()
			continue
		}
		if d.pos < len(d.data) && d.data[d.pos] == ']' {
			d.pos++
			return Value{kind: Array, items: d.take(base)}, nil
		}
		return Value{}, d.errf("unexpected %s in array, expected ',' or ']'", d.describe())
	}
}

// str reads a string starting at the opening quote.
func (d *decoder) str() (string, error) {
	d.pos++ // '"'
	start := d.pos
	// Fast path: no escapes.
	for i := d.pos; i < len(d.data); {
		c := d.data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			return d.src[start:i], nil
		case c == '\\':
			return d.strSlow(start, i)
		case c < 0x20:
			d.pos = i
			return "", d.errf("unescaped control character 0x%02x in string", c)
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(d.data[i:])
			if r == utf8.RuneError && size <= 1 {
				d.pos = i
				return "", d.errf("invalid UTF-8 in string")
			}
			i += size
		}
	}
	d.pos = len(d.data)
	return "", d.errf("unterminated string")
}

func (d *decoder) strSlow(start, i int) (string, error) {
	buf := make([]byte, 0, i-start+16)
	buf = append(buf, d.data[start:i]...)
	for i < len(d.data) {
		c := d.data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			return string(buf), nil
		case c == '\\':
			if i+1 >= len(d.data) {
				d.pos = i
				return "", d.errf("unterminated escape")
			}
			e := d.data[i+1]
			i += 2
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := hex4(d.data, i)
				if !ok {
					d.pos = i - 2
					return "", d.errf(`invalid \u escape`)
				}
				i += 4
				if utf16.IsSurrogate(r) {
					r2, ok2 := rune(0), false
					if i+6 <= len(d.data) && d.data[i] == '\\' && d.data[i+1] == 'u' {
						r2, ok2 = hex4(d.data, i+2)
					}
					dec := utf16.DecodeRune(r, r2)
					if !ok2 || dec == utf8.RuneError {
						d.pos = i - 6
						return "", d.errf(`lone UTF-16 surrogate \u%04x`, r)
					}
					i += 6
					r = dec
				}
				buf = utf8.AppendRune(buf, r)
			default:
				d.pos = i - 2
				return "", d.errf("invalid escape \\%c", e)
			}
		case c < 0x20:
			d.pos = i
			return "", d.errf("unescaped control character 0x%02x in string", c)
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			i++
		default:
			r, size := utf8.DecodeRune(d.data[i:])
			if r == utf8.RuneError && size <= 1 {
				d.pos = i
				return "", d.errf("invalid UTF-8 in string")
			}
			buf = append(buf, d.data[i:i+size]...)
			i += size
		}
	}
	d.pos = len(d.data)
	return "", d.errf("unterminated string")
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// number reads a JSON number and applies the rules.
func (d *decoder) number() (Value, error) {
	start := d.pos
	b := d.data
	i := d.pos
	neg := false
	if b[i] == '-' {
		neg = true
		i++
	}
	intStart := i
	if i < len(b) && b[i] == '0' {
		i++
	} else if i < len(b) && b[i] >= '1' && b[i] <= '9' {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	} else {
		d.pos = i
		return Value{}, d.errf("invalid number: expected a digit")
	}
	intEnd := i
	fracStart, fracEnd := i, i
	if i < len(b) && b[i] == '.' {
		i++
		fracStart = i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		fracEnd = i
		if fracEnd == fracStart {
			d.pos = i
			return Value{}, d.errf("invalid number: expected a digit after '.'")
		}
	}
	hasExp := false
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		hasExp = true
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			d.pos = i
			return Value{}, d.errf("invalid number: expected a digit in the exponent")
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	d.pos = i
	text := b[start:i]

	// Plain integer: the common case.
	if fracEnd == fracStart && !hasExp && intEnd-intStart <= 16 {
		n, _ := strconv.ParseInt(string(b[intStart:intEnd]), 10, 64)
		if neg {
			n = -n
		}
		if n >= MinSafeInt && n <= MaxSafeInt {
			return Value{kind: Number, flag: 1, num: n}, nil
		}
	}

	if fracEnd == fracStart && !hasExp {
		// An integer literal: kept exactly, whatever its size, as the
		// reference implementation's integers are.
		if intEnd-intStart > maxIntegerDigits {
			return Value{}, d.numErr(start, "integer has %d digits, more than %d", intEnd-intStart, maxIntegerDigits)
		}
		n, err := strconv.ParseInt(string(text), 10, 64)
		if err == nil && n >= MinSafeInt && n <= MaxSafeInt {
			return Value{kind: Number, flag: 1, num: n}, nil
		}
		if d.rules == Strict {
			return Value{}, d.numErr(start, "integer %s is outside [-(2^53)+1, 2^53-1]", clip(text))
		}
		if err == nil {
			return Value{kind: Number, flag: 1, num: n}, nil
		}
		return Value{kind: Number, str: string(text)}, nil
	}
	if d.rules == Strict {
		// Even 1.0 and 1e10: the reference implementation reads any
		// literal with a fraction or exponent as a float and rejects it, so
		// accepting them would make us accept events other servers drop.
		return Value{}, d.numErr(start, "%s is written with a fraction or exponent (floats are not allowed)", clip(text))
	}
	// Lenient: a float, read as an IEEE double and written back the way
	// the reference implementation writes floats, so that hashes and
	// signatures over old rooms' events agree.
	f, _ := strconv.ParseFloat(string(text), 64)
	if math.IsInf(f, 0) {
		return Value{}, d.numErr(start, "%s is out of the range of a double", clip(text))
	}
	return Value{kind: Number, str: formatFloat(f)}, nil
}

func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:37]) + "..."
	}
	return string(b)
}

func (d *decoder) numErr(offset int, format string, args ...any) *SyntaxError {
	return &SyntaxError{Offset: offset, Msg: fmt.Sprintf(format, args...), kind: ErrNumber}
}

// formatFloat writes a double as Python's repr does (the reference
// implementation's JSON encoder): the shortest digits that round-trip, in
// fixed notation with at least one decimal (1.0, 0.0001, -0.0) for decimal
// exponents in [-4, 16), otherwise in scientific notation with a signed,
// at least two-digit exponent (1e+16, 1.5e-07).
func formatFloat(f float64) string {
	if f == 0 {
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	s := strconv.FormatFloat(f, 'e', -1, 64)
	exp, _ := strconv.Atoi(s[strings.IndexByte(s, 'e')+1:])
	if exp < -4 || exp >= 16 {
		return s
	}
	t := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(t, ".") {
		t += ".0"
	}
	return t
}
