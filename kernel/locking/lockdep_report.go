package locking

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"luomodel/kernel/bug"
)

// Report titles. Tests and the mutant runner key on them; the lockdep ones
// are the headlines of the matching Linux splats.
const (
	// TitleCircular: print_circular_bug(), a cycle in the class graph.
	TitleCircular = "possible circular locking dependency detected"
	// TitleRecursive: print_deadlock_bug(), a class taken twice.
	TitleRecursive = "possible recursive locking detected"
	// TitleBadUnlock: print_unlock_imbalance_bug(), a release of a lock
	// the task does not hold (or holds in the other mode).
	TitleBadUnlock = "bad unlock balance detected!"
	// TitleHeldAtExit: lockdep_sys_exit(), a lock held on return to user
	// space.
	TitleHeldAtExit = "lock held when returning to user space!"
	// TitleAssertHeld: lockdep_assert_held() failed.
	TitleAssertHeld = "lockdep_assert_held() failed"
	// TitleAssertHeldRead: lockdep_assert_held_read() failed.
	TitleAssertHeldRead = "lockdep_assert_held_read() failed"
	// TitleAssertHeldWrite: lockdep_assert_held_write() failed.
	TitleAssertHeldWrite = "lockdep_assert_held_write() failed"
	// TitleBadSubclass: a nesting subclass out of [0, MaxSubclasses).
	TitleBadSubclass = "looking up invalid subclass"
	// TitleUsedBeforeInit: a lock was used before Init (lockdep's "trying
	// to register non-static key", the DEBUG_MUTEXES / DEBUG_RWSEMS magic
	// check), reported by the Init that follows.
	TitleUsedBeforeInit = "lock used before init"
	// TitleInitHeld: Init of a lock that is held or waited for
	// (debug_check_no_locks_freed() in mutex_init() / init_rwsem()).
	TitleInitHeld = "held lock re-initialised!"
	// TitleBadMagic: a copy of an Init'ed lock was used
	// (DEBUG_LOCKS_WARN_ON(lock->magic != lock)).
	TitleBadMagic = "bad lock magic: a copied lock was used"
	// TitleDeadlock (bug.KindDeadlock): Domain.ReportDeadlock, filed by a
	// scheduler that found every task blocked.
	TitleDeadlock = "deadlock: every task is blocked"
	// TitleGoDeadlock (bug.KindDeadlock): a report of go-deadlock, routed
	// by DeadlockReporter.
	TitleGoDeadlock = "potential deadlock detected by go-deadlock"
)

// splat starts a report's detail with the Linux banner for title.
func splat(title string) *strings.Builder {
	var b strings.Builder
	line := strings.Repeat("=", len(title)+9)
	fmt.Fprintf(&b, "%s\nWARNING: %s\n%s\n", line, title, strings.Repeat("-", len(title)+9))
	return &b
}

func taskName(id int64) string { return "task/" + strconv.FormatInt(id, 10) }

// lockName renders a lock's class and how it is (to be) held, in place of
// lockdep's usage bits.
func lockName(c *lockClass, kind lockKind, mode lockMode) string {
	switch {
	case kind == kindMutex:
		return "(" + c.String() + "){mutex}"
	case mode == modeRead:
		return "(" + c.String() + "){rwsem:R}"
	default:
		return "(" + c.String() + "){rwsem:W}"
	}
}

// printLock ports print_lock(): instance, class, mode and where it was
// acquired.
func printLock(b *strings.Builder, h *heldLock) {
	fmt.Fprintf(b, "%p %s, at: %s\n", h.inst, lockName(h.class, h.inst.kind, h.mode), frameAt(h.pcs()))
}

// frameAt renders the first frame of pcs outside this package as
// "func (file:line)".
func frameAt(pcs []uintptr) string {
	frames := callerFrames(pcs)
	if len(frames) == 0 {
		return "?"
	}
	f := frames[0]
	return fmt.Sprintf("%s (%s:%d)", f.Function, f.File, f.Line)
}

