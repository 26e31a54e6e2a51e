package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/cockroach-go/v2/crdb"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Tx is one attempt of a transaction run by DB.Tx. It is valid only inside
// the function given to DB.Tx and must not be shared with other goroutines.
type Tx struct {
	// tx is the database/sql transaction. On PostgreSQL it is begun
	// lazily (see begin): a transaction whose statements are all deferred
	// never opens one and is sent whole, BEGIN to COMMIT, in one round
	// trip (commitPipelined).
	tx    *sql.Tx
	conn  *sql.Conn // PostgreSQL: the connection of tx, for pipelined flushes
	opts  *sql.TxOptions
	d     time.Duration // statement timeout
	stmts *stmtCache
	db    *DB
	// deferred holds the statements queued by Defer, in order.
	deferred []deferredStmt
}

type deferredStmt struct {
	query    string
	args     []any
	want     int64 // rows the statement must affect; -1: any
	mismatch error
}

// prepared returns the transaction's copy of query's cached statement, or
// nil.
func (tx *Tx) prepared(ctx context.Context, query string) *sql.Stmt {
	if tx.stmts == nil {
		return nil
	}
	if st := tx.stmts.cached(query); st != nil {
		return tx.tx.StmtContext(ctx, st)
	}
	return nil
}

// Defer queues a writing statement whose result the caller does not
// need: it runs before the transaction's next statement or its commit,
// and its error is that statement's (or fn's, at commit). On PostgreSQL
// the queued statements are pipelined (prepared, one round trip for all)
// instead of costing a round trip each; on SQLite, in process, and on
// CockroachDB they run one after the other. The args are kept until the
// flush, so the caller must not change them meanwhile.
func (tx *Tx) Defer(query string, args ...any) {
	tx.deferred = append(tx.deferred, deferredStmt{query: query, args: args, want: -1})
}

// DeferExpect is Defer for a statement that must affect exactly want rows
// (a compare-and-set): when it does not, the flush stops there and
// returns mismatch.
func (tx *Tx) DeferExpect(want int64, mismatch error, query string, args ...any) {
	tx.deferred = append(tx.deferred, deferredStmt{query: query, args: args, want: want, mismatch: mismatch})
}

// begin opens the database/sql transaction if it is not open yet.
func (tx *Tx) begin(ctx context.Context) error {
	if tx.tx != nil {
		return nil
	}
	stx, err := tx.conn.BeginTx(ctx, tx.opts)
	if err != nil {
		return err
	}
	tx.tx = stx
	return nil
}

// flush runs the deferred statements.
func (tx *Tx) flush(ctx context.Context) error {
	if len(tx.deferred) == 0 {
		return nil
	}
	queue := tx.deferred
	tx.deferred = nil
	if tx.conn == nil || len(queue) == 1 {
		for _, d := range queue {
			res, err := tx.exec(ctx, d.query, d.args)
			if err != nil {
				return err
			}
			if d.want >= 0 {
				n, err := res.RowsAffected()
				if err != nil {
					return err
				}
				if n != d.want {
					return d.mismatch
				}
			}
		}
		return nil
	}
	var b pgx.Batch
	for _, d := range queue {
		b.Queue(d.query, d.args...)
	}
	return tx.pipeline(ctx, &b, func(br pgx.BatchResults) error {
		for _, d := range queue {
			tag, err := br.Exec()
			if err != nil {
				return err
			}
			if d.want >= 0 && tag.RowsAffected() != d.want {
				// The statements after it ran too: the caller's
				// transaction fails and rolls back.
				return d.mismatch
			}
		}
		return nil
	})
}

// pipeline sends b on the transaction's connection as one pipeline (one
// round trip) and reads its results with read, which returns the first
// error. When the transaction is not a database/sql one (commitPipelined
// began it inside b) and is left open by an error, it is rolled back
// here, so that the connection goes back to the pool idle; if even that
// fails, the connection is discarded.
func (tx *Tx) pipeline(ctx context.Context, b *pgx.Batch, read func(pgx.BatchResults) error) error {
	err := tx.conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("store: pipelining needs a pgx connection, not %T", dc)
		}
		sctx, cancel := context.WithTimeout(ctx, tx.d)
		defer cancel()
		br := c.Conn().SendBatch(sctx, b)
		err := read(br)
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		err = stmtErr(ctx, sctx, err)
		if pc := c.Conn().PgConn(); tx.tx == nil && !pc.IsClosed() && pc.TxStatus() != 'I' {
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), tx.d)
			defer rcancel()
			if rerr := pc.Exec(rctx, "ROLLBACK").Close(); rerr != nil {
				return errors.Join(err, driver.ErrBadConn)
			}
		}
		return err
	})
	tx.db.observe(err)
	return err
}

