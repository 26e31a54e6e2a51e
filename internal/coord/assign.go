package coord

import (
	"cmp"
	"encoding/binary"
	"hash/fnv"
	"slices"
)

// member is a live worker of a resource as the coordinator sees it: its
// ID and the number of partitions it asked for in Own.
type member struct {
	id string
	n  int
}

// assign decides which member should own each partition of resource:
// the result holds a member ID per partition (index), "" where no member
// can take it. Every worker computes it from the same members, so all
// agree without talking to each other.
//
// It is rendezvous (highest-random-weight) hashing with bounded load:
// every (partition, member) pair gets a pseudo-random score, and pairs
// are taken best score first, a member taking a partition while it has
// fewer than ⌈N/len(members)⌉. Plain rendezvous hashing moves the fewest
// partitions when a member comes or goes but balances poorly (with 64
// partitions and 6 workers one gets 15, another 6); the bound makes the
// loads differ by a few at most while a change of membership still moves
// little more than the share of the worker that came or went.
//
// Members may disagree on the number of partitions (a rollout that
// changes it): N is the largest, and partition p goes only to members
// whose n exceeds p, so that it always goes to one that will run it.
func assign(resource string, members []member, n int) []string {
	out := make([]string, n)
	if len(members) == 0 {
		return out
	}
	total := n
	for _, m := range members {
		total = max(total, m.n)
	}
	type pair struct {
		score uint64
		p     int
		m     int // index in members
	}
	pairs := make([]pair, 0, total*len(members))
	for p := range total {
		for i, m := range members {
			if p < m.n {
				pairs = append(pairs, pair{score(resource, m.id, p), p, i})
			}
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		if c := cmp.Compare(members[a.m].id, members[b.m].id); c != 0 {
			return c
		}
		return cmp.Compare(a.p, b.p)
	})
	limit := (total + len(members) - 1) / len(members)
	load := make([]int, len(members))
	owner := make([]int, total)
	for i := range owner {
		owner[i] = -1
	}
	for _, x := range pairs {
		if owner[x.p] < 0 && load[x.m] < limit {
			owner[x.p] = x.m
			load[x.m]++
		}
	}
	// Members with fewer partitions than the rest may leave some
	// unplaced under the bound: those go to their best eligible member.
	for _, x := range pairs {
		if owner[x.p] < 0 {
			owner[x.p] = x.m
		}
	}
	for p := range n {
		if owner[p] >= 0 {
			out[p] = members[owner[p]].id
		}
	}
	return out
}

// score is the rendezvous weight of member for partition p of resource:
// FNV-1a, then the 64-bit finaliser of MurmurHash3 so that IDs and
// partitions that differ by one character spread over the whole range.
func score(resource, member string, p int) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(resource))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(member))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write(binary.BigEndian.AppendUint64(nil, uint64(p)))
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
