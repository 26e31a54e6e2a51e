package syncapi

import (
	"context"
	"sync"
)

// Notifier wakes long-polling /sync requests when the index moves past
// the position they have seen, in the rooms they are in or for them.
// Waiters are indexed by room and user, so a wake touches only the
// requests concerned.
type Notifier struct {
	mu     sync.Mutex
	pos    int64
	byRoom map[string]map[*waiter]struct{}
	byUser map[string]map[*waiter]struct{}
	count  int
}

type waiter struct {
	ch   chan struct{}
	done bool
}

// NewNotifier returns an empty notifier.
func NewNotifier() *Notifier {
	return &Notifier{byRoom: make(map[string]map[*waiter]struct{}), byUser: make(map[string]map[*waiter]struct{})}
}

// Notify records a new index position and wakes the waiters concerned.
func (n *Notifier) Notify(w Wake) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if w.Pos > n.pos {
		n.pos = w.Pos
	}
	for _, r := range w.Rooms {
		for wt := range n.byRoom[r] {
			wt.fire()
		}
	}
	for _, u := range w.Users {
		for wt := range n.byUser[u] {
			wt.fire()
		}
	}
}

// WakeUser wakes the user's waiters (account data, to-device, receipts and
// other per-user streams).
func (n *Notifier) WakeUser(userID string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for wt := range n.byUser[userID] {
		wt.fire()
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

// Wait blocks until something concerning the user or one of the rooms
// happens after position seen, or ctx ends. It returns at once if the
// notifier has already seen a later position (the caller then recomputes,
// and waits again if that was not for it).
func (n *Notifier) Wait(ctx context.Context, userID string, rooms []string, seen int64) {
	w := &waiter{ch: make(chan struct{})}
	n.mu.Lock()
	if n.pos > seen {
		n.mu.Unlock()
		return
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
