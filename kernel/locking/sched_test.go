//lint:file-ignore SA2001 some tests only need a lock taken and released

package locking_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/bug"
	"luomodel/kernel/locking"
)

// testSched is a tiny controlled scheduler built on the seam: it runs its
// tasks one at a time and at every scheduling point picks the next task by
// a fixed rule, round-robin or by priority. It proves the seam; the real
// scheduler (rapid choosing who runs) lives in proptest.
type testSched struct {
	dom      *locking.Domain
	priority bool // pick the first runnable task in Go order, not the next after the current

	mu      sync.Mutex
	tasks   []*schedTask         // guarded by mu
	byID    map[int64]*schedTask // guarded by mu
	events  []string             // guarded by mu: "task:point" and "task:block"
	aborted bool                 // guarded by mu: a deadlock was found
	reg     sync.WaitGroup       // tasks not yet registered
	running sync.WaitGroup       // tasks not yet finished
}

type schedTask struct {
	name      string
	idx       int
	fn        func()
	wake      chan struct{}      // the run token; capacity 1
	id        int64              // guarded by testSched.mu
	blockedOn locking.WaitObject // guarded by testSched.mu
	done      bool               // guarded by testSched.mu
}

// errAborted unwinds the tasks of a deadlocked run.
var errAborted = errors.New("test scheduler: deadlock, run aborted")

var _ locking.Scheduler = (*testSched)(nil)

func newTestSched(d *locking.Domain, priority bool) *testSched {
	return &testSched{dom: d, priority: priority, byID: make(map[int64]*schedTask)}
}

// Go adds a task; call before Run.
func (s *testSched) Go(name string, fn func()) {
	s.tasks = append(s.tasks, &schedTask{name: name, idx: len(s.tasks), fn: fn, wake: make(chan struct{}, 1)})
}

// Run installs s, runs every task to its end (or to a deadlock), and
// uninstalls s.
func (s *testSched) Run() {
	s.dom.SetScheduler(s)
	defer s.dom.SetScheduler(nil)
	for _, t := range s.tasks {
		s.reg.Add(1)
		s.running.Add(1)
		go s.taskMain(t)
	}
	s.reg.Wait()
	s.tasks[0].wake <- struct{}{}
	s.running.Wait()
}

func (s *testSched) taskMain(t *schedTask) {
	defer s.running.Done()
	s.mu.Lock()
	t.id = locking.CurrentTask()
	s.byID[t.id] = t
	s.mu.Unlock()
	s.reg.Done()
	<-t.wake
	func() {
		defer func() {
			if r := recover(); r != nil && r != errAborted {
				panic(r)
			}
		}()
		t.fn()
	}()
	s.mu.Lock()
	t.done = true
	if s.aborted {
		s.mu.Unlock()
		return
	}
	s.switchLocked(t)
}

func (s *testSched) Yield(p locking.Point) {
	s.mu.Lock()
	t := s.byID[locking.CurrentTask()]
	if t == nil || s.aborted {
		s.mu.Unlock()
		return
	}
	s.events = append(s.events, t.name+":"+p.String())
	s.switchLocked(t)
}

func (s *testSched) Block(w locking.WaitObject) {
	s.mu.Lock()
	t := s.byID[locking.CurrentTask()]
	if t == nil {
		s.mu.Unlock()
		runtime.Gosched()
		return
	}
	if s.aborted {
		s.mu.Unlock()
		panic(errAborted)
	}
	t.blockedOn = w
	s.events = append(s.events, t.name+":block")
	s.switchLocked(t)
	s.mu.Lock()
	aborted := s.aborted
	s.mu.Unlock()
	if aborted {
		panic(errAborted)
	}
}

func (s *testSched) Wake(w locking.WaitObject) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.tasks {
		if o.blockedOn == w {
			o.blockedOn = nil
		}
	}
}

func (s *testSched) runnableLocked(t *schedTask) bool { return !t.done && t.blockedOn == nil }

// pickLocked chooses who runs after t.
func (s *testSched) pickLocked(t *schedTask) *schedTask {
	n := len(s.tasks)
	for i := 0; i < n; i++ {
		j := i
		if !s.priority {
			j = (t.idx + 1 + i) % n
		}
		if s.runnableLocked(s.tasks[j]) {
			return s.tasks[j]
		}
	}
	return nil
}

// switchLocked leaves t (which yields, blocks or has finished) and runs
// whoever is picked; it returns when t is picked again. s.mu is held on
// entry and released.
func (s *testSched) switchLocked(t *schedTask) {
	next := s.pickLocked(t)
	if next == nil {
		var blocked []*schedTask
		var detail strings.Builder
		for _, o := range s.tasks {
			if !o.done {
				blocked = append(blocked, o)
				fmt.Fprintf(&detail, "task %s (task/%d) blocked on %s\n", o.name, o.id, o.blockedOn)
			}
		}
		if len(blocked) == 0 {
			s.mu.Unlock()
			return
		}
		s.aborted = true
		s.mu.Unlock()
		s.dom.ReportDeadlock(detail.String())
		for _, o := range blocked {
			if o != t {
				o.wake <- struct{}{}
			}
		}
		if !t.done {
			panic(errAborted)
		}
		return
	}
	if next == t {
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	next.wake <- struct{}{}
	if !t.done {
		<-t.wake
	}
}

func (s *testSched) eventList() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.events...)
}

