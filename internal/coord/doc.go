// Package coord decides which worker owns which partition of a resource
// (room partitions, federation destinations, singletons such as the sync
// indexer). Ownership only removes contention: correctness never depends
// on it (see services/roomserver), so a worker that still believes it owns
// a partition it lost cannot corrupt anything.
//
// Three implementations of [Coordinator]:
//
//   - [Local] (coord.go) owns every partition: the single-process default,
//     where nobody else could.
//   - [Etcd] (etcd.go, etcd_resource.go) shares partitions between the
//     processes of a deployment through etcd leases, rebalancing as they
//     come and go (cluster mode, axon serve --etcd).
//   - [Manual] (manual.go) owns what it is told to: tests use one per
//     simulated process to split partitions between them and move them
//     mid-stream.
//
// It never touches the database or NATS, and never imports services/.
//
// # The etcd protocol
//
// Each process has a session: an etcd lease with a TTL (default 10 s),
// renewed every TTL/4, and a worker ID (host name, PID, random suffix).
// For each resource under Own, with keys under a prefix that is the
// deployment's own (serve uses /axon/<server name>/coord/):
//
//	<resource>/members/<worker ID>  the worker shares the resource (value: its partition count), under its lease
//	<resource>/owners/<partition>   the worker that owns the partition (value: its ID), under the owner's lease
//
// Every worker reads the members and owners (a snapshot, then a watch)
// and computes the same assignment from the live members: rendezvous
// hashing with bounded load (assign.go), so that loads stay within a few
// partitions of each other and a worker that comes or goes moves little
// more than its own share. For each partition, a worker:
//
//   - that should own it and finds no owner key creates one in a
//     transaction that succeeds only if the key is absent
//     (CreateRevision = 0), then starts the partition's run;
//   - that should own it and finds another's key waits: the watch tells it
//     when the key is deleted, by a hand-over or by the expiry of the
//     holder's lease (a crash), and it tries again;
//   - that holds it but should not any more cancels the run, waits for it
//     to return (the run drains in-flight work), and only then deletes the
//     key, in a transaction that checks it is still the one it created.
//
// A run therefore only ever runs while its worker holds the owner key,
// and a hand-over between well-behaved workers never overlaps: the
// newcomer starts after the old run returned. A run that returns on its
// own while its partition is still owned is released and started again
// after a second, so that a partition never stays owned and idle.
//
// # Losing etcd
//
// The session keeps its own deadline: the lease is known to live until
// the send time of the last answered renewal plus the TTL granted, because
// etcd renewed it after that. When no renewal has been answered by TTL/8
// before that deadline (etcd unreachable, no quorum), or etcd answers
// that the lease is gone (it expired, or was revoked), the session is
// lost: every run is cancelled at once, Healthy reports why (/readyz
// shows it), and the coordinator tries forever, backing off up to 5 s,
// to establish a new session, register again and take its share back.
// The old lease is revoked once the old runs have returned, in case it
// still lives. No restart is ever needed. A process whose roles own no
// partitions does not connect to etcd at all (see cmd/axon).
//
// # Shutting down
//
// When Own's context ends (the role stops), the worker deletes its member
// key first, so that the others compute the new assignment at once, then
// deletes each owner key as soon as that partition's run has returned.
// Close, after the roles have stopped, waits for any run left and revokes
// the lease, which deletes whatever keys remain: the others take over at
// once instead of after the TTL. A crashed worker's partitions move when
// its lease expires, within the TTL (plus etcd's expiry check, up to
// 0.5 s).
//
// # What it does not guarantee
//
// Ownership is advisory. A process that is paused (GC, SIGSTOP, a VM
// migration) longer than the TTL, or whose clock runs far slower than
// etcd's, may still run a partition that etcd has given to another
// worker; so may a run that takes longer to drain than what is left of
// the lease when the session is lost. Both cases are tolerated by design:
// the room role persists with a compare-and-set on the room's head (the
// loser retries or yields) and the sender de-duplicates transactions, so
// double ownership costs contention, never correctness. Partition counts
// may differ between workers during a rollout that changes them: a
// partition goes only to a member that runs that many.
//
// # Metrics (a contract; see internal/metrics)
//
// Registered by [NewEtcd] on the Registerer it is given:
//
//   - axon_coord_session_up gauge: 1 while the process holds a live
//     session.
//   - axon_coord_sessions_total counter: sessions established, the first
//     one included; more than one means sessions were lost.
//   - axon_coord_partitions_owned{resource} gauge: partitions this process
//     owns and runs.
//   - axon_coord_partitions_waiting{resource} gauge: partitions assigned
//     to this process but still held by another worker (a hand-over in
//     progress, or one stuck behind a run that does not return).
//   - axon_coord_members{resource} gauge: workers sharing the resource, as
//     this process sees them.
//   - axon_coord_ownership_changes_total{resource, change} counter:
//     change is acquired, released (given up on purpose: a hand-over or a
//     shutdown) or lost (with the session, or the key deleted under a run).
package coord
