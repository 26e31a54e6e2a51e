package discovery

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/testenv"
	"github.com/axon-hs/axon/matrix/id"
)

func TestCacheTTL(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	date := now.Format(http.TimeFormat)
	tests := []struct {
		name   string
		header map[string][]string
		want   time.Duration
	}{
		{"no headers", nil, 24 * time.Hour},
		{"max-age", map[string][]string{"Cache-Control": {"max-age=3600"}}, time.Hour},
		{"max-age among others", map[string][]string{"Cache-Control": {"public, MAX-AGE=7200 , must-revalidate"}}, 2 * time.Hour},
		{"max-age quoted", map[string][]string{"Cache-Control": {`max-age="7200"`}}, 2 * time.Hour},
		{"max-age on second line", map[string][]string{"Cache-Control": {"public", "max-age=7200"}}, 2 * time.Hour},
		{"max-age minus Age", map[string][]string{"Cache-Control": {"max-age=7200"}, "Age": {"3600"}}, time.Hour},
		{"max-age below minimum", map[string][]string{"Cache-Control": {"max-age=10"}}, 5 * time.Minute},
		{"max-age zero", map[string][]string{"Cache-Control": {"max-age=0"}}, 5 * time.Minute},
		{"max-age above maximum", map[string][]string{"Cache-Control": {"max-age=9999999999999999"}}, 48 * time.Hour},
		{"max-age invalid", map[string][]string{"Cache-Control": {"max-age=soon"}}, 5 * time.Minute},
		{"max-age negative", map[string][]string{"Cache-Control": {"max-age=-5"}}, 5 * time.Minute},
		{"no-store", map[string][]string{"Cache-Control": {"no-store"}}, 5 * time.Minute},
		{"no-cache wins over max-age", map[string][]string{"Cache-Control": {"max-age=3600, no-cache"}}, 5 * time.Minute},
		{"other directives only", map[string][]string{"Cache-Control": {"public"}}, 24 * time.Hour},
		{"Expires", map[string][]string{"Expires": {now.Add(3 * time.Hour).Format(http.TimeFormat)}}, 3 * time.Hour},
		{"Expires from Date", map[string][]string{"Date": {now.Add(-time.Hour).Format(http.TimeFormat)},
			"Expires": {now.Add(time.Hour).Format(http.TimeFormat)}}, 2 * time.Hour},
		{"Expires invalid", map[string][]string{"Expires": {"0"}}, 5 * time.Minute},
		{"Expires past", map[string][]string{"Date": {date}, "Expires": {now.Add(-time.Hour).Format(http.TimeFormat)}}, 5 * time.Minute},
		{"Expires far", map[string][]string{"Expires": {now.Add(1000 * time.Hour).Format(http.TimeFormat)}}, 48 * time.Hour},
		{"max-age beats Expires", map[string][]string{"Cache-Control": {"max-age=3600"},
			"Expires": {now.Add(10 * time.Hour).Format(http.TimeFormat)}}, time.Hour},
		{"Age invalid", map[string][]string{"Cache-Control": {"max-age=3600"}, "Age": {"x"}}, time.Hour},
		{"Age huge", map[string][]string{"Cache-Control": {"max-age=3600"}, "Age": {"99999999999999999"}}, 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cacheTTL(http.Header(tt.header), now); got != tt.want {
				t.Errorf("cacheTTL(%v) = %v; want %v", tt.header, got, tt.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	want := []time.Duration{2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute,
		32 * time.Minute, time.Hour, time.Hour}
	for i, w := range want {
		if got := backoff(i + 1); got != w {
			t.Errorf("backoff(%d) = %v; want %v", i+1, got, w)
		}
	}
	if got := backoff(1 << 30); got != time.Hour {
		t.Errorf("backoff(huge) = %v; want 1h", got)
	}
}

func TestParseWellKnown(t *testing.T) {
	tests := []struct {
		body string
		want id.ServerName // "" means invalid
	}{
		{`{"m.server":"example.test"}`, "example.test"},
		{`{"m.server":"example.test:1234"}`, "example.test:1234"},
		{`{"m.server":"[2001:db8::1]:8448"}`, "[2001:db8::1]:8448"},
		{` {"m.server" : "a.test"} `, "a.test"},
		{`{"m.server":"a.test","m.server":"b.test"}`, "b.test"},
		{`{"m.server":"a.test"}{}`, ""},
		{``, ""},
		{`{`, ""},
		{`null`, ""},
		{`[]`, ""},
		{`true`, ""},
		{`"a.test"`, ""},
		{`{"m.server":null}`, ""},
		{`{"m.server":["a.test"]}`, ""},
		{`{"m.server":""}`, ""},
		{`{"m.server":"a.test:"}`, ""},
		{`{"m.server":"a test"}`, ""},
		{`{"m.server":"a.test/path"}`, ""},
		{`{"m.server":"https://a.test"}`, ""},
		{`{"M.Server":"a.test"}`, ""},
		{`{"m.server":"\u0000"}`, ""},
		{"{\"m.server\":\"a.te\xffst\"}", ""},
	}
	for _, tt := range tests {
		got, err := parseWellKnown([]byte(tt.body))
		if got != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("parseWellKnown(%q) = %q, %v; want %q", tt.body, got, err, tt.want)
		}
		if err != nil && !errors.Is(err, errWellKnownBody) {
			t.Errorf("parseWellKnown(%q) error %v is not errWellKnownBody", tt.body, err)
		}
	}
}

func FuzzParseWellKnown(f *testing.F) {
	for _, s := range []string{`{"m.server":"a.test:1"}`, `{"m.server":"[::1]"}`, `{}`, `[`, `{"m.server":5}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		name, err := parseWellKnown(body)
		if err != nil {
			return
		}
		if _, err := id.ParseServerName(string(name)); err != nil {
			t.Fatalf("parseWellKnown(%q) = %q, not a valid server name: %v", body, name, err)
		}
		_ = (&Resolver{defaultPort: DefaultPort}).route(target{server: "a.test", delegated: name})
	})
}

// TestWellKnownCache checks that a delegation is remembered for as long
// as the response's headers say, within the bounds, on the injected clock.
func TestWellKnownCache(t *testing.T) {
	e := newEnv(t)
	xp := strconv.Itoa(int(e.x.port))
	tests := []struct {
		name   string
		header map[string]string
		fresh  time.Duration // still cached this long after the fetch
		stale  time.Duration // fetched again this long after the fetch
	}{
		{"default 24h", nil, 24*time.Hour - time.Second, 24 * time.Hour},
		{"max-age", map[string]string{"Cache-Control": "max-age=3600"}, 59 * time.Minute, time.Hour},
		{"minimum", map[string]string{"Cache-Control": "max-age=10"}, 4 * time.Minute, 5 * time.Minute},
		{"no-store", map[string]string{"Cache-Control": "no-store"}, 4 * time.Minute, 5 * time.Minute},
		{"maximum", map[string]string{"Cache-Control": "max-age=31536000"}, 47 * time.Hour, 48 * time.Hour},
		{"expires", map[string]string{"Date": e.clock.Now().Format(http.TimeFormat),
			"Expires": e.clock.Now().Add(2 * time.Hour).Format(http.TimeFormat)}, time.Hour, 2 * time.Hour},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := "cache" + strconv.Itoa(i) + ".test"
			e.setWellKnown(host, wkAnswer{body: `{"m.server":"deleg.test:` + xp + `"}`, header: tt.header})
			clock := testenv.NewClock(e.clock.Now())
			r := e.resolver(func(c *Config) { c.Now = clock.Now })

			resolve := func(wantFetches int) {
				t.Helper()
				res, err := r.Resolve(t.Context(), host)
				if err != nil {
					t.Fatal(err)
				}
				if res.Method != MethodWellKnownPort {
					t.Fatalf("Resolve(%s).Method = %v; want %v", host, res.Method, MethodWellKnownPort)
				}
				if got := e.fetchCount(host); got != wantFetches {
					t.Fatalf("after %v: %d fetches of %s; want %d", clock.Now().Sub(e.clock.Now()), got, host, wantFetches)
				}
			}
			resolve(1)
			resolve(1)
			clock.Advance(tt.fresh)
			resolve(1)
			clock.Advance(tt.stale - tt.fresh)
			resolve(2)
			resolve(2)
		})
	}
}

// TestWellKnownBackoff checks that failures are remembered for 2 min,
// doubling while they go on, and that a success ends the streak.
func TestWellKnownBackoff(t *testing.T) {
	e := newEnv(t)
	const host = "flaky.test"
	e.setWellKnown(host, wkAnswer{status: http.StatusServiceUnavailable})
	r := e.resolver(nil)
	clock := e.clock

	resolve := func(wantFetches int, want Method) {
		t.Helper()
		res, err := r.Resolve(t.Context(), host)
		if err != nil {
			t.Fatal(err)
		}
		if res.Method != want {
			t.Fatalf("Method = %v; want %v", res.Method, want)
		}
		if got := e.fetchCount(host); got != wantFetches {
			t.Fatalf("%d fetches; want %d", got, wantFetches)
		}
	}
	resolve(1, MethodDefault)
	resolve(1, MethodDefault)
	for i, wait := range []time.Duration{2 * time.Minute, 4 * time.Minute, 8 * time.Minute} {
		clock.Advance(wait - time.Second)
		resolve(1+i, MethodDefault)
		clock.Advance(time.Second)
		resolve(2+i, MethodDefault)
	}
	// The server recovers; the fourth failure is remembered for 16 min.
	e.setWellKnown(host, wkAnswer{body: `{"m.server":"deleg.test"}`})
	clock.Advance(16*time.Minute - time.Second)
	resolve(4, MethodDefault)
	clock.Advance(time.Second)
	resolve(5, MethodWellKnownDefault)
	// A new failure after a success starts over at 2 min.
	e.setWellKnown(host, wkAnswer{status: http.StatusNotFound})
	clock.Advance(24 * time.Hour)
	resolve(6, MethodDefault)
	clock.Advance(2 * time.Minute)
	resolve(7, MethodDefault)
}

func TestWellKnownCacheBound(t *testing.T) {
	e := newEnv(t)
	r := e.resolver(func(c *Config) { c.CacheSize = 2 })
	hosts := []string{"wk-plain.test", "wk-srv.test", "wk-legacy.test"}
	for _, h := range hosts {
		if _, err := r.Resolve(t.Context(), h); err != nil {
			t.Fatal(err)
		}
	}
	r.mu.Lock()
	n := r.cache.len()
	r.mu.Unlock()
	if n != 2 {
		t.Errorf("cache holds %d hostnames; want 2", n)
	}
	// The least recently used one was evicted and is fetched again; the
	// most recent one is still cached.
	for _, h := range []string{hosts[2], hosts[0]} {
		if _, err := r.Resolve(t.Context(), h); err != nil {
			t.Fatal(err)
		}
	}
	for h, want := range map[string]int{hosts[0]: 2, hosts[2]: 1} {
		if got := e.fetchCount(h); got != want {
			t.Errorf("%s fetched %d times; want %d", h, got, want)
		}
	}
}

// TestWellKnownSingleFlight checks that concurrent resolutions share one
// fetch, and that a caller giving up does not fail the others.
func TestWellKnownSingleFlight(t *testing.T) {
	e := newEnv(t)
	const host = "shared.test"
	gate := make(chan struct{})
	e.setWellKnown(host, wkAnswer{body: `{"m.server":"deleg.test"}`, wait: gate})
	r := e.resolver(func(c *Config) { c.WellKnownTimeout = 10 * time.Second })

	const n = 20
	var wg sync.WaitGroup
	results := make([]Result, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { results[i], errs[i] = r.Resolve(t.Context(), host) })
	}
	impatient, cancel := context.WithCancel(t.Context())
	impatientErr := make(chan error, 1)
	go func() {
		_, err := r.Resolve(impatient, host)
		impatientErr <- err
	}()
	testenv.Eventually(t, 5*time.Second, "all callers wait for one fetch", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		f := r.flights[host]
		return f != nil && f.waiters == n+1
	})
	cancel()
	if err := <-impatientErr; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: %v; want context.Canceled", err)
	}
	close(gate)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || results[i].Method != MethodWellKnownDefault {
			t.Errorf("caller %d: %+v, %v", i, results[i], errs[i])
		}
	}
	if got := e.fetchCount(host); got != 1 {
		t.Errorf("%d fetches; want 1", got)
	}
}

func TestResolverClose(t *testing.T) {
	e := newEnv(t)
	const host = "closing.test"
	e.setWellKnown(host, wkAnswer{body: `{"m.server":"deleg.test"}`, wait: make(chan struct{})})
	r := e.resolver(func(c *Config) { c.WellKnownTimeout = time.Minute })

	errc := make(chan error, 1)
	go func() {
		_, err := r.Resolve(t.Context(), host)
		errc <- err
	}()
	testenv.Eventually(t, 5*time.Second, "the fetch started", func() bool { return e.fetchCount(host) == 1 })
	r.Close() // returns once the fetch has stopped
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("Resolve during Close: %v; want ErrClosed", err)
	}
	if _, err := r.Resolve(t.Context(), host); !errors.Is(err, ErrClosed) {
		t.Errorf("Resolve after Close: %v; want ErrClosed", err)
	}
	// Names that need no well-known still resolve.
	if _, err := r.Resolve(t.Context(), "plain.test:1"); err != nil {
		t.Errorf("Resolve(plain.test:1) after Close: %v", err)
	}
}
