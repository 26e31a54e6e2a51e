package store

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Dialect is the small difference between the engines that queries and
// migrations may need to know about. Queries are written once, in the
// PostgreSQL form with $1, $2 … placeholders; both dialects run them as they
// are (modernc.org/sqlite binds $N to the N-th argument, as PostgreSQL does,
// including repeated and out-of-order placeholders; see dialect_test.go).
// Only column types differ, and only in DDL, so migrations write them as
// tokens that Expand replaces:
//
//	{{bytes}}   BYTEA    | BLOB     arbitrary bytes (canonical JSON, keys)
//	{{bigint}}  BIGINT   | INTEGER  64-bit integers (positions, timestamps in ms)
//	{{bool}}    BOOLEAN  | BOOLEAN  SQLite stores 0/1; database/sql scans it into bool
//	{{text}}    TEXT     | TEXT     UTF-8 strings
type Dialect interface {
	// Kind is the engine family: KindSQLite or KindPostgres (CockroachDB
	// uses the postgres dialect).
	Kind() Kind
	// Placeholder returns the placeholder of the n-th argument (1-based).
	Placeholder(n int) string
	// Expand replaces the {{type}} tokens of a migration. An unknown token
	// is an error, so that a typo never reaches the database.
	Expand(sql string) (string, error)
}

var (
	_ Dialect = postgresDialect{}
	_ Dialect = sqliteDialect{}
)

var tokenRE = regexp.MustCompile(`\{\{\s*([a-z]+)\s*\}\}`)

func expand(sql string, types map[string]string) (string, error) {
	var bad string
	out := tokenRE.ReplaceAllStringFunc(sql, func(tok string) string {
		name := tokenRE.FindStringSubmatch(tok)[1]
		t, ok := types[name]
		if !ok && bad == "" {
			bad = tok
		}
		return t
	})
	if bad != "" {
		return "", fmt.Errorf("store: unknown type token %s", bad)
	}
	return out, nil
}

type postgresDialect struct{}

var postgresTypes = map[string]string{
	"bytes":  "BYTEA",
	"bigint": "BIGINT",
	"bool":   "BOOLEAN",
	"text":   "TEXT",
}

func (postgresDialect) Kind() Kind                        { return KindPostgres }
func (postgresDialect) Placeholder(n int) string          { return "$" + strconv.Itoa(n) }
func (postgresDialect) Expand(sql string) (string, error) { return expand(sql, postgresTypes) }

type sqliteDialect struct{}

var sqliteTypes = map[string]string{
	"bytes":  "BLOB",
	"bigint": "INTEGER",
	"bool":   "BOOLEAN",
	"text":   "TEXT",
}

func (sqliteDialect) Kind() Kind                        { return KindSQLite }
func (sqliteDialect) Placeholder(n int) string          { return "$" + strconv.Itoa(n) }
func (sqliteDialect) Expand(sql string) (string, error) { return expand(sql, sqliteTypes) }

// AnyOf returns the condition "is one of values", to follow a column
// name, for a statement whose next placeholder is $n, and its arguments.
// On PostgreSQL and CockroachDB it is "= ANY($n)" with values as one
// array parameter, so that the statement's text, and the plan prepared
// for it on each connection, do not depend on how many values there
// are: an IN list of a new length is a new statement, parsed and planned
// again on every connection it runs on. On SQLite it is an IN list.
// A single value is "= $n" everywhere: PostgreSQL plans "= ANY" for ten
// values, with a bitmap scan that costs several times an index scan for
// one row. values must not be empty.
func (db *DB) AnyOf(n int, values []string) (string, []any) {
	if len(values) == 1 {
		return "= $" + strconv.Itoa(n), []any{values[0]}
	}
	if db.kind == KindSQLite {
		args := make([]any, len(values))
		for i, v := range values {
			args[i] = v
		}
		return "IN (" + Placeholders(n, len(values)) + ")", args
	}
	return "= ANY($" + strconv.Itoa(n) + "::text[])", []any{values}
}

// Placeholders returns n placeholders "$first, …, $first+n-1", for IN
// lists and multi-row VALUES.
func Placeholders(first, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(first + i))
	}
	return b.String()
}