// Two tasks contend one Mutex under the scheduler: the run does not hang
// (no task blocks on the real lock) and the critical sections come in the
// order the scheduler's choices imply.
func TestSchedMutexRoundRobin(t *testing.T) {
	d, rec := newDomain(true)
	var m locking.Mutex
	m.Init(d, "test.mutex")
	var order []string // tasks run one at a time; the token hand-offs order these appends
	s := newTestSched(d, false)
	for _, name := range []string{"A", "B"} {
		s.Go(name, func() {
			m.Lock()
			order = append(order, name+" in")
			d.Yield(locking.PointPhase)
			order = append(order, name+" out")
			m.Unlock()
		})
	}
	s.Run()
	require.Equal(t, []string{"A in", "A out", "B in", "B out"}, order)
	require.Equal(t, []string{
		"A:lock-acquire", "B:lock-acquire", // both reach the acquire; A is picked first
		"A:phase",        // A holds m and yields inside its critical section
		"B:block",        // B's trylock fails: it parks on m instead of blocking on it
		"A:lock-release", // A's unlock wakes B
		"B:phase",        // B is in
		"B:lock-release",
	}, s.eventList())
	require.Empty(t, rec.titles())
}

// A scheduler that always prefers B runs B's critical section first: the
// order follows the scheduler, not goroutine timing.
func TestSchedMutexPriority(t *testing.T) {
	d, rec := newDomain(true)
	var m locking.Mutex
	m.Init(d, "test.mutex")
	var order []string
	s := newTestSched(d, true)
	body := func(name string) func() {
		return func() {
			m.Lock()
			order = append(order, name+" in")
			d.Yield(locking.PointPhase)
			order = append(order, name+" out")
			m.Unlock()
		}
	}
	// Priority goes to the first task added: B.
	s.Go("B", body("B"))
	s.Go("A", body("A"))
	s.Run()
	require.Equal(t, []string{"B in", "B out", "A in", "A out"}, order)
	require.Empty(t, rec.titles())
}

// Writer preference under the scheduler: R1 reads, W starts waiting, then
// R2 wants to read. R2 must wait behind W although only readers hold the
// semaphore; without the preference R2 would get in during R1's section.
func TestSchedRWSemWriterPreference(t *testing.T) {
	d, rec := newDomain(true)
	var sem locking.RWSem
	sem.Init(d, "test.rwsem")
	var order []string
	s := newTestSched(d, false)
	s.Go("R1", func() {
		sem.DownRead()
		order = append(order, "R1 in")
		d.Yield(locking.PointPhase) // W and R2 try meanwhile
		order = append(order, "R1 out")
		sem.UpRead()
	})
	s.Go("W", func() {
		sem.DownWrite()
		order = append(order, "W in")
		d.Yield(locking.PointPhase)
		order = append(order, "W out")
		sem.UpWrite()
	})
	s.Go("R2", func() {
		sem.DownRead()
		order = append(order, "R2 in")
		order = append(order, "R2 out")
		sem.UpRead()
	})
	s.Run()
	require.Equal(t, []string{"R1 in", "R1 out", "W in", "W out", "R2 in", "R2 out"}, order)
	require.Empty(t, rec.titles())
}

// The Linux deadlock behind the recursive-read rule, made real under the
// scheduler: R holds the read lock, W starts waiting, R reads again. Lockdep
// reports the second read before it blocks; then every task is blocked and
// the scheduler reports the deadlock.
func TestSchedRecursiveReadDeadlocks(t *testing.T) {
	d, rec := newDomain(true)
	var sem locking.RWSem
	sem.Init(d, "test.rwsem")
	var reached []string
	s := newTestSched(d, false)
	s.Go("R", func() {
		sem.DownRead()
		d.Yield(locking.PointPhase) // W starts waiting here
		sem.DownRead()
		reached = append(reached, "R read twice") // never: W waits, so R waits
	})
	s.Go("W", func() {
		sem.DownWrite()
		reached = append(reached, "W wrote")
	})
	s.Run()
	require.Empty(t, reached)
	require.Equal(t, []string{
		lockdepTitle(locking.TitleRecursive),
		string(bug.KindDeadlock) + ": " + locking.TitleDeadlock,
	}, rec.titles(), rec.dump())
	dl := rec.reports()[1].Detail
	require.Contains(t, dl, "task R (task/")
	require.Contains(t, dl, "blocked on rwsem test.rwsem@")
	require.Contains(t, dl, "Showing all locks held in the system:")
	require.Contains(t, dl, "(test.rwsem){rwsem:R}")
}

// With the scheduler removed, the same locks run free again.
func TestSchedUninstall(t *testing.T) {
	d, _ := newDomain(false)
	var m locking.Mutex
	m.Init(d, "test.mutex")
	s := newTestSched(d, false)
	s.Go("A", func() { m.Lock(); m.Unlock() })
	s.Run()
	require.Nil(t, d.Scheduler())
	m.Lock()
	done := make(chan struct{})
	go func() { m.Lock(); m.Unlock(); close(done) }()
	m.Unlock()
	<-done
}
