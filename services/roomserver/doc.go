// Package roomserver is the room role: the owner of a room partition
// builds, authorises and persists every event of the partition's rooms,
// and relays committed events to the ROOM_EVENTS stream. It also offers
// the writers' side (Submitter) and a read-only view of its tables
// (Reader) to the client and sync roles.
//
// # The write path
//
// A writer publishes an Input (input.go; a wire contract) to the room's
// ROOM_INPUT partition and waits on a core NATS reply subject. The
// partition's owner consumes inputs in batches, in stream order. For each
// input it completes the templates against its in-memory copy of the
// room's head (prev_events = the forward extremities, auth_events by the
// auth events selection, depth, hashes and this server's signature),
// applies the authorisation rules of the room version against the current
// state, and stages the result. An input is atomic: when one of its events
// is refused, the input's staged changes are undone and the writer gets
// the Matrix error; other inputs of the batch are unaffected.
//
// The batch is then persisted in one transaction per batch: every touched
// room's head is advanced with a compare-and-set on rooms.head_seq (the
// value this worker last committed), the events, the state history, the
// memberships, the client transaction IDs and one outbox row per event are
// written together. Only then are the writers answered: over NATS, or
// directly when the writer is this process's Submitter (ReplyLocally).
// The statements are all deferred (store.Tx.Defer), so on PostgreSQL a
// batch's transaction is one round trip, BEGIN to COMMIT; the head's
// compare-and-set is one of its statements and aborts the transaction
// when it matches no row.
//
// On SQLite and PostgreSQL the batches that several partitions of one
// process commit at the same moment are merged into one transaction
// (group commit, groupcommit.go): each keeps its compare-and-set guards,
// and if the merged transaction fails each is written again on its own, so
// a conflict in one partition fails only that partition's batch. The
// committer that leads a round first waits (at most a millisecond) for
// the partitions still applying a batch, so that they join it;
// axon_room_commit_batches shows how many batches each transaction
// carried. On CockroachDB each batch commits on its own: a transaction
// over many rooms' ranges would be a distributed one.
//
// # Each input applies once
//
// Delivery from JetStream is at least once: a worker that dies between
// its commit and the ack sees its batch again after a restart. Every event
// records the ROOM_INPUT message it came from (the stream's creation time,
// so that a recreated stream whose sequences start again is not mistaken
// for an old one, and the sequence); a message delivered more than once is
// looked up and skipped when it already produced events. An input that was
// refused the first time is simply tried again. Client transaction IDs
// de-duplicate retries by the client on top of that.
//
// # Correctness does not depend on ownership
//
// Two workers that both believe they own a partition (a paused process, an
// expired lease) cannot corrupt a room: the loser's compare-and-set fails,
// its cached heads are dropped, and the batch is re-run against the fresh
// head from the database (bus.ConsumeBatch retries it). Client
// transaction IDs are a primary key, so a send retried on another worker
// yields the same event ID: a batch takes each ID for new, and when its
// insert finds the ID recorded (the deferred insert affects no row) the
// batch is dropped and applied again with every ID looked up first.
//
// # The outbox relay
//
// Right after a commit the worker publishes the batch's events to
// ROOM_EVENTS (message ID = event ID, so repeats are stored once), and
// their outbox rows are deleted about once a second in a small transaction
// of their own (in the batch's transaction, the range delete made
// concurrent partitions conflict on PostgreSQL). A new owner of a partition
// first publishes any leftover rows, in room order, before consuming
// input, so each room's events reach ROOM_EVENTS in persistence order.
// While publishing fails the partition waits rather than letting a later
// event overtake an earlier one.
//
// # State
//
// The room's history here is linear: events built by this server extend
// the single forward extremity. state_history records, in room_seq terms,
// when each event was part of the current state, so the state at any point
// of the room (for /sync, /messages, /context) is one query. The Reader
// keeps parsed events in a bounded cache keyed by event ID and redacted_by
// (a stored PDU changes only when it is redacted, and then its key
// changes too), so reading the same events again costs no parsing or
// hashing. state_history mirrors redacted_by (set in the redaction's
// transaction; any later code that makes an already redacted event part
// of the state must copy it), so reading a state whose events are cached
// touches state_history only; the sync role's index mirrors it as well
// (EventsByKey). Federation
// (issue #4) brings forks, state resolution and outliers into the same
// tables.
//
// # What it must never do
//
// Write room tables outside the partition owner's transaction; answer a
// writer before the commit; publish an event to ROOM_EVENTS before an
// earlier event of its room; keep anything in memory that the database
// could not rebuild (the room cache is bounded and disposable).
package roomserver
