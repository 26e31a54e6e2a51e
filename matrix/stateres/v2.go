package stateres

import (
	"cmp"
	"math"
	"slices"
	"strings"

	"github.com/axon-hs/axon/matrix/auth"
	"github.com/axon-hs/axon/matrix/event"
)

// Flags of a node during a v2 resolution.
const (
	fConflicted uint8 = 1 << iota // in the conflicted state set
	fFull                         // in the full conflicted set
	fFromConf                     // reachable from a conflicted event (≥1 auth edge)
	fToConf                       // reaches a conflicted event (≥0 auth edges)
	fPowerAnc                     // in the auth chain of a power event of the full conflicted set
	fX                            // picked in step 1
)

var (
	keyCreate = auth.StateKey{Type: "m.room.create"}
	keyPL     = auth.StateKey{Type: "m.room.power_levels"}
)

// loadStates loads every event the states name, and their auth chains,
// into g and checks that each event belongs under its key. For room
// version 12 it also finds the room's create event, which auth_events
// never name.
func loadStates(g *graph, cp checkpoint, states []StateMap, conflicted map[auth.StateKey]struct{}) error {
	val := validator{v: g.v}
	seed := func(k auth.StateKey, id string) {
		if n := g.add(id, ""); n >= 0 {
			val.check(k, g.evs[n])
		}
	}
	// The other states hold the same entries as states[0] except under
	// conflicted keys.
	for k, id := range states[0] {
		seed(k, id)
	}
	for k := range conflicted {
		for _, s := range states[1:] {
			if id, ok := s[k]; ok {
				seed(k, id)
			}
		}
	}
	if g.v.RoomIDFromCreate && val.roomID != "" && val.otherRoomID == "" {
		g.create = g.add("$"+strings.TrimPrefix(val.roomID, "!"), "")
	}
	g.expand()
	if err := g.err(); err != nil {
		return err
	}
	if err := g.extendOrder(cp); err != nil {
		return err
	}
	return val.err()
}

// fullConflicted flags the conflicted state set (fConflicted) and the full
// conflicted set (fFull: the conflicted set, the auth difference and, with
// v21, the conflicted state subgraph) of the states loaded into g. mark is
// returned as scratch space for the caller.
func fullConflicted(g *graph, states []StateMap, conflicted map[auth.StateKey]struct{}, v21 bool) (flags []uint8, mark []int32) {
	order := g.order
	n := len(g.evs)
	flags = make([]uint8, n)

	// The conflicted state set, and the conflicted events of each state.
	perState := make([][]int32, len(states))
	for k := range conflicted {
		for i, s := range states {
			if id, ok := s[k]; ok {
				x := g.idx[id]
				flags[x] |= fConflicted | fFull
				perState[i] = append(perState[i], x)
			}
		}
	}

	// The auth difference. A state's full auth chain is taken to include the
	// state's own events, as the reference implementation computes it (the
	// spec's wording, "the union of the auth chains for each event", would
	// leave them out; the two differ when an unconflicted event is cited by
	// the events of only some states, and a server that differed from the
	// rest of the federation here would resolve a different state). Every
	// state holds the unconflicted events, so they and their auth chain
	// (common) are in every full auth chain; common is closed under
	// auth_events, so the chains of the conflicted events of each state can
	// stop at it. What the conflicted events of some but not all states
	// reach is the auth difference.
	mark = make([]int32, n)
	common := make([]bool, n)
	var seeds []int32
	for k, id := range states[0] {
		if _, c := conflicted[k]; !c {
			seeds = append(seeds, g.idx[id])
		}
	}
	stack := g.markAuthChain(seeds, mark, 1, nil, nil, func(x int32) { common[x] = true })
	for _, x := range seeds {
		common[x] = true
	}
	count := make([]int32, n)
	for i := range states {
		stack = g.markAuthChain(perState[i], mark, int32(i+2), common, stack, func(x int32) { count[x]++ })
	}
	for x, c := range count {
		if c > 0 && int(c) < len(states) {
			flags[x] |= fFull
		}
	}

	// v2.1: the conflicted state subgraph, the events on auth paths between
	// two conflicted events: reachable from one and reaching another.
	if v21 {
		for i := len(order) - 1; i >= 0; i-- {
			x := order[i]
			if flags[x]&(fConflicted|fFromConf) != 0 {
				for _, a := range g.authOf(x) {
					flags[a] |= fFromConf
				}
			}
		}
		for _, x := range order {
			if flags[x]&fConflicted != 0 {
				flags[x] |= fToConf
				continue
			}
			for _, a := range g.authOf(x) {
				if flags[a]&fToConf != 0 {
					flags[x] |= fToConf
					break
				}
			}
			if flags[x]&(fFromConf|fToConf) == fFromConf|fToConf {
				flags[x] |= fFull
			}
		}
	}

	return flags, mark
}

