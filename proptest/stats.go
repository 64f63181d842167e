package proptest

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"luomodel/kernel/fault"
	"luomodel/model"
)

// Stats counts what a campaign covered. It is safe for concurrent use: a
// progress printer reads it while checks run. It uses sync.Mutex because
// no kernel task ever waits on it.
type Stats struct {
	mu         sync.Mutex
	checks     int                       // guarded by mu
	steps      int                       // guarded by mu
	kexecs     int                       // guarded by mu
	outcomes   map[string]map[string]int // guarded by mu; op label -> errno -> count
	invariants map[string]int            // guarded by mu; invariant -> times checked
	actions    map[string]int            // guarded by mu; action -> times run
	// faulted counts the operations run with a fault armed, apart from
	// the coverage matrix: site -> op label -> errno -> count.
	faulted map[string]map[string]map[string]int // guarded by mu
	// sites sums the port's fault-site counters over the checks, in
	// kernel/fault's site order.
	sites    []fault.SiteStats // guarded by mu
	failedAt time.Time         // guarded by mu; when a check first failed
	// callCells counts the test module's callback x outcome cells
	// (stats_calls.go).
	callCells map[string]int // guarded by mu
}

// NewStats returns empty counters.
func NewStats() *Stats {
	return &Stats{
		outcomes:   map[string]map[string]int{},
		invariants: map[string]int{},
		actions:    map[string]int{},
		faulted:    map[string]map[string]map[string]int{},
	}
}

// OpLabel names an operation for the coverage matrix.
func OpLabel(op model.Op) string {
	if op.Kind != model.OpIoctl {
		return op.Kind.String()
	}
	if n := model.IoctlName(op.Cmd); n != "" {
		return strings.TrimPrefix(strings.TrimPrefix(n, "LIVEUPDATE_IOCTL_"), "LIVEUPDATE_")
	}
	return "IOCTL_OTHER"
}

func (s *Stats) op(op model.Op, e syscall.Errno) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.steps++
	if op.Kind == model.OpKexec && e == 0 {
		s.kexecs++
	}
	l := OpLabel(op)
	if s.outcomes[l] == nil {
		s.outcomes[l] = map[string]int{}
	}
	s.outcomes[l][model.ErrnoName(e)]++
}

// faultOp counts an operation run with site armed: a step, but not a
// cell of the coverage matrix (its outcome may be the fault's).
func (s *Stats) faultOp(site string, op model.Op, e syscall.Errno) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.steps++
	if op.Kind == model.OpKexec && e == 0 {
		s.kexecs++
	}
	l := OpLabel(op)
	if s.faulted[site] == nil {
		s.faulted[site] = map[string]map[string]int{}
	}
	if s.faulted[site][l] == nil {
		s.faulted[site][l] = map[string]int{}
	}
	s.faulted[site][l][model.ErrnoName(e)]++
}

// faultSites adds one check's fault-site counters.
func (s *Stats) faultSites(st []fault.SiteStats) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range st {
		i := slices.IndexFunc(s.sites, func(y fault.SiteStats) bool { return y.Site == x.Site })
		if i < 0 {
			s.sites = append(s.sites, fault.SiteStats{Site: x.Site, Name: x.Name})
			i = len(s.sites) - 1
		}
		s.sites[i].Hits += x.Hits
		s.sites[i].Fires += x.Fires
	}
}

// FaultSites returns the fault-site counters summed over the checks so
// far: Hits is how often a site was reached while armed, Fires how often
// it failed its call.
func (s *Stats) FaultSites() []fault.SiteStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sites)
}

// writeFaultsLocked prints the fault sites: how many operations ran with
// each armed, how many calls reached it while armed, how many it failed,
// and the outcome of every operation run with it armed, whether the site
// fired or the operation never reached it.
func (s *Stats) writeFaultsLocked(w io.Writer) {
	armed := map[string]int{}
	for site, ops := range s.faulted {
		for _, es := range ops {
			for _, n := range es {
				armed[site] += n
			}
		}
	}
	fmt.Fprintf(w, "%-22s %9s %9s %9s  %s\n", "fault site", "armed", "reached", "fired", "armed operation -> outcome (fired or not)")
	for _, st := range s.sites {
		var outs []string
		for op, es := range s.faulted[st.Name] {
			for e, n := range es {
				outs = append(outs, fmt.Sprintf("%s/%s=%d", op, e, n))
			}
		}
		sort.Strings(outs)
		fmt.Fprintf(w, "%-22s %9d %9d %9d  %s\n", st.Name, armed[st.Name], st.Hits, st.Fires, strings.Join(outs, " "))
	}
	fmt.Fprintln(w)
}

