package devcluster

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func TestHAProxyConfigRoutesAndSlots(t *testing.T) {
	slots := []*slot{
		{role: RoleClient, index: 0, listen: 1001, metrics: 2001},
		{role: RoleClient, index: 1, listen: 1002, metrics: 2002},
		{role: RoleSync, index: 0, listen: 1003, metrics: 2003},
		{role: RoleFederation, index: 0, listen: 1004, fed: 1005, metrics: 2004},
	}
	cfg := haproxyConfig(8008, "/tmp/x.sock", slots)
	for _, want := range []string{
		"bind 127.0.0.1:8008",
		"acl is_sync path_reg ^/_matrix/client/(v3|r0)/sync$",
		"acl is_federation path_beg /_matrix/federation/ /_matrix/key/",
		"default_backend client",
		"server client-0 127.0.0.1:1001 check\n",
		"server client-1 127.0.0.1:1002 check\n",
		"backend sync\n  balance leastconn\n  server sync-0 127.0.0.1:1003 check\n",
		"server federation-0 127.0.0.1:1005 check port 1004\n",
		"uri /readyz",
		"option redispatch",
		"stats socket /tmp/x.sock",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
}

func TestParseStat(t *testing.T) {
	out := "# pxname,svname,qcur,status,wretr,wredis,hrsp_5xx\n" +
		"matrix,FRONTEND,,OPEN,,,0\n" +
		"client,client-0,0,UP,1,2,3\n" +
		"client,client-1,0,DOWN,0,0,0\n" +
		"client,BACKEND,0,UP,1,2,3\n"
	st, err := parseStat(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 3 {
		t.Fatalf("got %d lines, want 3: %+v", len(st), st)
	}
	if up, _ := serverUp(st, "client", "client-0"); !up {
		t.Error("client-0 should be UP")
	}
	if up, status := serverUp(st, "client", "client-1"); up || status != "DOWN" {
		t.Errorf("client-1: %v %s", up, status)
	}
	if st[0].Retries != 1 || st[0].Redispatches != 2 || st[0].HTTP5xx != 3 {
		t.Errorf("counters: %+v", st[0])
	}
}

func TestProcStat(t *testing.T) {
	start, err := procStartTime(os.Getpid())
	if err != nil || start == 0 {
		t.Fatalf("procStartTime: %d, %v", start, err)
	}
	if !alive(os.Getpid(), start) {
		t.Error("this process is not alive")
	}
	if alive(os.Getpid(), start+1) {
		t.Error("a different start time must not count as alive")
	}
}

// TestClusterLifecycle starts a small cluster, rolls, kills and adds
// workers, and checks that nothing is left behind. It runs with the fault
// suite (AXON_CLUSTER_TESTS=1), not in make test.
func TestClusterLifecycle(t *testing.T) {
	if os.Getenv("AXON_CLUSTER_TESTS") != "1" {
		t.Skip("set AXON_CLUSTER_TESTS=1 to start a local cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Not t.TempDir: PostgreSQL runs as the postgres user when we are
	// root, and the test's temporary directory is closed to others.
	dir, err := os.MkdirTemp("", "axon-devcluster-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	c, err := Start(ctx, Options{Dir: dir, Progress: func(s string) { t.Log(s) }})
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
		st, err := ReadState(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Processes) != 0 {
			t.Errorf("state file still lists %+v", st.Processes)
		}
		for _, pid := range pids {
			if alive(pid, 0) {
				t.Errorf("pid %d still alive after Stop", pid)
			}
		}
	})
	st, err := ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st.Processes {
		pids = append(pids, p.PID)
	}
	// PostgreSQL, etcd, 3 NATS nodes, haproxy and one worker per role.
	if len(st.Processes) != 6+len(Roles()) {
		t.Errorf("the state file lists %d processes, want %d: %+v", len(st.Processes), 6+len(Roles()), st.Processes)
	}
	// Routing: /readyz through the proxy reaches a client worker; the
	// federation role answers /_matrix/key/v2/server.
	code, _, err := httpGet(ctx, c.ClientURL()+"/_matrix/client/versions")
	if err != nil || code != 200 {
		t.Fatalf("versions through the proxy: %d %v", code, err)
	}
	code, body, err := httpGet(ctx, c.ClientURL()+"/_matrix/key/v2/server")
	if err != nil || code != 200 || !strings.Contains(string(body), "verify_keys") {
		t.Fatalf("key server through the proxy: %d %v %s", code, err, body)
	}
	old := c.Workers(RoleClient)[0]
	nw, err := c.ReplaceWorker(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	pids = append(pids, nw.PID())
	if err := c.WaitDrained(); err != nil {
		t.Fatal(err)
	}
	if !old.Process().Exited() {
		t.Fatal("the replaced worker is still running")
	}
	room := c.Workers(RoleRoom)[0]
	if err := c.KillWorker(room); err != nil {
		t.Fatal(err)
	}
	w, err := c.AddWorker(ctx, RoleRoom)
	if err != nil {
		t.Fatal(err)
	}
	pids = append(pids, w.PID())
	if err := c.RestartPostgres(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.StopNATS(1); err != nil {
		t.Fatal(err)
	}
	if err := c.StartNATS(ctx, 1); err != nil {
		t.Fatal(err)
	}
}
