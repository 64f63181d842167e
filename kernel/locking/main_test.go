package locking_test

import (
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"luomodel/kernel/bug"
	"luomodel/kernel/locking"
)

// Tests here do not run in parallel: some reconfigure go-deadlock, whose
// options are process-wide.
func TestMain(m *testing.M) {
	// A waiter stopped by a retired domain parks for good, by design.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("luomodel/kernel/locking.parkRetired"))
}

// recorder is a bug.Handler that keeps every report. If abort is set it
// then panics with abort, to unwind out of an acquisition that would block
// forever.
type recorder struct {
	mu    sync.Mutex
	reps  []*bug.Report // guarded by mu
	abort any           // guarded by mu
}

func (r *recorder) handle(rep *bug.Report) {
	r.mu.Lock()
	r.reps = append(r.reps, rep)
	abort := r.abort
	r.mu.Unlock()
	if abort != nil {
		panic(abort)
	}
}

func (r *recorder) setAbort(v any) {
	r.mu.Lock()
	r.abort = v
	r.mu.Unlock()
}

func (r *recorder) reports() []*bug.Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*bug.Report(nil), r.reps...)
}

// titles lists "kind: title" of every report, for exact comparisons.
func (r *recorder) titles() []string {
	var out []string
	for _, rep := range r.reports() {
		out = append(out, string(rep.Kind)+": "+rep.Title)
	}
	return out
}

func (r *recorder) dump() string {
	var b strings.Builder
	for _, rep := range r.reports() {
		b.WriteString(rep.String())
	}
	return b.String()
}

// newDomain returns a domain whose reports go to a fresh recorder.
func newDomain(lockdep bool) (*locking.Domain, *recorder) {
	rec := &recorder{}
	d := locking.NewDomain(locking.Options{Lockdep: lockdep, Reporter: bug.NewReporter(rec.handle)})
	return d, rec
}

func lockdepTitle(title string) string { return string(bug.KindLockdep) + ": " + title }
