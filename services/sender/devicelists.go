package sender

// Device list updates (m.device_list_update; spec server-server "Device
// Management").
//
// DeviceListUpdate queues one m.device_list_update EDU per change of a
// local user's device list (services/accounts counts the changes: each has
// its own stream_id and the stream_id before it as prev_id) for every
// other server sharing a room with the user, computed when queued as for
// presence. The content has user_id, device_id, stream_id, prev_id (one
// element; empty for the user's first change), deleted and, when the
// device has a name, device_display_name. It has no keys: there is no
// end-to-end key store yet, so the EDU only tells the destination that the
// list changed, and which device.
//
// These rows are not coalesced: each has its own key (the user and its
// stream_id), so that every EDU of the chain reaches the destination and
// its prev_id names one that the destination has seen. The same change
// queued again is queued once. A destination keeps at most
// maxDeviceListQueue (1,000) of them queued, of all users together; beyond,
// the oldest are dropped (with a log), never the new ones. The
// destination then sees a prev_id it does not know and resynchronises that
// user's list with /user/devices, which is how the spec means a server to
// recover from a lost update; dropping the new ones instead would leave it
// with a stale list until the user's next change. The queue's order is the
// order of DeviceListUpdate calls in a process (queued_ns); two processes
// announcing one user's changes at once may send them out of order, which
// the destination also notices by prev_id and resolves by resynchronising.
//
// Not done yet: announcing a user's devices to servers that start sharing
// a room with them (the spec's "when that user joins a room which contains
// servers which are not already receiving updates"), and the
// m.signing_key_update EDU.

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/axon-hs/axon/internal/store"
)

// EDUDeviceListUpdate is the EDU type of device list updates.
const EDUDeviceListUpdate = "m.device_list_update"

// keyDeviceList prefixes the edu_key of device list updates:
// keyDeviceList + user ID + "|" + stream_id.
const keyDeviceList = "l|"

const (
	// maxDeviceListQueue bounds the device list updates queued for one
	// destination; the oldest beyond it are dropped.
	maxDeviceListQueue = 1000
	// maxDeviceListRowsPerTx bounds the rows one queueing transaction
	// writes: a user in rooms with many servers is queued in several.
	maxDeviceListRowsPerTx = 1000
)

// DeviceListChange is one change of a local user's device list.
type DeviceListChange struct {
	DeviceID    string
	DisplayName string // the device's name; "" = none (absent from the EDU)
	Deleted     bool
	StreamID    int64 // this change's stream_id
	PrevID      int64 // the stream_id before it; 0 = none (the first change)
}

// DeviceListUpdate queues an m.device_list_update EDU for each change of
// userID's device list, in order, for every other server that shares a
// room with the user (see the comment at the top of devicelists.go for
// the bound per destination).
func (q *Queue) DeviceListUpdate(ctx context.Context, userID string, changes ...DeviceListChange) error {
	return q.deviceListUpdate(ctx, userID, changes, maxDeviceListQueue)
}

// deviceListUpdate is DeviceListUpdate with the bound per destination.
func (q *Queue) deviceListUpdate(ctx context.Context, userID string, changes []DeviceListChange, bound int) error {
	if len(changes) == 0 {
		return nil
	}
	dests, err := q.userServers(ctx, userID)
	if err != nil || len(dests) == 0 {
		return err
	}
	if len(changes) > bound {
		// The older ones would be dropped at once.
		changes = changes[len(changes)-bound:]
	}
	edus := make([]queuedEDU, len(changes))
	stamps := make([]int64, len(changes))
	for i, c := range changes {
		content := map[string]any{"user_id": userID, "device_id": c.DeviceID, "stream_id": c.StreamID,
			"prev_id": []int64{}, "deleted": c.Deleted}
		if c.PrevID > 0 {
			content["prev_id"] = []int64{c.PrevID}
		}
		if c.DisplayName != "" {
			content["device_display_name"] = c.DisplayName
		}
		raw, err := json.Marshal(content)
		if err != nil {
			return err
		}
		edus[i] = queuedEDU{key: keyDeviceList + userID + "|" + strconv.FormatInt(c.StreamID, 10), typ: EDUDeviceListUpdate, content: raw}
		stamps[i] = q.stamp() // one each, so that the chain is sent in order
	}
	per := max(1, maxDeviceListRowsPerTx/len(edus))
	for start := 0; start < len(dests); start += per {
		batch := dests[start:min(start+per, len(dests))]
		dropped, err := q.putDeviceLists(ctx, batch, edus, stamps, bound)
		if err != nil {
			return fmt.Errorf("sender: queue %s: %w", EDUDeviceListUpdate, err)
		}
		if dropped > 0 {
			q.log.Warn("sender: device list updates dropped: the destinations' queues are full; they will resynchronise",
				"user_id", userID, "destinations", len(batch), "dropped", dropped)
		}
		q.poke(batch)
	}
	return nil
}

// putDeviceLists writes the EDUs for each destination of dests in one
// transaction (a change queued already is left as it is), then deletes
// each destination's oldest device list updates beyond bound. It returns
// how many were deleted.
func (q *Queue) putDeviceLists(ctx context.Context, dests []string, edus []queuedEDU, stamps []int64, bound int) (int64, error) {
	var dropped int64
	err := q.db.Tx(ctx, func(ctx context.Context, tx *store.Tx) error {
		dropped = 0
		for _, d := range dests {
			for i, e := range edus {
				tx.Defer(`INSERT INTO sender_edus (destination, edu_key, edu_type, content, queued_ns, expires_ts)
					VALUES ($1, $2, $3, $4, $5, 0) ON CONFLICT (destination, edu_key) DO NOTHING`,
					d, e.key, e.typ, e.content, stamps[i])
			}
		}
		// One statement for the batch: the device list updates of each
		// destination, newest first, and those past the bound go.
		args := []any{keyDeviceList, keyRangeEnd(keyDeviceList), bound}
		ph := make([]string, len(dests))
		for i, d := range dests {
			ph[i] = "$" + strconv.Itoa(len(args)+1)
			args = append(args, d)
		}
		res, err := tx.Exec(ctx, `DELETE FROM sender_edus WHERE (destination, edu_key) IN (
			SELECT destination, edu_key FROM (
				SELECT destination, edu_key, ROW_NUMBER() OVER (PARTITION BY destination ORDER BY queued_ns DESC, edu_key DESC) AS n
				FROM sender_edus WHERE destination IN (`+strings.Join(ph, ", ")+`) AND edu_key >= $1 AND edu_key < $2
			) ranked WHERE n > $3)`, args...)
		if err != nil {
			return err
		}
		dropped, err = res.RowsAffected()
		return err
	})
	return dropped, err
}
