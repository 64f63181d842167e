package machine_test

import (
	"errors"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/liveupdate"
	"luomodel/kernel/mm"
	"luomodel/machine"
	lu "luomodel/userspace/libliveupdate"
)

// TestKexecWithHook: the hook runs once between the kernels with the
// hand-over descriptor; what it writes is what the new kernel reads (a
// renamed session is handed over under its new name), and its error is
// returned after the new kernel booted.
func TestKexecWithHook(t *testing.T) {
	m := newMachine(t, machine.Config{LiveUpdate: true})
	task := m.Kernel().NewTask()
	dev, err := lu.OpenDevice(task)
	require.NoError(t, err)
	_, err = lu.CreateSession(task, dev, "before")
	require.NoError(t, err)

	calls := 0
	require.NoError(t, m.KexecWith(func(ram *mm.RAM, root mm.PhysAddr) error {
		calls++
		img, err := liveupdate.LocateHandover(ram, root)
		if err != nil {
			return err
		}
		return img.SetSessionName(0, "after")
	}))
	require.Equal(t, 1, calls)
	task = m.Kernel().NewTask()
	dev, err = lu.OpenDevice(task)
	require.NoError(t, err)
	_, err = lu.RetrieveSession(task, dev, "after")
	require.NoError(t, err)
	_, err = lu.RetrieveSession(task, dev, "before")
	require.ErrorIs(t, err, syscall.ENOENT)

	boom := errors.New("boom")
	err = m.KexecWith(func(*mm.RAM, mm.PhysAddr) error { return boom })
	require.ErrorIs(t, err, boom)
	require.NotNil(t, m.Kernel(), "a hook's error aborts nothing")
	require.Equal(t, 2, m.Kexecs())
}

// TestKexecWithHookBootFailure: a hook that cuts the LUO FDT short makes
// the new kernel fail to boot (Linux panics): the machine halts.
func TestKexecWithHookBootFailure(t *testing.T) {
	m := newMachine(t, machine.Config{LiveUpdate: true})
	err := m.KexecWith(func(ram *mm.RAM, root mm.PhysAddr) error {
		img, err := liveupdate.LocateHandover(ram, root)
		if err != nil {
			return err
		}
		return img.TruncateFDT(8)
	})
	require.ErrorIs(t, err, machine.ErrKernelPanic)
	require.ErrorIs(t, err, syscall.EINVAL)
	require.Nil(t, m.Kernel())
	require.ErrorIs(t, m.Kexec(), machine.ErrHalted)
}
