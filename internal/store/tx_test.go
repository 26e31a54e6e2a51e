package store

import (
	"context"
	"errors"
	"fmt"
	"github.com/axon-hs/axon/internal/testenv"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

// serializationFailure is what the retry classifier sees when a transaction
// loses a race on PostgreSQL or CockroachDB.
type serializationFailure struct{}

func (serializationFailure) Error() string    { return "simulated serialization failure" }
func (serializationFailure) SQLState() string { return "40001" }

func TestIsRetryable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("boom"), false},
		{"40001", &pgconn.PgError{Code: "40001"}, true},
		{"40P01 deadlock", &pgconn.PgError{Code: "40P01"}, true},
		{"CR000", &pgconn.PgError{Code: "CR000"}, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"wrapped 40001", fmt.Errorf("put: %w", serializationFailure{}), true},
		{"context", context.DeadlineExceeded, false},
		{"sqlite busy", sqliteErr(5), true},
		{"sqlite busy snapshot", sqliteErr(517), true},
		{"sqlite constraint", sqliteErr(19), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsRetryable(tt.err); got != tt.want {
				t.Fatalf("IsRetryable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// sqliteErr stands in for *sqlite.Error, whose fields are unexported.
type sqliteErr int

func (e sqliteErr) Error() string { return fmt.Sprintf("sqlite error %d", int(e)) }
func (e sqliteErr) Code() int     { return int(e) }

var _ sqliteCoder = (*sqlite.Error)(nil) // the classifier's interface matches the driver's error

func countKV(t *testing.T, db *DB, ns string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(testCtx(t), "SELECT count(*) FROM kv WHERE namespace = $1", ns).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func putKV(ctx context.Context, tx *Tx, ns, key string) error {
	_, err := tx.Exec(ctx, "INSERT INTO kv (namespace, key, value, updated_at) VALUES ($1, $2, $3, $4)",
		ns, key, []byte("v"), int64(1))
	return err
}

func TestTxCommitAndRollback(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		db := openMigrated(t, e, Options{})
		ctx := testCtx(t)
		if err := db.Tx(ctx, func(ctx context.Context, tx *Tx) error { return putKV(ctx, tx, "c", "a") }); err != nil {
			t.Fatalf("commit: %v", err)
		}
		errFn := errors.New("fn failed")
		err := db.Tx(ctx, func(ctx context.Context, tx *Tx) error {
			if err := putKV(ctx, tx, "r", "a"); err != nil {
				return err
			}
			return errFn
		})
		if !errors.Is(err, errFn) {
			t.Fatalf("Tx error = %v, want fn's own", err)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("panic in fn was swallowed")
				}
			}()
			_ = db.Tx(ctx, func(ctx context.Context, tx *Tx) error {
				if err := putKV(ctx, tx, "r", "b"); err != nil {
					return err
				}
				panic("fn panicked")
			})
		}()
		if n := countKV(t, db, "c"); n != 1 {
			t.Errorf("committed rows = %d, want 1", n)
		}
		if n := countKV(t, db, "r"); n != 0 {
			t.Errorf("rolled-back rows visible: %d", n)
		}
		// A duplicate key is not retryable: it is returned at once.
		err = db.Tx(ctx, func(ctx context.Context, tx *Tx) error { return putKV(ctx, tx, "c", "a") })
		if err == nil || IsRetryable(err) {
			t.Fatalf("duplicate insert: %v", err)
		}
	})
}

func TestTxRetriesRetryableErrors(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		var retries atomic.Int64
		db := openMigrated(t, e, Options{OnRetry: func() { retries.Add(1) }})
		ctx := testCtx(t)
		calls := 0
		err := db.Tx(ctx, func(ctx context.Context, tx *Tx) error {
			calls++
			if err := putKV(ctx, tx, "retry", fmt.Sprint("attempt-", calls)); err != nil {
				return err
			}
			if calls <= 3 {
				return fmt.Errorf("write: %w", serializationFailure{})
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Tx: %v", err)
		}
		if calls != 4 || retries.Load() != 3 {
			t.Fatalf("calls = %d, retries = %d; want 4 and 3", calls, retries.Load())
		}
		// Only the last attempt's write survives.
		var key string
		if err := db.QueryRow(ctx, "SELECT key FROM kv WHERE namespace = 'retry'").Scan(&key); err != nil || key != "attempt-4" {
			t.Fatalf("surviving row = %q, %v; want attempt-4 alone", key, err)
		}
	})
}

