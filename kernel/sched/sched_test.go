//lint:file-ignore SA2001 some tasks only need a lock taken and released

package sched_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"pgregory.net/rapid"

	"luomodel/kernel/bug"
	"luomodel/kernel/locking"
	"luomodel/kernel/sched"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder collects reports.
type recorder struct {
	mu   sync.Mutex
	reps []*bug.Report // guarded by mu
}

func (r *recorder) file(rep *bug.Report) { r.mu.Lock(); r.reps = append(r.reps, rep); r.mu.Unlock() }

func (r *recorder) all() []*bug.Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*bug.Report(nil), r.reps...)
}

func newDomain() (*locking.Domain, *recorder) {
	rec := &recorder{}
	return locking.NewDomain(locking.Options{Lockdep: true, Reporter: bug.NewReporter(rec.file)}), rec
}

// lostUpdate is the classic race: read, yield, write back. Two tasks lose
// an update only if one is preempted between its read and its write.
func lostUpdate(s *sched.Scheduler, d *locking.Domain, x *int) {
	for range 2 {
		s.Go("inc", func(*sched.Task) {
			v := *x
			d.Yield(locking.PointPhase)
			*x = v + 1
		})
	}
}

func TestNoChooserRunsTasksInOrder(t *testing.T) {
	d, rec := newDomain()
	x := 0
	s := sched.New(d, sched.Options{})
	lostUpdate(s, d, &x)
	res := s.Run()
	require.NoError(t, res.Failure)
	require.Equal(t, 2, x)
	require.Equal(t, 1, res.Switches)
	require.Zero(t, res.Preemptions)
	require.Empty(t, rec.all())
}

func TestReplayPreemptsAndReproduces(t *testing.T) {
	for range 3 {
		d, _ := newDomain()
		x := 0
		s := sched.New(d, sched.Options{Chooser: sched.Replay([]int{0, 1}), Trace: true})
		lostUpdate(s, d, &x)
		res := s.Run()
		require.NoError(t, res.Failure)
		require.Equal(t, 1, x, "the update is lost")
		require.Equal(t, 1, res.Preemptions)
		require.Equal(t, []int{0, 1, 0}, res.Choices)
		require.NotEmpty(t, res.Events)
	}
}

// DFS with one preemption finds the lost update; with none it cannot.
func TestDFSBound(t *testing.T) {
	explore := func(bound int) (runs, lost int) {
		x := sched.NewDFS(bound)
		for x.Next() {
			d, _ := newDomain()
			v := 0
			s := sched.New(d, sched.Options{Chooser: x})
			lostUpdate(s, d, &v)
			require.NoError(t, s.Run().Failure)
			if v != 2 {
				lost++
			}
		}
		return x.Runs(), lost
	}
	runs, lost := explore(0)
	require.Equal(t, 2, runs) // who starts first
	require.Zero(t, lost)
	runs, lost = explore(1)
	require.Greater(t, runs, 2)
	require.Positive(t, lost)
}

func TestPCTFindsLostUpdate(t *testing.T) {
	found := false
	for seed := uint64(1); seed < 50 && !found; seed++ {
		d, _ := newDomain()
		v := 0
		s := sched.New(d, sched.Options{Chooser: sched.NewPCT(seed, 2, 2, 4)})
		lostUpdate(s, d, &v)
		require.NoError(t, s.Run().Failure)
		found = v != 2
	}
	require.True(t, found)
}

