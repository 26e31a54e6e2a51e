package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Deferred statements run in order, before the next statement and at the
// commit, with every kind of argument arriving intact; an error of one
// fails the transaction and writes nothing.
func TestDefer(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		db := openMigrated(t, e, Options{})
		ctx := testCtx(t)
		ddl, err := db.Dialect().Expand(`CREATE TABLE defer_t (k {{bigint}} PRIMARY KEY, s {{text}}, b {{bytes}}, f {{bool}}, n {{bigint}})`)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, ddl); err != nil {
			t.Fatal(err)
		}
		awkward := []string{`it's`, `back\slash`, `$1 and $2`, "new\nline", `"quoted"`, "ünïcødé ✓", `--comment`, `';DROP TABLE defer_t;--`}
		blob := []byte{0, 1, 2, '\'', '\\', 0xff, 0xfe}
		err = db.Tx(ctx, func(ctx context.Context, tx *Tx) error {
			for i, s := range awkward {
				tx.Defer(`INSERT INTO defer_t (k, s, b, f, n) VALUES ($1, $2, $3, $4, $5)`, int64(i), s, blob, i%2 == 0, int64(-i))
			}
			tx.Defer(`INSERT INTO defer_t (k, s, b, f, n) VALUES ($1, $2, $3, $4, $5)`, int64(100), nil, nil, nil, nil)
			// A query sees what was deferred before it.
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM defer_t`).Scan(&n); err != nil {
				return err
			}
			if n != len(awkward)+1 {
				return fmt.Errorf("query after Defer saw %d rows, want %d", n, len(awkward)+1)
			}
			// Order holds: the update runs after the insert queued before it.
			tx.Defer(`INSERT INTO defer_t (k, s) VALUES ($1, $2)`, int64(200), "first")
			tx.Defer(`UPDATE defer_t SET s = $1 WHERE k = $2`, "second", int64(200))
			return nil // flushed at the commit
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range awkward {
			var s string
			var b []byte
			var f bool
			var n int64
			if err := db.QueryRow(ctx, `SELECT s, b, f, n FROM defer_t WHERE k = $1`, int64(i)).Scan(&s, &b, &f, &n); err != nil {
				t.Fatal(err)
			}
			if s != want || !bytes.Equal(b, blob) || f != (i%2 == 0) || n != int64(-i) {
				t.Errorf("row %d = %q %x %v %d, want %q %x %v %d", i, s, b, f, n, want, blob, i%2 == 0, -i)
			}
		}
		var null *string
		if err := db.QueryRow(ctx, `SELECT s FROM defer_t WHERE k = 100`).Scan(&null); err != nil || null != nil {
			t.Fatalf("NULL row: %v, %v", null, err)
		}
		var s string
		if err := db.QueryRow(ctx, `SELECT s FROM defer_t WHERE k = 200`).Scan(&s); err != nil || s != "second" {
			t.Fatalf("ordered row: %q, %v", s, err)
		}

		// A failing deferred statement fails the transaction at the
		// commit; nothing of it stays.
		err = db.Tx(ctx, func(ctx context.Context, tx *Tx) error {
			tx.Defer(`INSERT INTO defer_t (k, s) VALUES ($1, $2)`, int64(300), "kept?")
			tx.Defer(`INSERT INTO defer_t (k, s) VALUES ($1, $2)`, int64(0), "duplicate key")
			return nil
		})
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "unique") {
			t.Fatalf("duplicate deferred insert: err = %v, want a unique violation", err)
		}
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM defer_t WHERE k = 300`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("rows of the failed transaction: %d, %v", n, err)
		}

		// A compare-and-set that affects no row fails the transaction
		// with the caller's error, whatever was queued around it.
		errMoved := errors.New("moved")
		for _, k := range []int64{200, 999} {
			err = db.Tx(ctx, func(ctx context.Context, tx *Tx) error {
				tx.Defer(`INSERT INTO defer_t (k, s) VALUES ($1, $2)`, int64(400), "before")
				tx.DeferExpect(1, errMoved, `UPDATE defer_t SET s = $1 WHERE k = $2 AND s = $3`, "third", k, "second")
				tx.Defer(`INSERT INTO defer_t (k, s) VALUES ($1, $2)`, int64(401), "after")
				return nil
			})
			if k == 999 && !errors.Is(err, errMoved) {
				t.Fatalf("failed compare-and-set: err = %v, want errMoved", err)
			}
			if k == 200 && err != nil {
				t.Fatalf("compare-and-set: %v", err)
			}
			if err := db.QueryRow(ctx, `SELECT count(*) FROM defer_t WHERE k IN (400, 401)`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if want := map[int64]int{200: 2, 999: 0}[k]; n != want {
				t.Fatalf("after compare-and-set on %d: %d rows of the transaction, want %d", k, n, want)
			}
			if k == 200 {
				if _, err := db.Exec(ctx, `DELETE FROM defer_t WHERE k IN (400, 401)`); err != nil {
					t.Fatal(err)
				}
			}
		}

		// A long queue goes through in one piece.
		err = db.Tx(ctx, func(ctx context.Context, tx *Tx) error {
			for i := range 3000 {
				tx.Defer(`INSERT INTO defer_t (k, s) VALUES ($1, $2)`, int64(1000+i), "bulk")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(ctx, `SELECT count(*) FROM defer_t WHERE s = 'bulk'`).Scan(&n); err != nil || n != 3000 {
			t.Fatalf("bulk rows: %d, %v", n, err)
		}
	})
}