// printStack renders pcs one frame per two lines, indented, from the first
// frame outside this package.
func printStack(b *strings.Builder, pcs []uintptr, indent string) {
	for _, f := range callerFrames(pcs) {
		fmt.Fprintf(b, "%s%s\n%s\t%s:%d\n", indent, f.Function, indent, f.File, f.Line)
	}
}

// printHeldLocks ports lockdep_print_held_locks().
func printHeldLocks(b *strings.Builder, id int64, held []heldLock) {
	switch len(held) {
	case 0:
		fmt.Fprintf(b, "no locks held by %s.\n", taskName(id))
		return
	case 1:
		fmt.Fprintf(b, "1 lock held by %s:\n", taskName(id))
	default:
		fmt.Fprintf(b, "%d locks held by %s:\n", len(held), taskName(id))
	}
	for i := range held {
		fmt.Fprintf(b, " #%d: ", i)
		printLock(b, &held[i])
	}
}

// heldOf returns the current task's held locks (the owner may read them
// without the shard lock).
func (l *lockdep) heldOf(id int64) []heldLock {
	if t := l.task(id); t != nil {
		return t.held
	}
	return nil
}

// stackBacktrace ends a report with dump_stack() of the current task.
func stackBacktrace(b *strings.Builder, skip int) {
	b.WriteString("\nstack backtrace:\n")
	printStack(b, callers(skip, depStackDepth), " ")
}

func lockdepReport(title string, b *strings.Builder) *bug.Report {
	return &bug.Report{Kind: bug.KindLockdep, Title: title, Detail: b.String()}
}

// circularBug ports print_circular_bug(): taking next while holding prev
// closes the cycle next --> path... --> prev --> next.
// Task id holds held, prev on top.
func (l *lockdep) circularBug(id int64, held []heldLock, prev, next *heldLock, path []*lockDep, skip int) *bug.Report {
	cycle := make([]*lockClass, 0, len(path)+1)
	for _, d := range path {
		cycle = append(cycle, d.prev)
	}
	cycle = append(cycle, prev.class)
	// The cycle is the same problem whichever class closes it: key it on
	// its rotation that starts at the smallest class id.
	ids := make([]int, len(cycle))
	for i, c := range cycle {
		ids[i] = c.id
	}
	lo := slices.Index(ids, slices.Min(ids))
	var key strings.Builder
	for i := range ids {
		fmt.Fprintf(&key, "%d,", ids[(lo+i)%len(ids)])
	}
	if !l.once(reportKey{what: "circular", s: key.String()}) {
		return nil
	}

	b := splat(TitleCircular)
	fmt.Fprintf(b, "%s is trying to acquire lock:\n", taskName(id))
	printLock(b, next)
	b.WriteString("\nbut task is already holding lock:\n")
	printLock(b, prev)
	b.WriteString("\nwhich lock already depends on the new lock.\n\n")
	b.WriteString("\nthe existing dependency chain (in reverse order) is:\n")
	for i := len(path) - 1; i >= 0; i-- {
		d := path[i]
		fmt.Fprintf(b, "\n-> #%d (%s --> %s):\n", i, d.prev, d.next)
		fmt.Fprintf(b, "       recorded by %s, which held %s, taken at:\n", taskName(d.task), d.prev)
		printStack(b, d.prevIP.pcs(), "         ")
		fmt.Fprintf(b, "       and acquired %s at:\n", d.next)
		printStack(b, d.stack, "         ")
	}
	b.WriteString("\nother info that might help us debug this:\n\n")
	b.WriteString("Chain exists of:\n  ")
	for _, c := range cycle {
		fmt.Fprintf(b, "%s --> ", c)
	}
	fmt.Fprintf(b, "%s\n\n", next.class)
	// print_circular_lock_scenario(): parent is the class the other side
	// holds while it waits for prev.
	parent := path[len(path)-1].prev
	b.WriteString(" Possible unsafe locking scenario:\n\n")
	b.WriteString("       CPU0                    CPU1\n")
	b.WriteString("       ----                    ----\n")
	fmt.Fprintf(b, "  lock(%s);\n", prev.class)
	fmt.Fprintf(b, "                               lock(%s);\n", parent)
	fmt.Fprintf(b, "                               lock(%s);\n", prev.class)
	fmt.Fprintf(b, "  lock(%s);\n", next.class)
	b.WriteString("\n *** DEADLOCK ***\n\n")
	printHeldLocks(b, id, held)
	stackBacktrace(b, skip+1)
	return lockdepReport(TitleCircular, b)
}

