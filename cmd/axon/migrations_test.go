package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/internal/testenv"
)

// TestEveryMigrationIsRerunnable applies every migration of every area,
// then runs each statement of each again: CockroachDB may commit DDL
// outside a migration's transaction, so a migrator that died half-way
// must be able to run the whole file again (internal/store doc.go).
func TestEveryMigrationIsRerunnable(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		db, err := store.Open(ctx, e.NewDSN(t), store.Options{Migrations: allMigrations()})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		for _, m := range db.Migrations() {
			sql, err := db.MigrationSQL(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			for stmt := range strings.SplitSeq(withoutComments(sql), ";") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if _, err := db.Exec(ctx, stmt); err != nil {
					t.Errorf("migration %04d_%s is not re-runnable: %v\n%s", m.Version, m.Name, err, stmt)
				}
			}
		}
	})
}

// withoutComments drops SQL line comments (which may hold semicolons).
func withoutComments(sql string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(sql, "\n") {
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i]
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}
