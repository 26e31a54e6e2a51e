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
	}
	for _, c := range cases {
		for _, r := range []Rules{Strict, Lenient} {
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

// The spec's last example, {"a": -0, "b": 1e10} → {"a":0,"b":10000000000},
// is the one place Axon deliberately differs. 1e10 is a float literal: the
// strict rules (v6+, and all non-event JSON) reject it, as other servers do;
// the lenient rules (v1–5) write it as the reference implementation writes
// the float it reads, 10000000000.0, because the hashes and signatures of
// old rooms' events were computed over that form.
func TestSpecExampleWithFloat(t *testing.T) {
	in := []byte(`{"a": -0, "b": 1e10}`)
	if _, err := Canonicalize(in, Strict); !errors.Is(err, ErrNumber) {
		t.Errorf("Strict accepted 1e10: %v", err)
	}
	if got, err := Canonicalize(in, Lenient); err != nil || string(got) != `{"a":0,"b":10000000000.0}` {
		t.Errorf("Lenient = %s, %v", got, err)
	}
	if got, err := Canonicalize([]byte(`{"a": -0, "b": 10000000000}`), Strict); err != nil || string(got) != `{"a":0,"b":10000000000}` {
		t.Errorf("integer form = %s, %v", got, err)
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
		lenient string // "" means rejected
	}{
		{`9007199254740991`, `9007199254740991`, `9007199254740991`},
		{`-9007199254740991`, `-9007199254740991`, `-9007199254740991`},
		{`9007199254740992`, ``, `9007199254740992`},
		{`-9007199254740992`, ``, `-9007199254740992`},
		{`123456789012345678901234567890`, ``, `123456789012345678901234567890`},
		{`-0`, `0`, `0`},
		// Floats, written as Python's repr writes them.
		{`1.5`, ``, `1.5`},
		{`1.0`, ``, `1.0`},
		{`1e2`, ``, `100.0`},
		{`1E2`, ``, `100.0`},
		{`2.50e1`, ``, `25.0`},
		{`100e-2`, ``, `1.0`},
		{`0.1`, ``, `0.1`},
		{`0.0001`, ``, `0.0001`},
		{`1e-5`, ``, `1e-05`},
		{`1.5e-7`, ``, `1.5e-07`},
		{`-0.0`, ``, `-0.0`},
		{`0e5`, ``, `0.0`},
		{`1e15`, ``, `1000000000000000.0`},
		{`1e16`, ``, `1e+16`},
		{`1.5e300`, ``, `1.5e+300`},
		{`1.00000000000000000001`, ``, `1.0`},
		{`123456789012345678.0`, ``, `1.2345678901234568e+17`},
		{`1e-400`, ``, `0.0`},
		{`1e400`, ``, ``},
		{`1e999999999`, ``, ``},
		{strings.Repeat("9", 4300), ``, strings.Repeat("9", 4300)},
		{strings.Repeat("9", 4301), ``, ``},
	}
	for _, c := range cases {
		got, err := Canonicalize([]byte(c.in), Strict)
		if c.strict == "" {
			if err == nil || !errors.Is(err, ErrNumber) {
				t.Errorf("Strict %.20s: got %.20s, %v; want an ErrNumber", c.in, got, err)
			}
		} else if err != nil || string(got) != c.strict {
			t.Errorf("Strict %.20s = %.20s, %v; want %.20s", c.in, got, err, c.strict)
		}
		got, err = Canonicalize([]byte(c.in), Lenient)
		if c.lenient == "" {
			if err == nil {
				t.Errorf("Lenient %.20s: got %.20s, want an error", c.in, got)
			}
		} else if err != nil || string(got) != c.lenient {
			t.Errorf("Lenient %.20s = %.20s, %v; want %.20s", c.in, got, err, c.lenient)
		}
	}
	// Floats are not integers.
	v, _ := ParseString(`5.0`, Lenient)
	if _, ok := v.Int(); ok || v.NumberText() != "5.0" {
		t.Errorf("5.0: Int ok=%v text %q", ok, v.NumberText())
	}
}

func TestCheckStrict(t *testing.T) {
	v, err := ParseString(`{"a":[1,{"b":2}],"c":{"d":[3,1.5]},"e":9007199254740993}`, Lenient)
	if err != nil {
		t.Fatal(err)
	}
	err = v.CheckStrict()
	var se *SyntaxError
	if !errors.As(err, &se) || !errors.Is(err, ErrNumber) || se.Path != "c.d[1]" {
		t.Fatalf("CheckStrict = %v", err)
	}
	if err := v.Without("c").CheckStrict(); err == nil || !strings.Contains(err.Error(), "at e:") {
		t.Errorf("CheckStrict without c = %v", err)
	}
	if err := v.Without("c", "e").CheckStrict(); err != nil {
		t.Errorf("CheckStrict of a strict tree = %v", err)
	}
}

func TestDuplicateKeysKeepTheLast(t *testing.T) {
	got, err := Canonicalize([]byte(`{"b":1,"a":2,"b":3,"a":{"x":1,"x":[2]}}`), Strict)
	if err != nil || string(got) != `{"a":{"x":[2]},"b":3}` {
		t.Errorf("got %s, %v", got, err)
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
