package auth

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/axon-hs/axon/matrix/roomversion"
)

func TestParseStringLevel(t *testing.T) {
	valid := map[string]int64{
		"100": 100, "000100": 100, "+100": 100, "-100": -100, " 100 ": 100, " 00100 ": 100,
		" +100 ": 100, " -100 ": -100, "\t\n50\r\n": 50, "\u00a050\u2003": 50, "0": 0, "-0": 0, "+0": 0,
		"9223372036854775807": math.MaxInt64, "-9223372036854775808": math.MinInt64,
		"99999999999999999999": math.MaxInt64, "-99999999999999999999": math.MinInt64,
		"0000000000000000000000000000042": 42,
	}
	for s, want := range valid {
		l, ok := parseStringLevel(s)
		if !ok || l.int64() != want {
			t.Errorf("parseStringLevel(%q) = %v, %v; want %d", s, l, ok, want)
		}
	}
	invalid := []string{"", " ", "+", "-", "+-1", "--1", "- 1", "1 0", "1.0", "1e2", "0x10", "1__0", "_1", "1_", "50a", "a50", "∞", "NaN"}
	for _, s := range invalid {
		if l, ok := parseStringLevel(s); ok {
			t.Errorf("parseStringLevel(%q) = %v, want invalid", s, l)
		}
	}
	// Exactness beyond int64.
	a, _ := parseStringLevel("99999999999999999999")
	b, _ := parseStringLevel("99999999999999999998")
	if a.cmp(b) != 1 || b.cmp(a) != -1 || a.cmp(a) != 0 || a.String() != "99999999999999999999" {
		t.Errorf("exact comparison beyond int64 failed: %v %v", a, b)
	}
}

func TestParseLevelByVersion(t *testing.T) {
	type row struct {
		json  string
		v1    valueStatus // v1–5
		v6    valueStatus // v6–9
		v10   valueStatus // v10+
		value int64       // when valid
	}
	rows := []row{
		{json: `50`, v1: valueOK, v6: valueOK, v10: valueOK, value: 50},
		{json: `-9007199254740991`, v1: valueOK, v6: valueOK, v10: valueOK, value: -9007199254740991},
		{json: `"50"`, v1: valueOK, v6: valueOK, v10: valueInvalid, value: 50},
		{json: `" -07 "`, v1: valueOK, v6: valueOK, v10: valueInvalid, value: -7},
		{json: `50.57`, v1: valueOK, v6: valueInvalid, v10: valueInvalid, value: 50},
		{json: `-50.57`, v1: valueOK, v6: valueInvalid, v10: valueInvalid, value: -50},
		{json: `5.114698E4`, v1: valueOK, v6: valueInvalid, v10: valueInvalid, value: 51146},
		{json: `1e2`, v1: valueOK, v6: valueInvalid, v10: valueInvalid, value: 100}, // a float literal
		{json: `0.5`, v1: valueOK, v6: valueInvalid, v10: valueInvalid, value: 0},
		{json: `1e19`, v1: valueOK, v6: valueInvalid, v10: valueInvalid, value: math.MaxInt64},
		{json: `-1e19`, v1: valueOK, v6: valueInvalid, v10: valueInvalid, value: math.MinInt64},
		{json: `1.5e300`, v1: valueOK, v6: valueInvalid, v10: valueInvalid, value: math.MaxInt64},
		{json: `123456789012345678901234567890`, v1: valueOK, v6: valueInvalid, v10: valueInvalid, value: math.MaxInt64},
		{json: `true`, v1: valueOK, v6: valueOK, v10: valueInvalid, value: 1}, // Python's int(True)
		{json: `false`, v1: valueOK, v6: valueOK, v10: valueInvalid, value: 0},
		{json: `"١٠"`, v1: valueOK, v6: valueOK, v10: valueInvalid, value: 10}, // Arabic-Indic digits
		{json: `"1_000"`, v1: valueOK, v6: valueOK, v10: valueInvalid, value: 1000},
		{json: `"\u001f50\u001c"`, v1: valueOK, v6: valueOK, v10: valueInvalid, value: 50},
		{json: `1` + strings.Repeat("0", 400), v1: valueOK, v6: valueInvalid, v10: valueInvalid, value: math.MaxInt64},
		{json: `null`, v1: valueInvalid, v6: valueInvalid, v10: valueInvalid},
		{json: `{}`, v1: valueInvalid, v6: valueInvalid, v10: valueInvalid},
		{json: `[50]`, v1: valueInvalid, v6: valueInvalid, v10: valueInvalid},
	}
	for _, r := range rows {
		val := js(`{"x":` + r.json + `}`).Get("x")
		for _, v := range roomversion.All() {
			want := r.v10
			switch {
			case v.FloatPowerLevels:
				want = r.v1
			case v.StringPowerLevels:
				want = r.v6
			}
			l, st := parseLevel(v, val)
			if st != want {
				t.Errorf("v%s %s: status %d, want %d", v.ID, r.json, st, want)
				continue
			}
			if st == valueOK && l.int64() != r.value {
				t.Errorf("v%s %s: value %d, want %d", v.ID, r.json, l.int64(), r.value)
			}
		}
	}
}

