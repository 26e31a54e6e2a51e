package bench

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// sendLoad has each sender send n messages into its room concurrently and
// measures accepted and fully processed rates.
func (r *runner) sendLoad(ctx context.Context, name string, senders []*user, rooms []string, n int, obs *observer) (Result, error) {
	res := Result{Name: name, Messages: n * len(senders)}
	cpu0 := r.cpu()
	start := time.Now()
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	for i, u := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, n)
			for j := range n {
				_, d, err := u.send(ctx, rooms[i], fmt.Sprintf("message %d", j))
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("%s: send: %w", name, err)
					}
					mu.Unlock()
					return
				}
				local = append(local, d)
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return res, firstErr
	}
	accepted := time.Since(start)
	res.Accepted = float64(res.Messages) / accepted.Seconds()
	res.P50, res.P99 = percentile(lat, 0.5), percentile(lat, 0.99)
	// "Fully processed": a marker sent into each room after every send was
	// answered is visible through /sync. A room's events are processed in
	// order, so everything before the marker is too. (Waiting for each
	// sender's last event instead can miss one that a limited timeline
	// skipped.)
	var markers []string
	seen := map[string]bool{}
	for i, room := range rooms {
		if seen[room] {
			continue
		}
		seen[room] = true
		id, _, err := senders[i].send(ctx, room, "marker")
		if err != nil {
			return res, fmt.Errorf("%s: marker: %w", name, err)
		}
		markers = append(markers, id)
	}
	last, err := obs.waitAll(ctx, markers, 10*time.Minute)
	if err != nil {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	processed := last.Sub(start)
	res.Processed = float64(res.Messages) / processed.Seconds()
	res.ProcessedLag = max(processed-accepted, 0)
	if c := r.cpu() - cpu0; c > 0 {
		res.CPUPerEvent = c / time.Duration(res.Messages)
	}
	res.Note = fmt.Sprintf("fully processed %.0fms after the last answer", float64(res.ProcessedLag.Microseconds())/1000)
	if n := obs.failures.Load(); n > 0 {
		res.Note += fmt.Sprintf("; %d failed /sync calls", n)
	}
	return res, nil
}

// sequential is scenario (a): one user, one room, one message at a time.
func (r *runner) sequential(ctx context.Context) (Result, error) {
	u, err := r.newUser(ctx)
	if err != nil {
		return Result{}, err
	}
	room, err := u.createRoom(ctx, "private_chat")
	if err != nil {
		return Result{}, err
	}
	obs, err := startObserver(ctx, u)
	if err != nil {
		return Result{}, err
	}
	defer obs.close()
	return r.sendLoad(ctx, "(a) 1 user, 1 room, sequential", []*user{u}, []string{room}, r.scaled(2000), obs)
}

// separateRooms is scenario (b): 16 users, each in their own room.
func (r *runner) separateRooms(ctx context.Context) (Result, error) {
	watcher, err := r.newUser(ctx)
	if err != nil {
		return Result{}, err
	}
	var users []*user
	var rooms []string
	for range 16 {
		u, err := r.newUser(ctx)
		if err != nil {
			return Result{}, err
		}
		room, err := u.createRoom(ctx, "public_chat")
		if err != nil {
			return Result{}, err
		}
		if err := watcher.join(ctx, room); err != nil {
			return Result{}, err
		}
		users, rooms = append(users, u), append(rooms, room)
	}
	r.ownUsers, r.bRooms, r.watcher = users, rooms, watcher
	obs, err := startObserver(ctx, watcher)
	if err != nil {
		return Result{}, err
	}
	defer obs.close()
	return r.sendLoad(ctx, "(b) 16 users, own rooms, concurrent", users, rooms, r.scaled(500), obs)
}

