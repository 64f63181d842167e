package locking

import (
	"bytes"
	"os"
	"sync"
	"time"

	"github.com/sasha-s/go-deadlock"

	"luomodel/kernel/bug"
)

// DeadlockDetection configures go-deadlock, which backs the free-running
// locks of every Domain. See the package doc for why this is process-wide.
type DeadlockDetection struct {
	// Enabled turns go-deadlock on. Off, which is the default, its locks
	// are sync locks behind one branch.
	Enabled bool
	// Timeout reports a task that has waited longer than this for a lock
	// as deadlocked (the waiter continues if the lock is ever released).
	// Zero turns the watchdog off.
	Timeout time.Duration
	// LockOrder turns on go-deadlock's own lock-order and recursive-locking
	// checks. They work on lock instances, not classes, and know nothing of
	// nesting subclasses, so LockNested-style code whose instance order is
	// safe for a reason go-deadlock cannot see (e.g. parent before child,
	// where a child may later become a parent) is a false positive; lockdep
	// already checks order by class. Leave it off except in a test that
	// wants the second opinion on locks it knows are not nested.
	LockOrder bool
	// Report receives each go-deadlock report as text (nil: print it to
	// standard error). go-deadlock calls it from a timer goroutine for a
	// timeout, and from the locking goroutine while holding its internal
	// lock for an order violation: Report must return, must not panic, and
	// must not take locks of this package. DeadlockReporter builds one that
	// files bug.KindDeadlock reports.
	Report func(text string)
}

// ConfigureDeadlockDetection sets go-deadlock's options (deadlock.Opts):
// Disable, DisableLockOrderDetection, DeadlockTimeout, and routes its log
// (LogBuf) and its OnPotentialDeadlock hook, which by default calls
// os.Exit, to c.Report. go-deadlock reads its options without
// synchronization, so call this only while no lock is in use: in TestMain
// before m.Run, or at the start of main.
func ConfigureDeadlockDetection(c DeadlockDetection) {
	report := c.Report
	if report == nil {
		report = func(text string) { _, _ = os.Stderr.WriteString(text) }
	}
	log := &deadlockLog{}
	deadlock.Opts.Disable = !c.Enabled
	deadlock.Opts.DisableLockOrderDetection = !c.LockOrder
	deadlock.Opts.DeadlockTimeout = c.Timeout
	deadlock.Opts.PrintAllCurrentGoroutines = false
	deadlock.Opts.LogBuf = log
	deadlock.Opts.OnPotentialDeadlock = func() { report(log.take()) }
}

// DeadlockReporter returns a DeadlockDetection.Report that files each
// go-deadlock report with r as bug.KindDeadlock, titled TitleGoDeadlock.
// A panic of r's handler is swallowed, since go-deadlock may hold its own
// lock while reporting; r has counted the report by then (r.Count, r.First).
func DeadlockReporter(r *bug.Reporter) func(text string) {
	return func(text string) {
		defer func() { _ = recover() }()
		r.File(&bug.Report{Kind: bug.KindDeadlock, Title: TitleGoDeadlock, Detail: text})
	}
}

// deadlockLog collects what go-deadlock prints for one report.
type deadlockLog struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (l *deadlockLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// take returns and clears the collected text.
func (l *deadlockLog) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.buf.String()
	l.buf.Reset()
	return s
}

// init turns go-deadlock off until a test or main configures it: the
// library's own default is on, with a 30 s watchdog that exits the process.
// This writes only the library's options; this package keeps no mutable
// state of its own.
func init() { ConfigureDeadlockDetection(DeadlockDetection{}) }
