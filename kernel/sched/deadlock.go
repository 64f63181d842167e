package sched

import (
	"fmt"
	"strings"

	"luomodel/kernel/locking"
)

// deadlockDetailLocked explains a deadlock: every unfinished task and the
// lock it waits for, who holds that lock (lockdep's held-lock stacks) and
// where it was taken, then the wait-for cycle if there is one. Holders are
// known only with lockdep on; a lock held by a task that finished (e.g. a
// serialize rwsem kept for the kexec) ends a chain instead of closing a
// cycle.
func (s *Scheduler) deadlockDetailLocked() string {
	held := s.dom.HeldLocks()
	byGoid := map[int64]*Task{}
	for _, t := range s.tasks {
		byGoid[t.id] = t
	}
	name := func(id int64) string {
		if t := byGoid[id]; t != nil {
			return fmt.Sprintf("%s (task/%d)", t.name, id)
		}
		return fmt.Sprintf("task/%d (not a task of this run)", id)
	}
	// holders of w: tasks holding it that do not themselves wait for it
	// (lockdep lists a lock from the start of its acquisition).
	holders := func(w locking.WaitObject) []locking.HeldLock {
		key := w.String()
		var out []locking.HeldLock
		for _, h := range held {
			if h.Lock != key {
				continue
			}
			if t := byGoid[h.Task]; t != nil && t.blockedOn == w {
				continue
			}
			out = append(out, h)
		}
		return out
	}

	var b strings.Builder
	b.WriteString("controlled scheduler: no runnable task\n")
	waitsFor := map[*Task]*Task{}
	for _, t := range s.tasks {
		if t.finished {
			continue
		}
		if t.blockedOn == nil {
			fmt.Fprintf(&b, "task %s is runnable\n", name(t.id))
			continue
		}
		fmt.Fprintf(&b, "task %s waits for %s\n", name(t.id), t.blockedOn)
		hs := holders(t.blockedOn)
		if len(hs) == 0 && s.dom.LockdepEnabled() {
			b.WriteString("    held by no task (lost wake-up?)\n")
		}
		for _, h := range hs {
			mode := "held"
			if h.Read {
				mode = "held for read"
			}
			state := ""
			if o := byGoid[h.Task]; o == nil || o.finished {
				state = ", which has finished"
			}
			fmt.Fprintf(&b, "    %s by %s%s (class %s), taken at %s\n", mode, name(h.Task), state, h.Class, h.At)
			if o := byGoid[h.Task]; o != nil && !o.finished && waitsFor[t] == nil {
				waitsFor[t] = o
			}
		}
	}
	if cyc := findCycle(s.tasks, waitsFor); len(cyc) > 0 {
		b.WriteString("wait-for cycle:\n")
		for i, t := range cyc {
			nx := cyc[(i+1)%len(cyc)]
			fmt.Fprintf(&b, "    %s --[%s]--> %s\n", t.name, t.blockedOn, nx.name)
		}
	}
	return b.String()
}

// findCycle returns a cycle of the wait-for graph, in order, or nil.
func findCycle(tasks []*Task, waitsFor map[*Task]*Task) []*Task {
	for _, start := range tasks {
		seen := map[*Task]int{}
		var path []*Task
		for t := start; t != nil; t = waitsFor[t] {
			if i, ok := seen[t]; ok {
				return path[i:]
			}
			seen[t] = len(path)
			path = append(path, t)
		}
	}
	return nil
}

// fileDeadlock files the report; a handler's panic must not escape into
// the task (it would be taken for the task's failure).
func (s *Scheduler) fileDeadlock(detail string) {
	defer func() { _ = recover() }()
	s.dom.ReportDeadlock(detail)
}

var _ locking.Scheduler = (*Scheduler)(nil)
