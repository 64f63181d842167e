// Package locking ports the parts of Linux's kernel/locking/ that LUO and
// its substrate use: struct mutex (Mutex), struct rw_semaphore (RWSem),
// lockdep, and the scheduling points a controlled scheduler hooks into.
//
// # Model
//
// A task is a goroutine; CurrentTask returns its id (the Go `current`).
// Every lock belongs to a Domain, one per kernel, and, once initialised with
// Init, to a lockdep class named where the lock is declared, e.g.
// "luo_session.mutex". Nothing is package-level: two kernels in one process
// (parallel tests, or both sides of a kexec) have separate classes, graphs,
// held-lock stacks and schedulers.
//
//	var m locking.Mutex
//	m.Init(dom, "luo_session.mutex")
//	m.Lock()
//	defer m.Unlock()            // or: defer m.Guard()(); see guard.go
//
// A lock must be Init'ed before use; kernel objects Init their locks when
// they are created. Init points the lock's magic word at the lock, as
// CONFIG_DEBUG_MUTEXES and CONFIG_DEBUG_RWSEMS do, and every operation
// checks it (in every domain, lockdep or not; one compare on the fast
// path). A lock used before Init works as a plain lock that neither lockdep
// nor the scheduler sees, so the bug neither hangs nor panics the model;
// having no domain yet, it cannot report, so it records its first use and
// the Init that follows reports it ("lock used before init", lockdep's
// "trying to register non-static key"). Init of a lock that is held or
// waited for is reported ("held lock re-initialised!") and leaves the lock
// as it was; a copy of an Init'ed lock is reported when used. See
// lock_debug.go.
//
// RWSem is writer-preferring as in Linux: once a writer waits, new readers
// wait too, so taking a read lock twice can deadlock against a writer.
//
// # Lockdep
//
// With Options.Lockdep (CONFIG_PROVE_LOCKING) a Domain validates every
// acquisition of an Init'ed lock before it blocks, the way
// kernel/locking/lockdep.c does:
//
//   - classes are per (domain, name, nesting subclass); LockNested,
//     DownReadNested and DownWriteNested pick a subclass;
//   - each task has a held-lock stack; taking a class it already holds is
//     "possible recursive locking" (check_deadlock()), including a second
//     read of an rwsem, since readers are not recursive;
//   - taking B while holding A records the dependency A --> B in the
//     domain's class graph; a dependency that closes a cycle of any length
//     is a "possible circular locking dependency" (check_noncircular()),
//     found from one task's history alone, on different instances, with no
//     actual deadlock needed;
//   - releasing a lock the task does not hold is "bad unlock balance"; the
//     lock is then left alone;
//   - Domain.CheckNoLocksHeld (lockdep_sys_exit()) reports locks held when
//     a syscall returns; AssertHeld, AssertHeldRead, AssertHeldWrite port
//     lockdep_assert_held*().
//
// Reports go to the domain's bug.Reporter as bug.KindLockdep with a Title*
// constant for title and a Linux-style splat, including the recorded and
// current stacks, for detail. Each distinct problem (class, cycle, ...) is
// reported once per domain. A handler may panic to abort the offending
// acquisition: the check runs before the lock is taken or recorded.
//
// # Scheduler seam
//
// Every acquire and release is a scheduling point, and other packages add
// theirs with Domain.Yield (fd install, fput, phases of long operations).
// With no Scheduler installed a point costs one atomic load. Installed with
// Domain.SetScheduler, a Scheduler runs one task at a time and picks who
// runs at each point; locks then never block a goroutine on the real lock
// (that would hang the one running task): an acquire is
// `Yield(PointLockAcquire); for !tryAcquire() { Block(lock) }` and a release
// is `unlock; Wake(lock); Yield(PointLockRelease)`. An RWSem's writers that
// wait under the scheduler are counted in the RWSem so that new readers wait
// behind them, keeping writer preference. The Scheduler interface documents
// the contract; a test scheduler in sched_test.go shows one.
//
// # go-deadlock
//
// Free-running locks are github.com/sasha-s/go-deadlock locks, so a test
// can have real waits watched: ConfigureDeadlockDetection turns on its
// watchdog (a wait longer than a timeout is reported) and routes its
// reports, e.g. with DeadlockReporter to a bug.Reporter as
// bug.KindDeadlock. Its options are package globals of that library,
// shared by every Domain in the process; there is no per-lock way to set
// them, which is why this one process-wide switch exists. It is off by
// default (this package's init turns off the library's default, which is
// on and exits the process), leaving the fast path a sync lock behind one
// branch. go-deadlock's own lock-order check works on instances and knows
// no nesting subclasses, so it can flag LockNested-style code that lockdep
// accepts; it stays off unless DeadlockDetection.LockOrder asks for it.
// Under a scheduler, locks only TryLock, so the watchdog sees nothing; the
// scheduler itself detects that every task is blocked and calls
// Domain.ReportDeadlock.
package locking
