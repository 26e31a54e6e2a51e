package coord

import (
	"fmt"
	"slices"
	"testing"
)

func members(n int, ids ...string) []member {
	ms := make([]member, len(ids))
	for i, id := range ids {
		ms[i] = member{id: id, n: n}
	}
	return ms
}

func workerIDs(k int) []string {
	ids := make([]string, k)
	for i := range ids {
		ids[i] = fmt.Sprintf("axon-room-%d-%d-%08x", i, 1000+i, uint32(i)*2654435761)
	}
	return ids
}

func loads(a []string) map[string]int {
	l := map[string]int{}
	for _, id := range a {
		l[id]++
	}
	return l
}

func moved(a, b []string) int {
	n := 0
	for p := range a {
		if a[p] != b[p] {
			n++
		}
	}
	return n
}

// Every partition gets exactly one member, the same one whatever the
// order the members are listed in, and no member gets more than
// ⌈n/members⌉.
func TestAssignCoversBalancesAndAgrees(t *testing.T) {
	for _, n := range []int{1, 2, 7, 64, 256} {
		for k := 1; k <= 12; k++ {
			ids := workerIDs(k)
			a := assign("room-partitions", members(n, ids...), n)
			for p, id := range a {
				if !slices.Contains(ids, id) {
					t.Fatalf("n=%d k=%d: partition %d goes to %q", n, k, p, id)
				}
			}
			limit := (n + k - 1) / k
			for id, l := range loads(a) {
				if l > limit {
					t.Errorf("n=%d k=%d: %s gets %d partitions, more than %d", n, k, id, l, limit)
				}
			}
			rev := slices.Clone(ids)
			slices.Reverse(rev)
			if b := assign("room-partitions", members(n, rev...), n); !slices.Equal(a, b) {
				t.Fatalf("n=%d k=%d: the order of the members changes the assignment", n, k)
			}
		}
	}
	if a := assign("r", nil, 3); !slices.Equal(a, []string{"", "", ""}) {
		t.Errorf("no members: %q", a)
	}
}

// A worker that comes or goes moves little more than its share: the
// others keep most of what they had, which is what makes rebalancing
// cheap (each moved partition is a hand-over).
func TestAssignMovesLittle(t *testing.T) {
	const n = 64
	ids := workerIDs(12)
	total, ideal := 0, 0.0
	for k := 1; k < len(ids); k++ {
		before := assign("room-partitions", members(n, ids[:k]...), n)
		after := assign("room-partitions", members(n, ids[:k+1]...), n)
		m := moved(before, after)
		total += m
		ideal += float64(n) / float64(k+1)
		// Only partitions taken by the newcomer, or shifted because
		// the bound went down, move: never more than twice its share.
		if share := float64(n) / float64(k+1); float64(m) > 2*share+1 {
			t.Errorf("%d → %d workers moved %d partitions; its share is %.1f", k, k+1, m, share)
		}
		// Removing the newcomer again restores the old assignment.
		if back := assign("room-partitions", members(n, ids[:k]...), n); !slices.Equal(before, back) {
			t.Errorf("%d workers: not deterministic", k)
		}
	}
	if float64(total) > 1.5*ideal {
		t.Errorf("growing from 1 to %d workers moved %d partitions; the ideal is %.0f", len(ids), total, ideal)
	}
}

// Resources are spread independently: two singletons do not always land
// on the same worker.
func TestAssignSpreadsResources(t *testing.T) {
	ms := members(1, workerIDs(4)...)
	seen := map[string]bool{}
	for _, res := range []string{"sync-indexer", "federation-sender", "a", "b", "c", "d", "e", "f"} {
		seen[assign(res, ms, 1)[0]] = true
	}
	if len(seen) < 2 {
		t.Errorf("eight singletons all went to one worker: %v", seen)
	}
}

// During a rollout that changes the number of partitions, a partition
// goes only to a member that runs that many.
func TestAssignRespectsEachMembersPartitions(t *testing.T) {
	ms := []member{{id: "old-1", n: 8}, {id: "old-2", n: 8}, {id: "new-1", n: 16}}
	a := assign("r", ms, 16)
	for p := 8; p < 16; p++ {
		if a[p] != "new-1" {
			t.Errorf("partition %d goes to %s, which runs 8", p, a[p])
		}
	}
	for p := range 8 {
		if a[p] == "" {
			t.Errorf("partition %d unassigned", p)
		}
	}
	// The members of 8 see the same first 8 partitions.
	if b := assign("r", ms, 8); !slices.Equal(a[:8], b) {
		t.Errorf("members of 8 and of 16 disagree: %v vs %v", a[:8], b)
	}
}
