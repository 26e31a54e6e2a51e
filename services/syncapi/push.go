package syncapi

import (
	"context"
	"sync"
	"time"

	"github.com/axon-hs/axon/matrix/auth"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/roomversion"
	"github.com/axon-hs/axon/services/pushrules"
	"github.com/axon-hs/axon/services/roomserver"
)

// Push decisions as the index stores them (migration 0302).
const (
	pushNotify    = 1
	pushHighlight = 2
)

func pushBits(r pushrules.Result) int64 {
	var b int64
	if r.Notify {
		b |= pushNotify
	}
	if r.Highlight {
		b |= pushHighlight
	}
	return b
}

// probeUser stands for "a user the event does not mention": no user ID
// can equal it.
const probeUser = "@ probe"

// defaultPush computes, at index time, what the server-default push rules
// decide for an event: for users it does not mention (plain) and for users
// it mentions in m.mentions.user_ids (mention). The defaults depend on
// the user only through those mentions and through invites of the user,
// which only concern rooms the user is not joined to.
type defaultPush struct {
	probe *pushrules.Rules
	rooms *roomserver.Reader
	// mentioned caches the default rules compiled for mentioned users
	// (bounded: emptied when full).
	mu        sync.Mutex
	mentioned map[string]*pushrules.Rules
}

const maxCachedDefaultRules = 4096

func newDefaultPush(rooms *roomserver.Reader) *defaultPush {
	return &defaultPush{probe: pushrules.DefaultRules(probeUser), rooms: rooms, mentioned: map[string]*pushrules.Rules{}}
}

func (d *defaultPush) rulesOf(userID string) *pushrules.Rules {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.mentioned[userID]
	if r == nil {
		if len(d.mentioned) >= maxCachedDefaultRules {
			clear(d.mentioned)
		}
		r = pushrules.DefaultRules(userID)
		d.mentioned[userID] = r
	}
	return r
}

// decide evaluates the defaults for pdu, the event at roomSeq of a room of
// version v. Room mentions need the sender's power level, read from the
// state before the event; other events need no query.
func (d *defaultPush) decide(ctx context.Context, v *roomversion.Version, roomSeq int64, pdu cjson.Value, mentioned []string) (plain, mention int64, err error) {
	sender, _ := pdu.Get("sender").Str()
	in := pushrules.Input{Event: pdu}
	if room, ok := pdu.Path("content", "m.mentions", "room").Bool(); ok && room && v != nil {
		roomID, _ := pdu.Get("room_id").Str()
		var p *auth.PowerLevels
		if p, in.PowerLevels, err = powerLevelsAt(ctx, d.rooms, v, roomID, roomSeq-1); err != nil {
			return 0, 0, err
		}
		if p != nil {
			in.SenderPowerLevel = p.User(sender)
		}
	}
	plain = pushBits(d.probe.Evaluate(in))
	mention = plain
	if len(mentioned) > 0 {
		mention = pushBits(d.rulesOf(mentioned[0]).Evaluate(in))
	}
	return plain, mention, nil
}

// powerLevelsAt returns the power levels of the room's state after
// room_seq seq (nil when the state has neither a create nor a power levels
// event, or they do not make sense together: then nobody has a level
// above the defaults) and the power levels event's content. Only reading
// the state can fail: one odd room must not stop the indexer.
func powerLevelsAt(ctx context.Context, rooms *roomserver.Reader, v *roomversion.Version, roomID string, seq int64) (*auth.PowerLevels, cjson.Value, error) {
	state, err := rooms.StateAt(ctx, v, roomID, seq, "m.room.create", "m.room.power_levels")
	if err != nil {
		return nil, cjson.Value{}, err
	}
	var create, pl *event.Event
	for _, ev := range state {
		switch ev.Type() {
		case "m.room.create":
			create = ev.Event
		case "m.room.power_levels":
			pl = ev.Event
		}
	}
	if create == nil && pl == nil {
		return nil, cjson.Value{}, nil
	}
	p, perr := auth.NewPowerLevels(create, pl)
	var content cjson.Value
	switch {
	case perr != nil:
		// Content the room version refuses (it cannot have been
		// accepted): nobody has a level above the defaults.
		p = nil
	case pl != nil:
		content = pl.Content()
	}
	return p, content, nil
}

// rulesCache keeps each syncing user's compiled push rules for a few
// seconds: a sync should not load them from the database every time, and
// a change reaches the counts of events counted after it within
// rulesTTL.
type rulesCache struct {
	load func(ctx context.Context, userID string) (*pushrules.Rules, error)
	now  func() time.Time
	mu   sync.Mutex
	m    map[string]cachedRules
}

type cachedRules struct {
	rules *pushrules.Rules
	at    time.Time
}

const (
	rulesTTL           = 5 * time.Second
	maxCachedRulesSets = 100_000
)

func (c *rulesCache) get(ctx context.Context, userID string) (*pushrules.Rules, error) {
	if c.load == nil {
		return pushrules.DefaultRules(userID), nil
	}
	now := c.now()
	c.mu.Lock()
	e, ok := c.m[userID]
	c.mu.Unlock()
	if ok && now.Sub(e.at) < rulesTTL {
		return e.rules, nil
	}
	r, err := c.load(ctx, userID)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedRulesSets {
		c.m = make(map[string]cachedRules)
	}
	c.m[userID] = cachedRules{rules: r, at: now}
	c.mu.Unlock()
	return r, nil
}
