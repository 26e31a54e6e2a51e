package pushrules

import "testing"

func TestPlace(t *testing.T) {
	const g = positionGap
	cases := []struct {
		name string
		ps   []int64
		at   int
		want int64
		ok   bool
	}{
		{"empty", nil, 0, 0, true},
		{"first", []int64{0, g}, 0, -g, true},
		{"last", []int64{0, g}, 2, 2 * g, true},
		{"middle", []int64{0, g}, 1, g / 2, true},
		{"middle odd", []int64{0, 3}, 1, 1, true},
		{"no room", []int64{4, 5}, 1, 0, false},
		{"tie", []int64{4, 4}, 1, 0, false},
		{"too low", []int64{-positionLimit + 1}, 0, 0, false},
		{"too high", []int64{positionLimit - 1}, 1, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := place(tc.ps, tc.at)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Errorf("place(%v, %d) = %d, %v; want %d, %v", tc.ps, tc.at, got, ok, tc.want, tc.ok)
			}
			if ok && ((tc.at > 0 && got <= tc.ps[tc.at-1]) || (tc.at < len(tc.ps) && got >= tc.ps[tc.at])) {
				t.Errorf("place(%v, %d) = %d is not between its neighbours", tc.ps, tc.at, got)
			}
		})
	}
	if ps := rebalance(3); ps[0] != 0 || ps[1] != g || ps[2] != 2*g {
		t.Errorf("rebalance(3) = %v", ps)
	}
}
