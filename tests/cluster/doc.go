// Package cluster is the cluster fault suite (issue 5): it starts a local
// cluster with internal/devcluster (PostgreSQL at SERIALIZABLE, a 3-node
// NATS JetStream cluster, etcd, several workers per role, haproxy in
// front), drives Matrix traffic through the proxy at a fixed rate, and
// disturbs the cluster: a rolling redeploy, SIGKILLed workers, NATS
// restarts, a PostgreSQL restart, etcd stopped for 30 s, and room and
// sender workers scaled up and down under load.
//
// Every case checks that no acknowledged event is lost or duplicated and
// that every syncing client sees every message, in each sender's order,
// and reports failed requests, the time to recover and the send latency
// p99 per phase. The suite runs only with AXON_CLUSTER_TESTS=1 (make
// test-cluster); `go test ./...` skips it. The package has no code outside
// its tests.
package cluster
