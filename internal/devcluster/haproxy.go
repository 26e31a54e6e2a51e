package devcluster

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// haproxyBinary is Debian's haproxy.
const haproxyBinary = "/usr/sbin/haproxy"

// backendRoles are the roles that serve HTTP behind the proxy, each in a
// backend of its name.
var backendRoles = []Role{RoleClient, RoleSync, RoleFederation}

// slot is a fixed place in a backend: its ports never change, so a
// replacement worker that takes a free slot is found by the health checks
// alone, with no reload of the proxy.
type slot struct {
	role    Role
	index   int
	listen  int // --listen: the Client-Server API, /readyz
	fed     int // --federation-listen (federation role only)
	metrics int // --metrics-listen
	worker  *Worker
}

func (s *slot) server() string { return fmt.Sprintf("%s-%d", s.role, s.index) }

// haproxyConfig renders the proxy's configuration. Routing is the
// Kubernetes Ingress's: /_matrix/client/{v3,r0}/sync to the sync role,
// /_matrix/federation/ and /_matrix/key/ to the federation role, the rest
// to the client role.
//
// Zero-downtime rolling rests on four things: every worker slot is a
// server line with a fixed port, unused ones are simply DOWN; /readyz is
// checked every 500 ms and two failures take a server out, well inside the
// 5 s for which a draining axon fails readiness while still serving; a
// request whose connection fails (a listener already closed, a killed
// process) is retried, on another server (option redispatch), and so is
// one that got no response at all on a reused connection (retry-on
// empty-response); and a server marked down keeps its established
// sessions, so in-flight requests and long-polls finish on it.
func haproxyConfig(listen int, socket string, slots []*slot) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
  maxconn 4096
  stats socket %s mode 600 level admin
  log stderr format raw local0 info
  hard-stop-after 30s

defaults
  mode http
  log global
  option httplog
  option dontlognull
  option forwardfor
  timeout connect 2s
  timeout client 120s
  timeout server 120s
  timeout http-request 30s
  timeout http-keep-alive 30s
  timeout queue 30s
  timeout check 2s
  retries 3
  option redispatch 1
  retry-on conn-failure empty-response
  option httpchk
  http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host localhost
  http-check expect status 200
  default-server inter 500ms fastinter 250ms downinter 500ms rise 1 fall 2

frontend matrix
  bind %s
  acl is_sync path_reg ^/_matrix/client/(v3|r0)/sync$
  acl is_federation path_beg /_matrix/federation/ /_matrix/key/
  use_backend sync if is_sync
  use_backend federation if is_federation
  default_backend client
`, socket, addr(listen))
	for _, role := range backendRoles {
		balance := "roundrobin"
		if role == RoleSync {
			balance = "leastconn" // long-polls
		}
		fmt.Fprintf(&b, "\nbackend %s\n  balance %s\n", role, balance)
		for _, s := range slots {
			if s.role != role {
				continue
			}
			if role == RoleFederation {
				// The federation listener is checked through the worker's
				// client listener, which serves /readyz.
				fmt.Fprintf(&b, "  server %s %s check port %d\n", s.server(), addr(s.fed), s.listen)
			} else {
				fmt.Fprintf(&b, "  server %s %s check\n", s.server(), addr(s.listen))
			}
		}
	}
	return b.String()
}

type haproxy struct {
	conf, socket, log string
	port              int
	detach            bool
	proc              *Process
}

func ensureHAProxy(repo string) error {
	if _, err := os.Stat(haproxyBinary); err == nil {
		return nil
	}
	if err := ensureDebs(repo, "haproxy"); err != nil {
		return err
	}
	_, err := os.Stat(haproxyBinary)
	return err
}

func (h *haproxy) url() string { return "http://" + addr(h.port) }

// start checks the configuration, then runs haproxy in the foreground
// (-db: no daemon, so the PID we hold is the proxy's).
func (h *haproxy) start(ctx context.Context) error {
	if out, err := exec.CommandContext(ctx, haproxyBinary, "-c", "-q", "-f", h.conf).CombinedOutput(); err != nil {
		return fmt.Errorf("haproxy -c: %w\n%s", err, out)
	}
	p, err := start(spawnSpec{name: "haproxy", path: haproxyBinary, args: []string{"-db", "-f", h.conf}, log: h.log, detach: h.detach})
	if err != nil {
		return err
	}
	h.proc = p
	return poll(ctx, "haproxy up", 30*time.Second, 100*time.Millisecond, p, func(ctx context.Context) error {
		_, err := h.stats(ctx)
		return err
	})
}

func (h *haproxy) stop() error {
	if h.proc == nil {
		return nil
	}
	return h.proc.Stop(syscall.SIGTERM, 10*time.Second)
}

// ServerStat is one line of haproxy's statistics.
type ServerStat struct {
	Backend, Server string
	Status          string // UP, DOWN, MAINT, "UP 1/2" …
	Retries         int    // wretr: connection retries
	Redispatches    int    // wredis
	ConnErrors      int    // econ
	RespErrors      int    // eresp
	HTTP5xx         int    // hrsp_5xx
}

// stats asks the runtime API for "show stat" and returns the server lines
// (and the backends' own BACKEND lines).
func (h *haproxy) stats(ctx context.Context) ([]ServerStat, error) {
	out, err := h.command(ctx, "show stat")
	if err != nil {
		return nil, err
	}
	return parseStat(out)
}

func (h *haproxy) command(ctx context.Context, cmd string) (string, error) {
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "unix", h.socket)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return "", err
	}
	data, err := io.ReadAll(bufio.NewReader(c))
	return string(data), err
}

func parseStat(out string) ([]ServerStat, error) {
	out = strings.TrimPrefix(strings.TrimSpace(out), "# ")
	r := csv.NewReader(strings.NewReader(out))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("haproxy show stat: %w", err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("haproxy show stat: empty answer")
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	for _, need := range []string{"pxname", "svname", "status"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("haproxy show stat: no %s column", need)
		}
	}
	get := func(row []string, name string) string {
		if i, ok := col[name]; ok && i < len(row) {
			return row[i]
		}
		return ""
	}
	num := func(row []string, name string) int {
		var n int
		_, _ = fmt.Sscan(get(row, name), &n)
		return n
	}
	var stats []ServerStat
	for _, row := range rows[1:] {
		if get(row, "svname") == "FRONTEND" {
			continue
		}
		stats = append(stats, ServerStat{Backend: get(row, "pxname"), Server: get(row, "svname"), Status: get(row, "status"),
			Retries: num(row, "wretr"), Redispatches: num(row, "wredis"), ConnErrors: num(row, "econ"),
			RespErrors: num(row, "eresp"), HTTP5xx: num(row, "hrsp_5xx")})
	}
	return stats, nil
}

// serverUp reports whether haproxy's health checks have a server UP.
func serverUp(stats []ServerStat, backend, server string) (bool, string) {
	for _, s := range stats {
		if s.Backend == backend && s.Server == server {
			return s.Status == "UP", s.Status
		}
	}
	return false, "absent"
}
