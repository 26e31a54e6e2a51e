package roomserver

import (
	"encoding/json"
	"reflect"
	"testing"
)

// fill sets every field of v (a pointer), recursively, to a value that is
// not its zero value, so that an encoder that forgets a field is caught.
func fill(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString("s\"\\\n<é>" + string(rune('a'+*n%26)))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(-1000 - *n))
	case reflect.Uint64, reflect.Uint32, reflect.Uint:
		v.SetUint(uint64(1000 + *n))
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), n)
			}
		}
	case reflect.Slice:
		if v.Type() == reflect.TypeFor[json.RawMessage]() {
			v.SetBytes([]byte(`{"n":` + string(rune('0'+*n%10)) + `,"s":"x"}`))
			return
		}
		s := reflect.MakeSlice(v.Type(), 2, 2)
		fill(s.Index(0), n)
		fill(s.Index(1), n)
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k, n)
		fill(e, n)
		m.SetMapIndex(k, e)
		v.Set(m)
	default:
		panic("fill: " + v.Type().String())
	}
}

func sameJSON(t *testing.T, what string, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", what, err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %s\nwant %s", what, got, want)
	}
}

// The hand-written encoders say what encoding/json says, for messages with
// every field set (a field added later but not encoded fails this) and
// for ones with only the required fields.
func TestWireEncoders(t *testing.T) {
	var o Output
	n := 0
	fill(reflect.ValueOf(&o).Elem(), &n)
	want, err := json.Marshal(&o)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "full output", o.Encode(), want)
	o = Output{RoomID: "!r:x", RoomVersion: "12", EventID: "$e", PDU: json.RawMessage(`{"a":[1,2]}`)}
	want, _ = json.Marshal(&o)
	sameJSON(t, "minimal output", o.Encode(), want)
	o.PDU = nil
	want, _ = json.Marshal(&o)
	sameJSON(t, "output without PDU", o.Encode(), want)

	var in Input
	fill(reflect.ValueOf(&in).Elem(), &n)
	want, err = json.Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := in.Encode()
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "full input", got, want)
	for _, in := range []Input{{}, {RoomID: "!r:x", PDUs: []json.RawMessage{json.RawMessage(`{}`)}}, {Backfill: []json.RawMessage{json.RawMessage(`{"b":1}`)}}} {
		want, _ := json.Marshal(&in)
		got, err := in.Encode()
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, "sparse input", got, want)
	}
	if _, err := (&Input{RoomID: "!r:x", PDUs: []json.RawMessage{nil}}).Encode(); err == nil {
		t.Error("an empty PDU was encoded")
	}
}
