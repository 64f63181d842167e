// Package sched is the controlled scheduler: it runs the tasks of one
// kernel (goroutines driving syscalls) one at a time and decides at every
// scheduling point of kernel/locking's seam who runs next, so that an
// interleaving is a pure function of a sequence of choices. It is not a port
// of Linux's scheduler; it is the checker's CPU.
//
// # Model
//
// A Scheduler owns a set of Tasks added with Go and run by Run. Exactly one
// task holds the CPU. Control passes only at a scheduling point: a lock
// acquire or release, a file's last put, fd install or remove, or an
// explicit Domain.Yield between phases of a long operation. A task that
// Blocks on a lock is not runnable until another task Wakes that lock.
// RWSem writer preference is kept by kernel/locking itself (a waiting
// writer holds off new readers), so the scheduler needs no rwsem knowledge.
//
// At each point where more than one task could run, the Chooser picks one
// from a Decision whose candidates are ordered "current task first, then
// round-robin after it": choice 0 never preempts. Choosers:
//
//   - Rapid draws each choice from a rapid.T: shrinking moves choices
//     toward 0, so a failing interleaving shrinks to the fewest preemptions;
//   - PCT (Burckhardt et al., ASPLOS 2010): random task priorities and d-1
//     priority change points, which finds a bug of depth d with probability
//     at least 1/(n k^(d-1)) per run;
//   - DFS enumerates every schedule with at most a given number of
//     preemptions (iterative context bounding), for tiny configurations;
//   - Replay replays a recorded choice list.
//
// # Failures
//
// A deadlock (unfinished tasks, none runnable) files a bug.KindDeadlock
// report through Domain.ReportDeadlock with the wait-for cycle: each task,
// the lock it waits for with its class, and who holds that lock and where
// it was taken (from lockdep's held-lock stacks). A panic escaping a task,
// or a Chooser's panic (rapid aborting a draw), ends the run: Run returns
// it to the test goroutine as Result.Failure, or re-panics a Chooser's panic
// there so that rapid sees it where it expects it.
//
// A run that is ended early (deadlock, failure, step limit) or a task that
// is killed (Kill: the machine kexec'ed under it) unwinds its goroutines
// with runtime.Goexit from their scheduling point: deferred unlocks run,
// nothing recovers it as a panic, and every goroutine has exited when Run
// returns. Reports filed by a goroutine while it unwinds are not findings;
// Unwinding tells a report handler which those are.
package sched
