package roomversion

import "testing"

// The feature matrix of the spec's room versions page, plus the
// server-side differences each version introduced.
func TestFeatureMatrix(t *testing.T) {
	type row struct {
		id                                         string
		knock, restricted, knockRestricted, strict bool
		format                                     EventFormat
		redact                                     RedactionRules
		stateRes                                   StateResAlgorithm
	}
	rows := []row{
		{"1", false, false, false, false, FormatV1, RedactV1, StateResV1},
		{"2", false, false, false, false, FormatV1, RedactV1, StateResV2},
		{"3", false, false, false, false, FormatV3, RedactV1, StateResV2},
		{"4", false, false, false, false, FormatV4, RedactV1, StateResV2},
		{"5", false, false, false, false, FormatV4, RedactV1, StateResV2},
		{"6", false, false, false, true, FormatV4, RedactV6, StateResV2},
		{"7", true, false, false, true, FormatV4, RedactV6, StateResV2},
		{"8", true, true, false, true, FormatV4, RedactV8, StateResV2},
		{"9", true, true, false, true, FormatV4, RedactV9, StateResV2},
		{"10", true, true, true, true, FormatV4, RedactV9, StateResV2},
		{"11", true, true, true, true, FormatV4, RedactV11, StateResV2},
		{"12", true, true, true, true, FormatV12, RedactV11, StateResV21},
	}
	if len(All()) != len(rows) {
		t.Fatalf("%d versions, want %d", len(All()), len(rows))
	}
	for i, r := range rows {
		v, ok := Lookup(r.id)
		if !ok || All()[i] != v || IDs()[i] != r.id {
			t.Fatalf("version %s missing or out of order", r.id)
		}
		if v.Knocking != r.knock || v.RestrictedJoins != r.restricted || v.KnockRestricted != r.knockRestricted ||
			v.StrictCanonicalJSON != r.strict || v.Format != r.format || v.Redact != r.redact || v.StateRes != r.stateRes {
			t.Errorf("version %s: %+v", r.id, *v)
		}
		n := i + 1
		checks := map[string][2]bool{
			"EnforceKeyValidity":       {v.EnforceKeyValidity, n >= 5},
			"AliasesAuthRule":          {v.AliasesAuthRule, n <= 5},
			"RedactionAuthRule":        {v.RedactionAuthRule, n <= 2},
			"NotificationsPowerLevels": {v.NotificationsPowerLevels, n >= 6},
			"IntegerPowerLevels":       {v.IntegerPowerLevels, n >= 10},
			"StringPowerLevels":        {v.StringPowerLevels, n <= 9},
			"FloatPowerLevels":         {v.FloatPowerLevels, n <= 5},
			"CreatorInContent":         {v.CreatorInContent, n <= 10},
			"RedactsInContent":         {v.RedactsInContent, n >= 11},
			"PrivilegedCreators":       {v.PrivilegedCreators, n >= 12},
			"RoomIDFromCreate":         {v.RoomIDFromCreate, n >= 12},
			"StrictByteLimits":         {v.StrictByteLimits, n >= 11},
			"HashEventIDs":             {v.HashEventIDs(), n >= 3},
			"URLSafeEventIDs":          {v.URLSafeEventIDs(), n >= 4},
		}
		for name, c := range checks {
			if c[0] != c[1] {
				t.Errorf("version %s: %s = %v", r.id, name, c[0])
			}
		}
	}
	if _, ok := Lookup("org.matrix.msc1234"); ok {
		t.Errorf("unknown version found")
	}
	if _, ok := Lookup(Default); !ok || Default != "12" {
		t.Errorf("default version %q", Default)
	}
}
