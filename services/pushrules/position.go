package pushrules

// Positions order a user's rules of one kind: smaller is more important.
// They are spaced by positionGap, so that a rule put between two others
// takes the midpoint and one put first or last the neighbour's position
// ∓ positionGap. When there is no integer between two neighbours, or a
// position would leave ±positionLimit, the caller renumbers the kind's
// rules 0, gap, 2·gap, … in the same transaction (rebalance). Each split
// halves the room, so 20 insertions at one spot are possible before that
// happens; users have at most maxUserRules rules, so renumbering is cheap.
const (
	positionGap   = 1 << 20
	positionLimit = 1 << 62
)

// place returns the position for a rule inserted at index at of the
// ordered positions ps (at == len(ps) appends), or ok false when there is
// no room and the kind must be renumbered.
func place(ps []int64, at int) (pos int64, ok bool) {
	switch {
	case len(ps) == 0:
		return 0, true
	case at <= 0:
		pos = ps[0] - positionGap
		return pos, pos > -positionLimit
	case at >= len(ps):
		pos = ps[len(ps)-1] + positionGap
		return pos, pos < positionLimit
	}
	lo, hi := ps[at-1], ps[at]
	if hi-lo < 2 {
		return 0, false
	}
	return lo + (hi-lo)/2, true
}

// rebalance returns evenly spaced positions for n rules.
func rebalance(n int) []int64 {
	ps := make([]int64, n)
	for i := range ps {
		ps[i] = int64(i) * positionGap
	}
	return ps
}
