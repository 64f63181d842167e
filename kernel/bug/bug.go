// Package bug is the kernel's report sink: the Go counterpart of WARN(),
// lockdep splats and KASAN reports (include/asm-generic/bug.h, lib/bug.c).
//
// Every checker in the port (lockdep, the KASAN-like memory checker, the
// use-after-free detector, WARN_ON) files a Report through one Reporter per
// machine. A Reporter outlives kexec, so a test installs its handler once and
// sees reports from every kernel the machine boots. With no handler a report
// panics, as a kernel with panic_on_warn would.
package bug

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"sync"
)

// Kind classifies a report; checkers and the mutant runner key on it.
type Kind string

// Report kinds.
const (
	KindWarn     Kind = "warn"     // WARN_ON: a kernel invariant failed
	KindLockdep  Kind = "lockdep"  // lock-order or lock-usage violation
	KindDeadlock Kind = "deadlock" // a wait that can never end
	KindKASAN    Kind = "kasan"    // access to memory that is not allocated
	KindUAF      Kind = "uaf"      // use of a freed kernel object
	KindLeak     Kind = "leak"     // an object that outlived its owner
	KindRace     Kind = "race"     // a data race seen by a checker
)

// Report is one finding. Title is a one-line summary in the style of a
// kernel splat header; Detail holds the explanation and stacks.
type Report struct {
	Kind   Kind
	Title  string
	Detail string
	// Stack is where the report was filed.
	Stack string
}

// Error makes a Report usable as an error: the one-line summary.
func (r *Report) Error() string { return string(r.Kind) + ": " + r.Title }

// Format renders the whole report for %s and %v (%q quotes it), so that
// printing a report never shows only its summary: fmt prefers Error to
// String, and a title without the stacks explains nothing.
func (r *Report) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		fmt.Fprintf(f, "%q", r.String())
	default:
		io.WriteString(f, r.String())
	}
}

// String renders the whole report, splat style.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "==================================================\n")
	fmt.Fprintf(&b, "BUG (%s): %s\n", r.Kind, r.Title)
	if r.Detail != "" {
		b.WriteString(strings.TrimRight(r.Detail, "\n"))
		b.WriteByte('\n')
	}
	if r.Stack != "" {
		b.WriteString("filed at:\n")
		b.WriteString(r.Stack)
	}
	return b.String()
}

// Handler receives reports. It may be called from any goroutine.
type Handler func(*Report)

// Reporter delivers reports to a handler and counts them. It is safe for
// concurrent use. It uses a plain sync.Mutex on purpose: the report path
// must not recurse into lockdep or the scheduler it reports on.
type Reporter struct {
	mu      sync.Mutex
	handler Handler      // guarded by mu
	counts  map[Kind]int // guarded by mu
	first   *Report      // guarded by mu; the first report filed
}

// NewReporter returns a Reporter that calls h for every report. A nil h
// panics with the report's text.
func NewReporter(h Handler) *Reporter {
	return &Reporter{handler: h, counts: make(map[Kind]int)}
}

// SetHandler replaces the handler (nil: panic on report).
func (r *Reporter) SetHandler(h Handler) {
	r.mu.Lock()
	r.handler = h
	r.mu.Unlock()
}

// File records rep and hands it to the handler. The stack is captured here
// unless the caller already set one.
func (r *Reporter) File(rep *Report) {
	if rep.Stack == "" {
		rep.Stack = string(debug.Stack())
	}
	r.mu.Lock()
	r.counts[rep.Kind]++
	if r.first == nil {
		r.first = rep
	}
	h := r.handler
	r.mu.Unlock()
	if h == nil {
		panic(rep.String())
	}
	h(rep)
}

// Filef files a report built from a format.
func (r *Reporter) Filef(kind Kind, title string, format string, args ...any) {
	r.File(&Report{Kind: kind, Title: title, Detail: fmt.Sprintf(format, args...)})
}

// WarnOn ports WARN_ON(): if cond holds it files a KindWarn report titled
// with the formatted message. It returns cond so it can guard a branch:
//
//	if r.WarnOn(count != 0, "file set not empty") { return }
func (r *Reporter) WarnOn(cond bool, format string, args ...any) bool {
	if cond {
		r.File(&Report{Kind: KindWarn, Title: fmt.Sprintf(format, args...)})
	}
	return cond
}

// Count returns how many reports of kind were filed.
func (r *Reporter) Count(kind Kind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[kind]
}

// Total returns how many reports were filed.
func (r *Reporter) Total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.counts {
		n += c
	}
	return n
}

// First returns the first report filed, or nil.
func (r *Reporter) First() *Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first
}
