package sched

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"

	"luomodel/kernel/locking"
)

// DefaultMaxSteps bounds the scheduling points of one run when
// Options.MaxSteps is 0; a run that exceeds it fails (a livelock, or a
// program far larger than the checker's).
const DefaultMaxSteps = 100000

// runHint is the scheduling points a run's trace and choices are first
// sized for.
const runHint = 128

// Options configures a Scheduler.
type Options struct {
	// Chooser picks who runs at each decision; nil always picks 0 (each
	// task runs until it blocks or finishes).
	Chooser Chooser
	// MaxSteps bounds the scheduling points of the run (0:
	// DefaultMaxSteps).
	MaxSteps int
	// Trace records every scheduling point in Result.Events.
	Trace bool
	// OnContend, if set, is called when a task starts to take a lock
	// (class: its lockdep class) that other tasks hold: each holder was
	// preempted inside its critical section while waiter runs into it
	// (waits for it, or enters it beside a reader). It runs on the
	// waiter's goroutine, which holds the CPU; it must not call s.
	OnContend func(holder, waiter int, class string)
	// OnAcquire, if set, is called when a task has taken a lock, on its
	// goroutine; it must not call s.
	OnAcquire func(task int, class string)
	// PreemptInside, if set, makes the moment a task has taken a lock of
	// a class it accepts a scheduling point (locking.PointLockHeld): a
	// preemption inside the critical section, even one with no lock or
	// yield of its own, as a preemptible kernel may preempt anywhere.
	PreemptInside func(class string) bool
}

// Event is one scheduling point of a traced run.
type Event struct {
	Step  int           // 1-based
	Task  int           // index of the task at the point
	Point locking.Point // 0 when the task blocked
	Wait  string        // the lock a blocking task waits for
	Next  int           // index of the task that runs next, -1 if none
}

// Result is what a run did.
type Result struct {
	// Steps counts scheduling points (yields and blocks).
	Steps int
	// Choices lists every decision's choice, in order: Replay(Choices)
	// reproduces the run.
	Choices []int
	// Switches counts hand-overs of the CPU to another task; Preemptions
	// counts those where the previous task could have kept running.
	Switches, Preemptions int
	// Events is every scheduling point when Options.Trace is set.
	Events []Event
	// Deadlock is the detail of the deadlock report, "" if none.
	Deadlock string
	// Failure is the first panic that escaped a task (with its stack), or
	// the step limit being hit; nil if the run completed.
	Failure error
	// Killed lists the tasks killed with Kill, by index.
	Killed []int
}

// Scheduler runs tasks one at a time under a locking.Domain.
type Scheduler struct {
	dom  *locking.Domain // immutable
	opts Options         // immutable

	// mu guards the bookkeeping below. It is a plain sync.Mutex because
	// it is the scheduler's own lock: held only for instants, never
	// across a hand-over, and tasks never wait on it in any sense the
	// checker must see. The hand-over itself is each task's wake
	// channel: the mechanism under the seam, not a task wait.
	mu sync.Mutex
	// tasks is fixed once Run starts; the Task fields say what guards them.
	tasks []*Task
	// byID maps a goroutine id to its task; guarded by mu.
	byID map[int64]*Task
	// cur is the task holding the CPU; guarded by mu.
	cur *Task
	// res is the result in progress; guarded by mu.
	res Result
	// aborting is set once the run is being ended early; guarded by mu.
	aborting bool
	// chooserPanic is a Chooser's panic, re-raised by Run; guarded by mu.
	chooserPanic any
	// point is the kind of the scheduling point being decided (0: a
	// block or an exit); guarded by mu.
	point locking.Point
	// dec is the Decision pickLocked hands the Chooser, reused (with its
	// slices) from one decision to the next; guarded by mu.
	dec Decision
	// exited counts task goroutines that have not returned.
	exited sync.WaitGroup
}

// Task is one goroutine run by a Scheduler.
type Task struct {
	s    *Scheduler    // immutable
	name string        // immutable
	idx  int           // immutable
	fn   func(*Task)   // immutable
	wake chan struct{} // the CPU token; capacity 1
	// id is the goroutine id; written before the task is registered in
	// byID (under mu), immutable afterwards.
	id int64
	// blockedOn is the lock the task waits for, nil if runnable; guarded
	// by s.mu.
	blockedOn locking.WaitObject
	// finished and killed are guarded by s.mu. A killed task unwinds
	// (runtime.Goexit) the next time it holds the CPU.
	finished, killed bool
	// held lists the classes of the locks the task holds, in order taken
	// (LockObserver); guarded by s.mu.
	held []heldLock
}

