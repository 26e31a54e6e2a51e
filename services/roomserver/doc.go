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
// state_history records, in room_seq terms, when each event was part of
// the room's current state (the resolved state across its forward
// extremities), so the state at any point of the room's persistence order
// (for /sync, /messages, /context) is one query. The Reader keeps parsed
// events in a bounded cache keyed by event ID and redacted_by (a stored
// PDU changes only when it is redacted, and then its key changes too), so
// reading the same events again costs no parsing or hashing. state_history
// mirrors redacted_by (set in the redaction's transaction, and copied when
// a state change makes an already redacted event current), so reading a
// state whose events are cached touches state_history only; the sync
// role's index mirrors it as well (EventsByKey).
//
// # Events from other servers (remote.go, dag.go)
//
// The federation role publishes what another server sent as an Input with
// PDUs (and Outliers: auth events and state that came along), after
// checking their format, signatures and hashes. The partition owner then
// runs the remaining checks of "Checks performed on receipt of a PDU" for
// each PDU on its own, without any network call (a partition never waits
// for another server):
//
//   - an event already in the timeline is skipped; one whose auth events
//     or prev_events are not known here is refused and not stored (the
//     writer fetches what is missing first), unless the writer gives the
//     state before it (Input.GapStates, from another server's /state_ids):
//     the event is then placed on that state, its unknown prev_events
//     left out of the DAG here;
//   - the auth events must be the right ones (auth.CheckAuthEvents) and
//     allow the event; then the state before the event must allow it.
//     Either failure stores the event as rejected: never shown, never
//     cited, never part of a state;
//   - the state before the event is the room's current state when the
//     event extends the room's single forward extremity; otherwise the
//     states after each of its prev_events, resolved (matrix/stateres) with
//     the events and auth chains loaded from the batch, the current state,
//     the timeline and the outliers (events.outlier);
//   - an event that passes against the state before it but not against
//     the current state is soft-failed: stored, part of the DAG and of
//     later resolutions, never shown to clients nor made an extremity;
//   - an accepted event replaces its prev_events among the forward
//     extremities, and the room's current state becomes the resolution of
//     the states after every extremity; each key that changes is written
//     to state_history at the event's room_seq (and to memberships), and
//     the event's Output carries the whole delta for the sync role.
//
// The state before an event is stored only when it is not the current
// state after room_seq - 1 (a fork): as a delta against that state
// (events.state_base, event_state_deltas), from which the state after any
// event of the timeline is rebuilt. Resolutions load the auth chains of
// the events in the states, bounded by maxResolveEvents; an index of auth
// chains would spare that for large rooms.
//
// # History from before this server joined (history.go)
//
// A room joined through another server starts here at the join. Events
// from before are fetched when a client pages back past it (federation
// /backfill, Input.Backfill) and checked like received events against
// their auth events, which must be known (the join's auth chain holds
// most); those that pass are stored as outliers and listed in
// history_events with hist_seq counting down from -1, newest first, each
// backfill below the last. They change no state, extremity or timeline
// position and are not published; Reader.History reads them and
// BackwardExtremities says where the next backfill starts (nothing once
// the create event is reached).
//
// # Invites to rooms this server is not in (invites.go)
//
// An invite of a local user that another server sends (federation
// /invite) to a room no local user is in has no place in any room here.
// Invites keeps it in remote_invites, one row per room and user, with the
// room state shared along, and announces it on ROOM_EVENTS as an Output
// with OutOfRoom set (RoomSeq 0, one membership in StateDelta), published
// directly rather than through a partition's outbox: nothing of a room's
// order depends on it, and the publish is de-duplicated by event ID, so
// a retried /invite is announced once. A join through the inviting server
// retires the row (the join itself is an ordinary room event); a
// rejection retires it and announces the leave the same way.
//
// A knock of a local user on a room this server is not in (federation
// send_knock) is kept in the same table (migration 0204: membership
// "knock", and via, the resident server it went through) with the state
// the resident server answered, and announced as the membership "knock".
// An invite of the same room and user replaces it (the knock was
// accepted); a rescinding leave through via retires it like a rejected
// invite. Rows without the columns are invites.
//
// # What it must never do
//
// Write room tables outside the partition owner's transaction; answer a
// writer before the commit; publish an event to ROOM_EVENTS before an
// earlier event of its room; keep anything in memory that the database
// could not rebuild (the room cache is bounded and disposable).
package roomserver
