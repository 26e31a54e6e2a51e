package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/axon-hs/axon/internal/testenv"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestUnavailableClassifier(t *testing.T) {
	for _, c := range []struct {
		name     string
		err      error
		is, safe bool
	}{
		{"nil", nil, false, false},
		{"plain", errors.New("boom"), false, false},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true, true},
		{"starting up", fmt.Errorf("q: %w", &pgconn.PgError{Code: "57P03"}), true, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false, false},
		{"serialization failure", &pgconn.PgError{Code: "40001"}, false, false},
		{"connection lost mid-way", io.ErrUnexpectedEOF, true, false},
	} {
		is, safe := unavailable(c.err)
		if is != c.is || safe != c.safe {
			t.Errorf("%s: unavailable = %v, %v; want %v, %v", c.name, is, safe, c.is, c.safe)
		}
		marked := markUnavailable(c.err)
		if errors.Is(marked, ErrUnavailable) != c.is {
			t.Errorf("%s: marked %v", c.name, marked)
		}
	}
	var tr interface{ Transient() bool }
	for _, err := range []error{ErrUnavailable, ErrStatementTimeout, ErrTooManyRetries} {
		if !errors.As(fmt.Errorf("x: %w", err), &tr) || !tr.Transient() {
			t.Errorf("%v is not transient", err)
		}
	}
}

// TestTxRetriesAServerThatEndedTheSession: a transaction refused because
// the server is shutting down (nothing ran) is run again; one that lost
// its connection mid-way (it might have committed) is not, and says the
// database is unavailable.
func TestTxRetriesAServerThatEndedTheSession(t *testing.T) {
	db := open(t, t.TempDir()+"/x.db", Options{})
	calls := 0
	err := db.Tx(testCtx(t), func(context.Context, *Tx) error {
		calls++
		if calls < 3 {
			return &pgconn.PgError{Code: "57P01"}
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("err %v after %d calls, want success after 3", err, calls)
	}
	calls = 0
	err = db.Tx(testCtx(t), func(context.Context, *Tx) error {
		calls++
		return fmt.Errorf("commit: %w", io.ErrUnexpectedEOF)
	})
	if calls != 1 || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err %v after %d calls, want ErrUnavailable after 1", err, calls)
	}
}

// TestPostgresSessionsTerminated: every connection of the pool is ended
// by the server (as a restart does); the next query and transaction go
// through on new connections rather than failing.
func TestPostgresSessionsTerminated(t *testing.T) {
	base := os.Getenv("AXON_TEST_POSTGRES")
	if base == "" {
		t.Skip("AXON_TEST_POSTGRES is not set")
	}
	ctx := testCtx(t)
	for _, e := range testenv.Engines() {
		if e.Name != "postgres" {
			continue
		}
		db := open(t, e.NewDSN(t), Options{ApplicationName: "axon-terminated-test"})
		for range 4 {
			if _, err := db.Exec(ctx, `SELECT 1`); err != nil {
				t.Fatal(err)
			}
		}
		admin, err := sql.Open("pgx", base)
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		var n int
		if err := admin.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = 'axon-terminated-test'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatal("no session to terminate")
		}
		var one int
		if err := db.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil {
			t.Fatalf("query after the sessions ended: %v", err)
		}
		if err := db.Tx(ctx, func(ctx context.Context, tx *Tx) error {
			return tx.QueryRow(ctx, `SELECT 1`).Scan(&one)
		}); err != nil {
			t.Fatalf("transaction after the sessions ended: %v", err)
		}
	}
}