// heldLock is one lock a task holds.
type heldLock struct {
	obj   locking.WaitObject
	class string
}

// New returns a scheduler for the tasks of dom.
func New(dom *locking.Domain, opts Options) *Scheduler {
	if opts.MaxSteps == 0 {
		opts.MaxSteps = DefaultMaxSteps
	}
	return &Scheduler{dom: dom, opts: opts, byID: make(map[int64]*Task)}
}

// Acquiring implements locking.LockObserver: it reports the holders of l
// to Options.OnContend.
func (s *Scheduler) Acquiring(l locking.WaitObject, class string, read bool) {
	if s.opts.OnContend == nil {
		return
	}
	s.mu.Lock()
	t := s.currentLocked()
	if t == nil {
		s.mu.Unlock()
		return
	}
	// The holders of l: the tasks whose held lists name it (a reader
	// holding it twice, twice).
	var hs []int
	for _, h := range s.tasks {
		if h == t {
			continue
		}
		for _, hl := range h.held {
			if hl.obj == l {
				hs = append(hs, h.idx)
			}
		}
	}
	s.mu.Unlock()
	for _, h := range hs {
		s.opts.OnContend(h, t.idx, class)
	}
}

// Acquired implements locking.LockObserver.
func (s *Scheduler) Acquired(l locking.WaitObject, class string, read bool) {
	s.mu.Lock()
	t := s.currentLocked()
	if t == nil {
		s.mu.Unlock()
		return
	}
	t.held = append(t.held, heldLock{obj: l, class: class})
	s.mu.Unlock()
	if s.opts.OnAcquire != nil {
		s.opts.OnAcquire(t.idx, class)
	}
	if s.opts.PreemptInside != nil && s.opts.PreemptInside(class) {
		s.Yield(locking.PointLockHeld)
	}
}

// Released implements locking.LockObserver.
func (s *Scheduler) Released(l locking.WaitObject, read bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.currentLocked()
	if t == nil {
		return
	}
	for i := len(t.held) - 1; i >= 0; i-- {
		if t.held[i].obj == l {
			t.held = slices.Delete(t.held, i, i+1)
			break
		}
	}
}

// Go adds a task running fn. Call it before Run.
func (s *Scheduler) Go(name string, fn func(t *Task)) *Task {
	t := &Task{s: s, name: name, idx: len(s.tasks), fn: fn, wake: make(chan struct{}, 1)}
	s.tasks = append(s.tasks, t)
	return t
}

// Name is the task's name.
func (t *Task) Name() string { return t.name }

// Index is the task's position in Go order.
func (t *Task) Index() int { return t.idx }

// Kill ends the task as if the machine had stopped under it (a kexec): it
// never runs its code again; the next time it would run it unwinds instead.
// Any task may kill any other; the caller keeps the CPU until its next
// scheduling point.
func (t *Task) Kill() {
	s := t.s
	s.mu.Lock()
	if !t.finished && !t.killed {
		t.killed = true
		s.res.Killed = append(s.res.Killed, t.idx)
	}
	s.mu.Unlock()
}

// Killed reports whether t was killed (or unwound by an aborted run).
func (t *Task) Killed() bool {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	return t.killed
}

// KillOthers kills every task but t.
func (t *Task) KillOthers() {
	for _, o := range t.s.tasks {
		if o != t {
			o.Kill()
		}
	}
}

// Steps returns the number of scheduling points reached so far: a logical
// clock for histories, read by the running task.
func (s *Scheduler) Steps() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.res.Steps
}

// Unwinding reports whether goroutine id is a task of s that is being
// killed or unwound. Report handlers use it to ignore what such a task
// files while its deferred calls run in a kernel that no longer exists.
func (s *Scheduler) Unwinding(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.byID[id]
	return t != nil && t.killed
}

// Run installs s on its domain, runs every task to its end and uninstalls
// s. A Chooser's panic is re-raised here, on the caller's goroutine, after
// every task goroutine has exited.
func (s *Scheduler) Run() Result {
	if len(s.tasks) == 0 {
		return Result{}
	}
	s.dom.SetScheduler(s)
	defer s.dom.SetScheduler(nil)
	// Sized for a typical run (a concurrent check's round of three
	// threads reaches about 90 points and makes about 65 choices), so
	// that the run does not grow them point by point.
	s.res.Choices = make([]int, 0, runHint)
	if s.opts.Trace {
		s.res.Events = make([]Event, 0, runHint)
	}
	var reg sync.WaitGroup
	for _, t := range s.tasks {
		reg.Add(1)
		s.exited.Add(1)
		go s.taskMain(t, &reg)
	}
	reg.Wait()
	s.mu.Lock()
	next, _ := s.pickLocked(nil, false) // all runnable: no deadlock
	s.cur = next
	s.mu.Unlock()
	next.wake <- struct{}{}
	s.exited.Wait()

	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.chooserPanic; p != nil {
		panic(p)
	}
	return s.res
}

