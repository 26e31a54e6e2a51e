package cjson

import (
	"errors"
	"fmt"
	"math"
	"slices"
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

// maxNumberDigits bounds the text of any number, so that a literal such as
// 1e999999999 cannot make the decoder build a huge integer. It admits every
// integral double (the largest has 309 digits).
const maxNumberDigits = 320

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
	Offset int    // byte offset in the input
	Path   string // JSON path of the value, e.g. `content.users["@a:b"]` ("" is the top level)
	Msg    string
	kind   error // ErrSyntax or ErrNumber
}

func (e *SyntaxError) Error() string {
	where := e.Path
	if where == "" {
		where = "top level"
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
	start := d.pos
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
		slices.SortStableFunc(items, func(a, b Member) int { return strings.Compare(a.Key, b.Key) })
		for i := 1; i < len(items); i++ {
			if items[i].Key == items[i-1].Key {
				return Value{}, &SyntaxError{Offset: start, Msg: fmt.Sprintf("duplicate object key %q", items[i].Key), kind: ErrSyntax}
			}
		}
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
	exp := 0
	hasExp := false
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		hasExp = true
		i++
		expNeg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			expNeg = b[i] == '-'
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			d.pos = i
			return Value{}, d.errf("invalid number: expected a digit in the exponent")
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if exp < 1_000_000 {
				exp = exp*10 + int(b[i]-'0')
			}
			i++
		}
		if expNeg {
			exp = -exp
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

	if d.rules == Strict && (fracEnd != fracStart || hasExp) {
		// The value may be integral (1.0, 1e10), but the reference
		// implementation reads such literals as floats and rejects them;
		// accepting them would make us accept events other servers drop.
		return Value{}, d.numErr(start, "%s is written with a fraction or exponent (floats are not allowed)", text)
	}

	// Exact decimal analysis: digits × 10^e.
	digits := make([]byte, 0, intEnd-intStart+fracEnd-fracStart)
	digits = append(digits, b[intStart:intEnd]...)
	digits = append(digits, b[fracStart:fracEnd]...)
	e := exp - (fracEnd - fracStart)
	for len(digits) > 0 && digits[0] == '0' {
		digits = digits[1:]
	}
	for len(digits) > 0 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
		e++
	}
	if len(digits) == 0 {
		return Value{kind: Number, flag: 1}, nil // 0, -0, 0.0, 0e5 …
	}
	if e < 0 {
		if d.rules == Strict {
			return Value{}, d.numErr(start, "%s is not an integer (floats are not allowed)", text)
		}
		f, err := strconv.ParseFloat(string(text), 64)
		if err != nil || math.IsInf(f, 0) {
			return Value{}, d.numErr(start, "%s is out of the range of a double", text)
		}
		if f == math.Trunc(f) {
			// More digits than a double holds: the reference implementation
			// reads this as the integral double it rounds to.
			if math.Abs(f) < 1<<62 {
				return Value{kind: Number, flag: 1, num: int64(f)}, nil
			}
			return Value{kind: Number, str: strconv.FormatFloat(f, 'f', -1, 64)}, nil
		}
		return Value{kind: Number, str: formatFloat(f)}, nil
	}
	if len(digits)+e > maxNumberDigits {
		return Value{}, d.numErr(start, "%s has more than %d digits", text, maxNumberDigits)
	}
	full := make([]byte, 0, 1+len(digits)+e)
	if neg {
		full = append(full, '-')
	}
	full = append(full, digits...)
	for range e {
		full = append(full, '0')
	}
	n, err := strconv.ParseInt(string(full), 10, 64)
	if err == nil && n >= MinSafeInt && n <= MaxSafeInt {
		return Value{kind: Number, flag: 1, num: n}, nil
	}
	if d.rules == Strict {
		return Value{}, d.numErr(start, "integer %s is outside [-(2^53)+1, 2^53-1]", text)
	}
	if err == nil {
		return Value{kind: Number, flag: 1, num: n}, nil
	}
	return Value{kind: Number, str: string(full)}, nil
}

func (d *decoder) numErr(offset int, format string, args ...any) *SyntaxError {
	return &SyntaxError{Offset: offset, Msg: fmt.Sprintf(format, args...), kind: ErrNumber}
}

// formatFloat writes a non-integral double the way the reference
// implementation's JSON encoder does (Python repr): fixed notation for
// decimal exponents in [-4, 16), scientific with a signed two-digit exponent
// otherwise, shortest digits that round-trip.
func formatFloat(f float64) string {
	exp := 0
	if f != 0 {
		exp = int(math.Floor(math.Log10(math.Abs(f))))
		// Correct for rounding in Log10 using the shortest 'e' form.
		s := strconv.FormatFloat(f, 'e', -1, 64)
		if k := strings.IndexByte(s, 'e'); k >= 0 {
			exp, _ = strconv.Atoi(s[k+1:])
		}
	}
	if exp >= -4 && exp < 16 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'e', -1, 64)
}
