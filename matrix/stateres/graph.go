package stateres

import (
	"fmt"
	"slices"
	"strings"

	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// graph is the auth DAG of every event a resolution touches, with events
// numbered 0..n-1 so that the passes over it work on slices instead of
// maps. The auth_events of node i are auth[authOff[i]:authOff[i+1]]
// (deduplicated; unknown ones left out and reported). A graph may be kept
// between resolutions (see Resolver): events and their auth_events never
// change, so loaded nodes stay valid; only the fields marked "per call" are
// reset.
type graph struct {
	v       *roomversion.Version
	idx     map[string]int32
	evs     []*event.Event
	authOff []int32 // len(authOff)-1 nodes are expanded
	auth    []int32
	order   []int32 // the expanded nodes, each after its auth events

	src      Source            // per call
	rejected []uint8           // per call: 0 not asked yet, 1 accepted, 2 rejected
	create   int32             // per call, v12: the room's create event, or -1
	missing  map[string]string // per call: unknown ID → smallest referencing ID
}

func newGraph(v *roomversion.Version, sizeHint int) *graph {
	return &graph{
		v:       v,
		idx:     make(map[string]int32, sizeHint),
		evs:     make([]*event.Event, 0, sizeHint),
		authOff: append(make([]int32, 0, sizeHint+1), 0),
		auth:    make([]int32, 0, 4*sizeHint),
		order:   make([]int32, 0, sizeHint),
		create:  -1,
	}
}

// begin prepares the graph for a resolution reading src; the returned
// checkpoint lets rollback forget what the resolution loads.
func (g *graph) begin(src Source) checkpoint {
	g.src, g.rejected, g.create, g.missing = src, nil, -1, nil
	return checkpoint{nodes: len(g.evs), order: len(g.order)}
}

type checkpoint struct{ nodes, order int }

// rollback forgets the nodes loaded since cp, after an error left some of
// them incomplete (an unknown auth event) or inconsistent (a cycle).
func (g *graph) rollback(cp checkpoint) {
	for _, ev := range g.evs[cp.nodes:] {
		delete(g.idx, ev.ID())
	}
	clear(g.evs[cp.nodes:])
	g.evs = g.evs[:cp.nodes]
	g.auth = g.auth[:g.authOff[cp.nodes]]
	g.authOff = g.authOff[:cp.nodes+1]
	g.order = g.order[:cp.order]
	g.src, g.rejected = nil, nil
}

// add returns the node of id, loading the event if needed (-1 if unknown).
func (g *graph) add(id, referencedBy string) int32 {
	if n, ok := g.idx[id]; ok {
		return n
	}
	ev := g.src.Event(id)
	if ev == nil || ev.ID() != id {
		if g.missing == nil {
			g.missing = map[string]string{}
		}
		if prev, ok := g.missing[id]; !ok || referencedBy < prev {
			g.missing[id] = referencedBy
		}
		return -1
	}
	n := int32(len(g.evs))
	g.idx[id] = n
	g.evs = append(g.evs, ev)
	return n
}

// expand loads the auth events of every node not yet expanded, and theirs,
// building the adjacency lists in node order.
func (g *graph) expand() {
	for i := len(g.authOff) - 1; i < len(g.evs); i++ {
		start := len(g.auth)
		ev := g.evs[i]
		for _, a := range ev.AuthEvents() {
			n := g.add(a, ev.ID())
			if n >= 0 && !slices.Contains(g.auth[start:], n) {
				g.auth = append(g.auth, n)
			}
		}
		g.authOff = append(g.authOff, int32(len(g.auth)))
	}
}

// err reports the first (by event ID) unknown event, if any.
func (g *graph) err() error {
	if len(g.missing) == 0 {
		return nil
	}
	var first string
	for id := range g.missing {
		if first == "" || id < first {
			first = id
		}
	}
	return &MissingEventError{EventID: first, ReferencedBy: g.missing[first]}
}

func (g *graph) authOf(n int32) []int32 { return g.auth[g.authOff[n]:g.authOff[n+1]] }

func (g *graph) isRejected(n int32) bool {
	if g.rejected == nil {
		g.rejected = make([]uint8, len(g.evs))
	}
	if g.rejected[n] == 0 {
		g.rejected[n] = 1
		if g.src.Rejected(g.evs[n].ID()) {
			g.rejected[n] = 2
		}
	}
	return g.rejected[n] == 2
}

// authEvent returns the auth event of n with the given type and state key.
func (g *graph) authEvent(n int32, typ, stateKey string) int32 {
	for _, a := range g.authOf(n) {
		if g.evs[a].StateKeyIs(typ, stateKey) {
			return a
		}
	}
	return -1
}

// createOf returns the create event that governs n: in room version 12 the
// one its room ID is derived from, before that the one in its auth events.
func (g *graph) createOf(n int32) int32 {
	if g.v.RoomIDFromCreate {
		return g.create
	}
	return g.authEvent(n, "m.room.create", "")
}

// frame is a step of the depth-first walk: a node and its next auth edge.
type frame struct{ node, next int32 }

// extendOrder appends to g.order the nodes from cp on (all expanded), each
// after its auth events, with an iterative depth-first post-order walk; or
// returns an ErrAuthCycle error. Older nodes never cite newer ones, so the
// walk only visits the new nodes.
func (g *graph) extendOrder(cp checkpoint) error {
	from := int32(cp.nodes)
	color := make([]uint8, int32(len(g.evs))-from) // 0 unvisited, 1 on the stack, 2 done
	var stack []frame
	for r := from; r < int32(len(g.evs)); r++ {
		if color[r-from] != 0 {
			continue
		}
		color[r-from] = 1
		stack = append(stack[:0], frame{r, g.authOff[r]})
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.next < g.authOff[top.node+1] {
				a := g.auth[top.next]
				top.next++
				if a < from {
					continue
				}
				switch color[a-from] {
				case 0:
					color[a-from] = 1
					stack = append(stack, frame{a, g.authOff[a]})
				case 1:
					return g.cycleError(stack, a)
				}
				continue
			}
			color[top.node-from] = 2
			g.order = append(g.order, top.node)
			stack = stack[:len(stack)-1]
		}
	}
	return nil
}

