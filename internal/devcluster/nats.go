package devcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// natsNode is one server of the 3-node NATS JetStream cluster. A node
// keeps its ports and file store across a restart, as a StatefulSet pod
// keeps its name and volume.
type natsNode struct {
	name                 string
	bin, conf, store     string
	log                  string
	port, cluster, monit int
	detach               bool
	proc                 *Process
}

// buildNATS builds the nats-server pinned as a Go tool in go.mod.
func buildNATS(ctx context.Context, repo, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/nats-io/nats-server/v2")
	cmd.Dir = repo
	cmd.Env = childEnv()
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build nats-server: %w\n%s", err, b)
	}
	return nil
}

// writeConf writes the node's configuration: JetStream on a file store,
// cluster routes to every other node.
func (n *natsNode) writeConf(all []*natsNode) error {
	var routes []string
	for _, o := range all {
		if o != n {
			routes = append(routes, fmt.Sprintf("%q", "nats://"+addr(o.cluster)))
		}
	}
	conf := fmt.Sprintf(`server_name: %q
listen: %q
http: %q
jetstream {
  store_dir: %q
  max_memory_store: 256MB
  max_file_store: 4GB
}
cluster {
  name: "axon"
  listen: %q
  routes: [%s]
}
`, n.name, addr(n.port), addr(n.monit), n.store, addr(n.cluster), strings.Join(routes, ", "))
	return os.WriteFile(n.conf, []byte(conf), 0o644)
}

func (n *natsNode) url() string { return "nats://" + addr(n.port) }

// start runs the node; it does not wait for it (a node alone has no
// JetStream quorum): see healthy.
func (n *natsNode) start() error {
	p, err := start(spawnSpec{name: n.name, path: n.bin, args: []string{"-c", n.conf}, dir: filepath.Dir(n.conf), log: n.log, detach: n.detach})
	if err != nil {
		return err
	}
	n.proc = p
	return nil
}

// healthy waits until the node's /healthz says JetStream is current (it
// has a meta leader and its assets are caught up).
func (n *natsNode) healthy(ctx context.Context, timeout time.Duration) error {
	return poll(ctx, n.name+" healthy", timeout, 200*time.Millisecond, n.proc, func(ctx context.Context) error {
		code, body, err := httpGet(ctx, "http://"+addr(n.monit)+"/healthz")
		if err != nil {
			return err
		}
		if code != 200 {
			return fmt.Errorf("/healthz: %d %s", code, strings.TrimSpace(string(body)))
		}
		return nil
	})
}

// stop shuts the node down (SIGTERM: nats-server's orderly shutdown).
func (n *natsNode) stop() error {
	if n.proc == nil {
		return nil
	}
	return n.proc.Stop(syscall.SIGTERM, 30*time.Second)
}
