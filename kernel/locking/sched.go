package locking

import "fmt"

// Point is the kind of a scheduling point: a place where a controlled
// scheduler may switch to another task.
type Point uint8

// Scheduling point kinds. Every lock acquire and release in this package is
// one; other packages declare theirs with Domain.Yield.
const (
	// PointLockAcquire: about to acquire a Mutex or RWSem (also trylock).
	PointLockAcquire Point = iota + 1
	// PointLockRelease: just released a Mutex or RWSem.
	PointLockRelease
	// PointFilePut: fput() is about to drop a reference that may be the
	// last one, before the release hook runs.
	PointFilePut
	// PointFDInstall: fd_install() is about to publish a file in a table.
	PointFDInstall
	// PointFDRemove: close_fd()/file_close_fd() is about to take a file
	// out of a table.
	PointFDRemove
	// PointPhase: an explicit yield between phases of a long operation
	// (e.g. between sessions in luo_session_serialize()).
	PointPhase
	// PointLockHeld: just acquired a lock. Locks have no point of their own
	// here (a scheduler that wants to preempt inside every critical
	// section, as a preemptible kernel can, yields from
	// LockObserver.Acquired).
	PointLockHeld
	// PointModulePut: module_put() just dropped a module's last user
	// reference (its preempt_enable()): a delete_module() may now unload
	// it, while the caller may still be about to run the module's code.
	PointModulePut
)

var pointNames = [...]string{
	PointLockAcquire: "lock-acquire",
	PointLockRelease: "lock-release",
	PointFilePut:     "file-put",
	PointFDInstall:   "fd-install",
	PointFDRemove:    "fd-remove",
	PointPhase:       "phase",
	PointLockHeld:    "lock-held",
	PointModulePut:   "module-put",
}

// String names p for traces.
func (p Point) String() string {
	if int(p) < len(pointNames) && pointNames[p] != "" {
		return pointNames[p]
	}
	return fmt.Sprintf("point(%d)", p)
}

// WaitObject is something a task can wait for. *Mutex and *RWSem are wait
// objects; a Scheduler compares them with == (pointer identity) and may
// print them.
type WaitObject interface {
	fmt.Stringer
}

// Scheduler is the seam for a controlled scheduler, which runs the tasks of
// a Domain one at a time and decides at every scheduling point who runs
// next. A Scheduler must switch tasks only inside Yield and Block: between
// two such calls the running task is alone, which is what makes "try to
// acquire, else Block" free of lost wake-ups.
//
// The calls come from whatever goroutine reaches a scheduling point. A
// scheduler identifies the task with CurrentTask(); goroutines it does not
// manage may reach it too (e.g. a test's cleanup), and it should let them
// through: return from Yield at once, and from Block after runtime.Gosched()
// (a spurious wake-up; the lock retries).
type Scheduler interface {
	// Yield is a scheduling point of kind p in the current task. It
	// returns when the scheduler next picks the current task.
	Yield(p Point)
	// Block parks the current task, which waits for w, until another task
	// calls Wake(w), and then until the scheduler picks it again. It may
	// return spuriously; callers re-check their condition. A lock acquire
	// under a scheduler is `for !tryAcquire() { s.Block(l) }`. If every
	// task is blocked the scheduler has found a deadlock; it may report it
	// with Domain.ReportDeadlock.
	Block(w WaitObject)
	// Wake makes every task blocked on w runnable. It does not switch
	// tasks; the caller reaches a Yield next.
	Wake(w WaitObject)
}

// schedBox lets an interface value live in an atomic.Pointer.
type schedBox struct{ s Scheduler }

// LockObserver is an optional interface of a Scheduler: one that has it is
// told of every acquisition and release of an Init'ed lock of its domain,
// by the task doing it, while it holds the CPU. It lets a scheduler know
// who holds what (critical-section coverage, steering toward preemptions
// inside critical sections). class is the lock's lockdep class name.
type LockObserver interface {
	// Acquiring: the current task is about to try to take l (after its
	// acquire scheduling point, before it may block).
	Acquiring(l WaitObject, class string, read bool)
	// Acquired: the current task took l.
	Acquired(l WaitObject, class string, read bool)
	// Released: the current task released l.
	Released(l WaitObject, read bool)
}

// observer returns s's LockObserver, nil if it has none.
func observer(s Scheduler) LockObserver {
	o, _ := s.(LockObserver)
	return o
}
