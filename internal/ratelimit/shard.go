package ratelimit

import (
	"strings"
	"sync"
)

// entry is one key's bucket, linked into its shard's LRU list.
type entry struct {
	key        string
	tat        int64 // theoretical arrival time, ns since Limiter.base
	prev, next *entry
}

// shard is a bounded map of buckets with least-recently-used eviction.
// root is the sentinel of a circular list: root.next is the most recently
// used entry, root.prev the least.
type shard struct {
	mu      sync.Mutex
	entries map[string]*entry
	root    entry
	cap     int
	_       [64]byte // keep neighbouring shards' locks off one cache line
}

func (s *shard) init(capacity int) {
	s.cap = max(capacity, 1)
	s.entries = make(map[string]*entry)
	s.root.next = &s.root
	s.root.prev = &s.root
}

// get returns key's entry, marking it most recently used. A key not yet
// tracked gets a full bucket, evicting the least recently used key if the
// shard is at capacity. s.mu must be held.
func (s *shard) get(key string, now int64) *entry {
	if e, ok := s.entries[key]; ok {
		if s.root.next != e {
			s.unlink(e)
			s.pushFront(e)
		}
		return e
	}
	var e *entry
	if len(s.entries) >= s.cap {
		e = s.root.prev // least recently used: reuse it
		s.unlink(e)
		delete(s.entries, e.key)
	} else {
		e = new(entry)
	}
	// Clone: the key may be a slice of a large request header.
	*e = entry{key: strings.Clone(key), tat: now}
	s.entries[e.key] = e
	s.pushFront(e)
	return e
}

func (s *shard) unlink(e *entry) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
}

func (s *shard) pushFront(e *entry) {
	e.prev = &s.root
	e.next = s.root.next
	s.root.next.prev = e
	s.root.next = e
}
