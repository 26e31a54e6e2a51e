// Package bus is Axon's JetStream plumbing: the embedded NATS server of the
// single-process default, the client connection that every role shares, the
// definitions of the streams that connect the roles, publishing with
// de-duplication, and the in-order durable consumer used per partition.
//
// # What it owns
//
//   - The stream definitions (names, subjects, retention, limits). They live in
//     streams.go and nowhere else; EnsureStreams creates or updates them
//     idempotently, so every process may call it at start-up.
//   - The subject and partition contract (below).
//   - Connection lifecycle: reconnect forever with jittered exponential backoff,
//     bounded reconnect buffer, connection state observable through
//     Bus.Connected and Options.OnStateChange (wire readiness and metrics there).
//   - The embedded server: nats-server with JetStream on a file store.
//
// # What it never does
//
//   - It never interprets payloads: messages are opaque bytes.
//   - It never decides partition ownership (that is internal/coord) and never
//     touches the database.
//   - It never listens on anything but loopback, and by default not at all.
//   - It keeps no package-level state; everything hangs off *Embedded and *Bus.
//
// # Subject and partition contract (wire contract — do not change lightly)
//
// Room input is the stream ROOM_INPUT with subjects
//
//	axon.room.input.<partition>
//
// and room output is the stream ROOM_EVENTS with subjects
//
//	axon.room.events.<partition>
//
// where <partition> is the decimal integer PartitionOf(roomID, n) and n, the
// number of partitions, is a power of two (default 64). PartitionOf is the top
// log2(n) bits of the 64-bit FNV-1a hash of the room ID's UTF-8 bytes. The top
// bits are used (not the low ones) because FNV's low bits depend only on the
// low bits of the input bytes. Every process — all versions of all roles that
// are running at the same time — must compute the same value, so the function
// and n are part of the wire format: golden values in the tests pin them.
// Doubling n splits partition p into 2p and 2p+1, which keeps a reshard simple.
//
// # Streams
//
// ROOM_INPUT uses work-queue retention with DiscardNew: a message is removed
// once the partition owner acks it, and a full stream rejects new publishes
// (the writer answers 503/429) instead of silently dropping unprocessed input.
// ROOM_EVENTS uses limits retention with DiscardOld: it is a replayable log
// for the sync index, federation sender, appservices and push, whose
// consumers are idempotent and either durable or, for a reader that keeps
// its own position (the sync index), ordered consumers started from that
// position; one that falls behind the retention resynchronises from the
// database, which is the source of truth.
// Both streams use file storage, a de-duplication window (default two
// minutes) keyed by the Nats-Msg-Id header, and configurable replicas (1 for
// the embedded server, 3 in a cluster).
//
// # Embedded server
//
// StartEmbedded runs nats-server in process. By default it opens no TCP port
// at all (DontListen) and clients connect through an in-process pipe
// (Embedded.Connect); EmbeddedOptions.ListenLoopback opens 127.0.0.1 on a
// random (or given) port, for the nats CLI or for tests of Connect.
//
// # Consuming
//
// Consume runs one durable pull consumer filtered to one partition with
// MaxAckPending 1, so messages are handled strictly in stream order. A nil
// handler result acks (and waits for the server's confirmation); an error
// NAKs with exponential backoff; after MaxDeliver attempts, or on an error
// wrapped with Permanent, the message is terminated and logged at error level
// so that one poison message cannot stop a room partition forever. Handlers
// must be idempotent: delivery is at least once.
//
// ConsumeBatch does the same with batches, retrying a failed batch in
// process. A durable consumer redelivers a message whose ack was lost only
// after its ack deadline, behind newer ones; a reader that must see the
// stream without gaps in stream order uses ConsumeOrdered instead: an
// ordered consumer from the position the reader stored, no acks.
package bus
