package userdata

import (
	"context"
	"errors"
	"fmt"

	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/id"
)

// Device list changes (device_lists.changed of /sync). userdata_device_lists
// has one row per user whose device list changed: other servers' users
// (ReceiveDeviceListUpdate, from m.device_list_update EDUs) and, since
// LocalDeviceListChanged, this server's users; each row holds the last
// stream_id recorded and the position at which it was.

// maxDeviceListsPerSync bounds device_lists.changed in one /sync: the
// users of the newest changes.
const maxDeviceListsPerSync = 1000

// ReceiveDeviceListUpdate records that another server's user changed a
// device (m.device_list_update with streamID), so that the next /sync of
// the local users sharing a room with them lists the user in
// device_lists.changed, and wakes them. An update with the stream_id
// already recorded (a repeated EDU) changes nothing. Device details are
// not kept: there is no end-to-end key store yet.
func (s *Service) ReceiveDeviceListUpdate(ctx context.Context, userID string, streamID int64) error {
	if _, err := id.ParseUserID(userID); err != nil {
		return invalid("user ID %q", userID)
	}
	return s.recordDeviceList(ctx, userID, streamID, func(cur int64) bool { return cur == streamID }, nil)
}

// LocalDeviceListChanged records that a local user's device list changed
// (a device added, deleted or renamed; services/accounts'
// OnDeviceListChange) up to streamID, the user's device-list stream ID
// after the change, so that the next /sync of the local users sharing a
// room with them, and of the user's own devices, lists the user in
// device_lists.changed, and wakes them. A streamID not above the one
// recorded (the same change again, or an older one arriving late) changes
// nothing: the user's newer change is listed already. The row is the
// same table's as other servers' users (one per user, remote or local).
func (s *Service) LocalDeviceListChanged(ctx context.Context, userID string, streamID int64) error {
	if _, err := id.ParseUserID(userID); err != nil || !s.isLocal(userID) {
		return fmt.Errorf("userdata: %q is not a user of this server", userID)
	}
	return s.recordDeviceList(ctx, userID, streamID, func(cur int64) bool { return cur >= streamID }, []string{userID})
}

// recordDeviceList records userID's device list at streamID at a new
// position, unless known(the recorded stream ID) says it is recorded
// already, and wakes wakeUsers and the user's rooms.
func (s *Service) recordDeviceList(ctx context.Context, userID string, streamID int64, known func(cur int64) bool, wakeUsers []string) error {
	var changed bool
	err := s.db.Tx(ctx, func(ctx context.Context, tx *store.Tx) error {
		changed = false
		var cur int64
		err := tx.QueryRow(ctx, `SELECT stream_id FROM userdata_device_lists WHERE user_id = $1`, userID).Scan(&cur)
		if err == nil && known(cur) {
			return nil
		}
		if err != nil && !errors.Is(err, store.ErrNoRows) {
			return err
		}
		pos, err := nextPos(ctx, tx)
		if err != nil {
			return err
		}
		changed = true
		_, err = tx.Exec(ctx, `INSERT INTO userdata_device_lists (user_id, stream_id, pos) VALUES ($1, $2, $3)
			ON CONFLICT (user_id) DO UPDATE SET stream_id = excluded.stream_id, pos = excluded.pos`, userID, streamID, pos)
		return err
	})
	if err != nil || !changed {
		return err
	}
	var rooms []string
	if s.cfg.Rooms != nil {
		if rooms, err = s.cfg.Rooms(ctx, userID); err != nil {
			s.log.Warn("userdata: listing rooms for a device list wake-up failed", "user_id", userID, "err", err)
		}
	}
	s.wake(wakeUsers, rooms)
	return nil
}

// deviceListsFor returns the users whose device lists changed in
// (From, To] and who share a room with the syncing user, or are the
// syncing user (whose other devices must learn of a new or deleted one):
// nothing on an initial sync (the spec's device_lists are changes since a
// token). Ignored users are not left out: their devices still matter to
// encryption.
func (s *Service) deviceListsFor(ctx context.Context, q SyncQuery) ([]string, error) {
	if q.Initial || q.From >= q.To {
		return nil, nil
	}
	rows, err := s.db.Query(ctx, `SELECT user_id FROM userdata_device_lists
		WHERE pos > $1 AND pos <= $2 ORDER BY pos DESC LIMIT $3`, q.From, q.To, maxDeviceListsPerSync)
	if err != nil {
		return nil, err
	}
	var users []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			rows.Close()
			return nil, err
		}
		users = append(users, u)
	}
	err = rows.Err()
	rows.Close()
	if err != nil || len(users) == 0 {
		return nil, err
	}
	v := s.sharers(q)
	var out []string
	for _, u := range users {
		ok, err := v.visible(ctx, u) // true for the user
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, u)
		}
	}
	return out, nil
}