// Exec runs a statement in the transaction.
func (tx *Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := tx.begin(ctx); err != nil {
		return nil, err
	}
	if err := tx.flush(ctx); err != nil {
		return nil, err
	}
	return tx.exec(ctx, query, args)
}

func (tx *Tx) exec(ctx context.Context, query string, args []any) (sql.Result, error) {
	var e execer = tx.tx
	if st := tx.prepared(ctx, query); st != nil {
		e = stmtRunner{st}
	}
	res, err := execOn(ctx, e, tx.d, query, args)
	tx.db.observe(err)
	return res, err
}

// execRaw runs SQL that must not be prepared: migrations (several
// statements in one string) and session settings.
func (tx *Tx) execRaw(ctx context.Context, query string) (sql.Result, error) {
	if err := tx.begin(ctx); err != nil {
		return nil, err
	}
	return execOn(ctx, tx.tx, tx.d, query, nil)
}

// Query runs a query in the transaction. Close the rows before the next
// statement: one transaction is one connection.
func (tx *Tx) Query(ctx context.Context, query string, args ...any) (*Rows, error) {
	if err := tx.begin(ctx); err != nil {
		return nil, err
	}
	if err := tx.flush(ctx); err != nil {
		return nil, err
	}
	var q queryer = tx.tx
	if st := tx.prepared(ctx, query); st != nil {
		q = stmtRunner{st}
	}
	rows, err := queryOn(ctx, q, tx.d, query, args)
	tx.db.observe(err)
	return rows, err
}

// QueryRow runs a query that selects at most one row.
func (tx *Tx) QueryRow(ctx context.Context, query string, args ...any) *Row {
	rows, err := tx.Query(ctx, query, args...)
	return &Row{rows: rows, err: err}
}

// Tx runs fn in a SERIALIZABLE transaction and commits it if fn returns nil.
//
// fn may run more than once: when the transaction loses a race (see
// IsRetryable) it is rolled back and fn is called again, up to
// Options.MaxRetries times, within Options.TxTimeout for all attempts. So fn
// must have no effect outside the transaction other than ones that are safe
// to repeat (no publishing, no counters in memory), must use only tx (not db)
// inside, and must be short: a few statements, never a network call.
//
// How retries happen depends on the engine:
//   - CockroachDB: cockroach-go's crdb.ExecuteTx, which restarts fn inside
//     the same transaction with the cockroach_restart savepoint protocol.
//   - PostgreSQL: the whole transaction is begun again after a jittered
//     backoff, and the COMMIT's own error counts. (crdb.ExecuteTx is not used
//     here: it treats RELEASE SAVEPOINT as the commit, which is true only on
//     CockroachDB, and ignores the error of the real COMMIT, where
//     PostgreSQL reports most serialization failures.)
//   - SQLite: BEGIN IMMEDIATE on the single write connection; SQLITE_BUSY
//     (another process holds the write lock past the busy timeout) is
//     retried like a serialization failure.
//
// An error returned by fn is returned as it is (retryable ones only after
// retries are exhausted, wrapped with ErrTooManyRetries).
func (db *DB) Tx(ctx context.Context, fn func(ctx context.Context, tx *Tx) error) error {
	return db.txWithin(ctx, db.opts.TxTimeout, db.opts.StatementTimeout, fn)
}

func (db *DB) txWithin(ctx context.Context, total, stmt time.Duration, fn func(context.Context, *Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, total)
	defer cancel()
	if db.kind == KindCockroach {
		return db.cockroachTx(ctx, stmt, fn)
	}
	return db.retry(ctx, func() error { return db.attempt(ctx, stmt, fn) })
}

// retry calls run again after a retryable error, with jittered backoff,
// at most Options.MaxRetries times and while ctx lasts: the loop of every
// transaction on PostgreSQL and SQLite and of single statements (see
// DB.single).
func (db *DB) retry(ctx context.Context, run func() error) error {
	for attempt := 0; ; attempt++ {
		err := run()
		if err == nil {
			return nil
		}
		var wait time.Duration
		switch down, safe := unavailable(err); {
		case IsRetryable(err):
			wait = backoff(attempt)
		case down && safe:
			// The database restarting or a dead pooled connection: wait
			// longer than for a lost race, so that a restart of a few
			// seconds is ridden out (within ctx).
			wait = min(50*time.Millisecond<<min(attempt, 5), time.Second)
		default:
			return markUnavailable(err)
		}
		if attempt >= db.opts.MaxRetries {
			return markUnavailable(fmt.Errorf("%w after %d retries: %w", ErrTooManyRetries, attempt, err))
		}
		db.opts.OnRetry()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return markUnavailable(fmt.Errorf("store: retry: %w (last error: %w)", ctx.Err(), err))
		case <-t.C:
		}
	}
}

