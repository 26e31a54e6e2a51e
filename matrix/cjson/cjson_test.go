package cjson

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// The examples of the spec's appendix "Canonical JSON".
func TestSpecExamples(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{}`, `{}`},
		{"{\n  \"one\": 1,\n  \"two\": \"Two\"\n}", `{"one":1,"two":"Two"}`},
		{`{"b": "2", "a": "1"}`, `{"a":"1","b":"2"}`},
		{`{"b":"2","a":"1"}`, `{"a":"1","b":"2"}`},
		{`{"auth":{"success":true,"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"medium":"email","address":"john.doe@example.org"},{"medium":"msisdn","address":"123456789"}]}}}`,
			`{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},"success":true}}`},
		{`{"a": "日本語"}`, `{"a":"日本語"}`},
		{`{"本": 2, "日": 1}`, `{"日":1,"本":2}`},
		{`{"a": "\u65E5"}`, `{"a":"日"}`},
		{`{"a": null}`, `{"a":null}`},
		{`{"a": -0, "b": 1e10}`, `{"a":0,"b":10000000000}`},
	}
	for i, c := range cases {
		rules := []Rules{Strict, Lenient}
		if i == len(cases)-1 {
			// 1e10 is a float literal, which strict decoding refuses (see
			// TestNumbers); the canonical form of the value is the spec's.
			rules = rules[1:]
		}
		for _, r := range rules {
			got, err := Canonicalize([]byte(c.in), r)
			if err != nil {
				t.Fatalf("Canonicalize(%s): %v", c.in, err)
			}
			if string(got) != c.want {
				t.Errorf("Canonicalize(%s) = %s, want %s", c.in, got, c.want)
			}
		}
	}
}

func TestEscaping(t *testing.T) {
	cases := []struct{ in, want string }{
		{`"\u0000\u0001\u001f"`, `"\u0000\u0001\u001f"`},
		{`"\b\t\n\f\r"`, `"\b\t\n\f\r"`},
		{`"\u0008\u0009\u000A\u000c\u000D"`, `"\b\t\n\f\r"`},
		{`"\"\\\/"`, `"\"\\/"`},
		{`"\u007f\u2028\u00e9"`, "\"\x7f\u2028é\""},
		{`"\ud83d\ude00"`, `"😀"`},
		{`"\u000B\u001F"`, `"\u000b\u001f"`},
	}
	for _, c := range cases {
		got, err := Canonicalize([]byte(c.in), Strict)
		if err != nil {
			t.Fatalf("Canonicalize(%s): %v", c.in, err)
		}
		if string(got) != c.want {
			t.Errorf("Canonicalize(%s) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestNumbers(t *testing.T) {
	cases := []struct {
		in      string
		strict  string // "" means rejected
		lenient string
	}{
		{`9007199254740991`, `9007199254740991`, `9007199254740991`},
		{`-9007199254740991`, `-9007199254740991`, `-9007199254740991`},
		{`9007199254740992`, ``, `9007199254740992`},
		{`-9007199254740992`, ``, `-9007199254740992`},
		{`123456789012345678901234567890`, ``, `123456789012345678901234567890`},
		{`1.5`, ``, `1.5`},
		{`1.0`, ``, `1`},
		{`2.50e1`, ``, `25`},
		{`0.1`, ``, `0.1`},
		{`1e-7`, ``, `1e-07`},
		{`-0.0`, ``, `0`},
		{`-0`, `0`, `0`},
		{`100e-2`, ``, `1`},
		{`1E2`, ``, `100`},
		{`1e16`, ``, `10000000000000000`},
		{`1e999999999`, ``, ``},
		{`1e300`, ``, `1` + strings.Repeat("0", 300)},
		{`1e400`, ``, ``},
	}
	for _, c := range cases {
		got, err := Canonicalize([]byte(c.in), Strict)
		if c.strict == "" {
			if err == nil || !errors.Is(err, ErrNumber) {
				t.Errorf("Strict %s: got %s, %v; want an ErrNumber", c.in, got, err)
			}
		} else if err != nil || string(got) != c.strict {
			t.Errorf("Strict %s = %s, %v; want %s", c.in, got, err, c.strict)
		}
		got, err = Canonicalize([]byte(c.in), Lenient)
		if c.lenient == "" {
			if err == nil {
				t.Errorf("Lenient %s: got %s, want an error", c.in, got)
			}
		} else if err != nil || string(got) != c.lenient {
			t.Errorf("Lenient %s = %s, %v; want %s", c.in, got, err, c.lenient)
		}
	}
}

func TestErrorsSayWhere(t *testing.T) {
	cases := []struct {
		in, path string
		number   bool
	}{
		{`{"content":{"users":{"@a:b":1.5}}}`, `content.users["@a:b"]`, true},
		{`{"a":[1,2,{"b":1e300}]}`, `a[2].b`, true},
		{`[0, 9007199254740992]`, `[1]`, true},
		{`{"a":"x","a":"y"}`, ``, false},
		{`{"a":tru}`, `a`, false},
		{`{"a":"\ud800"}`, `a`, false},
		{"{\"a\":\"\xff\"}", `a`, false},
		{"{\"a\":\"x\ny\"}", `a`, false},
		{`{"a":1} x`, ``, false},
		{`{"a":01}`, ``, false},
		{`{"a":1,}`, ``, false},
		{``, ``, false},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.in), Strict)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q) = %v, want a SyntaxError", c.in, err)
			continue
		}
		if se.Path != c.path {
			t.Errorf("Parse(%q): path %q, want %q (%v)", c.in, se.Path, c.path, err)
		}
		if errors.Is(err, ErrNumber) != c.number || !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q): error class wrong: %v", c.in, err)
		}
	}
}