// resolveV2 is state resolution v2 (room versions 2–11) and, with v21,
// v2.1 (room version 12), over the graph g (possibly holding events of
// earlier resolutions).
func resolveV2(g *graph, states []StateMap, conflicted map[auth.StateKey]struct{}, src Source, v21 bool) (StateMap, error) {
	cp := g.begin(src)
	if err := loadStates(g, cp, states, conflicted); err != nil {
		g.rollback(cp)
		return nil, err
	}
	defer func() { g.src, g.rejected = nil, nil }()
	order := g.order
	flags, mark := fullConflicted(g, states, conflicted, v21)

	// Step 1: the power events of the full conflicted set and the events of
	// their auth chains that are in the full conflicted set. Dependents come
	// before their auth events in reversed topological order, so one pass
	// pushes "in the auth chain of such a power event" down the graph.
	var xs, rest []int32
	for i := len(order) - 1; i >= 0; i-- {
		x := order[i]
		f := flags[x]
		full := f&fFull != 0
		// The walk from a power event follows auth edges only within the
		// full conflicted set, as the reference implementation builds
		// its graph: an event outside the set interrupts the chain.
		if full && (IsPowerEvent(g.evs[x]) || f&fPowerAnc != 0) {
			for _, a := range g.authOf(x) {
				flags[a] |= fPowerAnc
			}
			flags[x] |= fX
			xs = append(xs, x)
			continue
		}
		if full {
			rest = append(rest, x)
		}
	}
	r := &resolver{g: g, conflicted: conflicted, layer: make(map[auth.StateKey]int32, len(conflicted)+len(xs))}
	xs = r.powerSort(xs, flags, mark)

	// Step 2: iterative auth checks from the unconflicted state map (v2) or
	// from an empty one (v2.1).
	if !v21 {
		r.base = states[0]
	}
	r.apply(xs)

	// Steps 3 and 4: the other events in mainline order based on the power
	// levels of the partially resolved state, applied on top of it.
	r.apply(r.mainlineSort(rest))

	// Step 5: the unconflicted state map wins over whatever was replayed.
	out := cloneState(states[0])
	for k := range conflicted {
		delete(out, k)
	}
	for k, x := range r.layer {
		if _, c := conflicted[k]; c {
			out[k] = g.evs[x].ID()
		}
	}
	return out, nil
}

// resolver holds the partially resolved state of a v2 resolution: layer
// over base (the states[0] values of unconflicted keys, in v2 only). It is
// also the auth.State handed to auth.Check for the event cur, falling back
// to cur's own unrejected auth events for keys the state lacks.
type resolver struct {
	g          *graph
	base       StateMap
	conflicted map[auth.StateKey]struct{}
	layer      map[auth.StateKey]int32
	cur        int32
	powers     map[[2]int32]*auth.PowerLevels
}

