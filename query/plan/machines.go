package plan

import "slices"

// Machine events. The collector gives every newsletter open or click made
// by a machine (a mail privacy proxy prefetching images, a link scanner, a
// HEAD or prefetch request) the property MachineProp, naming the detector.
// Machines are never people: every statement leaves their events out, so
// they count in no visitor, visit, pageview or event figure, unless the
// query itself names the property (groups or filters by MachineDim). Then
// its machine events are read like any other, which is how the dashboard's
// Newsletters panel counts machine opens and clicks apart.
//
// The rollup tables are built without machine events, so a query that
// names MachineDim always reads the raw events (Decide).
const (
	MachineProp = "machine"
	MachineDim  = Props + MachineProp
)

// MachineEvents is the condition on events columns that picks machine
// events, HumanEvents the one that leaves them out. (Write MachineEvents,
// never NOT HumanEvents: 18.16 folds the double negation on the shards of
// a Distributed table and then misses the column it named.)
const (
	MachineEvents = "has(props_keys, '" + MachineProp + "')"
	HumanEvents   = "NOT " + MachineEvents
)

// WantsMachines reports whether a query with these dimensions and filters
// reads machine events: only when it names MachineDim.
func WantsMachines(dims []string, filters []Filter) bool {
	return slices.Contains(dims, MachineDim) || Mentions(filters, MachineDim)
}
