package userdata

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/id"
)

// Bounds on send-to-device (see doc.go).
const (
	maxToDeviceRecipients = 10_000 // device messages one request may expand to
	maxTxnIDLength        = 255
	txnRetention          = 24 * time.Hour
	txnPurgeInterval      = 5 * time.Minute
	deleteBatch           = 1000
)

type toDeviceBody struct {
	Messages map[string]map[string]json.RawMessage `json:"messages"`
}

// toDeviceMsg is one message for one device.
type toDeviceMsg struct {
	userID, deviceID string
	content          []byte
}

func (s *Service) putToDevice(w http.ResponseWriter, r *http.Request, d Device) error {
	typ, txnID := r.PathValue("eventType"), r.PathValue("txnId")
	if typ == "" || len(typ) > maxTypeLength || !utf8.ValidString(typ) {
		return httpx.InvalidParam(fmt.Sprintf("The event type must be 1 to %d bytes of UTF-8", maxTypeLength))
	}
	if txnID == "" || len(txnID) > maxTxnIDLength {
		return httpx.InvalidParam(fmt.Sprintf("The transaction ID must be 1 to %d bytes", maxTxnIDLength))
	}
	var b toDeviceBody
	if err := httpx.DecodeJSON(r, httpx.DefaultBodyLimit, &b); err != nil {
		return err
	}
	if b.Messages == nil {
		return httpx.BadJSON("messages is required")
	}
	ctx := r.Context()
	// A retransmission is answered before any work; the transaction below
	// checks again, for one that races the original.
	if seen, err := s.txnSeen(ctx, d, txnID); err != nil || seen {
		if err == nil {
			err = writeEmpty(w)
		}
		return err
	}
	msgs, remote, err := s.expandRecipients(ctx, b.Messages)
	if err != nil {
		return err
	}
	// Other servers' users first: a failure fails the request before the
	// transaction ID is recorded, and the retry queues the same EDUs.
	if err := s.sendToDeviceRemote(ctx, d, txnID, typ, remote); err != nil {
		return err
	}
	queued, full, err := s.queueToDevice(ctx, d, txnID, typ, msgs)
	if err != nil {
		return err
	}
	if len(full) > 0 {
		s.log.Warn("userdata: send-to-device messages dropped: device queues full",
			"txn_id", txnID, "devices", len(full), "first_user_id", full[0].userID, "first_device_id", full[0].deviceID)
	}
	if len(queued) > 0 {
		s.wake(queued, nil)
	}
	return writeEmpty(w)
}