// taskMain is a task's goroutine.
func (s *Scheduler) taskMain(t *Task, reg *sync.WaitGroup) {
	growStack(0)
	defer s.exited.Done()
	defer s.exit(t)
	t.id = locking.CurrentTask()
	s.mu.Lock()
	s.byID[t.id] = t
	s.mu.Unlock()
	reg.Done()
	<-t.wake
	s.mu.Lock()
	killed := t.killed
	s.mu.Unlock()
	if killed {
		return
	}
	t.fn(t)
}

// taskStack is about the stack a task's syscalls reach (the kernel's
// call chains under lockdep and the scheduler's hooks).
const taskStack = 16 << 10

// growStack gives the calling goroutine a stack of at least taskStack
// bytes at once, while it is shallow: growing it on demand, deep in a
// syscall, copies it (and walks its frames) once per doubling, for every
// task of every run. It returns pad[i] so that the frame is not optimized
// away.
//
//go:noinline
func growStack(i int) byte {
	var pad [taskStack / 2]byte
	return pad[i]
}

// exit runs when a task's function returns, panics or unwinds: a panic is
// the run's failure; the CPU goes to the next task.
func (s *Scheduler) exit(t *Task) {
	r := recover()
	s.mu.Lock()
	if r != nil && !t.killed {
		if s.res.Failure == nil {
			s.res.Failure = fmt.Errorf("task %s panicked: %v\n%s", t.name, r, debug.Stack())
		}
		s.abortLocked()
	}
	t.finished = true
	s.switchLocked(t, false)
}

// currentLocked returns the calling goroutine's task, nil if it is not
// one. s.mu must be held.
func (s *Scheduler) currentLocked() *Task {
	id := locking.CurrentTask()
	if s.cur != nil && s.cur.id == id {
		return s.cur // the usual caller: the task holding the CPU
	}
	return s.byID[id]
}

// Yield implements locking.Scheduler.
func (s *Scheduler) Yield(p locking.Point) {
	s.mu.Lock()
	t := s.currentLocked()
	if t == nil {
		s.mu.Unlock()
		return
	}
	if t.killed {
		s.mu.Unlock()
		runtime.Goexit()
	}
	s.stepLocked(t, p, nil)
	s.point = p
	s.switchLocked(t, true)
	s.mu.Lock()
	s.point = 0
	s.mu.Unlock()
}

// Block implements locking.Scheduler.
func (s *Scheduler) Block(w locking.WaitObject) {
	s.mu.Lock()
	t := s.currentLocked()
	if t == nil {
		// Not a task of this run (e.g. a test's cleanup): a spurious
		// wake-up; the lock retries.
		s.mu.Unlock()
		runtime.Gosched()
		return
	}
	if t.killed {
		s.mu.Unlock()
		runtime.Goexit()
	}
	t.blockedOn = w
	s.stepLocked(t, 0, w)
	s.switchLocked(t, false)
}

// Wake implements locking.Scheduler.
func (s *Scheduler) Wake(w locking.WaitObject) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.tasks {
		if o.blockedOn == w {
			o.blockedOn = nil
		}
	}
}

// stepLocked counts a scheduling point and enforces the step limit.
func (s *Scheduler) stepLocked(t *Task, p locking.Point, w locking.WaitObject) {
	s.res.Steps++
	if s.opts.Trace {
		e := Event{Step: s.res.Steps, Task: t.idx, Point: p, Next: -1}
		if w != nil {
			e.Wait = w.String()
		}
		s.res.Events = append(s.res.Events, e)
	}
	if s.res.Steps > s.opts.MaxSteps && !s.aborting {
		s.res.Failure = fmt.Errorf("sched: more than %d scheduling points (livelock?)", s.opts.MaxSteps)
		s.abortLocked()
	}
}

// abortLocked ends the run early: every unfinished task is killed and
// unwinds when it next holds the CPU.
func (s *Scheduler) abortLocked() {
	s.aborting = true
	for _, o := range s.tasks {
		if !o.finished {
			o.killed = true
		}
	}
}

