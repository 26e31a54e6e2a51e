package devcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// host is the only address anything of the cluster listens on.
const host = "127.0.0.1"

// ports hands out free loopback ports, never the same one twice in a
// cluster (a port freed by a stopped process is not reused for another).
type ports struct{ used map[int]bool }

// next returns a port that was free a moment ago. Another program may take
// it before the child binds it; the child then fails to start, loudly.
func (p *ports) next() (int, error) {
	if p.used == nil {
		p.used = map[int]bool{}
	}
	for range 50 {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		if !p.used[port] {
			p.used[port] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free port on %s", host)
}

func addr(port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// httpGet fetches url with a short timeout and returns the status and body.
func httpGet(ctx context.Context, url string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

// probeClient keeps no idle connections: probes of a process that is
// replaced on the same port must not reuse an old connection.
var probeClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// poll calls check every interval until it returns nil, the process dies
// (when proc is set), or the timeout expires; it returns the last error.
func poll(ctx context.Context, what string, timeout, interval time.Duration, proc *Process, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(interval)
	defer t.Stop()
	var last error
	for {
		if last = check(ctx); last == nil {
			return nil
		}
		var exited <-chan struct{}
		if proc != nil {
			exited = proc.Done()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not within %s: %w", what, timeout, last)
		case <-exited:
			exitErr := proc.ExitErr()
			if exitErr == nil {
				exitErr = errors.New("exit status 0")
			}
			return fmt.Errorf("%s: %s exited (%w); log:\n%s", what, proc.Name, exitErr, proc.LogTail(3000))
		case <-t.C:
		}
	}
}