func (r *resolver) lookup(k auth.StateKey) int32 {
	if x, ok := r.layer[k]; ok {
		return x
	}
	if r.base != nil {
		if _, c := r.conflicted[k]; !c {
			if id, ok := r.base[k]; ok {
				return r.g.idx[id]
			}
		}
	}
	return -1
}

// Get implements auth.State.
func (r *resolver) Get(eventType, stateKey string) *event.Event {
	g := r.g
	if x := r.lookup(auth.StateKey{Type: eventType, StateKey: stateKey}); x >= 0 && !g.isRejected(x) {
		return g.evs[x]
	}
	for _, a := range g.authOf(r.cur) {
		if g.evs[a].StateKeyIs(eventType, stateKey) && !g.isRejected(a) {
			return g.evs[a]
		}
	}
	if g.v.RoomIDFromCreate && g.create >= 0 && eventType == keyCreate.Type && stateKey == "" {
		return g.evs[g.create]
	}
	return nil
}

// apply runs the iterative auth checks over the list.
func (r *resolver) apply(list []int32) {
	for _, x := range list {
		ev := r.g.evs[x]
		sk, ok := ev.StateKey()
		if !ok || r.g.isRejected(x) {
			// A rejected event never re-enters the state, as in the
			// reference implementation: otherwise a state map from a faulty
			// or hostile server could bring back an event we rejected.
			continue
		}
		r.cur = x
		if auth.Check(ev, r) == nil {
			r.layer[auth.StateKey{Type: ev.Type(), StateKey: sk}] = x
		}
	}
}

// authState is the state made of an event's auth events (and, in room
// version 12, the room's create event).
type authState struct {
	g *graph
	n int32
}

func (s authState) Get(eventType, stateKey string) *event.Event {
	if a := s.g.authEvent(s.n, eventType, stateKey); a >= 0 {
		return s.g.evs[a]
	}
	if s.g.v.RoomIDFromCreate && s.g.create >= 0 && eventType == keyCreate.Type && stateKey == "" {
		return s.g.evs[s.g.create]
	}
	return nil
}

// senderPower is the power level of x's sender according to x's auth
// events. Parsed power levels are shared between events citing the same
// power levels event.
func (r *resolver) senderPower(x int32) int64 {
	g := r.g
	key := [2]int32{g.authEvent(x, keyPL.Type, ""), g.createOf(x)}
	p, ok := r.powers[key]
	if !ok {
		var pl, create *event.Event
		if key[0] >= 0 {
			pl = g.evs[key[0]]
		}
		if key[1] >= 0 {
			create = g.evs[key[1]]
		}
		var err error
		if p, err = auth.NewPowerLevels(create, pl); err != nil {
			p = nil
		}
		if r.powers == nil {
			r.powers = map[[2]int32]*auth.PowerLevels{}
		}
		r.powers[key] = p
	}
	if p == nil {
		return auth.SenderPowerLevel(g.evs[x], authState{g, x})
	}
	return p.User(g.evs[x].Sender())
}

// powerSort orders xs by the reverse topological power ordering: Kahn's
// algorithm on the auth edges between events of xs (flag fX), taking at
// each step the candidate of greatest sender power, then smallest
// origin_server_ts, then smallest event ID. local is scratch of one int32
// per node.
func (r *resolver) powerSort(xs []int32, flags []uint8, local []int32) []int32 {
	g := r.g
	m := len(xs)
	if m == 0 {
		return xs
	}
	for i, x := range xs {
		local[x] = int32(i)
	}
	indeg := make([]int32, m)
	depOff := make([]int32, m+1)
	for i, x := range xs {
		for _, a := range g.authOf(x) {
			if flags[a]&fX != 0 {
				indeg[i]++
				depOff[local[a]+1]++
			}
		}
	}
	for i := range m {
		depOff[i+1] += depOff[i]
	}
	deps := make([]int32, depOff[m])
	fill := slices.Clone(depOff[:m])
	for i, x := range xs {
		for _, a := range g.authOf(x) {
			if flags[a]&fX != 0 {
				la := local[a]
				deps[fill[la]] = int32(i)
				fill[la]++
			}
		}
	}
	h := powerHeap{power: make([]int64, m), evs: make([]*event.Event, m)}
	for i, x := range xs {
		h.power[i] = r.senderPower(x)
		h.evs[i] = g.evs[x]
		if indeg[i] == 0 {
			h.push(int32(i))
		}
	}
	out := make([]int32, 0, m)
	for len(h.items) > 0 {
		i := h.pop()
		out = append(out, xs[i])
		for _, d := range deps[depOff[i]:depOff[i+1]] {
			if indeg[d]--; indeg[d] == 0 {
				h.push(d)
			}
		}
	}
	return out
}