func (s *Service) txnSeen(ctx context.Context, d Device, txnID string) (bool, error) {
	var one int
	err := s.db.QueryRow(ctx, `SELECT 1 FROM userdata_to_device_txns WHERE user_id = $1 AND device_id = $2 AND txn_id = $3`,
		d.UserID, d.DeviceID, txnID).Scan(&one)
	if errors.Is(err, store.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// isLocal reports whether userID belongs to this server.
func (s *Service) isLocal(userID string) bool {
	return s.cfg.ServerName == "" || string(id.UserID(userID).Server()) == s.cfg.ServerName
}

// expandRecipients validates the messages and turns them into one message
// per local device: "*" becomes every device that Config.Devices lists (a
// device also named explicitly keeps its own message), devices that it
// does not list are skipped. The messages for users of other servers are
// returned apart, by server, as given (compacted).
func (s *Service) expandRecipients(ctx context.Context, messages map[string]map[string]json.RawMessage) ([]toDeviceMsg, map[string]map[string]map[string]json.RawMessage, error) {
	users := make([]string, 0, len(messages))
	for u := range messages {
		users = append(users, u)
	}
	slices.Sort(users)
	var out []toDeviceMsg
	var remote map[string]map[string]map[string]json.RawMessage
	remoteDevices := 0
	for _, userID := range users {
		if _, err := id.ParseUserID(userID); err != nil {
			return nil, nil, httpx.InvalidParam(quote(userID) + " is not a valid user ID")
		}
		devs := messages[userID]
		for dev, content := range devs {
			if dev == "" || !isObject(content) {
				return nil, nil, httpx.BadJSON("Each message must be a JSON object under a non-empty device ID (user " + quote(userID) + ")")
			}
		}
		if !s.isLocal(userID) {
			if len(devs) == 0 {
				continue
			}
			server := string(id.UserID(userID).Server())
			if remote == nil {
				remote = map[string]map[string]map[string]json.RawMessage{}
			}
			if remote[server] == nil {
				remote[server] = map[string]map[string]json.RawMessage{}
			}
			byDev := make(map[string]json.RawMessage, len(devs))
			for dev, content := range devs {
				byDev[dev] = compact(content)
			}
			remote[server][userID] = byDev
			if remoteDevices += len(devs); len(out)+remoteDevices > maxToDeviceRecipients {
				return nil, nil, httpx.TooLarge(fmt.Sprintf("A request may reach at most %d devices", maxToDeviceRecipients))
			}
			continue
		}
		var known map[string]bool
		if s.cfg.Devices != nil {
			list, err := s.cfg.Devices(ctx, userID)
			if err != nil {
				return nil, nil, err
			}
			known = make(map[string]bool, len(list))
			for _, d := range list {
				known[d] = true
			}
		}
		all, hasAll := devs["*"]
		if hasAll {
			for dev := range known {
				if _, explicit := devs[dev]; !explicit {
					out = append(out, toDeviceMsg{userID: userID, deviceID: dev, content: compact(all)})
				}
			}
		}
		for dev, content := range devs {
			if dev == "*" || (known != nil && !known[dev]) {
				continue
			}
			out = append(out, toDeviceMsg{userID: userID, deviceID: dev, content: compact(content)})
		}
		if len(out)+remoteDevices > maxToDeviceRecipients {
			return nil, nil, httpx.TooLarge(fmt.Sprintf("A request may reach at most %d devices", maxToDeviceRecipients))
		}
	}
	slices.SortFunc(out, func(a, b toDeviceMsg) int {
		if c := strings.Compare(a.userID, b.userID); c != 0 {
			return c
		}
		return strings.Compare(a.deviceID, b.deviceID)
	})
	return out, remote, nil
}

// queueToDevice records the transaction ID and queues the messages in
// one transaction. Messages for a device whose queue is full are dropped
// (returned in full). It returns the users who got a message. A
// transaction ID seen before queues nothing.
func (s *Service) queueToDevice(ctx context.Context, d Device, txnID, typ string, msgs []toDeviceMsg) (users []string, full []toDeviceMsg, err error) {
	now := s.cfg.Now().UnixMilli()
	err = s.db.Tx(ctx, func(ctx context.Context, tx *store.Tx) error {
		users, full = nil, nil
		res, err := tx.Exec(ctx, `INSERT INTO userdata_to_device_txns (user_id, device_id, txn_id, created_ts) VALUES ($1, $2, $3, $4)
			ON CONFLICT (user_id, device_id, txn_id) DO NOTHING`, d.UserID, d.DeviceID, txnID, now)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err // a retransmission that raced the original
		}
		if len(msgs) == 0 {
			return nil
		}
		counts, err := queueCounts(ctx, tx, msgs)
		if err != nil {
			return err
		}
		var ok []toDeviceMsg
		for _, m := range msgs {
			if counts[[2]string{m.userID, m.deviceID}] >= int64(s.cfg.MaxToDeviceQueue) {
				full = append(full, m)
			} else {
				ok = append(ok, m)
			}
		}
		if len(ok) == 0 {
			return nil
		}
		pos, err := nextPos(ctx, tx)
		if err != nil {
			return err
		}
		rows := make([][]any, len(ok))
		qrows := make([][]any, len(ok))
		for i, m := range ok {
			rows[i] = []any{m.userID, m.deviceID, pos, d.UserID, typ, m.content, now}
			qrows[i] = []any{m.userID, m.deviceID, int64(1)}
			if i == 0 || ok[i-1].userID != m.userID {
				users = append(users, m.userID)
			}
		}
		if err := insertRows(ctx, tx, `INSERT INTO userdata_to_device (user_id, device_id, pos, sender, type, content, created_ts)`, "", rows); err != nil {
			return err
		}
		return insertRows(ctx, tx, `INSERT INTO userdata_to_device_queue (user_id, device_id, queued)`,
			` ON CONFLICT (user_id, device_id) DO UPDATE SET queued = userdata_to_device_queue.queued + excluded.queued`, qrows)
	})
	return users, full, err
}

// queueCounts returns the queue lengths of the devices of msgs.
func queueCounts(ctx context.Context, tx *store.Tx, msgs []toDeviceMsg) (map[[2]string]int64, error) {
	var users []string
	for i, m := range msgs {
		if i == 0 || msgs[i-1].userID != m.userID {
			users = append(users, m.userID)
		}
	}
	counts := make(map[[2]string]int64)
	for _, chunk := range inChunks(users) {
		rows, err := tx.Query(ctx, `SELECT user_id, device_id, queued FROM userdata_to_device_queue WHERE user_id IN (`+
			store.Placeholders(1, len(chunk))+`)`, chunk...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var u, dev string
			var n int64
			if err := rows.Scan(&u, &dev, &n); err != nil {
				rows.Close()
				return nil, err
			}
			counts[[2]string{u, dev}] = n
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
	}
	return counts, nil
}

// AckToDevice deletes the device's send-to-device messages up to pos: a
// /sync arrived with a since token whose to-device position is upTo, so
// the client has them. It is cheap when there is nothing to delete.
func (s *Service) AckToDevice(ctx context.Context, userID, deviceID string, upTo int64) error {
	for {
		var one int
		err := s.db.QueryRow(ctx, `SELECT 1 FROM userdata_to_device WHERE user_id = $1 AND device_id = $2 AND pos <= $3 LIMIT 1`,
			userID, deviceID, upTo).Scan(&one)
		if errors.Is(err, store.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		var n int64
		err = s.db.Tx(ctx, func(ctx context.Context, tx *store.Tx) error {
			res, err := tx.Exec(ctx, `DELETE FROM userdata_to_device WHERE user_id = $1 AND device_id = $2 AND pos IN
				(SELECT pos FROM userdata_to_device WHERE user_id = $1 AND device_id = $2 AND pos <= $3 ORDER BY pos LIMIT $4)`,
				userID, deviceID, upTo, deleteBatch)
			if err != nil {
				return err
			}
			if n, err = res.RowsAffected(); err != nil || n == 0 {
				return err
			}
			_, err = tx.Exec(ctx, `UPDATE userdata_to_device_queue SET queued = CASE WHEN queued > $3 THEN queued - $3 ELSE 0 END
				WHERE user_id = $1 AND device_id = $2`, userID, deviceID, n)
			return err
		})
		if err != nil || n < deleteBatch {
			return err
		}
	}
}

// DeleteDevice drops a device's queued send-to-device messages, in
// batches. The accounts area calls it when a device is deleted.
func (s *Service) DeleteDevice(ctx context.Context, userID, deviceID string) error {
	if err := s.AckToDevice(ctx, userID, deviceID, 1<<62); err != nil {
		return err
	}
	_, err := s.db.Exec(ctx, `DELETE FROM userdata_to_device_queue WHERE user_id = $1 AND device_id = $2`, userID, deviceID)
	return err
}

// PurgeTxns deletes send-to-device transaction IDs older than a day, in
// batches. Run calls it every few minutes.
func (s *Service) PurgeTxns(ctx context.Context) error {
	before := s.cfg.Now().Add(-txnRetention).UnixMilli()
	for {
		res, err := s.db.Exec(ctx, `DELETE FROM userdata_to_device_txns WHERE (user_id, device_id, txn_id) IN
			(SELECT user_id, device_id, txn_id FROM userdata_to_device_txns WHERE created_ts < $1 LIMIT $2)`, before, deleteBatch)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n < deleteBatch {
			return err
		}
	}
}

// toDeviceFor returns the device's pending messages with pos <= to, in
// order, at most limit, and the position up to which it delivered all.
// Messages from ignored senders count as delivered but are left out.
func (s *Service) toDeviceFor(ctx context.Context, userID, deviceID string, to int64, limit int, ignored *ignoreList) ([]json.RawMessage, int64, error) {
	rows, err := s.db.Query(ctx, `SELECT pos, sender, type, content FROM userdata_to_device
		WHERE user_id = $1 AND device_id = $2 AND pos <= $3 ORDER BY pos LIMIT $4`, userID, deviceID, to, limit+1)
	if err != nil {
		return nil, 0, err
	}
	type msg struct {
		pos         int64
		sender, typ string
		content     []byte
	}
	var msgs []msg
	for rows.Next() {
		var m msg
		if err := rows.Scan(&m.pos, &m.sender, &m.typ, &m.content); err != nil {
			rows.Close()
			return nil, 0, err
		}
		msgs = append(msgs, m)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, 0, err
	}
	last := to
	if len(msgs) > limit {
		msgs = msgs[:limit] // one more exists: cut at the last delivered
		last = msgs[limit-1].pos
	}
	if len(msgs) == 0 {
		return nil, last, nil
	}
	ign, err := ignored.get()
	if err != nil {
		return nil, 0, err
	}
	var out []json.RawMessage
	for _, m := range msgs {
		if ign[m.sender] {
			continue
		}
		ev, err := json.Marshal(struct {
			Sender  string          `json:"sender"`
			Type    string          `json:"type"`
			Content json.RawMessage `json:"content"`
		}{m.sender, m.typ, m.content})
		if err != nil {
			return nil, 0, err
		}
		out = append(out, ev)
	}
	return out, last, nil
}

// isObject reports whether raw is a JSON object.
func isObject(raw json.RawMessage) bool {
	b := bytes.TrimLeft(raw, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// compact returns raw without insignificant whitespace (raw is valid JSON).
func compact(raw json.RawMessage) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return raw
	}
	return buf.Bytes()
}