// cycleError names the cycle found on the walk stack, starting from its
// smallest event ID so that the message does not depend on the walk order.
func (g *graph) cycleError(stack []frame, back int32) error {
	var cycle []string
	on := false
	for _, f := range stack {
		if f.node == back {
			on = true
		}
		if on {
			cycle = append(cycle, g.evs[f.node].ID())
		}
	}
	m := 0
	for i, id := range cycle {
		if id < cycle[m] {
			m = i
		}
	}
	cycle = append(cycle[m:], cycle[:m]...)
	return fmt.Errorf("%w: %s", ErrAuthCycle, strings.Join(append(cycle, cycle[0]), " → "))
}

// markAuthChain marks with stamp every node in the auth chain of the seeds
// (their auth events, theirs, and so on; not the seeds themselves unless
// reachable from another seed), skipping nodes for which stop is true, and
// calls visit on each newly marked node. stack is scratch space.
func (g *graph) markAuthChain(seeds []int32, mark []int32, stamp int32, stop []bool, stack []int32, visit func(int32)) []int32 {
	stack = stack[:0]
	push := func(n int32) {
		for _, a := range g.authOf(n) {
			if mark[a] != stamp && (stop == nil || !stop[a]) {
				mark[a] = stamp
				stack = append(stack, a)
			}
		}
	}
	for _, s := range seeds {
		push(s)
	}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if visit != nil {
			visit(n)
		}
		push(n)
	}
	return stack
}

// AuthChain returns the auth chain of the events: every event reachable by
// following auth_events links from them, excluding the events themselves
// unless one is in the auth chain of another. The result is sorted by ID.
func AuthChain(src Source, eventIDs []string) ([]string, error) {
	g := newGraph(nil, len(eventIDs)*4)
	g.begin(src)
	var seeds []int32
	for _, id := range eventIDs {
		if n := g.add(id, ""); n >= 0 {
			seeds = append(seeds, n)
		}
	}
	g.expand()
	if err := g.err(); err != nil {
		return nil, err
	}
	mark := make([]int32, len(g.evs))
	var out []string
	g.markAuthChain(seeds, mark, 1, nil, nil, func(n int32) { out = append(out, g.evs[n].ID()) })
	slices.Sort(out)
	return out, nil
}
