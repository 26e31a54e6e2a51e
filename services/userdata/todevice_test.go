package userdata

import (
	"context"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/testenv"
)

func toDevicePath(typ, txn string) string {
	return v3 + "/sendToDevice/" + url.PathEscape(typ) + "/" + url.PathEscape(txn)
}

func msgs(m map[string]map[string]any) map[string]any {
	return map[string]any{"messages": m}
}

// toDeviceOf syncs a device and returns its messages' contents' "n".
func (h *harness) toDeviceOf(user, device string, from int64) ([]float64, *SyncData) {
	h.t.Helper()
	d := h.sync(SyncQuery{UserID: user, DeviceID: device, From: from})
	var ns []float64
	for _, ev := range decode(h.t, d.ToDevice) {
		c := ev["content"].(map[string]any)
		n, _ := c["n"].(float64)
		ns = append(ns, n)
	}
	return ns, d
}

func TestToDeviceEndpoint(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		cases := []struct {
			name, path string
			body       any
			status     int
			code       string
		}{
			{"ok", toDevicePath("m.test", "t1"), msgs(map[string]map[string]any{bob: {"BDEV": map[string]any{"n": 1}}}), 200, ""},
			{"messages missing", toDevicePath("m.test", "t2"), map[string]any{}, 400, "M_BAD_JSON"},
			{"messages not an object", toDevicePath("m.test", "t3"), map[string]any{"messages": []any{}}, 400, "M_BAD_JSON"},
			{"content not an object", toDevicePath("m.test", "t4"), msgs(map[string]map[string]any{bob: {"BDEV": 5}}), 400, "M_BAD_JSON"},
			{"bad user ID", toDevicePath("m.test", "t5"), msgs(map[string]map[string]any{"bob": {"BDEV": map[string]any{}}}), 400, "M_INVALID_PARAM"},
			{"empty device ID", toDevicePath("m.test", "t6"), msgs(map[string]map[string]any{bob: {"": map[string]any{}}}), 400, "M_BAD_JSON"},
			{"not JSON", toDevicePath("m.test", "t7"), "{", 400, "M_NOT_JSON"},
		}
		for _, c := range cases {
			status, code, body := h.do("PUT", c.path, alice+"|ADEV1", c.body)
			if status != c.status || code != c.code {
				t.Errorf("%s: got %d %s (%s), want %d %s", c.name, status, code, body, c.status, c.code)
			}
		}
	})
}

