package bus

import (
	"fmt"
	"testing"
)

// Golden values: PartitionOf is a wire contract. If this test fails, the
// change breaks every running cluster; do not update the table.
func TestPartitionOfGolden(t *testing.T) {
	for _, tc := range []struct {
		room string
		n    int
		want int
	}{
		{"!abc:example.org", 64, 44},
		{"!abc:example.org", 128, 89},
		{"!OGEhHVWSdvArJzumhm:matrix.org", 64, 47},
		{"!OGEhHVWSdvArJzumhm:matrix.org", 128, 95},
		{"!x:y", 1, 0},
		{"!x:y", 64, 55},
		{"", 64, 50}, // top bits of the FNV-1a offset basis 0xcbf29ce484222325
		{"", 128, 101},
		{"!ünïcode:例え.jp", 64, 47},
	} {
		if got := PartitionOf(tc.room, tc.n); got != tc.want {
			t.Errorf("PartitionOf(%q, %d) = %d, want %d", tc.room, tc.n, got, tc.want)
		}
	}
}

func TestPartitionOfSplitsOnDoubling(t *testing.T) {
	for i := range 1000 {
		id := fmt.Sprintf("!r%d:example.org", i)
		p64, p128 := PartitionOf(id, 64), PartitionOf(id, 128)
		if p128/2 != p64 {
			t.Fatalf("%s: partition %d of 128 is not a half of %d of 64", id, p128, p64)
		}
	}
}

func TestPartitionOfSpread(t *testing.T) {
	const n, ids = 64, 10000
	var counts [n]int
	for i := range ids {
		p := PartitionOf(fmt.Sprintf("!%08x%d:server%d.example", i*2654435761, i, i%7), n)
		if p < 0 || p >= n {
			t.Fatalf("partition %d out of range", p)
		}
		counts[p]++
	}
	// Mean 156.25, sd ≈ 12.4; allow about ±5 sd.
	for p, c := range counts {
		if c < 95 || c > 220 {
			t.Errorf("partition %d has %d of %d IDs; counts %v", p, c, ids, counts)
		}
	}
}

func TestValidPartitions(t *testing.T) {
	for _, tc := range []struct {
		n  int
		ok bool
	}{{1, true}, {2, true}, {64, true}, {4096, true}, {0, false}, {-4, false}, {3, false}, {96, false}, {8192, false}} {
		if err := ValidPartitions(tc.n); (err == nil) != tc.ok {
			t.Errorf("ValidPartitions(%d) = %v, want ok=%v", tc.n, err, tc.ok)
		}
	}
}
