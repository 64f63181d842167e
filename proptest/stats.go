package proptest

import (
	"io"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"luomodel/kernel/fault"
	"luomodel/model"
	"luomodel/proptest/summary"
)

// Names of the lockstep campaign's tables (summary.Table.Name).
const (
	TableOutcomes   = "outcomes"
	TableActions    = "actions"
	TableFaults     = "faults"
	TableInvariants = "invariants"
)

// Stats counts what a campaign covered, as counters and coverage tables
// (package summary). It is safe for concurrent use: a progress printer
// reads it while checks run. A parallel campaign gives each worker its own
// Stats and merges their Parts. It uses sync.Mutex because no kernel task
// ever waits on it.
type Stats struct {
	mu sync.Mutex
	// The tables: outcomes (op label x errno), actions, faults (site x
	// armed, reached, fired and every armed operation's outcome),
	// callbacks (the test module's callback x outcome, stats_calls.go)
	// and invariants (name x times checked).
	outcomes  *summary.Table // guarded by mu
	actions   *summary.Table // guarded by mu
	faults    *summary.Table // guarded by mu
	callbacks *summary.Table // guarded by mu
	invs      *summary.Table // guarded by mu
	// more are the tables counted with Count, in order of creation.
	more     []*summary.Table // guarded by mu
	checks   int64            // guarded by mu
	steps    int64            // guarded by mu
	kexecs   int64            // guarded by mu
	failedAt time.Time        // guarded by mu; when a check first failed
}

// NewStats returns empty counters.
func NewStats() *Stats {
	s := &Stats{}
	s.outcomes = summary.New(TableOutcomes, "operation")
	s.outcomes.Lead = []string{"OK"}
	s.outcomes.Expected = map[string][]string{}
	for op, es := range Expected {
		s.outcomes.Expected[op] = append([]string(nil), es...)
	}
	s.actions = summary.New(TableActions, "actions")
	s.actions.Style = summary.StyleLine
	s.faults = summary.New(TableFaults, "fault site")
	s.faults.Style = summary.StyleSparse
	s.faults.Lead = []string{"armed", "reached", "fired"}
	s.faults.Note = "(other cells: the outcome of every operation run with the site armed, fired or not)"
	s.callbacks = newCallbacksTable()
	s.invs = summary.New(TableInvariants, "invariant")
	s.invs.Lead = []string{"checked"}
	return s
}

// OpLabel names an operation for the coverage matrix.
func OpLabel(op model.Op) string {
	if op.Kind == model.OpFcntl {
		return fcntlLabel(op)
	}
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
	s.outcomes.Add(OpLabel(op), model.ErrnoName(e), 1)
}

// hostile counts a hostile hand-over of the given kind: a cell of the
// coverage matrix, row "hostile:KIND", column the outcome of the first
// open of /dev/liveupdate after it (or of the kexec, if that failed).
func (s *Stats) hostile(kind string, e syscall.Errno) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outcomes.Add("hostile:"+kind, model.ErrnoName(e), 1)
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
	s.faults.Add(site, "armed", 1)
	s.faults.Add(site, OpLabel(op)+"/"+model.ErrnoName(e), 1)
}

// faultSites adds one check's fault-site counters.
func (s *Stats) faultSites(st []fault.SiteStats) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range st {
		if len(s.faults.LeadRows) < len(st) {
			s.faults.LeadRows = append(s.faults.LeadRows, x.Name)
		}
		s.faults.Add(x.Name, "reached", int64(x.Hits))
		s.faults.Add(x.Name, "fired", int64(x.Fires))
	}
}

func (s *Stats) invariant(name string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.invs.Add(name, "checked", 1)
	s.mu.Unlock()
}

func (s *Stats) action(name string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.actions.Add("", name, 1)
	s.mu.Unlock()
}

// Count adds n to the cell (row, col) of the table name, creating it as a
// grid whose row names are headed title (the campaign's own tables have
// their own methods, and Count adds to them by name too). A new coverage
// table needs nothing else: Part
// carries it into the summary, its JSON and luo report.
func (s *Stats) Count(name, title, row, col string, n int64) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range append([]*summary.Table{s.outcomes, s.actions, s.faults, s.callbacks, s.invs}, s.more...) {
		if t.Name == name {
			t.Add(row, col, n)
			return
		}
	}
	t := summary.New(name, title)
	t.Add(row, col, n)
	s.more = append(s.more, t)
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
	Checks, Steps, Kexecs int
	// Errnos is the set of errnos seen (OK excluded).
	Errnos map[string]bool
}

// Add adds o's counters to p and unites the errnos.
func (p *Progress) Add(o Progress) {
	p.Checks += o.Checks
	p.Steps += o.Steps
	p.Kexecs += o.Kexecs
	if p.Errnos == nil {
		p.Errnos = map[string]bool{}
	}
	for e := range o.Errnos {
		p.Errnos[e] = true
	}
}

// Progress returns the current counters.
func (s *Stats) Progress() Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Progress{Checks: int(s.checks), Steps: int(s.steps), Kexecs: int(s.kexecs), Errnos: Errnos(s.outcomes)}
}

// Errnos returns the errnos (columns other than OK) with a non-zero cell
// in an outcomes table.
func Errnos(t *summary.Table) map[string]bool {
	seen := map[string]bool{}
	if t == nil {
		return seen
	}
	for _, r := range t.Rows {
		for i, n := range r.Cells {
			if n != 0 && t.Columns[i] != "OK" {
				seen[t.Columns[i]] = true
			}
		}
	}
	return seen
}

// Part returns a copy of the counters (checks, steps, kexecs) and tables
// as the summary part "lockstep".
func (s *Stats) Part() *summary.Part {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &summary.Part{Name: "lockstep"}
	p.Add("checks", s.checks)
	p.Add("steps", s.steps)
	p.Add("kexecs", s.kexecs)
	p.Tables = []*summary.Table{s.outcomes.Clone(), s.actions.Clone()}
	if len(s.faults.LeadRows) > 0 {
		p.Tables = append(p.Tables, s.faults.Clone())
	}
	p.Tables = append(p.Tables, s.callbacks.Clone())
	for _, t := range s.more {
		p.Tables = append(p.Tables, t.Clone())
	}
	p.Tables = append(p.Tables, s.invs.Clone())
	return p
}

// WriteSummary prints the tables: the op × outcome matrix, the actions
// drawn, the fault sites and the invariant counts.
func (s *Stats) WriteSummary(w io.Writer) { s.Part().WriteTables(w) }

// Missing returns the expected operation x outcome cells ("op/ERRNO") and
// callback x outcome cells not reached so far.
func (s *Stats) Missing() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	miss := append(s.outcomes.Missing(), s.callbacks.Missing()...)
	sort.Strings(miss)
	return miss
}
