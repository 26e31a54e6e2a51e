package auth

import (
	"strings"
	"testing"
)

// TestZZCaseCounts reports (with -v) how many rule table cases each room
// version family has; it runs after the tables (file order).
func TestZZCaseCounts(t *testing.T) {
	caseCountsMu.Lock()
	defer caseCountsMu.Unlock()
	for _, f := range familyOrder {
		t.Logf("family %-4s (versions %s): %d rule cases", f, strings.Join(families[f], ","), caseCounts[f])
	}
}