func TestTxRetriesAreBounded(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		db := openMigrated(t, e, Options{MaxRetries: 2})
		calls := 0
		err := db.Tx(testCtx(t), func(ctx context.Context, tx *Tx) error {
			calls++
			return serializationFailure{}
		})
		if !errors.Is(err, ErrTooManyRetries) || !IsRetryable(err) {
			t.Fatalf("err = %v, want ErrTooManyRetries wrapping the retryable error", err)
		}
		if calls < 2 || calls > 3 {
			t.Fatalf("calls = %d, want the first attempt plus about 2 retries", calls)
		}
	})
}

// TestSQLiteBusyRetry contends two handles (as two processes would) for the
// write lock: the second gets SQLITE_BUSY, backs off and succeeds once the
// first commits.
func TestSQLiteBusyRetry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "busy.db")
	a := open(t, path, Options{SQLiteBusyTimeout: 20 * time.Millisecond})
	retried := make(chan struct{}, 1)
	var retries atomic.Int64
	b := open(t, path, Options{
		SQLiteBusyTimeout: 20 * time.Millisecond,
		MaxRetries:        1000,
		TxTimeout:         30 * time.Second,
		OnRetry: func() {
			retries.Add(1)
			select {
			case retried <- struct{}{}:
			default:
			}
		},
	})
	ctx := testCtx(t)
	bctx := ctx // b's own context: a's transaction context ends with a.Tx
	if err := a.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	bDone := make(chan error, 1)
	err := a.Tx(ctx, func(ctx context.Context, tx *Tx) error {
		if err := putKV(ctx, tx, "busy", "a"); err != nil {
			return err
		}
		go func() {
			bDone <- b.Tx(bctx, func(ctx context.Context, tx *Tx) error { return putKV(ctx, tx, "busy", "b") })
		}()
		select { // hold the write lock until b has hit SQLITE_BUSY at least once
		case <-retried:
			return nil
		case <-time.After(10 * time.Second):
			return errors.New("b never retried on SQLITE_BUSY")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-bDone; err != nil {
		t.Fatalf("contending Tx: %v", err)
	}
	if retries.Load() < 1 {
		t.Fatal("no retry counted")
	}
	if n := countKV(t, a, "busy"); n != 2 {
		t.Fatalf("rows = %d, want 2", n)
	}
}

// TestPostgresSerializationRetry provokes a real write-skew conflict: two
// transactions read the same rows, then each writes one. SERIALIZABLE must
// abort one with 40001, and Tx must retry it into a consistent result.
func TestPostgresSerializationRetry(t *testing.T) {
	for _, e := range testenv.Engines() {
		if e.Name == "sqlite" {
			continue // SQLite serialises writers up front; there is no race to lose
		}
		t.Run(e.Name, func(t *testing.T) {
			if e.Skip != "" {
				t.Skip(e.Skip)
			}
			var retries atomic.Int64
			db := open(t, e.NewDSN(t), Options{OnRetry: func() { retries.Add(1) }})
			ctx := testCtx(t)
			if _, err := db.Exec(ctx, "CREATE TABLE account (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(ctx, "INSERT INTO account (id, balance) VALUES (1, 100), (2, 100)"); err != nil {
				t.Fatal(err)
			}
			ready := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
			withdraw := func(me int) error {
				first := true
				return db.Tx(ctx, func(ctx context.Context, tx *Tx) error {
					var sum int64
					if err := tx.QueryRow(ctx, "SELECT SUM(balance) FROM account").Scan(&sum); err != nil {
						return err
					}
					if first { // make both first attempts read before either writes
						first = false
						close(ready[me])
						select {
						case <-ready[1-me]:
						case <-time.After(5 * time.Second):
						}
					}
					if sum < 150 {
						return nil
					}
					_, err := tx.Exec(ctx, "UPDATE account SET balance = balance - 150 WHERE id = $1", me+1)
					return err
				})
			}
			errs := make(chan error, 2)
			for me := range 2 {
				go func() { errs <- withdraw(me) }()
			}
			for range 2 {
				if err := <-errs; err != nil {
					t.Fatalf("withdraw: %v", err)
				}
			}
			var sum int64
			if err := db.QueryRow(ctx, "SELECT SUM(balance) FROM account").Scan(&sum); err != nil {
				t.Fatal(err)
			}
			if sum != 50 {
				t.Fatalf("sum = %d, want 50 (exactly one withdrawal)", sum)
			}
			if retries.Load() < 1 {
				t.Fatal("the losing transaction was not retried")
			}
		})
	}
}

func TestStatementTimeout(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		const timeout = 300 * time.Millisecond
		db := openMigrated(t, e, Options{StatementTimeout: timeout})
		ctx := testCtx(t)
		slow := "SELECT pg_sleep(10)"
		if db.Kind() == KindSQLite {
			slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c"
		}
		drain := func(rows *Rows, err error) error {
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
			}
			return rows.Err()
		}
		start := time.Now()
		if err := drain(db.Query(ctx, slow)); !errors.Is(err, ErrStatementTimeout) {
			t.Fatalf("slow query: err = %v, want ErrStatementTimeout", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("slow query ran %v despite a %v timeout", d, timeout)
		}
		err := db.Tx(ctx, func(ctx context.Context, tx *Tx) error { return drain(tx.Query(ctx, slow)) })
		if !errors.Is(err, ErrStatementTimeout) {
			t.Fatalf("slow query in Tx: err = %v, want ErrStatementTimeout", err)
		}
		// The caller's own cancellation is not a statement timeout.
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := drain(db.Query(cctx, "SELECT 1")); err == nil || errors.Is(err, ErrStatementTimeout) {
			t.Fatalf("cancelled ctx: err = %v", err)
		}
		if err := db.Ping(ctx); err != nil {
			t.Fatalf("DB unusable after timeouts: %v", err)
		}
		if db.Kind() != KindSQLite { // the server enforces it too
			var st string
			if err := db.QueryRow(ctx, "SHOW statement_timeout").Scan(&st); err != nil {
				t.Fatal(err)
			}
			if st != "300ms" {
				t.Fatalf("session statement_timeout = %q, want 300ms", st)
			}
		}
	})
}

