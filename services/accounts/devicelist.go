package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/id"
)

// maxListedDevices bounds the devices DeviceList returns.
const maxListedDevices = 1000

// ListedDevice is a device as other servers see it.
type ListedDevice struct {
	DeviceID    string
	DisplayName string // "" when it has none
}

// DeviceChange is one change of a local user's device list, as an
// m.device_list_update EDU announces it to other servers.
type DeviceChange struct {
	DeviceID string
	// DisplayName is the device's name after the change; "" when it has
	// none, and for a deleted device.
	DisplayName string
	// Deleted is set when the device was deleted.
	Deleted bool
	// StreamID is this change's place in the user's sequence of changes:
	// the user's device-list stream ID right after it (1 for the first
	// change ever counted).
	StreamID int64
	// PrevID is the stream ID right before this change (StreamID-1); 0
	// for the first change, which has none.
	PrevID int64
}

// DeviceList returns a user's devices, by device ID (at most 1000), and
// the user's device-list stream ID: the number of changes of the list
// counted so far (devices added, removed, renamed; see
// Config.OnDeviceListChange), the stream_id of the m.device_list_update
// EDU of the last one. The stream ID is read before the devices, each in
// its own statement, so a change committed in between is in the list but
// not in the stream ID: the other server then applies that change's EDU
// once more, which changes nothing, whereas the opposite order could make
// it skip the change. A user without an account, or whose list never
// changed since stream IDs are counted, has stream ID 0.
func (s *Service) DeviceList(ctx context.Context, userID string) ([]ListedDevice, int64, error) {
	var stream int64
	err := s.db.QueryRow(ctx, `SELECT stream_id FROM accounts_device_lists WHERE user_id = $1`, userID).Scan(&stream)
	if err != nil && !errors.Is(err, store.ErrNoRows) {
		return nil, 0, fmt.Errorf("accounts: read device list stream ID: %w", err)
	}
	rows, err := s.db.Query(ctx, fmt.Sprintf(`SELECT device_id, display_name FROM accounts_devices
		WHERE user_id = $1 ORDER BY device_id LIMIT %d`, maxListedDevices), userID)
	if err != nil {
		return nil, 0, fmt.Errorf("accounts: list devices: %w", err)
	}
	defer rows.Close()
	var out []ListedDevice
	for rows.Next() {
		var d ListedDevice
		var name sql.NullString
		if err := rows.Scan(&d.DeviceID, &name); err != nil {
			return nil, 0, err
		}
		d.DisplayName = name.String
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	return out, stream, nil
}

// countDeviceChangesTx takes the next len(changes) stream IDs of the
// user's device list, in the transaction that makes the changes, and sets
// each change's StreamID and PrevID: consecutive, in order, each chained
// on the one before. The one upsert is the only write to the user's
// counter row, so two transactions changing one user's devices at once
// conflict there and one is retried (SERIALIZABLE): no stream ID is given
// twice, none is skipped.
func countDeviceChangesTx(ctx context.Context, tx *store.Tx, userID id.UserID, changes []DeviceChange) error {
	if len(changes) == 0 {
		return nil
	}
	n := int64(len(changes))
	var last int64
	err := tx.QueryRow(ctx, `INSERT INTO accounts_device_lists (user_id, stream_id) VALUES ($1, $2)
		ON CONFLICT (user_id) DO UPDATE SET stream_id = accounts_device_lists.stream_id + $2 RETURNING stream_id`,
		string(userID), n).Scan(&last)
	if err != nil {
		return fmt.Errorf("accounts: count device list changes: %w", err)
	}
	for i := range changes {
		changes[i].StreamID = last - n + 1 + int64(i)
		changes[i].PrevID = changes[i].StreamID - 1
	}
	return nil
}

// deviceListChanged runs Config.OnDeviceListChange after a commit.
func (s *Service) deviceListChanged(ctx context.Context, userID id.UserID, changes []DeviceChange) {
	if s.cfg.OnDeviceListChange == nil || len(changes) == 0 {
		return
	}
	s.hook(ctx, "device_list_change", userID, func(ctx context.Context) error {
		return s.cfg.OnDeviceListChange(ctx, userID, changes)
	})
}

// deletedIDs lists the device IDs of deletions.
func deletedIDs(changes []DeviceChange) []string {
	ids := make([]string, 0, len(changes))
	for _, c := range changes {
		if c.Deleted {
			ids = append(ids, c.DeviceID)
		}
	}
	return ids
}
