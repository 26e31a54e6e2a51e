package auth

import (
	"strings"
	"testing"
)

// TestZZCaseCounts checks, after the rule tables have run (it sorts last
// in file order), that every room version family got rule cases, so that a
// table cannot silently leave a family out; with -v it reports the counts.
// When no table ran before it (a -run filter, -shuffle), it skips.
func TestZZCaseCounts(t *testing.T) {
	caseCountsMu.Lock()
	defer caseCountsMu.Unlock()
	total := 0
	for _, f := range familyOrder {
		total += caseCounts[f]
	}
	if total == 0 {
		t.Skip("no rule table ran before this test")
	}
	for _, f := range familyOrder {
		t.Logf("family %-4s (versions %s): %d rule cases", f, strings.Join(families[f], ","), caseCounts[f])
		if caseCounts[f] == 0 {
			t.Errorf("family %s has no rule cases", f)
		}
	}
}
