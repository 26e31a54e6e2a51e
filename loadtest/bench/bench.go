// Package bench runs the standard send and sync scenarios against a
// running server over HTTP, as clients do, and reports one table: (a) one
// user sending sequentially into one room, (b) 16 users each sending into
// their own room concurrently, (c) 16 users sending into one shared room,
// (d) send → visible-in-/sync latency of a long-polling second user while
// messages are sent at a fixed rate, (e) a fresh initial /sync of a user in
// the 16 rooms of (b).
//
// For the sending scenarios it reports the rate of accepted sends (the
// server answered with an event ID) and the rate at which the server had
// fully processed them: an observer that long-polls /sync has seen the last
// message of every room, so every consumer on the way (room role, outbox
// relay, sync indexer) has caught up. With the server's PID it also reports
// the server's CPU time per event.
//
// It never links the server: it is a client (DESIGN.md, loadtest/).
package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config says what to run against.
type Config struct {
	Target string // base URL of the Client-Server API
	PID    int    // server process, for CPU time; 0 = not reported
	// Scale multiplies the message counts (1 = the standard scenarios).
	Scale float64
	// Prefix makes localparts unique when one server is benchmarked twice.
	Prefix string
}

// Result is one scenario's figures.
type Result struct {
	Name         string
	Messages     int
	Accepted     float64 // msgs/s answered
	Processed    float64 // msgs/s fully processed (0 when not measured)
	P50, P99     time.Duration
	CPUPerEvent  time.Duration // 0 when unknown
	Note         string
	ProcessedLag time.Duration // time after the last answer until fully processed
}

// Run runs every scenario in order and returns their results.
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	if cfg.Scale <= 0 {
		cfg.Scale = 1
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "b" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	}
	r := &runner{cfg: cfg, hc: &http.Client{Timeout: 90 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	var out []Result
	steps := []func(context.Context) (Result, error){r.sequential, r.separateRooms, r.sharedRoom, r.latency, r.initialSync}
	for _, step := range steps {
		res, err := step(ctx)
		if err != nil {
			return out, err
		}
		out = append(out, res)
	}
	return out, nil
}

type runner struct {
	cfg      Config
	hc       *http.Client
	n        int
	bRooms   []string // rooms of scenario b
	ownUsers []*user
	watcher  *user // member of every room of scenario b
}

func (r *runner) scaled(n int) int { return max(1, int(float64(n)*r.cfg.Scale)) }

func (r *runner) newUser(ctx context.Context) (*user, error) {
	r.n++
	return register(ctx, r.cfg.Target, r.hc, fmt.Sprintf("%s_%d", r.cfg.Prefix, r.n))
}

// cpu returns the server's CPU time so far.
func (r *runner) cpu() time.Duration {
	if r.cfg.PID == 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", r.cfg.PID))
	if err != nil {
		return 0
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ is 100 on Linux
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

// observer long-polls /sync for one user and records every event ID seen.
type observer struct {
	u        *user
	failures atomic.Int64
	mu       sync.Mutex
	seen     map[string]time.Time
	stop     context.CancelFunc
	done     chan struct{}
}

func startObserver(ctx context.Context, u *user) (*observer, error) {
	first, err := u.sync(ctx, "", 0, `{"room":{"timeline":{"limit":1}}}`)
	if err != nil {
		return nil, err
	}
	octx, cancel := context.WithCancel(ctx)
	o := &observer{u: u, seen: map[string]time.Time{}, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(o.done)
		since := first.NextBatch
		for octx.Err() == nil {
			resp, err := u.sync(octx, since, 10*time.Second, `{"room":{"timeline":{"limit":50}}}`)
			if err != nil {
				if octx.Err() == nil {
					o.failures.Add(1)
					fmt.Fprintf(os.Stderr, "bench: observer /sync failed: %v\n", err)
					time.Sleep(50 * time.Millisecond)
				}
				continue
			}
			now := time.Now()
			o.mu.Lock()
			for _, jr := range resp.Rooms.Join {
				for _, e := range jr.Timeline.Events {
					o.seen[e.EventID] = now
				}
			}
			o.mu.Unlock()
			since = resp.NextBatch
		}
	}()
	return o, nil
}

// waitAll waits until every ID was seen and returns when the last one was.
func (o *observer) waitAll(ctx context.Context, ids []string, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	for {
		o.mu.Lock()
		var last time.Time
		missing := 0
		for _, id := range ids {
			t, ok := o.seen[id]
			if !ok {
				missing++
			} else if t.After(last) {
				last = t
			}
		}
		o.mu.Unlock()
		if missing == 0 {
			return last, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("observer: %d of %d events not seen through /sync after %v", missing, len(ids), limit)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (o *observer) close() { o.stop(); <-o.done }

// Print writes the results as a table.
func Print(w io.Writer, title string, rs []Result) {
	fmt.Fprintf(w, "\n%s\n", title)
	fmt.Fprintf(w, "%-44s %8s %12s %12s %9s %9s %10s\n", "scenario", "messages", "accepted/s", "processed/s", "p50", "p99", "cpu/event")
	for _, r := range rs {
		proc := "-"
		if r.Processed > 0 {
			proc = fmt.Sprintf("%.0f", r.Processed)
		}
		acc := "-"
		if r.Accepted > 0 {
			acc = fmt.Sprintf("%.0f", r.Accepted)
		}
		cpu := "-"
		if r.CPUPerEvent > 0 {
			cpu = fmt.Sprintf("%.2fms", float64(r.CPUPerEvent.Microseconds())/1000)
		}
		fmt.Fprintf(w, "%-44s %8d %12s %12s %9s %9s %10s  %s\n", r.Name, r.Messages, acc, proc,
			fmtDur(r.P50), fmtDur(r.P99), cpu, r.Note)
	}
}

func fmtDur(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
}
