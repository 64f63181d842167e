package proptest

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"syscall"

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
}

// NewStats returns empty counters.
func NewStats() *Stats {
	return &Stats{outcomes: map[string]map[string]int{}, invariants: map[string]int{}}
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

func (s *Stats) invariant(name string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.invariants[name]++
	s.mu.Unlock()
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
	var rows []string
	for op, m := range s.outcomes {
		rows = append(rows, op)
		for e := range m {
			cols[e] = true
		}
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
			if n := s.outcomes[r][c]; n > 0 {
				fmt.Fprintf(w, " %7d", n)
			} else {
				fmt.Fprintf(w, " %7s", ".")
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
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
