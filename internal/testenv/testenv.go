// Package testenv is shared test plumbing: the database engines a test
// runs against and helpers for polling eventual conditions. Only _test.go
// files import it.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver for the admin connection
)

// Engine is a database the tests run against: SQLite always, PostgreSQL
// (or CockroachDB) when AXON_TEST_POSTGRES holds a URL (make test starts a
// throwaway server and sets it).
type Engine struct {
	Name string
	// Skip, when set, says why this engine is not available.
	Skip string
	// NewDSN returns the DSN of a fresh, empty database for one test.
	NewDSN func(t testing.TB) string
}

// Engines lists the engines.
func Engines() []Engine {
	es := []Engine{{Name: "sqlite", NewDSN: func(t testing.TB) string {
		return filepath.Join(t.TempDir(), "axon.db")
	}}}
	if u := os.Getenv("AXON_TEST_POSTGRES"); u != "" {
		es = append(es, Engine{Name: "postgres", NewDSN: func(t testing.TB) string { return PostgresDSN(t, u) }})
	} else {
		es = append(es, Engine{Name: "postgres",
			Skip: "AXON_TEST_POSTGRES is not set: set it to a postgres:// URL (PostgreSQL or CockroachDB) to run this test there"})
	}
	return es
}

// ForEachEngine runs f as a subtest on every engine.
func ForEachEngine(t *testing.T, f func(t *testing.T, e Engine)) {
	for _, e := range Engines() {
		t.Run(e.Name, func(t *testing.T) {
			if e.Skip != "" {
				t.Skip(e.Skip)
			}
			f(t, e)
		})
	}
}

// PostgresDSN creates a schema of its own for the test, dropped at
// cleanup, and returns base with search_path pointing at it.
func PostgresDSN(t testing.TB, base string) string {
	t.Helper()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "axon_test_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop test schema: %v", err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Eventually polls cond every few milliseconds until it returns true or
// the deadline passes, then fails the test with msg.
func Eventually(t testing.TB, within time.Duration, msg string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
