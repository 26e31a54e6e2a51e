package syncapi

import (
	"context"
	"encoding/json"
	"io/fs"
	"testing"

	"github.com/axon-hs/axon/internal/bus"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/internal/testenv"
	"github.com/axon-hs/axon/services/roomserver"
)

// TestIndexerNeverWritesBehindItsPosition: a batch at or before the
// stored position (handed again by another indexer that was paused past
// its lease) changes nothing, so a position clients have read past never
// gains an event they would not see.
func TestIndexerNeverWritesBehindItsPosition(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		ctx := context.Background()
		db, err := store.Open(ctx, e.NewDSN(t), store.Options{Migrations: []fs.FS{roomserver.Migrations(), Migrations()}})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		ix := NewIndexer(db, nil, nil, nil)
		member := func(seq uint64, user string) bus.Msg {
			pdu, _ := json.Marshal(map[string]any{"type": "m.room.member", "state_key": user, "sender": user,
				"content": map[string]any{"membership": "join"}})
			o := roomserver.Output{RoomID: "!r:x", EventID: "$" + user, PDU: pdu, StateChanged: true, SoftFailed: true}
			data, _ := json.Marshal(o)
			return bus.Msg{StreamSeq: seq, Data: data}
		}
		if err := ix.handle(ctx, []bus.Msg{member(4, "@a:x"), member(5, "@b:x")}); err != nil {
			t.Fatal(err)
		}
		if err := ix.handle(ctx, []bus.Msg{member(3, "@c:x"), member(5, "@d:x")}); err != nil {
			t.Fatal(err)
		}
		if err := ix.handle(ctx, []bus.Msg{member(6, "@e:x")}); err != nil {
			t.Fatal(err)
		}
		var users []string
		rows, err := db.Query(ctx, `SELECT user_id FROM sync_memberships ORDER BY pos`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var u string
			if err := rows.Scan(&u); err != nil {
				t.Fatal(err)
			}
			users = append(users, u)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if got, want := len(users), 3; got != want || users[0] != "@a:x" || users[1] != "@b:x" || users[2] != "@e:x" {
			t.Fatalf("indexed memberships %v, want [@a:x @b:x @e:x]", users)
		}
		if pos, err := currentPos(ctx, db); err != nil || pos != 6 {
			t.Fatalf("position %d (%v), want 6", pos, err)
		}
	})
}
