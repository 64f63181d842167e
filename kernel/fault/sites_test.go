package fault_test

import (
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"luomodel/kernel"
	"luomodel/kernel/bug"
	"luomodel/kernel/fault"
	"luomodel/kernel/vfs"
	"luomodel/machine"
	"luomodel/proptest/account"
	lu "luomodel/userspace/libliveupdate"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// boot returns a LUO machine whose reports fail t, with its injector.
func boot(t *testing.T) (*machine.Machine, *fault.Injector) {
	t.Helper()
	inj := fault.New(1)
	m, err := machine.New(machine.Config{
		LiveUpdate: true,
		Faults:     inj,
		Report:     func(r *bug.Report) { t.Errorf("%s", r.String()) },
	})
	require.NoError(t, err)
	require.Same(t, inj, m.Faults())
	require.Same(t, inj, m.Kernel().Faults())
	return m, inj
}

// session opens /dev/liveupdate in a new task and creates session name.
func session(t *testing.T, k *kernel.Kernel, name string) (*kernel.Task, int, int) {
	t.Helper()
	task := k.NewTask()
	dev, err := lu.OpenDevice(task)
	require.NoError(t, err)
	s, err := lu.CreateSession(task, dev, name)
	require.NoError(t, err)
	return task, dev, s
}

// noLeaks exits tasks and checks that every file of k was released and
// every preserved block is accounted for.
func noLeaks(t *testing.T, k *kernel.Kernel, tasks ...*kernel.Task) {
	t.Helper()
	for _, task := range tasks {
		task.Exit()
	}
	vfs.CheckNoLeaks(t, k.VFS())
	led := account.TakeKernel(k)
	require.NoError(t, led.Err(), "%s", led)
}

func TestFaultGetUnusedFD(t *testing.T) {
	m, inj := boot(t)
	task := m.Kernel().NewTask()
	inj.ArmNext(fault.GetUnusedFD)
	_, err := task.Open("/dev/null", syscall.O_RDWR)
	require.ErrorIs(t, err, syscall.ENOMEM)
	fd, err := task.Open("/dev/null", syscall.O_RDWR)
	require.NoError(t, err)
	require.Equal(t, 0, fd, "the failed open consumed no fd")
	require.EqualValues(t, 1, inj.Fires(fault.GetUnusedFD))
	noLeaks(t, m.Kernel(), task)
}

// TestFaultGetUnusedFDFullTable: a full table fails with EMFILE before
// alloc_fd() would grow it, so the armed site is not reached.
func TestFaultGetUnusedFDFullTable(t *testing.T) {
	m, inj := boot(t)
	task := m.Kernel().NewTask()
	for {
		if _, err := task.Open("/dev/null", syscall.O_RDWR); err != nil {
			require.ErrorIs(t, err, syscall.EMFILE)
			break
		}
	}
	inj.ArmNext(fault.GetUnusedFD)
	_, err := task.Dup(0)
	require.ErrorIs(t, err, syscall.EMFILE)
	require.Zero(t, inj.Hits(fault.GetUnusedFD))
	require.True(t, inj.Armed(fault.GetUnusedFD))
	require.NoError(t, task.Close(0))
	_, err = task.Dup(1)
	require.ErrorIs(t, err, syscall.ENOMEM)
	require.EqualValues(t, 1, inj.Fires(fault.GetUnusedFD))
	noLeaks(t, m.Kernel(), task)
}

func TestFaultCreateSessionChangesNothing(t *testing.T) {
	for _, s := range []fault.Site{fault.GetUnusedFD, fault.LUOSessionAlloc, fault.AnonInodeGetfile, fault.CopyToUser} {
		t.Run(s.String(), func(t *testing.T) {
			m, inj := boot(t)
			task := m.Kernel().NewTask()
			dev, err := lu.OpenDevice(task)
			require.NoError(t, err)
			inj.ArmNext(s)
			_, err = lu.CreateSession(task, dev, "a")
			require.ErrorIs(t, err, s.Errno())
			require.EqualValues(t, 1, inj.Fires(s))
			// Nothing changed: the name is free, the next fd is the
			// same.
			fd, err := lu.CreateSession(task, dev, "a")
			require.NoError(t, err)
			require.Equal(t, dev+1, fd)
			require.Equal(t, 1, m.Kernel().LUO().Snapshot().Outgoing.Count)
			noLeaks(t, m.Kernel(), task)
		})
	}
}

func TestFaultPreserveChangesNothing(t *testing.T) {
	for _, s := range []fault.Site{fault.KHOAllocPreserve, fault.LUOFileAlloc, fault.HandlerPreserve, fault.KHOPreserveFolio, fault.FolioAlloc} {
		t.Run(s.String(), func(t *testing.T) {
			m, inj := boot(t)
			task, _, sfd := session(t, m.Kernel(), "a")
			inj.ArmNext(s)
			err := lu.CreateAndPreserveMemfd(task, sfd, 7, "hello")
			require.ErrorIs(t, err, s.Errno())
			require.EqualValues(t, 1, inj.Fires(s))
			snap := m.Kernel().LUO().Snapshot()
			require.Equal(t, 0, snap.Outgoing.Sessions[0].FileCount)
			require.NoError(t, lu.CreateAndPreserveMemfd(task, sfd, 7, "hello"))
			noLeaks(t, m.Kernel(), task)
		})
	}
}

// TestFaultPreserveUnwindsAtEveryCall fails each kho_preserve_folio() and
// kho_preserve_pages() call PRESERVE_FD of a sparse three-page memfd makes
// (the file array, the memfd_luo_ser, each folio; the folio array's chunk
// and page): memfd_luo_preserve() must undo everything it preserved, so
// the preserved blocks are those of before, and a retry succeeds.
func TestFaultPreserveUnwindsAtEveryCall(t *testing.T) {
	for _, c := range []struct {
		site  fault.Site
		calls int
	}{{fault.KHOPreserveFolio, 5}, {fault.KHOPreservePages, 2}} {
		for nth := 1; nth <= c.calls; nth++ {
			t.Run(fmt.Sprintf("%v#%d", c.site, nth), func(t *testing.T) {
				m, inj := boot(t)
				k := m.Kernel()
				task, _, sfd := session(t, k, "a")
				fd, err := task.MemfdCreate("x", 0)
				require.NoError(t, err)
				_, err = task.Write(fd, []byte("head"))
				require.NoError(t, err)
				require.NoError(t, task.Ftruncate(fd, 3*4096))
				before := k.KHO().Account().Preserved
				inj.Arm(c.site, fault.Attr{Nth: uint64(nth)})
				require.ErrorIs(t, lu.PreserveFD(task, sfd, fd, 1), syscall.ENOMEM)
				require.EqualValues(t, 1, inj.Fires(c.site))
				require.Equal(t, before, k.KHO().Account().Preserved, "preserved blocks left behind")
				require.Equal(t, 0, k.LUO().Snapshot().Outgoing.Sessions[0].FileCount)
				require.NoError(t, lu.PreserveFD(task, sfd, fd, 1))
				noLeaks(t, k, task)
			})
		}
	}
}

func TestFaultPreserveRespondKeepsFilePreserved(t *testing.T) {
	m, inj := boot(t)
	task, _, sfd := session(t, m.Kernel(), "a")
	fd, err := task.MemfdCreate("x", 0)
	require.NoError(t, err)
	inj.ArmNext(fault.CopyToUser)
	require.ErrorIs(t, lu.PreserveFD(task, sfd, fd, 1), syscall.EFAULT)
	require.ErrorIs(t, lu.PreserveFD(task, sfd, fd, 1), syscall.EEXIST)
	noLeaks(t, m.Kernel(), task)
}

func TestFaultFreezeFailsKexecThenRetrySucceeds(t *testing.T) {
	m, inj := boot(t)
	task, dev0, sfd := session(t, m.Kernel(), "a")
	sfd2, err := lu.CreateSession(task, dev0, "b")
	require.NoError(t, err)
	require.NoError(t, lu.CreateAndPreserveMemfd(task, sfd2, 9, "nine"))
	require.NoError(t, lu.CreateAndPreserveMemfd(task, sfd, 1, "one"))

	// The second freeze fails: session "b", after "a" was frozen.
	inj.Arm(fault.HandlerFreeze, fault.Attr{Nth: 2})
	err = m.Kexec()
	require.ErrorIs(t, err, syscall.EIO)
	require.Zero(t, m.Kexecs())
	// Every session is unfrozen and usable.
	require.NoError(t, lu.CreateAndPreserveMemfd(task, sfd, 2, "two"))
	name, err := lu.SessionName(task, sfd)
	require.NoError(t, err)
	require.Equal(t, "a", name)

	inj.ArmNext(fault.KHOFinalize)
	require.ErrorIs(t, m.Kexec(), syscall.EAGAIN)
	require.NoError(t, lu.CreateAndPreserveMemfd(task, sfd, 3, "three"))

	require.NoError(t, m.Kexec())
	k := m.Kernel()
	t2 := k.NewTask()
	dev, err := lu.OpenDevice(t2)
	require.NoError(t, err)
	s, err := lu.RetrieveSession(t2, dev, "a")
	require.NoError(t, err)
	for tok, want := range map[uint64]string{1: "one", 2: "two", 3: "three"} {
		fd, err := lu.RestoreAndVerifyMemfd(t2, s, tok, want)
		require.NoError(t, err)
		require.NoError(t, t2.Close(fd))
	}
	s2, err := lu.RetrieveSession(t2, dev, "b")
	require.NoError(t, err)
	_, err = lu.RestoreAndVerifyMemfd(t2, s2, 9, "nine")
	require.NoError(t, err)
	noLeaks(t, k, t2)
}

func TestFaultRetrieveIsRememberedAndFinishes(t *testing.T) {
	m, inj := boot(t)
	task, _, sfd := session(t, m.Kernel(), "a")
	require.NoError(t, lu.CreateAndPreserveMemfd(task, sfd, 1, "one"))
	require.NoError(t, m.Kexec())
	k := m.Kernel()
	t2 := k.NewTask()
	dev, err := lu.OpenDevice(t2)
	require.NoError(t, err)
	s, err := lu.RetrieveSession(t2, dev, "a")
	require.NoError(t, err)
	inj.ArmNext(fault.HandlerRetrieve)
	_, err = lu.RetrieveFD(t2, s, 1)
	require.ErrorIs(t, err, syscall.ENOMEM)
	_, err = lu.RetrieveFD(t2, s, 1)
	require.ErrorIs(t, err, syscall.ENOMEM, "a failed retrieve is remembered")

	inj.ArmNext(fault.HandlerCanFinish)
	require.ErrorIs(t, lu.FinishSession(t2, s), syscall.EBUSY)
	require.NoError(t, lu.FinishSession(t2, s))
	noLeaks(t, k, t2)
}

func TestFaultRetrieveFDRespond(t *testing.T) {
	m, inj := boot(t)
	task, _, sfd := session(t, m.Kernel(), "a")
	require.NoError(t, lu.CreateAndPreserveMemfd(task, sfd, 1, "one"))
	require.NoError(t, m.Kexec())
	k := m.Kernel()
	t2 := k.NewTask()
	dev, err := lu.OpenDevice(t2)
	require.NoError(t, err)
	s, err := lu.RetrieveSession(t2, dev, "a")
	require.NoError(t, err)
	inj.ArmNext(fault.CopyToUser)
	_, err = lu.RetrieveFD(t2, s, 1)
	require.ErrorIs(t, err, syscall.EFAULT)
	// The file was retrieved: asking again gives it, contents intact.
	fd, err := lu.RestoreAndVerifyMemfd(t2, s, 1, "one")
	require.NoError(t, err)
	require.Equal(t, s+1, fd, "the failed call consumed no fd")
	noLeaks(t, k, t2)
}

func TestFaultRetrieveSessionRespondFinishesIt(t *testing.T) {
	m, inj := boot(t)
	task, _, sfd := session(t, m.Kernel(), "a")
	require.NoError(t, lu.CreateAndPreserveMemfd(task, sfd, 1, "one"))
	require.NoError(t, m.Kexec())
	k := m.Kernel()
	t2 := k.NewTask()
	dev, err := lu.OpenDevice(t2)
	require.NoError(t, err)
	inj.ArmNext(fault.CopyToUser)
	_, err = lu.RetrieveSession(t2, dev, "a")
	require.ErrorIs(t, err, syscall.EFAULT)
	// The session was retrieved, then its release finished it.
	_, err = lu.RetrieveSession(t2, dev, "a")
	require.ErrorIs(t, err, syscall.ENOENT)
	require.Zero(t, k.LUO().Snapshot().Incoming.Count)
	noLeaks(t, k, t2)
}

func TestFaultDeserializeFailsSafe(t *testing.T) {
	for _, s := range []fault.Site{fault.LUOSessionAlloc, fault.LUOFileAlloc} {
		t.Run(s.String(), func(t *testing.T) {
			m, inj := boot(t)
			task, _, sfd := session(t, m.Kernel(), "a")
			require.NoError(t, lu.CreateAndPreserveMemfd(task, sfd, 1, "one"))
			require.NoError(t, m.Kexec())
			k := m.Kernel()
			t2 := k.NewTask()
			inj.ArmNext(s)
			_, err := lu.OpenDevice(t2)
			require.ErrorIs(t, err, syscall.EIO)
			_, err = lu.OpenDevice(t2)
			require.ErrorIs(t, err, syscall.EIO, "the failure is cached")
			noLeaks(t, k, t2)
		})
	}
}

func TestFaultFDTSetupDisablesLUO(t *testing.T) {
	inj := fault.New(1)
	inj.ArmNext(fault.LUOFDTSetup)
	m, err := machine.New(machine.Config{LiveUpdate: true, Faults: inj, Report: func(r *bug.Report) { t.Errorf("%s", r.String()) }})
	require.NoError(t, err)
	require.False(t, m.Kernel().LUO().Enabled())
	_, err = lu.OpenDevice(m.Kernel().NewTask())
	require.ErrorIs(t, err, syscall.ENOENT)
	// A plain kexec still works; the next kernel has LUO again.
	require.NoError(t, m.Kexec())
	require.True(t, m.Kernel().LUO().Enabled())
}

// TestFaultFDTSetupAtKexec: the kexec succeeds, the next kernel runs
// without LUO; what was handed over is unreachable there (a documented
// leak), and that kernel hands no LUO tree on.
func TestFaultFDTSetupAtKexec(t *testing.T) {
	m, inj := boot(t)
	task, _, sfd := session(t, m.Kernel(), "a")
	require.NoError(t, lu.CreateAndPreserveMemfd(task, sfd, 1, "one"))
	inj.ArmNext(fault.LUOFDTSetup)
	require.NoError(t, m.Kexec())
	require.EqualValues(t, 1, inj.Fires(fault.LUOFDTSetup))
	k := m.Kernel()
	require.False(t, k.LUO().Enabled())
	require.EqualValues(t, 1, k.LUO().Snapshot().LiveupdateNumber, "the incoming tree was read")
	t2 := k.NewTask()
	_, err := lu.OpenDevice(t2)
	require.ErrorIs(t, err, syscall.ENOENT)
	led := account.TakeKernel(k)
	require.NoError(t, led.Err(), "%s", led)
	require.Contains(t, led.String(), "LUO disabled")
	noLeaks(t, k, t2)

	require.NoError(t, m.Kexec())
	k = m.Kernel()
	require.True(t, k.LUO().Enabled())
	t3 := k.NewTask()
	_, err = lu.OpenDevice(t3)
	require.NoError(t, err)
	snap := k.LUO().Snapshot()
	require.Zero(t, snap.LiveupdateNumber)
	require.Empty(t, snap.Incoming.Sessions)
	noLeaks(t, k, t3)
}

func TestFaultBootAllocFailsBoot(t *testing.T) {
	inj := fault.New(1)
	inj.ArmNext(fault.KHOAllocPreserve)
	_, err := machine.New(machine.Config{LiveUpdate: true, Faults: inj, Report: func(r *bug.Report) { t.Errorf("%s", r.String()) }})
	require.Error(t, err)
	require.True(t, errors.Is(err, syscall.ENOMEM))
}

func TestFaultFolioAllocFailsWrite(t *testing.T) {
	m, inj := boot(t)
	task := m.Kernel().NewTask()
	fd, err := task.MemfdCreate("x", 0)
	require.NoError(t, err)
	inj.ArmNext(fault.FolioAlloc)
	_, err = task.Write(fd, []byte("data"))
	require.ErrorIs(t, err, syscall.ENOMEM)
	n, err := task.Write(fd, []byte("data"))
	require.NoError(t, err)
	require.Equal(t, 4, n)
	noLeaks(t, m.Kernel(), task)
}

// TestFaultStorm runs a live-update workload with every site armed to
// fail at random (seeded), through several kexecs: every call ends in
// success or an errno, nothing is reported, and at the end every file is
// released and every preserved block accounted for.
func TestFaultStorm(t *testing.T) {
	for seed := uint64(1); seed <= 24; seed++ {
		inj := fault.New(seed)
		m, err := machine.New(machine.Config{LiveUpdate: true, MemoryMiB: 32, Faults: inj,
			Report: func(r *bug.Report) { t.Errorf("seed %d: %s", seed, r.String()) }})
		require.NoError(t, err)
		for _, s := range fault.Sites() {
			inj.Arm(s, fault.Attr{Probability: 0.05, Times: -1})
		}
		errno := func(what string, err error) {
			var e syscall.Errno
			if err != nil && !errors.As(err, &e) {
				t.Fatalf("seed %d: %s: %v is not an errno", seed, what, err)
			}
		}
		for round := 0; round < 4; round++ {
			k := m.Kernel()
			task := k.NewTask()
			if dev, err := lu.OpenDevice(task); err == nil {
				for _, n := range []string{"a", "b", "c"} {
					if s, err := lu.RetrieveSession(task, dev, n); err == nil {
						for tok := uint64(1); tok <= 3; tok++ {
							fd, err := lu.RetrieveFD(task, s, tok)
							errno("retrieve fd", err)
							if err == nil {
								_, err = task.Read(fd, make([]byte, 64))
								errno("read", err)
							}
						}
						errno("finish", lu.FinishSession(task, s))
					}
					s, err := lu.CreateSession(task, dev, n)
					errno("create", err)
					if err != nil {
						continue
					}
					for tok := uint64(1); tok <= 3; tok++ {
						errno("preserve", lu.CreateAndPreserveMemfd(task, s, tok, "payload"))
					}
				}
			} else {
				errno("open", err)
			}
			err := m.Kexec()
			if errors.Is(err, machine.ErrKernelPanic) {
				// An allocation failing during the next kernel's
				// boot panics it, in Linux too; nothing else may.
				if !errors.Is(err, syscall.ENOMEM) {
					t.Fatalf("seed %d: the next kernel panicked: %v", seed, err)
				}
				break
			}
			if err != nil {
				// The kexec failed and this kernel runs on: abort
				// every session and try again next round.
				task.Exit()
				continue
			}
		}
		inj.DisarmAll()
		if k := m.Kernel(); k != nil {
			led := account.TakeKernel(k)
			require.NoError(t, led.Err(), "seed %d:\n%s", seed, led)
		}
		t.Logf("seed %d: %d kexecs\n%s", seed, m.Kexecs(), inj.Summary())
	}
}
