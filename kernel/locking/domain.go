package locking

import (
	"sync/atomic"

	"luomodel/kernel/bug"
)

// Options configures a Domain.
type Options struct {
	// Lockdep turns on lock-class validation (CONFIG_PROVE_LOCKING).
	Lockdep bool
	// Reporter receives lockdep and deadlock reports; nil panics on report.
	Reporter *bug.Reporter
	// NoDeadlockWatch keeps go-deadlock away from the domain's locks even
	// when they run free: for a kernel whose tasks run under a controlled
	// scheduler and whose free-running parts are single-threaded (a
	// checker's sequential setup, boot, kexec), where its stack capture
	// and watchdog find nothing. Under a scheduler no domain uses it.
	NoDeadlockWatch bool
}

// Domain is the locking world of one kernel: its lockdep state and the
// hook for a controlled scheduler. Locks of different kernels never mix:
// each Domain has its own classes, dependency graph and held-lock stacks.
type Domain struct {
	rep *bug.Reporter // immutable
	// ld is the lock validator; nil when lockdep is off. Immutable.
	ld *lockdep
	// sched is the installed Scheduler, nil when free-running. Loaded at
	// every scheduling point: the only cost of the seam when none is set.
	sched atomic.Pointer[schedBox]
	// reported records the problems reported by lockdep and the lock
	// debugging checks, each reported once.
	reported reportOnce
	// retired is set once by Retire: the domain's kernel was replaced by
	// kexec.
	retired atomic.Bool
	// noWatch is Options.NoDeadlockWatch; immutable.
	noWatch bool
}

// NewDomain returns a Domain configured by opts.
func NewDomain(opts Options) *Domain {
	rep := opts.Reporter
	if rep == nil {
		rep = bug.NewReporter(nil)
	}
	d := &Domain{rep: rep, noWatch: opts.NoDeadlockWatch}
	if opts.Lockdep {
		d.ld = newLockdep(rep, &d.reported)
	}
	return d
}

// Reporter returns the domain's report sink.
func (d *Domain) Reporter() *bug.Reporter { return d.rep }

// LockdepEnabled reports whether d validates locking (debug_locks).
func (d *Domain) LockdepEnabled() bool { return d != nil && d.ld != nil }

// SetScheduler installs s as the domain's controlled scheduler, or removes
// the scheduler when s is nil. Switch only while no task of the domain is
// inside a lock operation (typically: before starting the tasks and after
// they have all finished); a task blocked in a free-running Lock stays
// blocked on the real lock.
func (d *Domain) SetScheduler(s Scheduler) {
	if s == nil {
		d.sched.Store(nil)
		return
	}
	d.sched.Store(&schedBox{s: s})
}

// Scheduler returns the installed scheduler, or nil when free-running.
// Packages that add their own waits (wait queues, completions) use it to
// block through the scheduler, as the locks here do.
func (d *Domain) Scheduler() Scheduler {
	if d == nil {
		return nil
	}
	if b := d.sched.Load(); b != nil {
		return b.s
	}
	return nil
}

// Yield is a scheduling point of kind p in the current task: with a
// scheduler installed another task may run before Yield returns. Without
// one it costs one atomic load. Other packages call it at their own points:
//
//	f.dom.Yield(locking.PointFDInstall)
func (d *Domain) Yield(p Point) {
	if s := d.Scheduler(); s != nil {
		s.Yield(p)
	}
}

// Retire records that the kernel owning d was replaced by kexec: after
// machine_kexec() none of its tasks runs again. The machine may then
// release the locks the jump left held (the reboot's serialize rwsem): held
// forever, they would stay in process-wide lock bookkeeping (go-deadlock's
// table of held locks) and keep the dead kernel's memory reachable for the
// life of the process. So that releasing them cannot let the dead kernel
// run on, a free-running task that was taking a lock of d when Retire
// came (waiting for it, typically) gives it back once it gets it and parks
// forever, as an old kernel's task stays stopped on its CPU; and a release
// in d no longer wakes tasks or passes the CPU under a scheduler (the tasks
// the kexec killed unwind instead). Locks taken after Retire still work,
// for whoever inspects or tears down the dead kernel's objects.
func (d *Domain) Retire() { d.retired.Store(true) }

// Retired reports whether Retire was called.
func (d *Domain) Retired() bool { return d != nil && d.retired.Load() }

// liveScheduler is the scheduler a lock release hands waiters and the CPU
// to: none once d is retired, whose killed tasks unwind instead.
func (d *Domain) liveScheduler() Scheduler {
	if d.retired.Load() {
		return nil
	}
	return d.Scheduler()
}

// parkRetired never returns: a free-running task that was taking a lock
// when its domain was retired stops here, once it has given the lock back,
// as a task stays stopped on a CPU that kexec took away.
func parkRetired() {
	select {}
}

// CheckNoLocksHeld ports lockdep_sys_exit(): the current task must hold no
// lock when a syscall returns to user space. where names the syscall.
func (d *Domain) CheckNoLocksHeld(where string) {
	if d != nil && d.ld != nil {
		d.ld.sysExit(where, 1)
	}
}

// DebugShowAllLocks ports debug_show_all_locks(): it renders every lock
// held by any task of the domain ("" when lockdep is off).
func (d *Domain) DebugShowAllLocks() string {
	if d == nil || d.ld == nil {
		return ""
	}
	return d.ld.showAllLocks()
}

// ReportDeadlock files a bug.KindDeadlock report titled TitleDeadlock with
// detail (e.g. a scheduler's list of blocked tasks and what they wait for)
// followed by every lock held in the domain. A Scheduler calls it when every
// task is blocked.
func (d *Domain) ReportDeadlock(detail string) {
	d.rep.File(&bug.Report{
		Kind:   bug.KindDeadlock,
		Title:  TitleDeadlock,
		Detail: deadlockDetail(detail, d.DebugShowAllLocks()),
	})
}