func TestDepthLimit(t *testing.T) {
	ok := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	if _, err := Parse([]byte(ok), Strict); err != nil {
		t.Fatalf("depth %d rejected: %v", MaxDepth, err)
	}
	deep := "[" + ok + "]"
	if _, err := Parse([]byte(deep), Strict); err == nil {
		t.Fatalf("depth %d accepted", MaxDepth+1)
	}
}

func TestBuildAndAccess(t *testing.T) {
	v := ObjectValue(
		Member{"z", IntValue(1)},
		Member{"a", StringArray([]string{"x", "y"})},
		Member{"m", ObjectValue(Member{"k", BoolValue(true)})},
		Member{"gone", Value{}},
	)
	if got := v.String(); got != `{"a":["x","y"],"m":{"k":true},"z":1}` {
		t.Fatalf("built %s", got)
	}
	if b, ok := v.Path("m", "k").Bool(); !ok || !b {
		t.Errorf("Path(m,k) = %v %v", b, ok)
	}
	if v.Get("nope").Exists() {
		t.Errorf("absent key exists")
	}
	w := v.With("b", NullValue()).Without("z")
	if got := w.String(); got != `{"a":["x","y"],"b":null,"m":{"k":true}}` {
		t.Errorf("With/Without = %s", got)
	}
	if got := string(v.AppendCanonicalWithout(nil, "a", "z")); got != `{"m":{"k":true}}` {
		t.Errorf("AppendCanonicalWithout = %s", got)
	}
	if got := v.String(); got != `{"a":["x","y"],"m":{"k":true},"z":1}` {
		t.Errorf("original changed: %s", got)
	}
	p, err := ParseString(v.String(), Strict)
	if err != nil || !p.Equal(v) {
		t.Errorf("round trip: %v %v", p, err)
	}
}

func TestJSONInterop(t *testing.T) {
	var s struct {
		V Value `json:"v"`
	}
	if err := json.Unmarshal([]byte(`{"v":{"b":1,"a":[true,null]}}`), &s); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(s)
	if err != nil || string(out) != `{"v":{"a":[true,null],"b":1}}` {
		t.Fatalf("Marshal = %s, %v", out, err)
	}
	if err := json.Unmarshal([]byte(`{"v":1.5}`), &s); !errors.Is(err, ErrNumber) {
		t.Fatalf("Unmarshal of a float = %v", err)
	}
}
