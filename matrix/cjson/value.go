package cjson

import (
	"slices"
	"strconv"
	"strings"
)

// Kind is the JSON type of a Value.
type Kind uint8

// The JSON kinds. The zero Value is Invalid: it stands for "absent".
const (
	Invalid Kind = iota
	Null
	Bool
	Number
	String
	Array
	Object
)

func (k Kind) String() string {
	switch k {
	case Null:
		return "null"
	case Bool:
		return "boolean"
	case Number:
		return "number"
	case String:
		return "string"
	case Array:
		return "array"
	case Object:
		return "object"
	}
	return "absent"
}

// Value is an immutable JSON value. Objects keep their members sorted by key
// (byte order of UTF-8, which is Unicode code point order) with no
// duplicates. The zero Value means "absent" and reports Kind Invalid.
type Value struct {
	kind Kind
	// flags: for Bool, 1 means true; for Number, 1 means the value is an
	// integer held in num, 0 means a non-canonical number held as text in str.
	flag  uint8
	num   int64
	str   string
	items []Member // array elements (Key empty) or object members
}

// Member is one key/value pair of an object (or, with an empty key, one
// element of an array).
type Member struct {
	Key   string
	Value Value
}

// NullValue returns JSON null.
func NullValue() Value { return Value{kind: Null} }

// BoolValue returns a JSON boolean.
func BoolValue(b bool) Value {
	v := Value{kind: Bool}
	if b {
		v.flag = 1
	}
	return v
}

// IntValue returns a JSON integer. Callers building canonical JSON must keep
// it within [MinSafeInt, MaxSafeInt].
func IntValue(i int64) Value { return Value{kind: Number, flag: 1, num: i} }

// StringValue returns a JSON string. s must be valid UTF-8.
func StringValue(s string) Value { return Value{kind: String, str: s} }

// ArrayValue returns a JSON array of the given elements.
func ArrayValue(elems ...Value) Value {
	items := make([]Member, len(elems))
	for i, e := range elems {
		items[i].Value = e
	}
	return Value{kind: Array, items: items}
}

// StringArray returns a JSON array of strings.
func StringArray(elems []string) Value {
	items := make([]Member, len(elems))
	for i, e := range elems {
		items[i].Value = StringValue(e)
	}
	return Value{kind: Array, items: items}
}

// ObjectValue returns a JSON object of the given members. Members are sorted
// by key; when a key repeats, the last member wins (as when building a map).
// Members whose value is absent (Kind Invalid) are dropped.
func ObjectValue(members ...Member) Value {
	items := make([]Member, 0, len(members))
	for _, m := range members {
		if m.Value.kind != Invalid {
			items = append(items, m)
		}
	}
	return Value{kind: Object, items: sortMembers(items)}
}

// sortMembers sorts members by key in place and keeps, of members with the
// same key, the last one; it returns the shortened slice.
func sortMembers(items []Member) []Member {
	slices.SortStableFunc(items, func(a, b Member) int { return strings.Compare(a.Key, b.Key) })
	out := items[:0]
	for i, m := range items {
		if i+1 < len(items) && items[i+1].Key == m.Key {
			continue
		}
		out = append(out, m)
	}
	clear(items[len(out):])
	return out
}

// Kind reports the JSON type of v.
func (v Value) Kind() Kind { return v.kind }

// Exists reports whether v is present (not the zero Value).
func (v Value) Exists() bool { return v.kind != Invalid }

// IsNull reports whether v is JSON null.
func (v Value) IsNull() bool { return v.kind == Null }

// Bool returns the boolean and whether v is one.
func (v Value) Bool() (bool, bool) { return v.flag == 1, v.kind == Bool }

// Int returns the integer and whether v is a number that fits an int64.
func (v Value) Int() (int64, bool) { return v.num, v.kind == Number && v.flag == 1 }

// Str returns the string and whether v is one.
func (v Value) Str() (string, bool) { return v.str, v.kind == String }

// StrOr returns the string, or def when v is not a string.
func (v Value) StrOr(def string) string {
	if v.kind == String {
		return v.str
	}
	return def
}

// NumberText returns the canonical text of a number value.
func (v Value) NumberText() string {
	if v.kind != Number {
		return ""
	}
	return string(v.AppendCanonical(nil))
}

// Len returns the number of elements of an array or members of an object.
func (v Value) Len() int { return len(v.items) }

// Index returns the i-th element of an array (absent if out of range).
func (v Value) Index(i int) Value {
	if v.kind != Array || i < 0 || i >= len(v.items) {
		return Value{}
	}
	return v.items[i].Value
}

