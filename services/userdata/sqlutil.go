package userdata

import (
	"context"
	"strings"

	"github.com/axon-hs/axon/internal/store"
)

// The store caches one prepared statement per query text, so queries with
// variable-length lists are built from a few fixed shapes: IN lists are
// padded to one of inSizes (repeating the last value), and multi-row
// inserts go out in batches of one of rowBatches rows.
var (
	inSizes    = []int{1, 4, 16, 64, 256}
	rowBatches = []int{64, 8, 1}
)

// inChunks splits vals into chunks of at most the largest of inSizes and
// pads each to the next size, repeating its last value (which an IN list
// does not mind).
func inChunks(vals []string) [][]any {
	maxSize := inSizes[len(inSizes)-1]
	var out [][]any
	for len(vals) > 0 {
		n := min(len(vals), maxSize)
		size := maxSize
		for _, s := range inSizes {
			if s >= n {
				size = s
				break
			}
		}
		chunk := make([]any, size)
		for i := range size {
			chunk[i] = vals[min(i, n-1)]
		}
		out = append(out, chunk)
		vals = vals[n:]
	}
	return out
}

// valuesRows returns "($1, $2), ($3, $4)" for rows rows of cols columns.
func valuesRows(rows, cols int) string {
	var b strings.Builder
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		b.WriteString(store.Placeholders(1+r*cols, cols))
		b.WriteByte(')')
	}
	return b.String()
}

// insertRows runs prefix + " VALUES " + rows + suffix over rows (each of
// the same number of columns), in batches of rowBatches sizes.
func insertRows(ctx context.Context, q store.Querier, prefix, suffix string, rows [][]any) error {
	for len(rows) > 0 {
		n := 1
		for _, b := range rowBatches {
			if len(rows) >= b {
				n = b
				break
			}
		}
		cols := len(rows[0])
		args := make([]any, 0, n*cols)
		for _, r := range rows[:n] {
			args = append(args, r...)
		}
		if _, err := q.Exec(ctx, prefix+" VALUES "+valuesRows(n, cols)+suffix, args...); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// nextPos takes the next userdata position inside tx. The migration
// inserts the counter's row; the upsert only makes that not matter.
func nextPos(ctx context.Context, tx *store.Tx) (int64, error) {
	var pos int64
	err := tx.QueryRow(ctx, `INSERT INTO userdata_counter (id, pos) VALUES (1, 1)
		ON CONFLICT (id) DO UPDATE SET pos = userdata_counter.pos + 1 RETURNING pos`).Scan(&pos)
	return pos, err
}
