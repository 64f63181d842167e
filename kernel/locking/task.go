package locking

import "github.com/petermattis/goid"

// CurrentTask returns the identity of the running task: the goroutine id.
// It is the Go counterpart of `current` for everything in this package:
// lockdep's held-lock stacks are keyed by it, and a Scheduler uses it to tell
// its tasks apart. Goroutine ids are never reused within a process.
func CurrentTask() int64 { return goid.Get() }
