package accounts

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
)

// maxListedDevices bounds the devices DeviceList returns.
const maxListedDevices = 1000

// ListedDevice is a device as other servers see it.
type ListedDevice struct {
	DeviceID    string
	DisplayName string // "" when it has none
}

// DeviceList returns a user's devices, by device ID (at most 1000), and a
// stream ID that names this version of the list: it changes whenever a
// device is added, removed or renamed, and is the same for the same list.
// It is derived from the list itself (a 53-bit hash, so that it is a
// valid canonical-JSON integer), since device changes are not counted yet
// and no m.device_list_update EDUs are sent; it is therefore not
// increasing. A user without devices, or without an account, has an empty
// list and stream ID 0.
func (s *Service) DeviceList(ctx context.Context, userID string) ([]ListedDevice, int64, error) {
	rows, err := s.db.Query(ctx, fmt.Sprintf(`SELECT device_id, display_name FROM accounts_devices
		WHERE user_id = $1 ORDER BY device_id LIMIT %d`, maxListedDevices), userID)
	if err != nil {
		return nil, 0, fmt.Errorf("accounts: list devices: %w", err)
	}
	defer rows.Close()
	var out []ListedDevice
	h := sha256.New()
	for rows.Next() {
		var d ListedDevice
		var name sql.NullString
		if err := rows.Scan(&d.DeviceID, &name); err != nil {
			return nil, 0, err
		}
		d.DisplayName = name.String
		out = append(out, d)
		// Length-prefixed, so that no two lists hash the same input.
		for _, f := range []string{d.DeviceID, name.String} {
			_ = binary.Write(h, binary.BigEndian, uint32(len(f)))
			h.Write([]byte(f))
		}
		if name.Valid {
			h.Write([]byte{1})
		} else {
			h.Write([]byte{0})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	if len(out) == 0 {
		return nil, 0, nil
	}
	sum := h.Sum(nil)
	stream := int64(binary.BigEndian.Uint64(sum[:8]) >> 11) // 53 bits
	return out, max(stream, 1), nil
}
