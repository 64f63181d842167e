package account_test

import (
	"encoding/binary"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"luomodel/kernel/bug"
	"luomodel/kernel/fault"
	"luomodel/kernel/mm"
	"luomodel/machine"
	"luomodel/proptest/account"
	lu "luomodel/userspace/libliveupdate"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func boot(t *testing.T) *machine.Machine {
	t.Helper()
	m, err := machine.New(machine.Config{LiveUpdate: true, Report: func(r *bug.Report) { t.Errorf("%s", r.String()) }})
	require.NoError(t, err)
	return m
}

// reasons returns the ledger's entries' reasons by state.
func states(es []account.Entry) map[account.State]int {
	out := map[account.State]int{}
	for _, e := range es {
		out[e.State]++
	}
	return out
}

func TestFreshKernelHandsOverItsBootBlocks(t *testing.T) {
	m := boot(t)
	led := account.Take(m)
	require.NoError(t, led.Err())
	require.Len(t, led.Outgoing, 4, "KHO root FDT, LUO FDT, FLB block, session block:\n%s", led)
	require.Empty(t, led.Incoming)
	require.NoError(t, account.Goroutines())
}

func TestSessionsAbortedOnExitLeaveNothing(t *testing.T) {
	m := boot(t)
	task := m.Kernel().NewTask()
	dev, err := lu.OpenDevice(task)
	require.NoError(t, err)
	s, err := lu.CreateSession(task, dev, "a")
	require.NoError(t, err)
	require.NoError(t, lu.CreateAndPreserveMemfd(task, s, 1, "data"))
	led := account.Take(m)
	require.Empty(t, led.Leaks())
	require.Greater(t, len(led.Outgoing), 4)
	require.Contains(t, led.String(), `file array of outgoing session "a"`)

	// Before exit files are live: the ledger says so.
	require.NotEmpty(t, led.LiveFiles)
	require.Error(t, led.Err())
	task.Exit()
	led = account.Take(m)
	require.NoError(t, led.Err())
	require.Len(t, led.Outgoing, 4, "%s", led)
}

func TestStrayPreservedBlockIsALeak(t *testing.T) {
	m := boot(t)
	pa, err := m.Kernel().KHO().AllocPreserve(4096)
	require.NoError(t, err)
	led := account.Take(m)
	require.Error(t, led.Err())
	require.Len(t, led.Leaks(), 1)
	require.Equal(t, pa, led.Leaks()[0].Block.PA)
	m.Kernel().KHO().UnpreserveFree(pa)
	require.NoError(t, account.Check(m))
}

// kexecWith builds sessions "a" (retrieved later) and "b" (never) with one
// memfd each, then kexecs.
func kexecWith(t *testing.T, m *machine.Machine) {
	t.Helper()
	task := m.Kernel().NewTask()
	dev, err := lu.OpenDevice(task)
	require.NoError(t, err)
	for _, n := range []string{"a", "b"} {
		s, err := lu.CreateSession(task, dev, n)
		require.NoError(t, err)
		require.NoError(t, lu.CreateAndPreserveMemfd(task, s, 1, "data of "+n))
	}
	require.NoError(t, m.Kexec())
}

func TestAfterKexecEveryBlockIsExplained(t *testing.T) {
	m := boot(t)
	kexecWith(t, m)
	led := account.Take(m)
	require.NoError(t, led.Err(), "%s", led)
	require.Contains(t, led.String(), "never opened")

	task := m.Kernel().NewTask()
	dev, err := lu.OpenDevice(task)
	require.NoError(t, err)
	s, err := lu.RetrieveSession(task, dev, "a")
	require.NoError(t, err)
	fd, err := lu.RestoreAndVerifyMemfd(task, s, 1, "data of a")
	require.NoError(t, err)
	require.NoError(t, task.Close(fd))
	require.NoError(t, lu.FinishSession(task, s))
	task.Exit()

	led = account.Take(m)
	require.NoError(t, led.Err(), "%s", led)
	str := led.String()
	require.Contains(t, str, `file array of incoming session "b" (never retrieved)`)
	require.Contains(t, str, "handler data of the 1 unretrieved incoming file(s)")
	require.Contains(t, str, "incoming LUO FDT")
	require.NotContains(t, str, `session "a"`)
	require.NotZero(t, states(led.Incoming)[account.Restored])
}

func TestEverythingFinishedLeavesOnlyTheFDTs(t *testing.T) {
	m := boot(t)
	kexecWith(t, m)
	task := m.Kernel().NewTask()
	dev, err := lu.OpenDevice(task)
	require.NoError(t, err)
	for _, n := range []string{"a", "b"} {
		s, err := lu.RetrieveSession(task, dev, n)
		require.NoError(t, err)
		require.NoError(t, lu.FinishSession(task, s))
	}
	task.Exit()
	led := account.Take(m)
	require.NoError(t, led.Err(), "%s", led)
	require.Equal(t, 3, states(led.Incoming)[account.Reserved], "only the KHO root FDT, the LUO FDT and the FLB block:\n%s", led)
}

func TestFailedDeserializeLeaksByDesign(t *testing.T) {
	inj := fault.New(1)
	m, err := machine.New(machine.Config{LiveUpdate: true, Faults: inj, Report: func(r *bug.Report) { t.Errorf("%s", r.String()) }})
	require.NoError(t, err)
	kexecWith(t, m)
	block := m.Kernel().LUO().Snapshot().Incoming.HeaderSer
	inj.Arm(fault.LUOSessionAlloc, fault.Attr{Nth: 2})
	task := m.Kernel().NewTask()
	_, err = lu.OpenDevice(task)
	require.ErrorIs(t, err, syscall.EIO)
	task.Exit()
	led := account.Take(m)
	require.NoError(t, led.Err(), "%s", led)
	// Session "a" was restored before the failure: its files stay.
	require.True(t, strings.Contains(led.String(), `file array of incoming session "a" (never retrieved)`), "%s", led)
	// The session block is freed anyway (M26, newest upstream).
	found := false
	for _, e := range led.Incoming {
		if e.Block.PA == block {
			require.Equal(t, account.Restored, e.State, "%s", led)
			found = true
		}
	}
	require.True(t, found, "%s", led)
}

// TestUnreferencedPages: a page nothing refers to is a leak; one whose
// address a referenced page holds, or a kernel object, is not.
func TestUnreferencedPages(t *testing.T) {
	m := boot(t)
	mem := m.Kernel().MM()
	require.Empty(t, account.Take(m).Unreferenced, "a fresh kernel owns all it allocated")

	leaked, err := mem.AllocPages(0, true)
	require.NoError(t, err)
	led := account.Take(m)
	require.Len(t, led.Unreferenced, 1, "%s", led)
	require.Contains(t, led.Unreferenced[0], fmt.Sprintf("%#x (1 pages)", uint64(leaked)))
	require.ErrorContains(t, led.Err(), "ordinary memory")

	// The KHO root FDT (allocated, referenced by KHO) now names the
	// page in a word of its memory: kmemleak's scan of contents finds it.
	root := m.Kernel().KHO().Account().RootFDT
	var word [8]byte
	binary.LittleEndian.PutUint64(word[:], uint64(leaked)+0x10)
	require.NoError(t, m.RAM().WriteRaw(root+mm.PageSize-8, word[:]))
	require.Empty(t, account.Take(m).Unreferenced, "an address inside the block counts")
	binary.LittleEndian.PutUint64(word[:], 0)
	require.NoError(t, m.RAM().WriteRaw(root+mm.PageSize-8, word[:]))

	mem.FreePages(leaked, 0)
	require.Empty(t, account.Take(m).Unreferenced)

	// A folio in a memfd's page cache is found through the file's inode.
	task := m.Kernel().NewTask()
	fd, err := task.MemfdCreate("m", 0)
	require.NoError(t, err)
	_, err = task.Write(fd, []byte("data"))
	require.NoError(t, err)
	require.Empty(t, account.Take(m).Unreferenced)
	task.Exit()
	require.NoError(t, account.Check(m))
}