func (s *Stats) invariant(name string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.invariants[name]++
	s.mu.Unlock()
}

func (s *Stats) action(name string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.actions[name]++
	s.mu.Unlock()
}

// failure notes the first failure of a campaign (shrinking fails again
// many times).
func (s *Stats) failure() {
	if s == nil {
		return
	}
	s.mu.Lock()
	if s.failedAt.IsZero() {
		s.failedAt = time.Now()
	}
	s.mu.Unlock()
}

// FailedAt returns when a check first failed (zero if none did).
func (s *Stats) FailedAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failedAt
}

func (s *Stats) check() {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.checks++
	s.mu.Unlock()
}

// Progress is a snapshot of the counters.
type Progress struct {
	Checks, Steps, Kexecs, Errnos int
}

// Progress returns the current counters; Errnos is the number of distinct
// errnos seen (OK excluded).
func (s *Stats) Progress() Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	for _, m := range s.outcomes {
		for e := range m {
			if e != "OK" {
				seen[e] = true
			}
		}
	}
	return Progress{Checks: s.checks, Steps: s.steps, Kexecs: s.kexecs, Errnos: len(seen)}
}

// WriteSummary prints the op × outcome matrix and the invariant counts.
func (s *Stats) WriteSummary(w io.Writer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cols := map[string]bool{}
	rowSet := map[string]bool{}
	for op, m := range s.outcomes {
		rowSet[op] = true
		for e := range m {
			cols[e] = true
		}
	}
	for op, es := range Expected {
		rowSet[op] = true
		for _, e := range es {
			cols[e] = true
		}
	}
	var rows []string
	for op := range rowSet {
		rows = append(rows, op)
	}
	sort.Strings(rows)
	var cs []string
	for c := range cols {
		if c != "OK" {
			cs = append(cs, c)
		}
	}
	sort.Strings(cs)
	if cols["OK"] {
		cs = append([]string{"OK"}, cs...)
	}
	fmt.Fprintf(w, "%-18s", "operation")
	for _, c := range cs {
		fmt.Fprintf(w, " %7s", c)
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		fmt.Fprintf(w, "%-18s", r)
		for _, c := range cs {
			switch n := s.outcomes[r][c]; {
			case n > 0:
				fmt.Fprintf(w, " %7d", n)
			case expected(r, c):
				fmt.Fprintf(w, " %7s", "!")
			default:
				fmt.Fprintf(w, " %7s", ".")
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	if miss := s.missingLocked(); len(miss) > 0 {
		fmt.Fprintf(w, "WARNING: %d expected outcome(s) never reached (\"!\" above): %s\n\n", len(miss), strings.Join(miss, ", "))
	} else {
		fmt.Fprintf(w, "every expected operation x outcome cell was reached (\".\": not expected)\n\n")
	}
	var acts []string
	for a, n := range s.actions {
		acts = append(acts, fmt.Sprintf("%s=%d", a, n))
	}
	sort.Strings(acts)
	fmt.Fprintf(w, "actions: %s\n\n", strings.Join(acts, " "))
	if len(s.sites) > 0 {
		s.writeFaultsLocked(w)
	}
	s.writeCallsLocked(w)
	var inv []string
	for k := range s.invariants {
		inv = append(inv, k)
	}
	sort.Strings(inv)
	fmt.Fprintf(w, "%-58s %9s\n", "invariant", "checked")
	for _, k := range inv {
		fmt.Fprintf(w, "%-58s %9d\n", k, s.invariants[k])
	}
}

// Missing returns the expected operation x outcome cells ("op/ERRNO") not
// reached so far.
func (s *Stats) Missing() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.missingLocked()
}

func (s *Stats) missingLocked() []string {
	var miss []string
	for op, es := range Expected {
		for _, e := range es {
			if s.outcomes[op][e] == 0 {
				miss = append(miss, op+"/"+e)
			}
		}
	}
	miss = append(miss, s.missingCallsLocked()...)
	sort.Strings(miss)
	return miss
}