// sharedRoom is scenario (c): 16 users in one room.
func (r *runner) sharedRoom(ctx context.Context) (Result, error) {
	owner, err := r.newUser(ctx)
	if err != nil {
		return Result{}, err
	}
	room, err := owner.createRoom(ctx, "public_chat")
	if err != nil {
		return Result{}, err
	}
	var users []*user
	var rooms []string
	for range 16 {
		u, err := r.newUser(ctx)
		if err != nil {
			return Result{}, err
		}
		if err := u.join(ctx, room); err != nil {
			return Result{}, err
		}
		users, rooms = append(users, u), append(rooms, room)
	}
	obs, err := startObserver(ctx, owner)
	if err != nil {
		return Result{}, err
	}
	defer obs.close()
	return r.sendLoad(ctx, "(c) 16 users, 1 shared room, concurrent", users, rooms, r.scaled(250), obs)
}

// latency is scenario (d): send → visible in a long-polling /sync, while
// messages are sent at 20/s.
func (r *runner) latency(ctx context.Context) (Result, error) {
	n := r.scaled(500)
	res := Result{Name: "(d) send → /sync latency at 20 msgs/s", Messages: n}
	sender, err := r.newUser(ctx)
	if err != nil {
		return res, err
	}
	reader, err := r.newUser(ctx)
	if err != nil {
		return res, err
	}
	room, err := sender.createRoom(ctx, "public_chat")
	if err != nil {
		return res, err
	}
	if err := reader.join(ctx, room); err != nil {
		return res, err
	}
	obs, err := startObserver(ctx, reader)
	if err != nil {
		return res, err
	}
	defer obs.close()
	sentAt := make(map[string]time.Time, n)
	var ids []string
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	cpu0 := r.cpu()
	for i := range n {
		<-tick.C
		t0 := time.Now()
		id, _, err := sender.send(ctx, room, fmt.Sprintf("latency %d", i))
		if err != nil {
			return res, err
		}
		sentAt[id] = t0
		ids = append(ids, id)
	}
	if _, err := obs.waitAll(ctx, ids, time.Minute); err != nil {
		return res, err
	}
	obs.mu.Lock()
	lat := make([]time.Duration, 0, n)
	for id, t0 := range sentAt {
		lat = append(lat, obs.seen[id].Sub(t0))
	}
	obs.mu.Unlock()
	res.P50, res.P99 = percentile(lat, 0.5), percentile(lat, 0.99)
	if c := r.cpu() - cpu0; c > 0 {
		res.CPUPerEvent = c / time.Duration(n)
	}
	res.Note = "p50/p99 from the send request to the event in the reader's /sync"
	return res, nil
}

// initialSync is scenario (e): a fresh initial /sync of a user in the 16
// rooms of (b), the first request and a repeat.
func (r *runner) initialSync(ctx context.Context) (Result, error) {
	res := Result{Name: "(e) initial /sync, 16 rooms"}
	if len(r.ownUsers) == 0 {
		return res, fmt.Errorf("scenario (e) needs the rooms of (b)")
	}
	u, err := r.newUser(ctx)
	if err != nil {
		return res, err
	}
	// The new user joins the rooms and says hello in each; once the
	// watcher (in all of them) sees every hello, the sync index has the
	// joins, and the measured sync is the user's very first.
	obs, err := startObserver(ctx, r.watcher)
	if err != nil {
		return res, err
	}
	defer obs.close()
	var hellos []string
	for _, room := range r.bRooms {
		if err := u.join(ctx, room); err != nil {
			return res, err
		}
		id, _, err := u.send(ctx, room, "hello")
		if err != nil {
			return res, err
		}
		hellos = append(hellos, id)
	}
	if _, err := obs.waitAll(ctx, hellos, time.Minute); err != nil {
		return res, err
	}
	var times []time.Duration
	for range 5 {
		t0 := time.Now()
		resp, err := u.sync(ctx, "", 0, "")
		if err != nil {
			return res, err
		}
		times = append(times, time.Since(t0))
		if len(resp.Rooms.Join) != len(r.bRooms) {
			return res, fmt.Errorf("initial sync shows %d rooms, want %d", len(resp.Rooms.Join), len(r.bRooms))
		}
	}
	res.P50 = times[0]
	res.P99 = percentile(times[1:], 0.5)
	res.Note = "p50 column: first request; p99 column: median of 4 repeats"
	return res, nil
}