func TestToDeviceDelivery(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		h.mustDo("PUT", toDevicePath("m.key", "txn1"), alice+"|ADEV1", msgs(map[string]map[string]any{
			bob:                    {"BDEV": map[string]any{"n": 1}, "GONE": map[string]any{"n": 9}},
			alice:                  {"*": map[string]any{"n": 2}, "ADEV2": map[string]any{"n": 3}},
			"@dan:other.example":   {"DDEV": map[string]any{"n": 4}},
			"@nodevs:test.example": {"*": map[string]any{"n": 5}},
		}))
		db, _ := h.world.takeWakes()
		if want := []wakeCall{{[]string{alice, bob}, nil}}; !equalWakes(db, want) {
			t.Fatalf("wakes %v, want %v", db, want)
		}
		for _, c := range []struct {
			user, device string
			want         []float64
		}{
			{bob, "BDEV", []float64{1}},
			{bob, "GONE", nil}, // not a device of bob's
			{alice, "ADEV1", []float64{2}},
			{alice, "ADEV2", []float64{3}}, // the explicit message wins over "*"
			{"@dan:other.example", "DDEV", nil},
		} {
			if got, _ := h.toDeviceOf(c.user, c.device, 0); !slices.Equal(got, c.want) {
				t.Errorf("%s/%s got %v, want %v", c.user, c.device, got, c.want)
			}
		}
		d := h.sync(SyncQuery{UserID: bob, DeviceID: "BDEV"})
		ev := decode(t, d.ToDevice)[0]
		if ev["sender"] != alice || ev["type"] != "m.key" {
			t.Fatalf("event %v", ev)
		}

		// A retransmission sends nothing twice; the same txn ID from
		// another device is another request.
		before := h.pos()
		h.mustDo("PUT", toDevicePath("m.key", "txn1"), alice+"|ADEV1", msgs(map[string]map[string]any{bob: {"BDEV": map[string]any{"n": 6}}}))
		if h.pos() != before {
			t.Fatal("a retransmission took a position")
		}
		h.mustDo("PUT", toDevicePath("m.key", "txn1"), alice+"|ADEV2", msgs(map[string]map[string]any{bob: {"BDEV": map[string]any{"n": 7}}}))
		if got, _ := h.toDeviceOf(bob, "BDEV", 0); !slices.Equal(got, []float64{1, 7}) {
			t.Fatalf("after retransmission: %v", got)
		}

		// Acknowledging removes what the client has; the rest stays.
		ctx := context.Background()
		if err := h.svc.AckToDevice(ctx, bob, "BDEV", before); err != nil {
			t.Fatal(err)
		}
		if got, _ := h.toDeviceOf(bob, "BDEV", before); !slices.Equal(got, []float64{7}) {
			t.Fatalf("after ack: %v", got)
		}
		if err := h.svc.AckToDevice(ctx, bob, "BDEV", h.pos()); err != nil {
			t.Fatal(err)
		}
		if got, _ := h.toDeviceOf(bob, "BDEV", h.pos()); got != nil {
			t.Fatalf("after full ack: %v", got)
		}
		// Deleting a device drops its queue.
		if err := h.svc.DeleteDevice(ctx, alice, "ADEV1"); err != nil {
			t.Fatal(err)
		}
		if got, _ := h.toDeviceOf(alice, "ADEV1", 0); got != nil {
			t.Fatalf("deleted device still has %v", got)
		}

		// Transaction IDs are forgotten after a day.
		h.clock.Advance(25 * time.Hour)
		if err := h.svc.PurgeTxns(ctx); err != nil {
			t.Fatal(err)
		}
		h.mustDo("PUT", toDevicePath("m.key", "txn1"), alice+"|ADEV1", msgs(map[string]map[string]any{bob: {"BDEV": map[string]any{"n": 8}}}))
		if got, _ := h.toDeviceOf(bob, "BDEV", 0); !slices.Equal(got, []float64{8}) {
			t.Fatalf("after purge: %v", got)
		}
	})
}

func TestToDeviceCutOffAndQueueBound(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e, func(c *Config) { c.MaxToDevicePerSync = 3; c.MaxToDeviceQueue = 5 })
		send := func(n int) {
			h.mustDo("PUT", toDevicePath("m.test", "n"+string(rune('a'+n))), alice+"|ADEV1",
				msgs(map[string]map[string]any{bob: {"BDEV": map[string]any{"n": n}}}))
		}
		for n := 1; n <= 6; n++ {
			send(n) // the sixth finds the queue full and is dropped
		}
		to := h.pos()
		got, d := h.toDeviceOf(bob, "BDEV", 0)
		if !slices.Equal(got, []float64{1, 2, 3}) {
			t.Fatalf("first sync %v", got)
		}
		if d.ToDeviceUpTo >= to || d.ToDeviceUpTo <= 0 {
			t.Fatalf("ToDeviceUpTo %d, want the 3rd message's position below %d", d.ToDeviceUpTo, to)
		}
		// The next sync carries ToDeviceUpTo as its since: ack, then the rest.
		if err := h.svc.AckToDevice(context.Background(), bob, "BDEV", d.ToDeviceUpTo); err != nil {
			t.Fatal(err)
		}
		got, d = h.toDeviceOf(bob, "BDEV", d.ToDeviceUpTo)
		if !slices.Equal(got, []float64{4, 5}) || d.ToDeviceUpTo != h.pos() {
			t.Fatalf("second sync %v up to %d (position %d)", got, d.ToDeviceUpTo, h.pos())
		}
		// Exactly MaxToDevicePerSync pending is not a cut.
		if err := h.svc.AckToDevice(context.Background(), bob, "BDEV", d.ToDeviceUpTo); err != nil {
			t.Fatal(err)
		}
		for n := 7; n <= 9; n++ {
			send(n)
		}
		got, d = h.toDeviceOf(bob, "BDEV", 0)
		if !slices.Equal(got, []float64{7, 8, 9}) || d.ToDeviceUpTo != h.pos() {
			t.Fatalf("third sync %v up to %d (position %d)", got, d.ToDeviceUpTo, h.pos())
		}
	})
}
