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

// A transaction of deferred statements only is one pipeline on
// PostgreSQL; whatever fails in it, the connection goes back to the pool
// idle, with nothing of the transaction applied. One connection, so the
// next transaction gets the very same one.
func TestDeferOnlyTransactionLeavesConnectionIdle(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		db := openMigrated(t, e, Options{MaxOpenConns: 1, MaxIdleConns: 1})
		ctx := testCtx(t)
		if _, err := db.Exec(ctx, `CREATE TABLE defer_c (k BIGINT PRIMARY KEY, v BIGINT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `INSERT INTO defer_c (k, v) VALUES (1, 10), (2, 10)`); err != nil {
			t.Fatal(err)
		}
		errWant := errors.New("count mismatch")
		cases := []struct {
			name string
			fn   func(tx *Tx)
			want error // nil: commits
			// violates, when the transaction fails with a constraint
			// violation instead.
			violates bool
		}{
			{"two rows expected and updated", func(tx *Tx) {
				tx.DeferExpect(2, errWant, `UPDATE defer_c SET v = v + 1 WHERE v = $1`, int64(10))
			}, nil, false},
			{"two rows expected, none updated", func(tx *Tx) {
				tx.Defer(`INSERT INTO defer_c (k, v) VALUES ($1, $2)`, int64(3), int64(0))
				tx.DeferExpect(2, errWant, `UPDATE defer_c SET v = v + 1 WHERE v = $1`, int64(10))
			}, errWant, false},
			{"insert that conflicts", func(tx *Tx) {
				tx.DeferExpect(1, errWant, `INSERT INTO defer_c (k, v) VALUES ($1, $2) ON CONFLICT (k) DO NOTHING`, int64(1), int64(0))
				tx.Defer(`INSERT INTO defer_c (k, v) VALUES ($1, $2)`, int64(4), int64(0))
			}, errWant, false},
			{"constraint violation after an expectation", func(tx *Tx) {
				tx.DeferExpect(1, errWant, `UPDATE defer_c SET v = v + 1 WHERE k = $1`, int64(1))
				tx.Defer(`INSERT INTO defer_c (k, v) VALUES ($1, $2)`, int64(2), int64(0))
			}, nil, true},
		}
		backend := int64(-1) // PostgreSQL: the connection's server process
		for _, c := range cases {
			err := db.Tx(ctx, func(ctx context.Context, tx *Tx) error { c.fn(tx); return nil })
			switch {
			case c.violates:
				if err == nil || errors.Is(err, errWant) {
					t.Fatalf("%s: err = %v, want the unique violation", c.name, err)
				}
			case !errors.Is(err, c.want):
				t.Fatalf("%s: err = %v, want %v", c.name, err, c.want)
			}
			// The same (only) connection serves a transaction that reads;
			// on PostgreSQL it was rolled back, not thrown away.
			err = db.Tx(ctx, func(ctx context.Context, tx *Tx) error {
				var n int
				if err := tx.QueryRow(ctx, `SELECT count(*) FROM defer_c`).Scan(&n); err != nil || db.Kind() != KindPostgres {
					return err
				}
				var pid int64
				if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
					return err
				}
				if backend >= 0 && pid != backend {
					return fmt.Errorf("connection replaced: backend %d, was %d", pid, backend)
				}
				backend = pid
				return nil
			})
			if err != nil {
				t.Fatalf("after %s: %v", c.name, err)
			}
		}
		rows := map[int64]int64{}
		r, err := db.Query(ctx, `SELECT k, v FROM defer_c ORDER BY k`)
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			var k, v int64
			if err := r.Scan(&k, &v); err != nil {
				t.Fatal(err)
			}
			rows[k] = v
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		if want := map[int64]int64{1: 11, 2: 11}; fmt.Sprint(rows) != fmt.Sprint(want) {
			t.Fatalf("rows = %v, want %v (only the first case commits)", rows, want)
		}
	})
}
