package store

import (
	"context"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/testenv"
)

// TestPreparedStatementsAreReused checks that statements run through DB and
// Tx end up prepared once and give the same results as unprepared ones,
// including inside a transaction on SQLite's single write connection
// (where preparing on the pool from inside the transaction would wait for
// itself).
func TestPreparedStatementsAreReused(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		db := openMigrated(t, e, Options{})
		ctx := testCtx(t)
		const ins = `INSERT INTO kv (namespace, key, value, updated_at) VALUES ($1, $2, $3, $4)`
		const sel = `SELECT COUNT(*) FROM kv WHERE namespace = $1`
		for i := range 20 {
			err := db.Tx(ctx, func(ctx context.Context, tx *Tx) error {
				_, err := tx.Exec(ctx, ins, "stmt", string(rune('a'+i)), []byte("v"), int64(i))
				return err
			})
			if err != nil {
				t.Fatalf("insert %d: %v", i, err)
			}
		}
		var n int
		if err := db.QueryRow(ctx, sel, "stmt").Scan(&n); err != nil || n != 20 {
			t.Fatalf("count = %d, %v", n, err)
		}
		testenv.Eventually(t, 10*time.Second, "the transaction's statement is cached", func() bool {
			db.ws.mu.RLock()
			defer db.ws.mu.RUnlock()
			return db.ws.m[ins] != nil
		})
		db.rs.mu.RLock()
		cached := db.rs.m[sel] != nil
		db.rs.mu.RUnlock()
		if !cached {
			t.Fatal("the read statement was not cached")
		}
		// A statement that cannot be prepared still reports its error.
		if _, err := db.Exec(ctx, `INSERT INTO no_such_table VALUES (1)`); err == nil {
			t.Fatal("a statement on a missing table succeeded")
		}
	})
}

// TestPreparingDoesNotDeadlockWithATransaction reproduces a deadlock on
// SQLite's one-connection write pool: Exec of a new statement used to hold
// the cache's lock while waiting for the connection, which a transaction
// held while it needed the lock for a new statement of its own; the
// transaction then ran into its timeout.
func TestPreparingDoesNotDeadlockWithATransaction(t *testing.T) {
	db := openMigrated(t, testenv.Engines()[0], Options{TxTimeout: 3 * time.Second})
	ctx := testCtx(t)
	execDone := make(chan error, 1)
	err := db.Tx(ctx, func(ctx context.Context, tx *Tx) error {
		go func() {
			_, err := db.Exec(context.Background(), `INSERT INTO kv (namespace, key, value, updated_at) VALUES ('dl', 'outside', x'00', 1)`)
			execDone <- err
		}()
		// Let the Exec reach the pool and wait for the connection.
		time.Sleep(100 * time.Millisecond)
		_, err := tx.Exec(ctx, `INSERT INTO kv (namespace, key, value, updated_at) VALUES ('dl', 'inside', x'00', 2)`)
		return err
	})
	if err != nil {
		t.Fatalf("the transaction failed (deadlocked until its timeout?): %v", err)
	}
	if err := <-execDone; err != nil {
		t.Fatal(err)
	}
}
