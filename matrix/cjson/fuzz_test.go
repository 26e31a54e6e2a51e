package cjson

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzParse checks that the decoder never panics, that canonical output is a
// fixed point, and that whatever it accepts the standard library accepts too
// with the same meaning.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,-2,{"b":"\u00e9\n"}],"c":null}`, `[true,false,1e2,0.5]`,
		`"\ud83d\ude00"`, `{"b":1,"a":2}`, `-0`, `123456789012345678901234`, `{"a":"x","a":"y"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, r := range []Rules{Strict, Lenient} {
			v, err := Parse(data, r)
			if err != nil {
				continue
			}
			c := v.Canonical()
			v2, err := Parse(c, r)
			if err != nil {
				t.Fatalf("canonical output %q does not parse: %v", c, err)
			}
			if c2 := v2.Canonical(); !bytes.Equal(c, c2) {
				t.Fatalf("not a fixed point: %q -> %q", c, c2)
			}
			if !v.Equal(v2) {
				t.Fatalf("round trip changed the value: %q", c)
			}
			if !json.Valid(c) {
				t.Fatalf("canonical output is not JSON: %q", c)
			}
			var a, b any
			if json.Unmarshal(data, &a) == nil && json.Unmarshal(c, &b) == nil && r == Strict {
				if !reflect.DeepEqual(a, b) {
					t.Fatalf("meaning changed: %q vs %q", data, c)
				}
			}
		}
	})
}

func FuzzCanonicalLen(f *testing.F) {
	f.Add([]byte(`{"a":[1,"\u0001\n",{"b":null,"c":false}],"d":-12}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Parse(data, Lenient)
		if err != nil {
			return
		}
		if got, want := v.CanonicalLen(), len(v.Canonical()); got != want {
			t.Fatalf("CanonicalLen %d, encoding has %d bytes", got, want)
		}
	})
}
