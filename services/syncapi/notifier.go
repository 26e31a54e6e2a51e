package syncapi

import (
	"context"
	"hash/maphash"
	"sync"
)

// Notifier wakes long-polling /sync requests when something concerning
// them happens: new events in one of their rooms, or a change for their
// user (membership, account data, to-device …). Waiters are indexed by room
// and user, so a wake touches only the requests concerned.
//
// A request computes its response first and waits afterwards, so a change
// that lands in between must not be missed. For that the notifier counts
// wake-ups in a fixed array of buckets hashed by room and user: a request
// takes a Mark before computing, and Wait returns at once if a bucket of
// its user or rooms moved since. Collisions cause a spare recomputation,
// never a missed wake-up.
type Notifier struct {
	mu     sync.Mutex
	byRoom map[string]map[*waiter]struct{}
	byUser map[string]map[*waiter]struct{}
	count  int
	seed   maphash.Seed
	gen    [numBuckets]uint64
}

const numBuckets = 4096

type waiter struct {
	ch   chan struct{}
	done bool
}

// NewNotifier returns an empty notifier.
func NewNotifier() *Notifier {
	return &Notifier{byRoom: make(map[string]map[*waiter]struct{}), byUser: make(map[string]map[*waiter]struct{}),
		seed: maphash.MakeSeed()}
}

func (n *Notifier) bucket(kind byte, key string) int {
	var h maphash.Hash
	h.SetSeed(n.seed)
	h.WriteByte(kind)
	h.WriteString(key)
	return int(h.Sum64() % numBuckets)
}

// Notify wakes the waiters of the rooms and users of w.
func (n *Notifier) Notify(w Wake) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, r := range w.Rooms {
		n.gen[n.bucket('r', r)]++
		for wt := range n.byRoom[r] {
			wt.fire()
		}
	}
	for _, u := range w.Users {
		n.gen[n.bucket('u', u)]++
		for wt := range n.byUser[u] {
			wt.fire()
		}
	}
}

func (w *waiter) fire() {
	if !w.done {
		w.done = true
		close(w.ch)
	}
}

// Waiters returns how many requests are waiting (for metrics).
func (n *Notifier) Waiters() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.count
}

// Mark is a snapshot of the wake-up counts of one user and their rooms.
type Mark struct {
	user  uint64
	rooms map[string]uint64
}

// Mark takes the snapshot a later Wait compares against.
func (n *Notifier) Mark(userID string, rooms []string) Mark {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := Mark{user: n.gen[n.bucket('u', userID)], rooms: make(map[string]uint64, len(rooms))}
	for _, r := range rooms {
		m.rooms[r] = n.gen[n.bucket('r', r)]
	}
	return m
}

// Wait blocks until something concerning the user or one of the rooms
// happens, or ctx ends. It returns at once when something did since mark
// (rooms missing from the mark count as changed).
func (n *Notifier) Wait(ctx context.Context, userID string, rooms []string, mark Mark) {
	w := &waiter{ch: make(chan struct{})}
	n.mu.Lock()
	if n.gen[n.bucket('u', userID)] != mark.user {
		n.mu.Unlock()
		return
	}
	for _, r := range rooms {
		if g, ok := mark.rooms[r]; !ok || n.gen[n.bucket('r', r)] != g {
			n.mu.Unlock()
			return
		}
	}
	add := func(m map[string]map[*waiter]struct{}, k string) {
		s := m[k]
		if s == nil {
			s = make(map[*waiter]struct{})
			m[k] = s
		}
		s[w] = struct{}{}
	}
	for _, r := range rooms {
		add(n.byRoom, r)
	}
	add(n.byUser, userID)
	n.count++
	n.mu.Unlock()

	select {
	case <-w.ch:
	case <-ctx.Done():
	}

	n.mu.Lock()
	del := func(m map[string]map[*waiter]struct{}, k string) {
		if s := m[k]; s != nil {
			delete(s, w)
			if len(s) == 0 {
				delete(m, k)
			}
		}
	}
	for _, r := range rooms {
		del(n.byRoom, r)
	}
	del(n.byUser, userID)
	n.count--
	n.mu.Unlock()
}
