package liveupdatetest_test

import (
	"fmt"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel"
	"luomodel/kernel/bug"
	lt "luomodel/kernel/lib/liveupdatetest"
	"luomodel/kernel/liveupdate"
	"luomodel/kernel/locking"
	"luomodel/kernel/module"
	"luomodel/kernel/sched"
	"luomodel/kernel/vfs"
	"luomodel/machine"
	lu "luomodel/userspace/libliveupdate"
)

// The FLB races of spec Part 9 under the controlled scheduler: each test
// runs two tasks of one kernel through many PCT schedules and requires
// every one to end with nothing reported and the FLB consistent. The
// before-forms (mutants/M19.patch, mutants/M20.patch) fail them.

// schedRuns is how many PCT schedules each test explores.
const schedRuns = 400

// schedMachine boots a machine whose reports are collected (the scheduler
// unwinds tasks at the end of a run; reports from unwinding ones are not
// findings).
func schedMachine(t *testing.T) (*machine.Machine, func() []*bug.Report) {
	t.Helper()
	var mu sync.Mutex
	var reps []*bug.Report
	m, err := machine.New(machine.Config{LiveUpdate: true, MemoryMiB: 8, NoDeadlockWatch: true,
		Report: func(r *bug.Report) {
			mu.Lock()
			defer mu.Unlock()
			reps = append(reps, r)
		}})
	require.NoError(t, err)
	return m, func() []*bug.Report {
		mu.Lock()
		defer mu.Unlock()
		out := reps
		reps = nil
		return out
	}
}

// runPCT runs the tasks under a PCT schedule of seed and fails the test
// on a task's panic, a deadlock or a report.
func runPCT(t *testing.T, k *kernel.Kernel, seed uint64, reports func() []*bug.Report, tasks ...func(*sched.Task)) {
	t.Helper()
	s := sched.New(k.Domain(), sched.Options{Chooser: sched.NewPCT(seed, len(tasks), 3, 40)})
	for i, fn := range tasks {
		s.Go(fmt.Sprintf("T%d", i), fn)
	}
	res := s.Run()
	require.NoError(t, res.Failure, "schedule %d", seed)
	require.Empty(t, res.Deadlock, "schedule %d", seed)
	for _, r := range reports() {
		t.Fatalf("schedule %d: %s", seed, r)
	}
}

// TestFLBFirstUsersRace: the first two users of a new FLB, its
// registration and an outgoing query, meet in the lazy initialisation of
// its private state (luo_flb_get_private(), M19): under every schedule
// the state is initialised once, no held lock is initialised again, and
// the registration's user count survives.
func TestFLBFirstUsersRace(t *testing.T) {
	m, reports := schedMachine(t)
	k := m.Kernel()
	load(t, k)
	l := k.LUO()
	fh := k.LiveupdateTest().FileHandler()
	require.NotNil(t, fh)
	ops := &liveupdate.FLBOps{
		Preserve:   func(*liveupdate.FLBOpArgs) error { return nil },
		Unpreserve: func(*liveupdate.FLBOpArgs) {},
		Retrieve:   func(*liveupdate.FLBOpArgs) error { return nil },
		Finish:     func(*liveupdate.FLBOpArgs) {},
	}
	for seed := range uint64(schedRuns) {
		flb := &liveupdate.FLB{Ops: ops, Compatible: fmt.Sprintf("race-flb-%d", seed)}
		var regErr error
		runPCT(t, k, seed, reports,
			func(*sched.Task) { regErr = l.RegisterFLB(fh, flb) },
			func(*sched.Task) {
				_, _ = l.FLBGetOutgoing(flb)
				_, _ = l.FLBGetOutgoing(flb)
			})
		require.NoError(t, regErr, "schedule %d", seed)
		// The registration counted one user: unregistering unlists it.
		l.UnregisterFLB(fh, flb)
		for _, st := range l.Snapshot().FLBs {
			require.NotEqual(t, flb.Compatible, st.Compatible, "schedule %d: still listed after its last unregistration", seed)
		}
		require.Empty(t, reports(), "schedule %d", seed)
	}
}

// TestFLBGetIncomingRacesFinish: a user of an incoming FLB (get, use,
// put) against the session's finish, which drops the files' references
// and finishes the FLB after the last one (M20): under every schedule an
// object the getter holds is never finished before the getter puts it,
// and the FLB finishes exactly once.
func TestFLBGetIncomingRacesFinish(t *testing.T) {
	for seed := range uint64(schedRuns / 4) {
		m, reports := schedMachine(t)
		task, _, _ := preserveThree(t, m.Kernel())
		_ = task
		require.NoError(t, m.Kexec())
		k := m.Kernel()
		t2 := load(t, k)
		d := k.LiveupdateTest()
		l := k.LUO()
		dev, err := lu.OpenDevice(t2)
		require.NoError(t, err)
		s, err := lu.RetrieveSession(t2, dev, "s")
		require.NoError(t, err)
		flb := d.FLB(0)
		finishes := func() int {
			n := 0
			for _, c := range d.Trace() {
				if c.Op == lt.OpFLBFinish && c.FLB == 0 {
					n++
				}
			}
			return n
		}
		var held []int // finishes seen while an object was held
		runPCT(t, k, seed, reports,
			func(*sched.Task) { require.NoError(t, lu.FinishSession(t2, s)) },
			func(*sched.Task) {
				for range 3 {
					before := finishes()
					if _, err := l.FLBGetIncoming(flb); err != nil {
						return // finished already: ENODATA
					}
					k.Domain().Yield(locking.PointPhase) // use the object
					held = append(held, finishes()-before)
					l.FLBPutIncoming(flb)
				}
			})
		for _, n := range held {
			require.Zero(t, n, "schedule %d: the FLB finished while a getter held its object", seed)
		}
		require.Equal(t, 1, finishes(), "schedule %d", seed)
		require.NoError(t, t2.Close(s))
		t2.Exit()
		task.Exit()
	}
}