// recursiveBug ports print_deadlock_bug(): next is of the same class as
// prev, which task id already holds among held.
func (l *lockdep) recursiveBug(id int64, held []heldLock, prev, next *heldLock, skip int) *bug.Report {
	if !l.once(reportKey{what: "recursive", a: next.class.id}) {
		return nil
	}
	b := splat(TitleRecursive)
	fmt.Fprintf(b, "%s is trying to acquire lock:\n", taskName(id))
	printLock(b, next)
	b.WriteString("\nbut task is already holding lock:\n")
	printLock(b, prev)
	b.WriteString("acquired at:\n")
	printStack(b, prev.pcs(), "  ")
	b.WriteString("\nother info that might help us debug this:\n")
	b.WriteString(" Possible unsafe locking scenario:\n\n")
	b.WriteString("       CPU0\n       ----\n")
	fmt.Fprintf(b, "  lock%s(%s);\n", readSuffix(prev.mode), prev.class)
	fmt.Fprintf(b, "  lock%s(%s);\n", readSuffix(next.mode), next.class)
	b.WriteString("\n *** DEADLOCK ***\n\n")
	if prev.mode == modeRead && next.mode == modeRead {
		b.WriteString(" rw_semaphore readers are not recursive: a writer that starts\n" +
			" waiting between the two reads blocks the second one.\n\n")
	}
	b.WriteString(" May be due to missing lock nesting notation\n\n")
	printHeldLocks(b, id, held)
	stackBacktrace(b, skip+1)
	return lockdepReport(TitleRecursive, b)
}

func readSuffix(m lockMode) string {
	if m == modeRead {
		return "_read"
	}
	return ""
}

// holders lists the tasks holding m, for reports about m.
func (l *lockdep) holders(m *lockdepMap) string {
	var ids []string
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		for id, t := range sh.tasks {
			for j := range t.held {
				if t.held[j].inst == m {
					ids = append(ids, taskName(id))
					break
				}
			}
		}
		sh.mu.Unlock()
	}
	if len(ids) == 0 {
		return "no task"
	}
	slices.Sort(ids)
	return strings.Join(ids, ", ")
}

func modeWord(m lockMode) string {
	switch m {
	case modeRead:
		return "read"
	case modeWrite:
		return "write"
	}
	return "read or write"
}

// unlockImbalanceBug ports print_unlock_imbalance_bug(). got is the task's
// entry for m when it holds m in the other mode.
func (l *lockdep) unlockImbalanceBug(id int64, m *lockdepMap, mode lockMode, got *heldLock, skip int) *bug.Report {
	if !l.once(reportKey{what: "unlock", a: int(mode), s: m.name}) {
		return nil
	}
	b := splat(TitleBadUnlock)
	fmt.Fprintf(b, "%s is trying to release lock %p (%s) at:\n", taskName(id), m, m.name)
	printStack(b, callers(skip, 1), " ")
	if got != nil {
		fmt.Fprintf(b, "but it holds the lock for %s, not for %s:\n", modeWord(got.mode), modeWord(mode))
		printLock(b, got)
	} else {
		b.WriteString("but there are no more locks to release!\n")
		fmt.Fprintf(b, "(the lock is held by %s)\n", l.holders(m))
	}
	b.WriteString("\nother info that might help us debug this:\n")
	printHeldLocks(b, id, l.heldOf(id))
	stackBacktrace(b, skip+1)
	return lockdepReport(TitleBadUnlock, b)
}

