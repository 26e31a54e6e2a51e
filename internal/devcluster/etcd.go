package devcluster

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// etcdBinary is Debian's etcd-server.
const etcdBinary = "/usr/bin/etcd"

// etcdServer is a one-member etcd cluster. A restart keeps its data
// directory and ports, so leases that have not expired survive it.
type etcdServer struct {
	dir, log     string
	client, peer int
	detach       bool
	proc         *Process
}

func ensureEtcd(repo string) error {
	if _, err := os.Stat(etcdBinary); err == nil {
		return nil
	}
	if err := ensureDebs(repo, "etcd-server"); err != nil {
		return err
	}
	_, err := os.Stat(etcdBinary)
	return err
}

func (e *etcdServer) url() string { return "http://" + addr(e.client) }

func (e *etcdServer) start(ctx context.Context) error {
	peer := "http://" + addr(e.peer)
	p, err := start(spawnSpec{name: "etcd", path: etcdBinary, args: []string{
		"--name", "axon-dev", "--data-dir", e.dir,
		"--listen-client-urls", e.url(), "--advertise-client-urls", e.url(),
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "axon-dev=" + peer, "--initial-cluster-state", "new",
		// A throwaway cluster needs no fsync (etcd ≥ 3.4); it keeps etcd
		// fast on a busy machine.
		"--unsafe-no-fsync", "--log-level", "warn", "--logger", "zap",
	}, log: e.log, detach: e.detach})
	if err != nil {
		return err
	}
	e.proc = p
	return poll(ctx, "etcd healthy", 60*time.Second, 100*time.Millisecond, p, func(ctx context.Context) error {
		code, body, err := httpGet(ctx, e.url()+"/health")
		if err != nil {
			return err
		}
		if code != 200 || !strings.Contains(string(body), `"health":"true"`) {
			return fmt.Errorf("/health: %s %s", strconv.Itoa(code), body)
		}
		return nil
	})
}

func (e *etcdServer) stop() error {
	if e.proc == nil {
		return nil
	}
	return e.proc.Stop(syscall.SIGTERM, 30*time.Second)
}
