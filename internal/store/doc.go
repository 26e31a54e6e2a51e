// Package store is the one SQL layer that every Axon role uses: it owns the
// connections, transactions and their retries, statement deadlines, schema
// migrations and the small dialect shim between the engines.
//
// # Engines
//
// CockroachDB comes first; PostgreSQL runs the same SQL (CI runs it at
// SERIALIZABLE); SQLite runs it for the embedded single-process default. Open
// picks the engine from the DSN: postgres:// or postgresql:// URLs go through
// pgx's database/sql driver (CockroachDB is recognised by version()),
// anything else is a SQLite file opened with the pure-Go modernc.org/sqlite
// driver (no cgo) in WAL mode with foreign keys on and a busy timeout.
//
// SQLite allows one writer at a time, so a SQLite DB has two pools: a write
// pool of exactly one connection, which runs every Tx (as BEGIN IMMEDIATE)
// and Exec, and a read pool of query_only connections for Query and
// QueryRow, which WAL lets read while the writer writes. Writers of one
// process queue for the write connection; SQLITE_BUSY is seen only when
// another process (a second axon, the migrate command) holds the lock past
// the busy timeout, and Tx retries it like a serialization failure. A
// third connection checkpoints the WAL in the background a few times a
// second (checkpoint.go), so that no commit of the writer stalls every
// writer for a checkpoint's fsync.
//
// # Writing SQL once
//
// Queries are written in PostgreSQL form with $1, $2 … placeholders and run
// unchanged on every engine. Keep to the common subset:
//
//   - Upsert with INSERT … ON CONFLICT (cols) DO UPDATE SET c = excluded.c
//     (SQLite ≥ 3.24). For INSERT … SELECT … ON CONFLICT add WHERE true to
//     the SELECT, which SQLite's parser needs.
//   - Timestamps are BIGINT milliseconds computed in Go, not now(); booleans
//     are bound as Go bools; bytes as []byte.
//   - No SERIAL, sequences or unique_rowid: orderings come from JetStream
//     stream sequences or explicit counters. No LISTEN/NOTIFY, triggers or
//     advisory locks.
//   - DELETE … LIMIT is not portable: batch deletes as
//     DELETE FROM t WHERE pk IN (SELECT pk FROM t WHERE … LIMIT $n).
//
// Migrations spell column types as {{bytes}}, {{bigint}}, {{bool}} and
// {{text}} (see Dialect).
//
// # Transactions
//
// DB.Tx runs a function under SERIALIZABLE and retries it when it loses a
// race: through cockroach-go's crdb.ExecuteTx on CockroachDB, by restarting
// the transaction on PostgreSQL (40001, 40P01) and SQLite (SQLITE_BUSY),
// with jittered backoff, a bounded count and Options.OnRetry for metrics.
// The function may therefore run more than once and must be safe to repeat.
// Every statement has a deadline (Options.StatementTimeout, also the
// server-side statement_timeout on PostgreSQL/CockroachDB) and every Tx call
// a total one (Options.TxTimeout).
//
// Tx.Defer queues a write whose result the caller does not need. On
// PostgreSQL the queued statements go out together as one pipeline, and a
// transaction made only of deferred statements is sent whole, BEGIN to
// COMMIT, in a single round trip: BEGIN waits for the first statement
// that needs an answer. Its Tx.DeferExpect checks (a compare-and-set that
// must affect so many rows) are then made by the server, which aborts the
// transaction on a mismatch.
//
// DB.Query and DB.Exec run one statement in its own implicit transaction:
// READ COMMITTED on PostgreSQL (one statement, one snapshot; never a
// serialization victim, no predicate locks that make transactions fail),
// SERIALIZABLE on CockroachDB, which retries such statements itself. A
// retryable error before any row is returned is retried the same way as a
// transaction. Anything that reads and then writes belongs in DB.Tx.
//
// # Migrations
//
// Migrations are numbered SQL files (NNNN_name.sql), this package's in
// migrations/ and each role's passed in Options.Migrations, in one version
// space. Migrate applies the missing ones in order, each in its own
// transaction together with its schema_migrations row, while holding a lease
// in the one-row schema_lock table (no advisory locks): other migrators poll
// until the lease is released or expires, and a migration already recorded
// is skipped, so two racing migrators apply it once. Because CockroachDB may
// commit DDL outside the surrounding transaction, every migration must be
// re-runnable: CREATE TABLE IF NOT EXISTS, ADD COLUMN IF NOT EXISTS (which
// SQLite lacks: on SQLite the migrator resolves it against the schema,
// see MigrationSQL), CREATE INDEX IF NOT EXISTS. Keep one schema change per file when it touches a
// large existing table.
//
// Schema changes are rolling-safe by the expand/contract rule: during a
// rollout release N and N-1 run side by side on N's schema, so a release may
// only expand (add tables, nullable or defaulted columns, indexes) and code
// must tolerate what it does not know; anything N no longer uses is dropped
// (contract) in a later release, once no running release reads it. Never
// rename or change the type of a column in place: add the new one, write
// both, backfill in batches, switch reads, and drop the old one a release
// later. Readiness calls CheckSchema(ctx, db.LatestVersion()): it passes when
// every migration this binary knows is applied, and a newer schema is fine.
//
// # What this package must never do
//
// No role-specific tables or queries live here: each area under services/
// owns its tables, migrations and queries, and uses this package to run
// them. No long transactions, no network calls inside Tx, no sequences, no
// advisory locks, no LISTEN/NOTIFY, no triggers, and no unbounded pool,
// statement or retry.
package store