// switchLocked leaves t, which reached a scheduling point (runnable: it
// yields) or cannot run (it blocks or finished), for whoever is picked,
// and returns when t holds the CPU again. s.mu is held on entry and
// released. A killed t unwinds instead of returning.
func (s *Scheduler) switchLocked(t *Task, runnable bool) {
	if t.killed && !t.finished {
		// Aborted while reaching this point: unwind now; exit hands the
		// CPU on.
		s.mu.Unlock()
		runtime.Goexit()
	}
	next, deadlock := s.pickLocked(t, runnable)
	if deadlock {
		// Report first, from a task that is not unwinding yet, without
		// s.mu (the handler may ask Unwinding); t keeps the CPU.
		detail := s.deadlockDetailLocked()
		s.res.Deadlock = detail
		s.mu.Unlock()
		s.fileDeadlock(detail)
		s.mu.Lock()
		s.abortLocked()
		if !t.finished {
			s.mu.Unlock()
			runtime.Goexit()
		}
		next = s.firstKilledLocked(t)
	}
	if t.killed && !t.finished {
		// The Chooser panicked and the run is aborted.
		s.mu.Unlock()
		runtime.Goexit()
	}
	if s.opts.Trace && len(s.res.Events) > 0 && !t.finished {
		s.res.Events[len(s.res.Events)-1].Next = idxOf(next)
	}
	if next == nil {
		s.cur = nil
		s.mu.Unlock()
		return
	}
	if next != t {
		s.res.Switches++
		if runnable {
			s.res.Preemptions++
		}
	}
	s.cur = next
	s.mu.Unlock()
	if next == t {
		return
	}
	next.wake <- struct{}{}
	if t.finished {
		return
	}
	<-t.wake
	s.mu.Lock()
	killed := t.killed
	s.mu.Unlock()
	if killed {
		runtime.Goexit()
	}
}

func idxOf(t *Task) int {
	if t == nil {
		return -1
	}
	return t.idx
}

// pickLocked chooses the next task after cur (nil at the start). Killed
// tasks go first, in index order, so that they unwind before anyone else
// runs; then the Chooser decides among the runnable tasks. nil means every
// task has finished, or, with deadlock set, that unfinished tasks remain
// and none is runnable.
func (s *Scheduler) pickLocked(cur *Task, curRunnable bool) (next *Task, deadlock bool) {
	if k := s.firstKilledLocked(cur); k != nil {
		return k, false
	}
	n := len(s.tasks)
	cands := s.dec.Candidates[:0]
	if cur != nil && curRunnable {
		cands = append(cands, cur.idx)
	}
	start := 0
	if cur != nil {
		start = cur.idx + 1
	}
	for i := range n {
		o := s.tasks[(start+i)%n]
		if o == cur || o.finished || o.blockedOn != nil {
			continue
		}
		cands = append(cands, o.idx)
	}
	switch len(cands) {
	case 0:
		return nil, s.unfinishedLocked() > 0
	case 1:
		return s.tasks[cands[0]], false
	}
	d := &s.dec
	*d = Decision{Step: s.res.Steps, Current: idxOf(cur), CurrentRunnable: cur != nil && curRunnable, Candidates: cands, Held: d.Held[:0]}
	if curRunnable {
		d.Point = s.point
	}
	if cur != nil {
		for _, h := range cur.held {
			d.Held = append(d.Held, h.class)
		}
	}
	c, ok := s.chooseLocked(d)
	if !ok {
		return s.firstKilledLocked(cur), false
	}
	s.res.Choices = append(s.res.Choices, c)
	return s.tasks[cands[c]], false
}

// firstKilledLocked returns the first killed, unfinished task other than
// cur.
func (s *Scheduler) firstKilledLocked(cur *Task) *Task {
	for _, o := range s.tasks {
		if o.killed && !o.finished && o != cur {
			return o
		}
	}
	return nil
}

// chooseLocked asks the Chooser; a panic (rapid ending the test case)
// aborts the run and is kept for Run to re-raise.
func (s *Scheduler) chooseLocked(d *Decision) (c int, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			s.chooserPanic = r
			s.abortLocked()
			ok = false
		}
	}()
	c = 0
	if s.opts.Chooser != nil {
		c = s.opts.Chooser.Choose(d)
	}
	if c < 0 || c >= len(d.Candidates) {
		c = 0
	}
	return c, true
}

func (s *Scheduler) unfinishedLocked() int {
	n := 0
	for _, o := range s.tasks {
		if !o.finished {
			n++
		}
	}
	return n
}
