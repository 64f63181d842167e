package locking

import (
	"sync"
	"unsafe"

	"github.com/sasha-s/go-deadlock"
)

// This file is the lock word's two faces. A Mutex or RWSem keeps one
// go-deadlock lock as its word. Taken through go-deadlock's methods, every
// acquisition captures the caller's stack and, with the watchdog on, arms a
// timer; that is what watches a free-running task's real wait. Under a
// controlled scheduler no task ever waits in the word (locks only try it,
// and the scheduler finds deadlocks itself), and a domain built with
// Options.NoDeadlockWatch runs its free parts single-threaded (a checker's
// sequential setup): there the work finds nothing and costs most of a
// schedule (the stack walks were 43% of BenchmarkSchedules). Those
// acquisitions go to the sync lock underneath, and the lock records which
// face took it, so that the release matches and go-deadlock's table of
// holders never keeps an entry it was not given.

// rawWords is whether go-deadlock's Mutex and RWMutex are, in this build,
// the sync locks underneath and nothing else (its default build: a struct
// whose only field is a struct whose only field is the sync lock); then the
// sync lock is at the same address. In its synctest build they are channel
// locks: every acquisition then goes through go-deadlock, as before.
const rawWords = unsafe.Sizeof(deadlock.Mutex{}) == unsafe.Sizeof(sync.Mutex{}) &&
	unsafe.Sizeof(deadlock.RWMutex{}) == unsafe.Sizeof(sync.RWMutex{})

// rawMutex returns the sync.Mutex under w (only when rawWords).
func rawMutex(w *deadlock.Mutex) *sync.Mutex { return (*sync.Mutex)(unsafe.Pointer(w)) }

// rawRWMutex returns the sync.RWMutex under w (only when rawWords).
func rawRWMutex(w *deadlock.RWMutex) *sync.RWMutex { return (*sync.RWMutex)(unsafe.Pointer(w)) }

// watched reports whether an acquisition in d now goes through go-deadlock:
// free-running, in a domain it watches (or when the build has no raw
// words).
func (d *Domain) watched(s Scheduler) bool {
	return !rawWords || (s == nil && !d.noWatch)
}

// wordTryLock try-locks w through go-deadlock if watch, else raw.
func wordTryLock(w *deadlock.Mutex, watch bool) bool {
	if watch {
		return w.TryLock()
	}
	return rawMutex(w).TryLock()
}

// wordLock locks w through go-deadlock if watch, else raw.
func wordLock(w *deadlock.Mutex, watch bool) {
	if watch {
		w.Lock()
		return
	}
	rawMutex(w).Lock()
}

// wordUnlock unlocks w the way it was locked.
func wordUnlock(w *deadlock.Mutex, watch bool) {
	if watch {
		w.Unlock()
		return
	}
	rawMutex(w).Unlock()
}
