package kernel

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/bug"
	"luomodel/kernel/fault"
	"luomodel/kernel/locking"
	"luomodel/kernel/mm"
)

// rebootTestKernel boots a whole kernel with LUO on and returns it with
// its fault injector and the reports it files.
func rebootTestKernel(t *testing.T) (*Kernel, *fault.Injector, func() []*bug.Report) {
	t.Helper()
	handle, reports := collectReports()
	faults := fault.New(0)
	k, err := Boot(BootParams{
		RAM:      mm.NewRAM(64 << 20),
		Cmdline:  "liveupdate=on kho=on",
		Reporter: bug.NewReporter(handle),
		Lockdep:  true,
		Faults:   faults,
	})
	require.NoError(t, err)
	return k, faults, reports
}

// A failed reboot returns to user space through lockdep_sys_exit(): a lock
// the calling task holds then is reported, naming the syscall. A
// successful one never returns, so nothing is checked.
func TestRebootKexecExitChecksLocks(t *testing.T) {
	k, faults, reports := rebootTestKernel(t)
	var m locking.Mutex
	m.Init(k.dom, "test.held_across_reboot")

	// Failed, no lock held: clean, and the kernel keeps running.
	faults.ArmNext(fault.KHOFinalize)
	_, err := k.RebootKexec()
	require.ErrorIs(t, err, syscall.EAGAIN)
	require.Empty(t, reports())

	// Failed with a lock held: reported at the syscall's exit.
	m.Lock()
	faults.ArmNext(fault.KHOFinalize)
	_, err = k.RebootKexec()
	require.ErrorIs(t, err, syscall.EAGAIN)
	rs := reports()
	require.Len(t, rs, 1)
	require.Equal(t, bug.KindLockdep, rs[0].Kind)
	require.Equal(t, locking.TitleHeldAtExit, rs[0].Title)
	require.Contains(t, rs[0].Detail, "is leaving the kernel (reboot) with locks still held!")
	require.Contains(t, rs[0].Detail, "(test.held_across_reboot){mutex}")

	// Successful: the task does not return to user space.
	handover, err := k.RebootKexec()
	require.NoError(t, err)
	require.NotZero(t, handover)
	require.Len(t, reports(), 1)
	m.Unlock()

	k.MarkDead()
	_, err = k.RebootKexec()
	require.ErrorIs(t, err, syscall.ESRCH, "a dead kernel runs no syscall")
}
