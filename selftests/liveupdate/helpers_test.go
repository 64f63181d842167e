package liveupdate

import (
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"luomodel/kernel"
	"luomodel/kernel/bug"
	"luomodel/kernel/lib/fdt"
	"luomodel/machine"
	lu "luomodel/userspace/libliveupdate"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
	os.Exit(0)
}

// failOnReport is the bug handler of every test: any WARN, lockdep,
// KASAN or use-after-free report fails the test.
func failOnReport(t testing.TB) bug.Handler {
	return func(r *bug.Report) { t.Errorf("%s", r.String()) }
}

// newMachine cold-boots a machine with liveupdate=on.
func newMachine(t testing.TB) *machine.Machine {
	t.Helper()
	m, err := machine.New(machine.Config{LiveUpdate: true, Report: failOnReport(t)})
	require.NoError(t, err)
	return m
}

// openDevice opens /dev/liveupdate in a new task of m's running kernel.
func openDevice(t testing.TB, m *machine.Machine) (*kernel.Task, int) {
	t.Helper()
	task := m.Kernel().NewTask()
	dev, err := lu.OpenDevice(task)
	require.NoError(t, err)
	return task, dev
}

// kexec live-updates m and requires it to succeed.
func kexec(t testing.TB, m *machine.Machine) {
	t.Helper()
	require.NoError(t, m.Kexec())
}

// freePages is the running kernel's free page count.
func freePages(m *machine.Machine) uint64 { return m.Kernel().MM().Stats().FreePages }

// incomingLiveupdateNum reads "liveupdate-number" from the LUO FDT the
// previous kernel handed over (0 when there is none: a cold boot).
func incomingLiveupdateNum(t testing.TB, m *machine.Machine) uint64 {
	t.Helper()
	k := m.Kernel()
	pa, err := k.KHO().RetrieveSubtree("LUO")
	if err == syscall.ENOENT {
		return 0
	}
	require.NoError(t, err)
	buf := make([]byte, 4096)
	require.NoError(t, k.MM().RAM().ReadRaw(pa, buf))
	f, err := fdt.Open(buf)
	require.NoError(t, err)
	n, err := f.GetPropU64LE(0, "liveupdate-number")
	require.NoError(t, err)
	return n
}

// memfdWith creates a memfd holding data, file position left at pos.
func memfdWith(t testing.TB, task *kernel.Task, name string, data []byte, pos int64) int {
	t.Helper()
	fd, err := task.MemfdCreate(name, 0)
	require.NoError(t, err)
	if len(data) > 0 {
		n, err := task.Write(fd, data)
		require.NoError(t, err)
		require.Equal(t, len(data), n)
	}
	_, err = task.Lseek(fd, pos, 0)
	require.NoError(t, err)
	return fd
}

// readAll reads fd from offset 0 to EOF, restoring the file position.
func readAll(t testing.TB, task *kernel.Task, fd int) []byte {
	t.Helper()
	pos, err := task.Lseek(fd, 0, 1)
	require.NoError(t, err)
	_, err = task.Lseek(fd, 0, 0)
	require.NoError(t, err)
	var out []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := task.Read(fd, buf)
		require.NoError(t, err)
		if n == 0 {
			break
		}
		out = append(out, buf[:n]...)
	}
	_, err = task.Lseek(fd, pos, 0)
	require.NoError(t, err)
	return out
}

// fileSize is the size of fd's file (lseek(SEEK_END)), position restored.
func fileSize(t testing.TB, task *kernel.Task, fd int) int64 {
	t.Helper()
	pos, err := task.Lseek(fd, 0, 1)
	require.NoError(t, err)
	end, err := task.Lseek(fd, 0, 2)
	require.NoError(t, err)
	_, err = task.Lseek(fd, pos, 0)
	require.NoError(t, err)
	return end
}

// filePos is fd's file position.
func filePos(t testing.TB, task *kernel.Task, fd int) int64 {
	t.Helper()
	pos, err := task.Lseek(fd, 0, 1)
	require.NoError(t, err)
	return pos
}

// newMachineCfg cold-boots a machine with liveupdate on or off.
func newMachineCfg(t testing.TB, liveUpdate bool) (*machine.Machine, error) {
	t.Helper()
	return machine.New(machine.Config{LiveUpdate: liveUpdate, Report: failOnReport(t)})
}

// noLeak runs scenario twice and requires the second run to leave the
// free page count as it found it. The first run warms up what the kernel
// keeps on purpose (KHO's preservation bitmaps, like Linux's, stay once
// allocated).
func noLeak(t testing.TB, m *machine.Machine, scenario func()) {
	t.Helper()
	scenario()
	before := freePages(m)
	scenario()
	require.Equal(t, before, freePages(m), "pages leaked")
}