// powerHeap is a binary min-heap of local indices under the power order.
type powerHeap struct {
	items []int32
	power []int64
	evs   []*event.Event
}

func (h *powerHeap) less(a, b int32) bool {
	if h.power[a] != h.power[b] {
		return h.power[a] > h.power[b]
	}
	ea, eb := h.evs[a], h.evs[b]
	if ta, tb := ea.OriginServerTS(), eb.OriginServerTS(); ta != tb {
		return ta < tb
	}
	return ea.ID() < eb.ID()
}

func (h *powerHeap) push(x int32) {
	h.items = append(h.items, x)
	i := len(h.items) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(h.items[i], h.items[p]) {
			break
		}
		h.items[i], h.items[p] = h.items[p], h.items[i]
		i = p
	}
}

func (h *powerHeap) pop() int32 {
	top := h.items[0]
	last := len(h.items) - 1
	h.items[0] = h.items[last]
	h.items = h.items[:last]
	for i := 0; ; {
		l, s := 2*i+1, i
		if l < last && h.less(h.items[l], h.items[s]) {
			s = l
		}
		if l+1 < last && h.less(h.items[l+1], h.items[s]) {
			s = l + 1
		}
		if s == i {
			break
		}
		h.items[i], h.items[s] = h.items[s], h.items[i]
		i = s
	}
	return top
}

// mainlineSort orders the events by the mainline ordering based on the
// power levels event of the partially resolved state: greater mainline
// position first, then smaller origin_server_ts, then smaller event ID.
func (r *resolver) mainlineSort(list []int32) []int32 {
	g := r.g
	const infinity = math.MaxInt32
	mainline := map[int32]int32{}
	for i, p := int32(0), r.lookup(keyPL); p >= 0; i, p = i+1, g.authEvent(p, keyPL.Type, "") {
		mainline[p] = i
	}
	// depth[p] is the mainline position of any event whose power levels
	// auth event is p.
	depth := map[int32]int32{}
	var chain []int32
	position := func(x int32) int32 {
		chain = chain[:0]
		pos := int32(infinity)
		for p := g.authEvent(x, keyPL.Type, ""); p >= 0; p = g.authEvent(p, keyPL.Type, "") {
			if i, ok := mainline[p]; ok {
				pos = i
				break
			}
			if d, ok := depth[p]; ok {
				pos = d
				break
			}
			chain = append(chain, p)
		}
		for _, p := range chain {
			depth[p] = pos
		}
		return pos
	}
	type item struct {
		x   int32
		pos int32
		ev  *event.Event
	}
	items := make([]item, len(list))
	for i, x := range list {
		items[i] = item{x, position(x), g.evs[x]}
	}
	slices.SortFunc(items, func(a, b item) int {
		if c := cmp.Compare(b.pos, a.pos); c != 0 {
			return c
		}
		if c := cmp.Compare(a.ev.OriginServerTS(), b.ev.OriginServerTS()); c != 0 {
			return c
		}
		return strings.Compare(a.ev.ID(), b.ev.ID())
	})
	out := list[:0]
	for _, it := range items {
		out = append(out, it.x)
	}
	return out
}
