package locking

import (
	"fmt"
	"slices"
)

// This file is the controlled scheduler's read-only view of lockdep's
// held-lock stacks (kernel/sched): to report a deadlock as a wait-for cycle
// it must know who holds the lock each blocked task waits for, and where it
// was taken. It is not a port of a Linux function; debug_show_all_locks()
// is the closest.

// HeldLock is one entry of a task's held-lock stack.
type HeldLock struct {
	// Task is the holder (CurrentTask() of its goroutine).
	Task int64
	// Lock names the lock instance exactly as its String method does
	// ("mutex luo_session.mutex@0x..."), so a scheduler can match it with
	// the WaitObject a task blocks on.
	Lock string
	// Class is the lockdep class, with "/subclass" when nested.
	Class string
	// Read is set for a read hold of an RWSem.
	Read bool
	// At is where the lock was acquired, "func (file:line)".
	At string
}

// HeldLocks returns every lock held in d, by task id, then in acquisition
// order; nil when lockdep is off. As in Linux, lockdep records a lock when
// its acquisition starts, so a task waiting for a lock lists it as well.
func (d *Domain) HeldLocks() []HeldLock {
	if d == nil || d.ld == nil {
		return nil
	}
	var out []HeldLock
	for i := range d.ld.shards {
		sh := &d.ld.shards[i]
		sh.mu.Lock()
		for id, t := range sh.tasks {
			for j := range t.held {
				h := &t.held[j]
				kind := "mutex"
				if h.inst.kind == kindRWSem {
					kind = "rwsem"
				}
				out = append(out, HeldLock{
					Task:  id,
					Lock:  fmt.Sprintf("%s %s@%p", kind, h.inst.name, h.inst),
					Class: h.class.String(),
					Read:  h.mode == modeRead,
					At:    frameAt(h.pcs()),
				})
			}
		}
		sh.mu.Unlock()
	}
	slices.SortStableFunc(out, func(a, b HeldLock) int {
		switch {
		case a.Task < b.Task:
			return -1
		case a.Task > b.Task:
			return 1
		}
		return 0
	})
	return out
}
