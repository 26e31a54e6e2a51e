package roomserver

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"time"

	"github.com/axon-hs/axon/matrix/auth"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// maxPrevEvents bounds prev_events of a built event (the PDU format allows 20).
const maxPrevEvents = 10

// builder completes templates into signed events of this server.
type builder struct {
	origin string
	key    *keys.SigningKey
	now    func() time.Time
	rand   io.Reader
}

// Refs returns the prev_events or auth_events value for the room version:
// IDs from v3, [id, {"sha256": hash}] pairs before.
func Refs(v *roomversion.Version, evs []*event.Event) cjson.Value {
	out := make([]cjson.Value, len(evs))
	for i, e := range evs {
		if v.HashEventIDs() {
			out[i] = cjson.StringValue(e.ID())
			continue
		}
		h := event.ReferenceHash(v, e.JSON())
		out[i] = cjson.ArrayValue(cjson.StringValue(e.ID()), cjson.ObjectValue(
			cjson.Member{Key: "sha256", Value: cjson.StringValue(keys.Base64(h[:]))}))
	}
	return cjson.ArrayValue(out...)
}

// buildError is a template that cannot become an event: a client error.
type buildError struct {
	code string
	msg  string
}

func (e *buildError) Error() string { return e.msg }

// build completes t against r's current state. content is t.Content parsed
// under the room version's rules.
func (b *builder) build(r *room, t *Template, content cjson.Value, prev []*event.Event) (*event.Event, error) {
	v := r.version
	sk := ""
	if t.StateKey != nil {
		sk = *t.StateKey
	}
	var authEvs []*event.Event
	for _, k := range auth.SelectionFor(v, t.Type, t.Sender, sk, t.StateKey != nil, content) {
		if ev := r.state[k]; ev != nil {
			authEvs = append(authEvs, ev)
		}
	}
	if len(prev) > maxPrevEvents {
		prev = prev[:maxPrevEvents]
	}
	depth := r.extremDepth + 1
	if t.Redacts != "" && v.RedactsInContent {
		content = content.With("redacts", cjson.StringValue(t.Redacts))
	}
	p := cjson.ObjectValue(
		cjson.Member{Key: "type", Value: cjson.StringValue(t.Type)},
		cjson.Member{Key: "room_id", Value: cjson.StringValue(r.id)},
		cjson.Member{Key: "sender", Value: cjson.StringValue(t.Sender)},
		cjson.Member{Key: "content", Value: content},
		cjson.Member{Key: "origin_server_ts", Value: cjson.IntValue(b.now().UnixMilli())},
		cjson.Member{Key: "depth", Value: cjson.IntValue(depth)},
		cjson.Member{Key: "prev_events", Value: Refs(v, prev)},
		cjson.Member{Key: "auth_events", Value: Refs(v, authEvs)},
	)
	if t.StateKey != nil {
		p = p.With("state_key", cjson.StringValue(*t.StateKey))
	}
	if t.Redacts != "" && !v.RedactsInContent {
		p = p.With("redacts", cjson.StringValue(t.Redacts))
	}
	if !v.HashEventIDs() {
		var rnd [12]byte
		if _, err := io.ReadFull(b.rand, rnd[:]); err != nil {
			return nil, fmt.Errorf("roomserver: event ID: %w", err)
		}
		p = p.With("event_id", cjson.StringValue("$"+base64.RawURLEncoding.EncodeToString(rnd[:])+":"+b.origin))
	}
	ev, err := event.Build(v, p, b.origin, b.key)
	if err != nil {
		if signed, serr := event.HashAndSign(v, p, b.origin, b.key); serr == nil && signed.CanonicalLen() > event.MaxEventSize {
			return nil, &buildError{code: "M_TOO_LARGE", msg: fmt.Sprintf("the event would be %d bytes, over the %d byte limit", signed.CanonicalLen(), event.MaxEventSize)}
		}
		return nil, &buildError{code: "M_BAD_JSON", msg: "the event is not valid: " + err.Error()}
	}
	return ev, nil
}

func defaultRand(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}
