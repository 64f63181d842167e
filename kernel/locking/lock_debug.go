package locking

import (
	"fmt"
	"strings"
)

// This file ports the initialisation checks of lock debugging: the magic
// word of CONFIG_DEBUG_MUTEXES (kernel/locking/mutex-debug.c) and
// CONFIG_DEBUG_RWSEMS (kernel/locking/rwsem.c, DEBUG_RWSEMS_WARN_ON(
// sem->magic != sem)), lockdep's report of a lock it was never told about
// (register_lock_class(): "trying to register non-static key"), and
// debug_check_no_locks_freed() as mutex_init() and init_rwsem() call it.
//
// Init points a lock's magic at the lock. Every operation compares it (one
// load and compare on the fast path, in every domain, as DEBUG_MUTEXES does
// without lockdep). A lock whose magic is wrong still works, as a plain lock
// outside lockdep and the scheduler, so that the model neither hangs nor
// panics on the bug; what happens to the report depends on why:
//
//   - never Init'ed (the zero value): the lock has no domain, so no
//     Reporter, yet. Its first use is recorded in the lock, and the Init
//     that comes later reports it with both stacks: "lock used before
//     init". A lock used and never Init'ed at all cannot be reported;
//     kernel objects Init every lock when they are created.
//   - a copy of an Init'ed lock (its magic is the original's address): it
//     knows the original's domain, which reports it at once.
//
// Init itself checks a lock that was Init'ed or used before: re-initialising
// a lock that is held or waited for would drop its holder and waiters (in
// Linux the memset of mutex_init() does; here the holder's unlock would be
// an imbalance that leaves the lock locked for good). It is reported, and
// the lock is left as it was.

// earlyUse is the first use of a lock before Init. Immutable.
type earlyUse struct {
	op   string    // the operation, by its Linux name: "down_read"
	task int64     // the task that used the lock
	pcs  []uintptr // where
}

// uninitialized handles operation op on a lock whose magic is not its own
// address, skip frames of this package below the lock's caller. A lock never
// Init'ed records its first use for Init to report; a copy of an Init'ed
// lock is reported to its domain now.
func (m *lockdepMap) uninitialized(op string, skip int) {
	if m.magic != nil {
		if d := m.dom; d != nil {
			d.badMagic(m, op, skip+1)
		}
		return
	}
	if m.early.Load() == nil {
		m.early.CompareAndSwap(nil, &earlyUse{op: op, task: CurrentTask(), pcs: callers(skip, depStackDepth)})
	}
}

// checkInit ports the checks of debug_mutex_init() and __init_rwsem() for
// an Init of a lock of kind, naming class name, that was Init'ed or used
// before (the caller tests m.used first, which a fresh lock passes at the
// cost of two loads): busy probes whether the lock is held or waited for.
// It reports to d, or, for Init(nil, ...), to the domain the lock had. It
// returns false if the lock must be left as it was.
func (m *lockdepMap) checkInit(d *Domain, name string, kind lockKind, busy func() bool) bool {
	rd := d
	if rd == nil {
		rd = m.dom
	}
	if busy() {
		if rd != nil {
			rd.initHeld(m, name, kind, 2)
		}
		return false
	}
	if u := m.early.Swap(nil); u != nil && rd != nil {
		rd.usedBeforeInit(m, u, name, kind, 2)
	}
	return true
}

// used reports whether m has been Init'ed or used: whether Init must run
// checkInit before it (re)binds the lock.
func (m *lockdepMap) used() bool { return m.magic != nil || m.early.Load() != nil }

// initFn is the Linux name of the init function of a lock of kind.
func initFn(kind lockKind) string {
	if kind == kindRWSem {
		return "init_rwsem"
	}
	return "mutex_init"
}

// fileDebug files a lock debugging report as bug.KindLockdep, once per
// distinct problem k.
func (d *Domain) fileDebug(k reportKey, title string, b *strings.Builder) {
	if d.reported.first(k) {
		d.rep.File(lockdepReport(title, b))
	}
}

// usedBeforeInit is the report of an Init of m (of kind, giving class
// name) after its use u: lockdep's "trying to register non-static key" and
// the magic check that the use failed.
func (d *Domain) usedBeforeInit(m *lockdepMap, u *earlyUse, name string, kind lockKind, skip int) {
	b := splat(TitleUsedBeforeInit)
	fmt.Fprintf(b, "%s is initialising lock %p (%s) in %s(),\n", taskName(CurrentTask()), m, name, initFn(kind))
	fmt.Fprintf(b, "but the lock was used before: %s() by %s, at:\n", u.op, taskName(u.task))
	printStack(b, u.pcs, " ")
	b.WriteString("\nINFO: trying to register non-static key.\n" +
		"The code is fine but needs lockdep annotation, or maybe\n" +
		"you didn't initialize this object before use?\n" +
		"DEBUG_LOCKS_WARN_ON(lock->magic != lock)\n\n" +
		"Until this init the lock was a plain lock, outside lockdep and the\n" +
		"scheduler: its users before it were not checked, and a controlled\n" +
		"scheduler could not see them wait.\n")
	stackBacktrace(b, skip+1)
	d.fileDebug(reportKey{what: "uninit", s: name}, TitleUsedBeforeInit, b)
}

// initHeld ports debug_check_no_locks_freed()'s report for an init of a
// lock that is held or waited for (print_freed_lock_bug()).
func (d *Domain) initHeld(m *lockdepMap, name string, kind lockKind, skip int) {
	b := splat(TitleInitHeld)
	was := "never initialised"
	if m.magic != nil {
		was = "initialised as " + m.name
	}
	fmt.Fprintf(b, "%s is initialising lock %p (%s, %s) in %s(),\n", taskName(CurrentTask()), m, name, was, initFn(kind))
	b.WriteString("but the lock is held or waited for")
	if d.ld != nil && m.magic == m && m.dom == d {
		fmt.Fprintf(b, " (held by %s)", d.ld.holders(m))
	}
	b.WriteString(".\nRe-initialising it would drop its holder and waiters: the lock is\n" +
		"left as it was.\n")
	if d.ld != nil {
		b.WriteString("\nother info that might help us debug this:\n")
		id := CurrentTask()
		printHeldLocks(b, id, d.ld.heldOf(id))
	}
	stackBacktrace(b, skip+1)
	d.fileDebug(reportKey{what: "initheld", s: name}, TitleInitHeld, b)
}

// badMagic is DEBUG_LOCKS_WARN_ON(lock->magic != lock) for a copy of an
// Init'ed lock, used by operation op.
func (d *Domain) badMagic(m *lockdepMap, op string, skip int) {
	b := splat(TitleBadMagic)
	fmt.Fprintf(b, "%s: %s() of lock %p (%s), whose magic is %p:\n", taskName(CurrentTask()), op, m, m.name, m.magic)
	b.WriteString("DEBUG_LOCKS_WARN_ON(lock->magic != lock)\n" +
		"the lock is a copy of an initialised lock; the copy works as a plain\n" +
		"lock, outside lockdep and the scheduler.\n")
	stackBacktrace(b, skip+1)
	d.fileDebug(reportKey{what: "magic", s: m.name}, TitleBadMagic, b)
}
