package bus

import (
	"fmt"
	"hash/fnv"
	"math/bits"
)

// DefaultPartitions is the default number of room partitions.
const DefaultPartitions = 64

// MaxPartitions bounds the number of partitions (and so of subjects and
// consumers per stream).
const MaxPartitions = 4096

// PartitionOf returns the partition of roomID among n partitions: the top
// log2(n) bits of the FNV-1a 64-bit hash of the room ID. n must be a power of
// two between 1 and MaxPartitions; PartitionOf panics otherwise (a
// configuration error caught by ValidPartitions at start-up).
//
// This is a wire contract: every process must compute the same partition for
// the same room. See the package documentation.
func PartitionOf(roomID string, n int) int {
	if err := ValidPartitions(n); err != nil {
		panic(err)
	}
	if n == 1 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(roomID)) // never fails
	shift := 64 - bits.TrailingZeros(uint(n))
	return int(h.Sum64() >> shift)
}

// ValidPartitions reports whether n is an acceptable partition count.
func ValidPartitions(n int) error {
	if n < 1 || n > MaxPartitions || n&(n-1) != 0 {
		return fmt.Errorf("bus: partition count %d is not a power of two in [1, %d]", n, MaxPartitions)
	}
	return nil
}
