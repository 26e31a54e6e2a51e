package accounts

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/id"
)

// maxDeleteDevices bounds the device list of one POST /delete_devices.
const maxDeleteDevices = 1000

// deviceInfo is a device as the device management API shows it.
type deviceInfo struct {
	DeviceID    string  `json:"device_id"`
	DisplayName *string `json:"display_name,omitempty"`
	LastSeenIP  *string `json:"last_seen_ip,omitempty"`
	LastSeenTS  *int64  `json:"last_seen_ts,omitempty"`
}

const deviceColumns = `device_id, display_name, last_seen_ip, last_seen_ts`

func scanDevice(scan func(...any) error) (deviceInfo, error) {
	var d deviceInfo
	var name, ip sql.NullString
	var ts sql.NullInt64
	if err := scan(&d.DeviceID, &name, &ip, &ts); err != nil {
		return d, err
	}
	if name.Valid {
		d.DisplayName = &name.String
	}
	if ip.Valid {
		d.LastSeenIP = &ip.String
	}
	if ts.Valid {
		d.LastSeenTS = &ts.Int64
	}
	return d, nil
}

// handleListDevices serves GET /devices.
func (s *Service) handleListDevices(w http.ResponseWriter, r *http.Request, d *Device) error {
	rows, err := s.db.Query(r.Context(), `SELECT `+deviceColumns+` FROM accounts_devices
		WHERE user_id = $1 ORDER BY device_id`, string(d.UserID))
	if err != nil {
		return fmt.Errorf("accounts: list devices: %w", err)
	}
	defer rows.Close()
	devices := []deviceInfo{}
	for rows.Next() {
		dev, err := scanDevice(rows.Scan)
		if err != nil {
			return err
		}
		devices = append(devices, dev)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"devices": devices})
}

func errNoDevice() error { return httpx.NotFound("No device with this ID") }

// handleGetDevice serves GET /devices/{deviceId}.
func (s *Service) handleGetDevice(w http.ResponseWriter, r *http.Request, d *Device) error {
	dev, err := scanDevice(s.db.QueryRow(r.Context(), `SELECT `+deviceColumns+` FROM accounts_devices
		WHERE user_id = $1 AND device_id = $2`, string(d.UserID), r.PathValue("deviceId")).Scan)
	if errors.Is(err, store.ErrNoRows) {
		return errNoDevice()
	}
	if err != nil {
		return fmt.Errorf("accounts: get device: %w", err)
	}
	return httpx.WriteJSON(w, http.StatusOK, dev)
}