func TestNewPowerLevelsDefaults(t *testing.T) {
	for _, v := range roomversion.All() {
		r := newRoom(t, v, `"additional_creators":["`+carol+`"]`)
		p, err := NewPowerLevels(r.create, nil)
		if err != nil {
			t.Fatalf("v%s: %v", v.ID, err)
		}
		wantCreator, wantCarol := int64(100), int64(0)
		if v.PrivilegedCreators {
			wantCreator, wantCarol = Infinite, Infinite
		}
		if got := p.User(alice); got != wantCreator {
			t.Errorf("v%s: creator level %d, want %d", v.ID, got, wantCreator)
		}
		if got := p.User(carol); got != wantCarol {
			t.Errorf("v%s: additional creator level %d, want %d", v.ID, got, wantCarol)
		}
		if got := p.User(bob); got != 0 {
			t.Errorf("v%s: other user level %d, want 0", v.ID, got)
		}
		if p.HasEvent() || p.Event("m.room.name", true) != 50 || p.Event("m.room.message", false) != 0 ||
			p.Invite() != 0 || p.Kick() != 50 || p.Ban() != 50 || p.Redact() != 50 ||
			p.UsersDefault() != 0 || p.EventsDefault() != 0 || p.StateDefault() != 50 {
			t.Errorf("v%s: wrong defaults %+v", v.ID, p)
		}
		if n, ok := p.Notification("room"); !ok || n != 50 {
			t.Errorf("v%s: notifications.room default %d %v", v.ID, n, ok)
		}
		if _, ok := p.Notification("other"); ok {
			t.Errorf("v%s: notifications.other has a default", v.ID)
		}
	}
}