// Transactions run SERIALIZABLE; single statements outside one run READ
// COMMITTED on PostgreSQL, so that a read racing serializable writers is
// never their serialization victim (a registration check once failed
// with 40001 that way). Prepared statements use generic plans.
func TestPostgresSession(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		db := openMigrated(t, e, Options{})
		if db.Kind() == KindSQLite {
			t.Skip("SQLite has one isolation level")
		}
		ctx := testCtx(t)
		var single, inTx string
		if err := db.QueryRow(ctx, "SHOW transaction_isolation").Scan(&single); err != nil {
			t.Fatal(err)
		}
		if err := db.Tx(ctx, func(ctx context.Context, tx *Tx) error {
			return tx.QueryRow(ctx, "SHOW transaction_isolation").Scan(&inTx)
		}); err != nil {
			t.Fatal(err)
		}
		if single != "read committed" || inTx != "serializable" {
			t.Fatalf("isolation: single statement %q, transaction %q; want read committed, serializable", single, inTx)
		}
		var plans string
		if err := db.QueryRow(ctx, "SHOW plan_cache_mode").Scan(&plans); err != nil || plans != "force_generic_plan" {
			t.Fatalf("plan_cache_mode = %q (%v), want force_generic_plan", plans, err)
		}

		// Readers race writers that read before they write (the
		// registration pattern); no reader ever fails.
		if _, err := db.Exec(ctx, "CREATE TABLE iso_users (name TEXT PRIMARY KEY)"); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for i := range 8 {
			wg.Add(2)
			go func() {
				defer wg.Done()
				for j := range 20 {
					name := fmt.Sprintf("u%d", (i+j)%5)
					errs <- db.Tx(ctx, func(ctx context.Context, tx *Tx) error {
						var n int
						if err := tx.QueryRow(ctx, "SELECT count(*) FROM iso_users WHERE name = $1", name).Scan(&n); err != nil || n > 0 {
							return err
						}
						_, err := tx.Exec(ctx, "INSERT INTO iso_users (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", name)
						return err
					})
				}
			}()
			go func() {
				defer wg.Done()
				for j := range 20 {
					var n int
					errs <- db.QueryRow(ctx, "SELECT count(*) FROM iso_users WHERE name = $1", fmt.Sprintf("u%d", (i*3+j)%5)).Scan(&n)
				}
			}()
		}
		go func() { wg.Wait(); close(errs) }()
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	})
}