// Elems returns an iterator-free view of an array's elements as members with
// empty keys, or of an object's members in key order. Callers must not
// modify the returned slice.
func (v Value) Elems() []Member {
	if v.kind != Array && v.kind != Object {
		return nil
	}
	return v.items
}

// Members returns the members of an object in key order (nil for any other
// kind). Callers must not modify the returned slice.
func (v Value) Members() []Member {
	if v.kind != Object {
		return nil
	}
	return v.items
}

// Get returns the member of an object with the given key (absent if v is not
// an object or has no such key).
func (v Value) Get(key string) Value {
	if v.kind != Object {
		return Value{}
	}
	i, ok := slices.BinarySearchFunc(v.items, key, func(m Member, k string) int { return strings.Compare(m.Key, k) })
	if !ok {
		return Value{}
	}
	return v.items[i].Value
}

// Has reports whether an object has a member with the key.
func (v Value) Has(key string) bool { return v.Get(key).kind != Invalid }

// Path follows object keys from v.
func (v Value) Path(keys ...string) Value {
	for _, k := range keys {
		v = v.Get(k)
	}
	return v
}

// Strings returns the elements of an array of strings, and false if v is not
// an array or any element is not a string.
func (v Value) Strings() ([]string, bool) {
	if v.kind != Array {
		return nil, false
	}
	out := make([]string, len(v.items))
	for i, m := range v.items {
		s, ok := m.Value.Str()
		if !ok {
			return nil, false
		}
		out[i] = s
	}
	return out, true
}

// Keep returns a copy of object v holding only the members whose key
// satisfies keep. The members are shared, not copied. For any other kind it
// returns v.
func (v Value) Keep(keep func(key string) bool) Value {
	if v.kind != Object {
		return v
	}
	items := make([]Member, 0, len(v.items))
	for _, m := range v.items {
		if keep(m.Key) {
			items = append(items, m)
		}
	}
	return Value{kind: Object, items: items}
}

// Without returns a copy of object v without the given keys.
func (v Value) Without(keys ...string) Value {
	return v.Keep(func(k string) bool { return !slices.Contains(keys, k) })
}

// With returns a copy of object v with key set to val (replacing any member
// with that key). When val is absent the key is removed. For any other kind
// it returns v unchanged.
func (v Value) With(key string, val Value) Value {
	if v.kind != Object {
		return v
	}
	i, found := slices.BinarySearchFunc(v.items, key, func(m Member, k string) int { return strings.Compare(m.Key, k) })
	items := make([]Member, 0, len(v.items)+1)
	items = append(items, v.items[:i]...)
	if val.kind != Invalid {
		items = append(items, Member{Key: key, Value: val})
	}
	if found {
		i++
	}
	items = append(items, v.items[i:]...)
	return Value{kind: Object, items: items}
}

// Equal reports whether two values are the same JSON value.
func (v Value) Equal(w Value) bool {
	if v.kind != w.kind || v.flag != w.flag || v.num != w.num || v.str != w.str || len(v.items) != len(w.items) {
		return false
	}
	for i := range v.items {
		if v.items[i].Key != w.items[i].Key || !v.items[i].Value.Equal(w.items[i].Value) {
			return false
		}
	}
	return true
}

// CheckStrict reports the first number in v (in key order) that the Strict
// rules forbid — a float, or an integer outside [MinSafeInt, MaxSafeInt] —
// with its JSON path, or nil. It lets a caller parse leniently, drop parts
// that do not count (such as an event's unsigned data), and then enforce
// the strict rules on the rest.
func (v Value) CheckStrict() error {
	switch v.kind {
	case Number:
		if v.flag != 1 {
			return &SyntaxError{Offset: -1, Msg: v.str + " is not an integer in [-(2^53)+1, 2^53-1]", kind: ErrNumber}
		}
		if v.num < MinSafeInt || v.num > MaxSafeInt {
			return &SyntaxError{Offset: -1, Msg: v.NumberText() + " is outside [-(2^53)+1, 2^53-1]", kind: ErrNumber}
		}
	case Array:
		for i, m := range v.items {
			if err := m.Value.CheckStrict(); err != nil {
				return within(err, "["+strconv.Itoa(i)+"]")
			}
		}
	case Object:
		for _, m := range v.items {
			if err := m.Value.CheckStrict(); err != nil {
				return within(err, keyStep(m.Key))
			}
		}
	}
	return nil
}