// assertBug is the WARN_ON() of lockdep_assert_held{,_read,_write}().
func (l *lockdep) assertBug(m *lockdepMap, mode lockMode, skip int) *bug.Report {
	if !l.once(reportKey{what: "assert", a: int(mode), s: m.name}) {
		return nil
	}
	title, fn := TitleAssertHeld, "lockdep_assert_held"
	switch mode {
	case modeRead:
		title, fn = TitleAssertHeldRead, "lockdep_assert_held_read"
	case modeWrite:
		if m.kind == kindRWSem {
			title, fn = TitleAssertHeldWrite, "lockdep_assert_held_write"
		}
	}
	id := CurrentTask()
	var b strings.Builder
	b.WriteString("------------[ cut here ]------------\n")
	fmt.Fprintf(&b, "WARNING: %s(%s) failed in %s at %s\n", fn, m.name, taskName(id), frameAt(callers(skip, 1)))
	fmt.Fprintf(&b, "the task does not hold lock %p (%s) for %s (held by %s)\n\n", m, m.name, modeWord(mode), l.holders(m))
	printHeldLocks(&b, id, l.heldOf(id))
	stackBacktrace(&b, skip+1)
	b.WriteString("---[ end trace ]---\n")
	return lockdepReport(title, &b)
}

// sysExitBug is lockdep_sys_exit()'s splat.
func (l *lockdep) sysExitBug(t *ldTask, where string, skip int) *bug.Report {
	var key strings.Builder
	key.WriteString(where)
	for i := range t.held {
		key.WriteString("|" + t.held[i].class.String())
	}
	if !l.once(reportKey{what: "sysexit", s: key.String()}) {
		return nil
	}
	b := splat(TitleHeldAtExit)
	fmt.Fprintf(b, "%s is leaving the kernel (%s) with locks still held!\n", taskName(t.id), where)
	printHeldLocks(b, t.id, t.held)
	for i := range t.held {
		fmt.Fprintf(b, "\n#%d %s acquired at:\n", i, t.held[i].class)
		printStack(b, t.held[i].pcs(), "  ")
	}
	stackBacktrace(b, skip+1)
	return lockdepReport(TitleHeldAtExit, b)
}

// badSubclass ports look_up_lock_class()'s "BUG: looking up invalid
// subclass" check.
func (l *lockdep) badSubclass(m *lockdepMap, sub int, skip int) *bug.Report {
	if !l.once(reportKey{what: "subclass", a: sub, s: m.name}) {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "BUG: looking up invalid subclass: %d (lock %s, max %d)\n", sub, m.name, MaxSubclasses-1)
	b.WriteString("the subclass is clamped into range.\n")
	stackBacktrace(&b, skip+1)
	return lockdepReport(TitleBadSubclass, &b)
}

// showAllLocks ports debug_show_all_locks().
func (l *lockdep) showAllLocks() string {
	type snap struct {
		id   int64
		held []heldLock
	}
	var all []snap
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		for id, t := range sh.tasks {
			if len(t.held) > 0 { // idle tasks stay in the table
				all = append(all, snap{id, slices.Clone(t.held)})
			}
		}
		sh.mu.Unlock()
	}
	slices.SortFunc(all, func(a, b snap) int { return int(a.id - b.id) })
	var b strings.Builder
	b.WriteString("\nShowing all locks held in the system:\n")
	for _, s := range all {
		printHeldLocks(&b, s.id, s.held)
	}
	b.WriteString("\n=============================================\n")
	return b.String()
}

// deadlockDetail joins a scheduler's account of a deadlock with the locks
// held at that moment.
func deadlockDetail(detail, locks string) string {
	detail = strings.TrimRight(detail, "\n")
	if locks == "" {
		return detail + "\n"
	}
	return detail + "\n" + locks
}