// TestModuleUnloadRacesUnpreserve: a handler module whose files do not
// pin it (it preserves /dev/null files) is unloaded while a session it
// preserved a file in is closed: LUO's per-file pin keeps delete_module()
// away until LUO's last use of the handler, so under every schedule the
// unload either fails with EWOULDBLOCK or comes after, and no use of the
// gone module is reported (M16: the pin dropped before get_id).
// nullModule installs (not loads) a module "null_luo" whose handler
// preserves /dev/null files, which do not pin it.
func nullModule(t *testing.T, k *kernel.Kernel) {
	t.Helper()
	l := k.LUO()
	var fh liveupdate.FileHandler
	ops := liveupdate.FileOps{
		CanPreserve: func(_ *liveupdate.FileHandler, f *vfs.File) bool { return f.Name() == "/dev/null" },
		Preserve:    func(*liveupdate.FileOpArgs) error { return nil },
		Unpreserve:  func(*liveupdate.FileOpArgs) {},
		Retrieve:    func(*liveupdate.FileOpArgs) error { return syscall.EINVAL },
		Finish:      func(*liveupdate.FileOpArgs) {},
		GetID:       func(*vfs.File) uint64 { return 1 << 40 },
	}
	fh = liveupdate.FileHandler{Ops: &ops, Compatible: "null-v1"}
	require.NoError(t, k.Modules().AddImage(module.Image{Name: "null_luo",
		Init: func(mod *module.Module) error { ops.Owner = mod; return l.RegisterFileHandler(&fh) },
		Exit: func(*module.Module) { _ = l.UnregisterFileHandler(&fh) },
	}))
}

// TestModuleUnloadRacesPreserve: PRESERVE_FD of a file of a handler
// module against its delete_module(): the handler is found and pinned
// under luo_register_rwlock, so either the preserve wins (the unload
// fails with EWOULDBLOCK) or the unload does (no handler: ENOENT), and
// the gone module is never called.
func TestModuleUnloadRacesPreserve(t *testing.T) {
	outcomes := map[string]int{}
	for seed := range uint64(schedRuns / 2) {
		m, reports := schedMachine(t)
		k := m.Kernel()
		nullModule(t, k)
		task := k.NewTask()
		require.NoError(t, task.InitModule("null_luo"))
		dev, err := lu.OpenDevice(task)
		require.NoError(t, err)
		s, err := lu.CreateSession(task, dev, "s")
		require.NoError(t, err)
		null, err := task.Open("/dev/null", 2)
		require.NoError(t, err)
		other := k.NewTask()
		var preserveErr, unloadErr error
		runPCT(t, k, seed, reports,
			func(*sched.Task) { preserveErr = lu.PreserveFD(task, s, null, 1) },
			func(*sched.Task) { unloadErr = other.DeleteModule("null_luo", 0x800) })
		switch {
		case preserveErr == nil:
			require.ErrorIs(t, unloadErr, syscall.EWOULDBLOCK, "schedule %d", seed)
			outcomes["preserved"]++
		default:
			require.ErrorIs(t, preserveErr, syscall.ENOENT, "schedule %d", seed)
			require.NoError(t, unloadErr, "schedule %d", seed)
			outcomes["unloaded"]++
		}
		task.Exit()
		other.Exit()
	}
	require.Len(t, outcomes, 2, "both orders reached: %v", outcomes)
}

func TestModuleUnloadRacesUnpreserve(t *testing.T) {
	unloaded := 0
	for seed := range uint64(schedRuns) {
		m, reports := schedMachine(t)
		k := m.Kernel()
		nullModule(t, k)
		task := k.NewTask()
		require.NoError(t, task.InitModule("null_luo"))
		dev, err := lu.OpenDevice(task)
		require.NoError(t, err)
		s, err := lu.CreateSession(task, dev, "s")
		require.NoError(t, err)
		null, err := task.Open("/dev/null", 2)
		require.NoError(t, err)
		require.NoError(t, lu.PreserveFD(task, s, null, 1))
		require.NoError(t, task.Close(null))
		other := k.NewTask()
		var unloadErr error
		runPCT(t, k, seed, reports,
			func(*sched.Task) { require.NoError(t, task.Close(s)) },
			func(*sched.Task) { unloadErr = other.DeleteModule("null_luo", 0x800) })
		if unloadErr != nil {
			require.ErrorIs(t, unloadErr, syscall.EWOULDBLOCK, "schedule %d", seed)
		} else {
			unloaded++
		}
		task.Exit()
		other.Exit()
	}
	require.NotZero(t, unloaded, "no schedule unloaded the module")
}
