package store

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/cockroachdb/cockroach-go/v2/crdb"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Tx is one attempt of a transaction run by DB.Tx. It is valid only inside
// the function given to DB.Tx and must not be shared with other goroutines.
type Tx struct {
	tx    *sql.Tx
	conn  *sql.Conn     // PostgreSQL: the connection of tx, for pipelined flushes
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
	err := tx.conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("store: pipelining needs a pgx connection, not %T", dc)
		}
		var b pgx.Batch
		for _, d := range queue {
			b.Queue(d.query, d.args...)
		}
		sctx, cancel := context.WithTimeout(ctx, tx.d)
		defer cancel()
		br := c.Conn().SendBatch(sctx, &b)
		for _, d := range queue {
			tag, err := br.Exec()
			if err != nil {
				_ = br.Close()
				return stmtErr(ctx, sctx, err)
			}
			if d.want >= 0 && tag.RowsAffected() != d.want {
				// The statements after it ran too: the caller's
				// transaction fails and rolls back.
				_ = br.Close()
				return d.mismatch
			}
		}
		return stmtErr(ctx, sctx, br.Close())
	})
	tx.db.observe(err)
	return err
}

// Exec runs a statement in the transaction.
func (tx *Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
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
	return execOn(ctx, tx.tx, tx.d, query, nil)
}

// Query runs a query in the transaction. Close the rows before the next
// statement: one transaction is one connection.
func (tx *Tx) Query(ctx context.Context, query string, args ...any) (*Rows, error) {
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
		if err == nil || !IsRetryable(err) {
			return err
		}
		if attempt >= db.opts.MaxRetries {
			return fmt.Errorf("%w after %d retries: %w", ErrTooManyRetries, attempt, err)
		}
		db.opts.OnRetry()
		t := time.NewTimer(backoff(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("store: retry: %w (last error: %w)", ctx.Err(), err)
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
	var (
		conn *sql.Conn
		stx  *sql.Tx
		err  error
	)
	if db.kind == KindPostgres {
		// The transaction's own connection, for Tx.flush's pipeline.
		if conn, err = db.w.Conn(ctx); err != nil {
			return err
		}
		defer conn.Close()
		stx, err = conn.BeginTx(ctx, opts)
	} else {
		stx, err = db.w.BeginTx(ctx, opts)
	}
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			_ = stx.Rollback() // also on panic; the panic goes on
		}
	}()
	tx := &Tx{tx: stx, conn: conn, d: stmt, stmts: db.ws, db: db}
	if err := fn(ctx, tx); err != nil {
		return err
	}
	if err := tx.flush(ctx); err != nil {
		return err
	}
	committed = true // Commit ends the transaction whether it succeeds or not
	return stx.Commit()
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
	return err
}

// backoff is a full-jitter exponential backoff: up to 2ms, 4ms, … capped at
// 256ms, so that contending transactions spread out instead of colliding
// again in lockstep.
func backoff(attempt int) time.Duration {
	ceiling := 2 * time.Millisecond << min(attempt, 7)
	return time.Duration(rand.Int64N(int64(ceiling))) + time.Millisecond
}