// attempt runs fn once in a fresh transaction.
func (db *DB) attempt(ctx context.Context, stmt time.Duration, fn func(context.Context, *Tx) error) error {
	var opts *sql.TxOptions
	if db.kind != KindSQLite {
		// SQLite transactions are serializable by construction (one writer,
		// BEGIN IMMEDIATE), so no level is asked of the driver there.
		opts = &sql.TxOptions{Isolation: sql.LevelSerializable}
	}
	tx := &Tx{opts: opts, d: stmt, stmts: db.ws, db: db}
	if db.kind == KindPostgres {
		// The transaction's own connection, for the pipelines of flush
		// and commitPipelined; BEGIN waits for the first statement that
		// needs it.
		conn, err := db.w.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		tx.conn = conn
	} else {
		stx, err := db.w.BeginTx(ctx, opts)
		if err != nil {
			return err
		}
		tx.tx = stx
	}
	committed := false
	defer func() {
		if !committed && tx.tx != nil {
			_ = tx.tx.Rollback() // also on panic; the panic goes on
		}
	}()
	if err := fn(ctx, tx); err != nil {
		return err
	}
	if tx.tx == nil {
		committed = true
		return tx.commitPipelined(ctx)
	}
	if err := tx.flush(ctx); err != nil {
		return err
	}
	committed = true // Commit ends the transaction whether it succeeds or not
	return tx.tx.Commit()
}

// commitPipelined sends a PostgreSQL transaction that has only deferred
// statements as one pipeline: BEGIN, the statements, COMMIT, and a single
// Sync, so the whole transaction costs one round trip. A DeferExpect
// statement cannot be checked by the client before the COMMIT is on its
// way, so it is sent wrapped (expectQuery) to fail on the server when it
// affects another number of rows; the error aborts the transaction, the
// COMMIT then only ends it, and the caller gets the statement's mismatch
// error. Any failure leaves the transaction rolled back and the
// connection idle, or the connection is discarded.
func (tx *Tx) commitPipelined(ctx context.Context) error {
	if len(tx.deferred) == 0 {
		return nil
	}
	queue := tx.deferred
	tx.deferred = nil
	var b pgx.Batch
	b.Queue(beginSerializable)
	for _, d := range queue {
		if d.want >= 0 {
			args := append(slices.Clip(d.args), d.want)
			b.Queue(expectQuery(d.query, len(d.args)), args...)
		} else {
			b.Queue(d.query, d.args...)
		}
	}
	b.Queue("COMMIT")
	return tx.pipeline(ctx, &b, func(br pgx.BatchResults) error { return pipelineResults(br, queue) })
}

// beginSerializable opens the transactions of commitPipelined.
const beginSerializable = "BEGIN ISOLATION LEVEL SERIALIZABLE"

// pipelineResults reads the results of commitPipelined's batch: BEGIN,
// queue's statements, COMMIT. It returns the first error, a mismatching
// DeferExpect as its mismatch error.
func pipelineResults(br pgx.BatchResults, queue []deferredStmt) error {
	if _, err := br.Exec(); err != nil {
		return err
	}
	for _, d := range queue {
		_, err := br.Exec()
		if err != nil {
			if d.want >= 0 && sqlState(err) == "22012" {
				return d.mismatch
			}
			return err
		}
	}
	_, err := br.Exec()
	return err
}

// expectQuery wraps a writing statement (an INSERT, UPDATE or DELETE
// without RETURNING) so that it fails with division_by_zero (22012) when
// it affects another number of rows than its extra last parameter, the
// one after its nargs own.
func expectQuery(query string, nargs int) string {
	return fmt.Sprintf("WITH axon_expect AS (%s RETURNING 1) SELECT 1 / (count(*) = $%d::bigint)::int FROM axon_expect",
		strings.TrimRight(strings.TrimSpace(query), ";"), nargs+1)
}

func (db *DB) cockroachTx(ctx context.Context, stmt time.Duration, fn func(context.Context, *Tx) error) error {
	attempt := 0
	err := crdb.ExecuteTx(crdb.WithMaxRetries(ctx, db.opts.MaxRetries), db.w,
		&sql.TxOptions{Isolation: sql.LevelSerializable},
		func(stx *sql.Tx) error {
			if attempt > 0 {
				db.opts.OnRetry()
			}
			attempt++
			tx := &Tx{tx: stx, d: stmt, stmts: db.ws, db: db}
			if err := fn(ctx, tx); err != nil {
				return err
			}
			return tx.flush(ctx)
		})
	if IsRetryable(err) {
		return fmt.Errorf("%w: %w", ErrTooManyRetries, err)
	}
	return markUnavailable(err)
}

// backoff is a full-jitter exponential backoff: up to 2ms, 4ms, … capped at
// 256ms, so that contending transactions spread out instead of colliding
// again in lockstep.
func backoff(attempt int) time.Duration {
	ceiling := 2 * time.Millisecond << min(attempt, 7)
	return time.Duration(rand.Int64N(int64(ceiling))) + time.Millisecond
}
