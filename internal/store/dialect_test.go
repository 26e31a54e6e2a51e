package store

import (
	"bytes"
	"context"
	"slices"
	"testing"
)

func TestExpand(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		postgres string
		sqlite   string
		wantErr  bool
	}{
		{"none", "CREATE TABLE t (a TEXT)", "CREATE TABLE t (a TEXT)", "CREATE TABLE t (a TEXT)", false},
		{"bytes", "v {{bytes}} NOT NULL", "v BYTEA NOT NULL", "v BLOB NOT NULL", false},
		{"all", "{{bigint}},{{bool}},{{text}},{{ bytes }}", "BIGINT,BOOLEAN,TEXT,BYTEA", "INTEGER,BOOLEAN,TEXT,BLOB", false},
		{"unknown", "v {{blob}}", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range []struct {
				d    Dialect
				want string
			}{{postgresDialect{}, tt.postgres}, {sqliteDialect{}, tt.sqlite}} {
				got, err := c.d.Expand(tt.in)
				if (err != nil) != tt.wantErr {
					t.Fatalf("%s: Expand(%q) error = %v, wantErr %v", c.d.Kind(), tt.in, err, tt.wantErr)
				}
				if got != c.want {
					t.Errorf("%s: Expand(%q) = %q, want %q", c.d.Kind(), tt.in, got, c.want)
				}
			}
		})
	}
}

func TestPlaceholder(t *testing.T) {
	for _, d := range []Dialect{postgresDialect{}, sqliteDialect{}} {
		if got := d.Placeholder(3); got != "$3" {
			t.Errorf("%s: Placeholder(3) = %q", d.Kind(), got)
		}
	}
}

// TestPlaceholdersUnchanged proves that the driver binds $N by number on
// every engine — out of order and repeated — so queries need no rewriting.
func TestPlaceholdersUnchanged(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		db := open(t, e.NewDSN(t), Options{})
		ctx := testCtx(t)
		var a, b, c string
		if err := db.QueryRow(ctx, "SELECT CAST($2 AS TEXT), CAST($1 AS TEXT), CAST($2 AS TEXT) || CAST($1 AS TEXT)", "x", "y").Scan(&a, &b, &c); err != nil {
			t.Fatal(err)
		}
		if a != "y" || b != "x" || c != "yx" {
			t.Fatalf("got %q %q %q, want y x yx", a, b, c)
		}
	})
}

// TestTypesRoundTrip writes each token type and reads it back as Go values.
func TestTypesRoundTrip(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		db := open(t, e.NewDSN(t), Options{})
		ctx := testCtx(t)
		ddl, err := db.Dialect().Expand(`CREATE TABLE types (
			id {{bigint}} PRIMARY KEY, b {{bytes}} NOT NULL, f {{bool}} NOT NULL, s {{text}} NOT NULL)`)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, ddl); err != nil {
			t.Fatal(err)
		}
		in := []byte{0, 1, 0xff, '"'}
		const big = int64(1) << 62
		if _, err := db.Exec(ctx, "INSERT INTO types (id, b, f, s) VALUES ($1, $2, $3, $4)", big, in, true, "héllo"); err != nil {
			t.Fatal(err)
		}
		var id int64
		var out []byte
		var f bool
		var s string
		if err := db.QueryRow(ctx, "SELECT id, b, f, s FROM types WHERE f = $1", true).Scan(&id, &out, &f, &s); err != nil {
			t.Fatal(err)
		}
		if id != big || !bytes.Equal(out, in) || !f || s != "héllo" {
			t.Fatalf("round trip: %d %x %v %q", id, out, f, s)
		}
	})
}

func TestUpsert(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		db := openMigrated(t, e, Options{})
		ctx := testCtx(t)
		put := func(v string, at int64) {
			t.Helper()
			err := db.Tx(ctx, func(ctx context.Context, tx *Tx) error {
				_, err := tx.Exec(ctx, `INSERT INTO kv (namespace, key, value, updated_at) VALUES ($1, $2, $3, $4)
					ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
					WHERE kv.updated_at < excluded.updated_at`, "test", "k", []byte(v), at)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		get := func() string {
			t.Helper()
			var v []byte
			if err := db.QueryRow(ctx, "SELECT value FROM kv WHERE namespace = $1 AND key = $2", "test", "k").Scan(&v); err != nil {
				t.Fatal(err)
			}
			return string(v)
		}
		put("one", 1)
		put("two", 2)
		if got := get(); got != "two" {
			t.Fatalf("after update: %q, want two", got)
		}
		put("stale", 1) // the conditional update keeps the newer value
		if got := get(); got != "two" {
			t.Fatalf("after stale write: %q, want two", got)
		}
		var n int
		if err := db.QueryRow(ctx, "SELECT count(*) FROM kv WHERE namespace = 'test'").Scan(&n); err != nil || n != 1 {
			t.Fatalf("rows = %d, %v; want 1", n, err)
		}
	})
}

// AnyOf matches exactly the given values, with one statement text for
// any number of them on PostgreSQL.
func TestAnyOf(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		db := openMigrated(t, e, Options{})
		ctx := testCtx(t)
		if _, err := db.Exec(ctx, `CREATE TABLE anyof_t (k TEXT PRIMARY KEY)`); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"a", "b", "c'd", "e"} {
			if _, err := db.Exec(ctx, `INSERT INTO anyof_t (k) VALUES ($1)`, k); err != nil {
				t.Fatal(err)
			}
		}
		texts := map[string]bool{}
		for _, want := range [][]string{{"a"}, {"c'd", "e"}, {"b", "zz", "a"}} {
			cond, args := db.AnyOf(2, want)
			q := `SELECT k FROM anyof_t WHERE k <> $1 AND k ` + cond + ` ORDER BY k`
			texts[q] = true
			rows, err := db.Query(ctx, q, append([]any{"x"}, args...)...)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for rows.Next() {
				var k string
				if err := rows.Scan(&k); err != nil {
					t.Fatal(err)
				}
				got = append(got, k)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			rows.Close()
			exp := slices.DeleteFunc(slices.Sorted(slices.Values(want)), func(k string) bool { return k == "zz" })
			if !slices.Equal(got, exp) {
				t.Errorf("AnyOf(%q) selected %q, want %q", want, got, exp)
			}
		}
		if db.Kind() != KindSQLite && len(texts) != 2 {
			t.Errorf("AnyOf made %d statement texts for one value and two lengths, want 2", len(texts))
		}
	})
}