func TestNewPowerLevelsFromEvent(t *testing.T) {
	for _, v := range roomversion.All() {
		r := newRoom(t, v, "")
		pl := r.newPL(alice, `"`+bob+`":40`, `"users_default":5,"events_default":7,"state_default":60,"ban":70,"kick":65,"invite":3,`+
			`"redact":20,"events":{"m.room.name":80,"m.room.power_levels":100},"notifications":{"room":90}`)
		p, err := NewPowerLevels(r.create, pl)
		if err != nil {
			t.Fatalf("v%s: %v", v.ID, err)
		}
		wantAlice := int64(100)
		if v.PrivilegedCreators {
			wantAlice = Infinite
		}
		if p.User(alice) != wantAlice || p.User(bob) != 40 || p.User(carol) != 5 || !p.HasEvent() {
			t.Errorf("v%s: users %d %d %d", v.ID, p.User(alice), p.User(bob), p.User(carol))
		}
		if p.Event("m.room.name", true) != 80 || p.Event("m.room.name", false) != 80 || p.Event("m.room.topic", true) != 60 ||
			p.Event("m.room.message", false) != 7 || p.Ban() != 70 || p.Kick() != 65 || p.Invite() != 3 || p.Redact() != 20 {
			t.Errorf("v%s: levels wrong", v.ID)
		}
		if n, _ := p.Notification("room"); n != 90 {
			t.Errorf("v%s: notifications.room %d", v.ID, n)
		}
		// Without the create event nobody is a creator.
		p2, err := NewPowerLevels(nil, pl)
		wantNoCreate := int64(100) // listed in users
		if v.PrivilegedCreators {
			wantNoCreate = 5 // not listed: users_default
		}
		if err != nil || p2.User(alice) != wantNoCreate {
			t.Errorf("v%s: without create: %v %d", v.ID, err, p2.User(alice))
		}
		if got := SenderPowerLevel(r.msg(bob), MapState{{"m.room.create", ""}: r.create, {"m.room.power_levels", ""}: pl}); got != 40 {
			t.Errorf("v%s: SenderPowerLevel %d", v.ID, got)
		}
		if got := SenderPowerLevel(r.msg(alice), r.state); got != wantAlice {
			t.Errorf("v%s: SenderPowerLevel of the creator %d", v.ID, got)
		}
		if got := SenderPowerLevel(r.msg(alice), MapState{{"m.room.create", ""}: r.create}); got != wantAlice {
			t.Errorf("v%s: SenderPowerLevel of the creator without power levels %d", v.ID, got)
		}
		if got := SenderPowerLevel(r.create, MapState{}); got != wantAlice {
			t.Errorf("v%s: SenderPowerLevel of the create event %d", v.ID, got)
		}
		if got := SenderPowerLevel(r.msg(bob), MapState{}); got != 0 {
			t.Errorf("v%s: SenderPowerLevel in an empty state %d", v.ID, got)
		}
	}
}

func TestNewPowerLevelsErrors(t *testing.T) {
	if _, err := NewPowerLevels(nil, nil); err == nil || errors.Is(err, ErrRejected) {
		t.Errorf("nil, nil: %v", err)
	}
	v := roomversion.MustLookup("10")
	r := newRoom(t, v, "")
	if _, err := NewPowerLevels(r.msg(alice), nil); err == nil {
		t.Error("create of the wrong type accepted")
	}
	if _, err := NewPowerLevels(r.create, r.create); err == nil {
		t.Error("power levels of the wrong type accepted")
	}
	_, err := NewPowerLevels(r.create, r.newPL(alice, "", `"ban":"50"`))
	var rej *Rejection
	if !errors.As(err, &rej) || rej.Rule != "9.1" || rej.RoomVersion != "10" {
		t.Errorf("v10 string ban: %v", err)
	}
	r12 := newRoom(t, roomversion.MustLookup("12"), "")
	_, err = NewPowerLevels(r12.create, r12.newPL(alice, `"`+alice+`":100`, ""))
	if !errors.As(err, &rej) || rej.Rule != "10.4" {
		t.Errorf("v12 creator listed: %v", err)
	}
	// The same content is fine before v10 and clamps huge values.
	r9 := newRoom(t, roomversion.MustLookup("9"), "")
	p, err := NewPowerLevels(r9.create, r9.newPL(alice, `"`+bob+`":"-99999999999999999999"`, `"ban":"50"`))
	if err != nil || p.Ban() != 50 || p.User(bob) != math.MinInt64 {
		t.Errorf("v9: %v", err)
	}
}

func TestRejectionError(t *testing.T) {
	r := &Rejection{RoomVersion: "12", Rule: "5.3.2", Reason: "sender @a:x does not match state_key @b:x"}
	if got, want := r.Error(), "room version 12 auth rule 5.3.2: sender @a:x does not match state_key @b:x"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if !errors.Is(r, ErrRejected) || errors.Is(r, ErrAuthEventsMismatch) {
		t.Error("Is")
	}
	var _ State = MapState(nil)
	if (MapState{}).Get("x", "") != nil {
		t.Error("empty MapState")
	}
}