// handlePutDevice serves PUT /devices/{deviceId}. Only existing devices are
// updated: creating devices is for application services, which this
// package does not authenticate. A new display name is a device-list
// change (Config.OnDeviceListChange); the same name again, or none, is
// not.
func (s *Service) handlePutDevice(w http.ResponseWriter, r *http.Request, d *Device) error {
	var req struct {
		DisplayName *string `json:"display_name"`
	}
	if err := decodeOptionalJSON(r, &req); err != nil {
		return err
	}
	if err := checkDisplayName(req.DisplayName, "display_name"); err != nil {
		return err
	}
	deviceID := r.PathValue("deviceId")
	var changes []DeviceChange
	err := s.db.Tx(r.Context(), func(ctx context.Context, tx *store.Tx) error {
		changes = nil
		var cur sql.NullString
		err := tx.QueryRow(ctx, `SELECT display_name FROM accounts_devices WHERE user_id = $1 AND device_id = $2`,
			string(d.UserID), deviceID).Scan(&cur)
		if errors.Is(err, store.ErrNoRows) {
			return errNoDevice()
		}
		if err != nil {
			return fmt.Errorf("accounts: read device: %w", err)
		}
		if req.DisplayName == nil || (cur.Valid && cur.String == *req.DisplayName) {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE accounts_devices SET display_name = $3 WHERE user_id = $1 AND device_id = $2`,
			string(d.UserID), deviceID, *req.DisplayName); err != nil {
			return fmt.Errorf("accounts: update device: %w", err)
		}
		changes = []DeviceChange{{DeviceID: deviceID, DisplayName: *req.DisplayName}}
		return countDeviceChangesTx(ctx, tx, d.UserID, changes)
	})
	if err != nil {
		return err
	}
	s.deviceListChanged(r.Context(), d.UserID, changes)
	return httpx.WriteJSON(w, http.StatusOK, struct{}{})
}

// handleDeleteDevice serves DELETE /devices/{deviceId}.
func (s *Service) handleDeleteDevice(w http.ResponseWriter, r *http.Request, d *Device) error {
	var req struct {
		Auth json.RawMessage `json:"auth"`
	}
	if err := decodeOptionalJSON(r, &req); err != nil {
		return err
	}
	return s.deleteDevicesUIA(w, r, d, req.Auth, []string{r.PathValue("deviceId")})
}

// handleDeleteDevices serves POST /delete_devices.
func (s *Service) handleDeleteDevices(w http.ResponseWriter, r *http.Request, d *Device) error {
	var req struct {
		Devices *[]string       `json:"devices"`
		Auth    json.RawMessage `json:"auth"`
	}
	if err := httpx.DecodeJSON(r, 0, &req); err != nil {
		return err
	}
	if req.Devices == nil {
		return httpx.MissingParam("'devices' is required")
	}
	if len(*req.Devices) > maxDeleteDevices {
		return httpx.InvalidParam("At most " + strconv.Itoa(maxDeleteDevices) + " devices can be deleted at once")
	}
	return s.deleteDevicesUIA(w, r, d, req.Auth, *req.Devices)
}

// deleteDevicesUIA deletes devices after a password stage. The UIA session
// is bound to the set of device IDs.
func (s *Service) deleteDevicesUIA(w http.ResponseWriter, r *http.Request, d *Device, rawAuth json.RawMessage, ids []string) error {
	if d.IsGuest {
		return httpx.GuestAccessForbidden("Guest accounts cannot delete devices")
	}
	auth, err := parseAuthDict(rawAuth)
	if err != nil {
		return err
	}
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	ureq := uiaRequest{op: opDeleteDevices, userID: d.UserID, bind: bindDigest(opDeleteDevices, ids...), flows: [][]string{{stagePassword}}}
	sid, done, err := s.runUIA(w, r, ureq, auth)
	if err != nil || !done {
		return err
	}
	var deleted []DeviceChange
	err = s.db.Tx(r.Context(), func(ctx context.Context, tx *store.Tx) error {
		deleted = nil
		if _, err := consumeUIATx(ctx, tx, sid, ureq, s.nowMS()); err != nil {
			return err
		}
		var err error
		deleted, err = deleteDevicesTx(ctx, tx, d.UserID, ids, "")
		return err
	})
	if err != nil {
		return err
	}
	s.afterDevicesDeleted(r.Context(), d.UserID, deleted)
	return httpx.WriteJSON(w, http.StatusOK, struct{}{})
}

// deleteDevices deletes devices of a user with their tokens, in one
// transaction: the listed ones, or with ids nil every one but except.
func (s *Service) deleteDevices(ctx context.Context, userID id.UserID, ids []string, except string) error {
	var deleted []DeviceChange
	err := s.db.Tx(ctx, func(ctx context.Context, tx *store.Tx) error {
		var err error
		deleted, err = deleteDevicesTx(ctx, tx, userID, ids, except)
		return err
	})
	if err != nil {
		return err
	}
	s.afterDevicesDeleted(ctx, userID, deleted)
	return nil
}

// afterDevicesDeleted runs after the commit of a deletion: it drops the
// devices' cached tokens, then calls the hooks, OnDevicesDeleted (their
// keys go) before OnDeviceListChange (other servers learn of it).
func (s *Service) afterDevicesDeleted(ctx context.Context, userID id.UserID, deleted []DeviceChange) {
	if len(deleted) == 0 {
		return
	}
	ids := deletedIDs(deleted)
	s.cache.invalidateUser(userID, ids...)
	s.devicesDeleted(ctx, userID, ids)
	s.deviceListChanged(ctx, userID, deleted)
}

// deleteDevicesTx is deleteDevices inside a transaction: it returns a
// deletion for every device that existed, each counted as a change of the
// user's device list (consecutive stream IDs, in device ID order).
func deleteDevicesTx(ctx context.Context, tx *store.Tx, userID id.UserID, ids []string, except string) ([]DeviceChange, error) {
	var deleted []string
	if ids == nil {
		var err error
		if deleted, err = deleteWhereTx(ctx, tx, `user_id = $1 AND device_id <> $2`, string(userID), except); err != nil {
			return nil, err
		}
		return countDeletionsTx(ctx, tx, userID, deleted)
	}
	for chunk := range slices.Chunk(ids, 100) {
		ph := make([]string, len(chunk))
		args := []any{string(userID)}
		for i, d := range chunk {
			ph[i] = "$" + strconv.Itoa(i+2)
			args = append(args, d)
		}
		got, err := deleteWhereTx(ctx, tx, `user_id = $1 AND device_id IN (`+strings.Join(ph, ", ")+`)`, args...)
		if err != nil {
			return nil, err
		}
		deleted = append(deleted, got...)
	}
	return countDeletionsTx(ctx, tx, userID, deleted)
}

func countDeletionsTx(ctx context.Context, tx *store.Tx, userID id.UserID, deleted []string) ([]DeviceChange, error) {
	if len(deleted) == 0 {
		return nil, nil
	}
	slices.Sort(deleted)
	changes := make([]DeviceChange, len(deleted))
	for i, d := range deleted {
		changes[i] = DeviceChange{DeviceID: d, Deleted: true}
	}
	if err := countDeviceChangesTx(ctx, tx, userID, changes); err != nil {
		return nil, err
	}
	return changes, nil
}

func deleteWhereTx(ctx context.Context, tx *store.Tx, cond string, args ...any) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT device_id FROM accounts_devices WHERE `+cond, args...)
	if err != nil {
		return nil, fmt.Errorf("accounts: select devices: %w", err)
	}
	var ids []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, table := range []string{"accounts_access_tokens", "accounts_refresh_tokens", "accounts_devices"} {
		if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE `+cond, args...); err != nil {
			return nil, fmt.Errorf("accounts: delete from %s: %w", table, err)
		}
	}
	return ids, nil
}

// DeviceIDs lists the user's device IDs (for send-to-device's "*").
func (s *Service) DeviceIDs(ctx context.Context, userID string) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT device_id FROM accounts_devices WHERE user_id = $1 ORDER BY device_id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
