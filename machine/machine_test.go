package machine_test

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/bug"
	"luomodel/kernel/mm"
	"luomodel/machine"
)

// failOnReport returns a report handler that fails t.
func failOnReport(t testing.TB) bug.Handler {
	return func(r *bug.Report) { t.Errorf("unexpected report:\n%s", r.String()) }
}

func newMachine(t testing.TB, cfg machine.Config) *machine.Machine {
	t.Helper()
	if cfg.Report == nil {
		cfg.Report = failOnReport(t)
	}
	if cfg.MemoryMiB == 0 {
		cfg.MemoryMiB = 64
	}
	m, err := machine.New(cfg)
	require.NoError(t, err)
	require.NotNil(t, m.Kernel())
	return m
}

func TestZeroConfig(t *testing.T) {
	m, err := machine.New(machine.Config{Report: failOnReport(t)})
	require.NoError(t, err)
	k := m.Kernel()
	require.Equal(t, uint64(machine.DefaultMemoryMiB)<<20, m.RAM().Size())
	require.True(t, k.Cmdline().KHO)
	require.False(t, k.Cmdline().LiveUpdate)
	require.True(t, k.KHO().IsEnabled())
	require.False(t, k.KHO().IsKHOBoot())
}

func TestKexecIdle(t *testing.T) {
	m := newMachine(t, machine.Config{})
	old := m.Kernel()
	for i := range 3 {
		require.NoError(t, m.Kexec())
		require.Equal(t, i+1, m.Kexecs())
		k := m.Kernel()
		require.NotSame(t, old, k)
		require.True(t, old.Dead())
		require.True(t, k.KHO().IsKHOBoot())
		old = k
	}
}

func TestKexecPreservedFolio(t *testing.T) {
	m := newMachine(t, machine.Config{})
	k := m.Kernel()
	f, err := k.MM().FolioAlloc(2, true)
	require.NoError(t, err)
	data := make([]byte, f.Size())
	for i := range data {
		data[i] = byte(i * 7)
	}
	require.NoError(t, f.Write(0, data))
	require.NoError(t, k.KHO().PreserveFolio(f))
	pa := f.PA()

	require.NoError(t, m.Kexec())
	k2 := m.Kernel()
	require.Equal(t, mm.PageReserved, k2.MM().PageState(pa))
	g, err := k2.KHO().RestoreFolio(pa)
	require.NoError(t, err)
	require.Equal(t, uint(2), g.Order())
	got := make([]byte, g.Size())
	require.NoError(t, g.Read(0, got))
	require.Equal(t, data, got)
	g.Put()
}

func TestKexecKHODisabled(t *testing.T) {
	m := newMachine(t, machine.Config{KHODisabled: true})
	require.False(t, m.Kernel().KHO().IsEnabled())
	require.NoError(t, m.Kexec())
	require.Equal(t, mm.PhysAddr(0), m.LastHandover())
	require.False(t, m.Kernel().KHO().IsKHOBoot())
	_, err := m.Kernel().KHO().RetrieveSubtree("LUO")
	require.ErrorIs(t, err, syscall.ENOENT)
}

// TestOldTasksGetESRCH: after a kexec the old kernel's tasks are dead; the
// new kernel's tasks work.
func TestOldTasksGetESRCH(t *testing.T) {
	m := newMachine(t, machine.Config{})
	task := m.Kernel().NewTask()
	fd, err := task.Open("/dev/null", syscall.O_RDWR)
	require.NoError(t, err)
	require.NoError(t, m.Kexec())

	_, err = task.Write(fd, []byte("x"))
	require.ErrorIs(t, err, syscall.ESRCH)
	_, err = task.Open("/dev/null", syscall.O_RDWR)
	require.ErrorIs(t, err, syscall.ESRCH)
	require.ErrorIs(t, task.Close(fd), syscall.ESRCH)

	fresh := m.Kernel().NewTask()
	fd, err = fresh.Open("/dev/null", syscall.O_RDWR)
	require.NoError(t, err)
	require.NoError(t, fresh.Close(fd))
	fresh.Exit()
}

// TestCmdline: Config fields and extra words reach the kernel's command
// line; the last occurrence wins, and bad values keep the default.
func TestCmdline(t *testing.T) {
	m := newMachine(t, machine.Config{LiveUpdate: true, Cmdline: "foo kho=n"})
	c := m.Kernel().Cmdline()
	require.True(t, c.LiveUpdate)
	require.False(t, c.KHO)
	require.False(t, m.Kernel().KHO().IsEnabled())
	require.Equal(t, "liveupdate=on kho=on foo kho=n", m.Cmdline())
}

// TestKexecHaltedAfterPanic is in kernel/kho's tests (a corrupt hand-over);
// here: New with a bad size fails.
func TestNewBadMemory(t *testing.T) {
	_, err := machine.New(machine.Config{MemoryMiB: -1})
	require.Error(t, err)
}

// TestKexecWithLiveUpdate: with liveupdate=on, LUO's reboot path finalizes
// KHO and the next kernel finds LUO's subtree: the live-update number
// counts the kexecs.
func TestKexecWithLiveUpdate(t *testing.T) {
	m := newMachine(t, machine.Config{LiveUpdate: true})
	require.True(t, m.Kernel().LUO().Enabled())
	for i := range 3 {
		require.Equal(t, uint64(i), m.Kernel().LUO().LiveupdateNumber())
		require.NoError(t, m.Kexec())
		require.True(t, m.Kernel().KHO().IsKHOBoot())
	}
	require.Equal(t, uint64(3), m.Kernel().LUO().LiveupdateNumber())
}
