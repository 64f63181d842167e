package machine_test

import (
	"runtime"
	"testing"
	"time"
	"weak"

	"github.com/stretchr/testify/require"

	"luomodel/kernel"
	"luomodel/kernel/locking"
	"luomodel/machine"
	lu "luomodel/userspace/libliveupdate"
)

// A kernel replaced by kexec is garbage once nothing of the test holds
// it: nothing process-wide keeps it reachable. go-deadlock's table of held
// locks used to: the reboot keeps LUO's serialize rwsem for write until the
// jump, and a free-running stress campaign grew by one dead kernel per
// kexec (24 GB in a minute) until Kernel.MarkDead released it.
func TestDeadKernelIsCollected(t *testing.T) {
	locking.ConfigureDeadlockDetection(locking.DeadlockDetection{
		Enabled: true,
		Timeout: time.Minute,
		Report:  func(text string) { t.Errorf("go-deadlock: %s", text) },
	})
	t.Cleanup(func() { locking.ConfigureDeadlockDetection(locking.DeadlockDetection{}) })

	m := newMachine(t, machine.Config{LiveUpdate: true})
	oldKernel, oldLUO := weak.Make(m.Kernel()), weak.Make(m.Kernel().LUO())
	withSession(t, m.Kernel())
	require.NoError(t, m.Kexec())
	require.True(t, m.Kernel().LUO().Enabled())

	require.Eventually(t, func() bool {
		runtime.GC()
		return oldKernel.Value() == nil && oldLUO.Value() == nil
	}, 10*time.Second, 10*time.Millisecond, "the dead kernel is still reachable")
}

// withSession creates a session with a preserved memfd in k, so that the
// reboot serializes something; its task and fds go out of scope with it.
func withSession(t *testing.T, k *kernel.Kernel) {
	t.Helper()
	task := k.NewTask()
	dev, err := lu.OpenDevice(task)
	require.NoError(t, err)
	sfd, err := lu.CreateSession(task, dev, "kept")
	require.NoError(t, err)
	require.NoError(t, lu.CreateAndPreserveMemfd(task, sfd, 1, "crosses the kexec"))
}
