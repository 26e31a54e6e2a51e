// Package devcluster runs a whole Axon cluster on one machine, on
// 127.0.0.1 only, for `axon dev cluster` and the fault suite in
// tests/cluster: PostgreSQL (standing in for CockroachDB, at SERIALIZABLE),
// a 3-node NATS JetStream cluster, a one-member etcd, several
// `axon serve --roles=<role>` workers, and haproxy in front of them routing
// paths the way the Kubernetes Ingress does.
//
// # What it owns
//
//   - Every process it starts, as a child tracked by PID in a state
//     directory (data, logs, binaries, and state.json with each PID and
//     start time). Stop stops them all by PID; without Options.Detach,
//     every child also gets SIGKILL from the kernel when this process dies,
//     however it dies (the children are forked from one locked OS thread,
//     see spawn), so a failed or killed test leaves nothing behind.
//     StopDir stops a cluster that another process started, from its
//     state file, and never touches a PID that a new process has reused.
//   - Ports: random free loopback ports, chosen once. A NATS node, etcd and
//     PostgreSQL keep theirs across a restart, like a StatefulSet pod.
//   - The proxy's slots. Every HTTP role (client, sync, federation) has
//     Options.Slots server lines in haproxy, each with fixed ports; a worker
//     takes a free slot, unused slots are DOWN by their health checks. So
//     haproxy learns about a new or replaced worker through /readyz alone,
//     with no reload and no runtime API call. A rolling replacement
//     (ReplaceWorker) is the Deployment's maxSurge=1, maxUnavailable=0: the
//     new worker starts in another slot, and only once it is ready and UP in
//     the proxy does the old one get SIGTERM; axon then fails /readyz for 5 s
//     while still serving, haproxy takes it out within about a second, and
//     requests that still meet a closed port are retried on another server
//     (retries, option redispatch, retry-on conn-failure empty-response).
//
// The workers share one signing key and one server name, run with rate
// limits off and registration open, and get --nats-replicas only when
// `axon serve --help` lists it (otherwise the streams have one replica,
// and State.NATSReplicas says so).
//
// # What it never does
//
// It never listens beyond loopback, never signals a process by name or one
// it did not start, and never downloads a binary: PostgreSQL, etcd and
// haproxy are Debian's packages (installed through scripts/ensure-debs.sh
// when missing), nats-server and axon are built from this module.
package devcluster