// An AB-BA deadlock is reported with its wait-for cycle; lockdep reports
// the inversion first; every goroutine is unwound.
func TestDeadlockCycle(t *testing.T) {
	d, rec := newDomain()
	var a, b locking.Mutex
	a.Init(d, "test.a")
	b.Init(d, "test.b")
	s := sched.New(d, sched.Options{Chooser: sched.Replay([]int{0, 0, 1})})
	s.Go("T1", func(*sched.Task) { a.Lock(); d.Yield(locking.PointPhase); b.Lock(); b.Unlock(); a.Unlock() })
	s.Go("T2", func(*sched.Task) { b.Lock(); d.Yield(locking.PointPhase); a.Lock(); a.Unlock(); b.Unlock() })
	res := s.Run()
	require.NoError(t, res.Failure)
	require.NotEmpty(t, res.Deadlock, "%v", res.Choices)
	require.Contains(t, res.Deadlock, "wait-for cycle:")
	require.Contains(t, res.Deadlock, "(class test.a), taken at")
	require.Contains(t, res.Deadlock, "(class test.b), taken at")
	var kinds []bug.Kind
	for _, r := range rec.all() {
		kinds = append(kinds, r.Kind)
	}
	require.Contains(t, kinds, bug.KindDeadlock)
}

// A panic in a task reaches Run's caller; the other tasks unwind.
func TestTaskPanicIsFailure(t *testing.T) {
	d, _ := newDomain()
	var m locking.Mutex
	m.Init(d, "test.m")
	s := sched.New(d, sched.Options{})
	s.Go("holder", func(*sched.Task) { m.Lock(); d.Yield(locking.PointPhase); panic("boom") })
	s.Go("waiter", func(*sched.Task) { m.Lock(); m.Unlock() })
	res := s.Run()
	require.Error(t, res.Failure)
	require.Contains(t, res.Failure.Error(), "task holder panicked: boom")
}

// Kill stops a task at its next scheduling point, as a kexec would.
func TestKill(t *testing.T) {
	d, _ := newDomain()
	var m locking.Mutex
	m.Init(d, "test.m")
	reached := false
	s := sched.New(d, sched.Options{})
	var victim *sched.Task
	s.Go("killer", func(self *sched.Task) {
		m.Lock()
		d.Yield(locking.PointPhase) // victim runs and blocks on m
		self.KillOthers()
		m.Unlock()
	})
	victim = s.Go("victim", func(*sched.Task) { m.Lock(); reached = true; m.Unlock() })
	res := s.Run()
	require.NoError(t, res.Failure)
	require.False(t, reached)
	require.True(t, victim.Killed())
	require.Equal(t, []int{1}, res.Killed)
}

// rapid drives the choices and shrinks a failure to one preemption.
func TestRapidShrinksToOnePreemption(t *testing.T) {
	var last sched.Result
	tb := &failTB{TB: t}
	defer func() { _ = recover() }() // failNow
	defer func() {
		require.True(t, tb.failed)
		require.Equal(t, 1, last.Preemptions)
	}()
	rapid.Check(tb, func(rt *rapid.T) {
		d, _ := newDomain()
		v := 0
		s := sched.New(d, sched.Options{Chooser: sched.Rapid(rt)})
		lostUpdate(s, d, &v)
		res := s.Run()
		if v != 2 {
			last = res
			rt.Fatalf("lost update")
		}
	})
}

type failNow struct{}

// failTB records a rapid failure instead of failing the test.
type failTB struct {
	testing.TB
	failed bool
}

func (f *failTB) Errorf(string, ...any) { f.failed = true }
func (f *failTB) Error(...any)          { f.failed = true }
func (f *failTB) Fatalf(string, ...any) { f.failed = true; panic(failNow{}) }
func (f *failTB) Fatal(...any)          { f.failed = true; panic(failNow{}) }
func (f *failTB) FailNow()              { f.failed = true; panic(failNow{}) }
func (f *failTB) Fail()                 { f.failed = true }
func (f *failTB) Failed() bool          { return f.failed }
func (f *failTB) Logf(string, ...any)   {}
func (f *failTB) Log(...any)            {}

// Unmanaged goroutines pass through the scheduler.
func TestForeignGoroutine(t *testing.T) {
	d, _ := newDomain()
	s := sched.New(d, sched.Options{})
	require.False(t, s.Unwinding(locking.CurrentTask()))
	s.Yield(locking.PointPhase)
	s.Block(nil)
	require.True(t, strings.HasPrefix("x", "x"))
}
