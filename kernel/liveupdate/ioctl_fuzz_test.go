package liveupdate_test

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"luomodel/kernel"
	"luomodel/kernel/bug"
	"luomodel/kernel/fault"
	"luomodel/kernel/liveupdate"
	"luomodel/kernel/vfs"
	"luomodel/machine"
	lu "luomodel/userspace/libliveupdate"
)

// Targets of FuzzIoctl: which file the ioctl goes to, and on which side of
// a kexec.
const (
	ioctlDev         = iota // /dev/liveupdate, first kernel
	ioctlOutgoing           // session "vm0" with one memfd, first kernel
	ioctlIncoming           // retrieved session "vm0" after a kexec
	ioctlDevIncoming        // /dev/liveupdate after a kexec ("vm1" unretrieved)
	numIoctlTargets
)

// ioctlSetup boots a machine and brings it to target. In every state fd 0
// is /dev/liveupdate, fd 1 session "vm0" and fd 2 an unpreserved memfd
// with data, so fuzzed arguments can name them.
func ioctlSetup(t *testing.T, target int) (*machine.Machine, *kernel.Task, int) {
	inj := fault.New(1)
	m, err := machine.New(machine.Config{
		LiveUpdate: true,
		MemoryMiB:  handoverMiB,
		Faults:     inj,
		Report:     func(r *bug.Report) { t.Errorf("%s", r.String()) },
	})
	require.NoError(t, err)
	task := m.Kernel().NewTask()
	dev, err := lu.OpenDevice(task)
	require.NoError(t, err)
	s, err := lu.CreateSession(task, dev, "vm0")
	require.NoError(t, err)
	require.NoError(t, lu.CreateAndPreserveMemfd(task, s, 1, "one"))
	mfd, err := task.MemfdCreate("spare", 0)
	require.NoError(t, err)
	_, err = task.Write(mfd, []byte("spare data"))
	require.NoError(t, err)
	if target == ioctlDev || target == ioctlOutgoing {
		return m, task, target // fd 0 or 1
	}
	s1, err := lu.CreateSession(task, dev, "vm1")
	require.NoError(t, err)
	require.NoError(t, lu.CreateAndPreserveMemfd(task, s1, 5, "five"))
	require.NoError(t, m.Kexec())
	task = m.Kernel().NewTask()
	dev, err = lu.OpenDevice(task)
	require.NoError(t, err)
	_, err = lu.RetrieveSession(task, dev, "vm0")
	require.NoError(t, err)
	mfd, err = task.MemfdCreate("spare", 0)
	require.NoError(t, err)
	_, err = task.Write(mfd, []byte("spare data"))
	require.NoError(t, err)
	if target == ioctlIncoming {
		return m, task, 1
	}
	return m, task, 0
}

// FuzzIoctl drives raw ioctl commands and argument bytes through
// Task.Ioctl on /dev/liveupdate and on session fds, before and after a
// kexec, optionally with one fault site armed for the call: every call
// ends in success or an errno, never a panic or a report; afterwards no
// file leaks and the machine still live-updates, handing over whatever
// state the call left.
func FuzzIoctl(f *testing.F) {
	name := func(s string) [lu.SessionNameLength]byte {
		var b [lu.SessionNameLength]byte
		copy(b[:], s)
		return b
	}
	sess := func(s string) []byte {
		return (&lu.SessionArgs{Size: lu.SizeofCreateSession, Name: name(s)}).Marshal()
	}
	fdArg := func(fd int32, tok uint64) []byte {
		return (&lu.PreserveFDArgs{Size: lu.SizeofPreserveFD, FD: fd, Token: tok}).Marshal()
	}
	noFault := uint8(fault.NumSites)
	for _, site := range []uint8{noFault, uint8(fault.CopyToUser)} {
		f.Add(uint8(ioctlDev), uint32(lu.IoctlCreateSession), sess("new"), site)
		f.Add(uint8(ioctlDev), uint32(lu.IoctlCreateSession), sess("vm0"), site)
		f.Add(uint8(ioctlDevIncoming), uint32(lu.IoctlRetrieveSession), sess("vm1"), site)
		f.Add(uint8(ioctlOutgoing), uint32(lu.SessionPreserveFD), fdArg(2, 9), site)
		f.Add(uint8(ioctlIncoming), uint32(lu.SessionRetrieveFD), fdArg(0, 1), site)
		f.Add(uint8(ioctlIncoming), uint32(lu.SessionFinish), (&lu.FinishArgs{Size: lu.SizeofFinish}).Marshal(), site)
		f.Add(uint8(ioctlOutgoing), uint32(lu.SessionGetName), (&lu.GetNameArgs{Size: lu.SizeofGetName}).Marshal(), site)
	}
	f.Add(uint8(ioctlOutgoing), uint32(lu.SessionPreserveFD), fdArg(2, 9), uint8(fault.HandlerPreserve))
	f.Add(uint8(ioctlIncoming), uint32(lu.SessionRetrieveFD), fdArg(0, 1), uint8(fault.HandlerRetrieve))
	f.Add(uint8(ioctlIncoming), uint32(lu.SessionFinish), (&lu.FinishArgs{Size: lu.SizeofFinish}).Marshal(), uint8(fault.HandlerCanFinish))
	f.Add(uint8(ioctlDev), uint32(lu.IoctlCreateSession), append(sess("big"), 0, 0, 0, 1), noFault)
	f.Add(uint8(ioctlDev), uint32(0xc048ba00), sess("x"), noFault)
	f.Add(uint8(ioctlOutgoing), uint32(lu.SessionPreserveFD), []byte{16, 0}, noFault)
	f.Fuzz(func(t *testing.T, target uint8, cmd uint32, arg []byte, site uint8) {
		if len(arg) > 4096 {
			arg = arg[:4096]
		}
		defer checkGoroutines(t, runtime.NumGoroutine())
		target %= numIoctlTargets
		m, task, fd := ioctlSetup(t, int(target))
		before := outgoingState(m.Kernel().LUO())
		inj := m.Faults()
		if s := fault.Site(site); s < fault.NumSites {
			inj.ArmNext(s)
		}
		err := task.Ioctl(fd, cmd, arg)
		errnoOnly(t, "ioctl", err)
		inj.DisarmAll()
		// Before a kexec a failure undoes itself completely, but for
		// the response of PRESERVE_FD: luo_session_preserve_fd() keeps
		// the file preserved when copy_to_user() fails ("The file was
		// successfully preserved, but response to user failed").
		respond := fault.Site(site) == fault.CopyToUser && cmd == uint32(lu.SessionPreserveFD)
		if err != nil && (target == ioctlDev || target == ioctlOutgoing) && !respond {
			require.Equal(t, before, outgoingState(m.Kernel().LUO()), "ioctl %#x failed with %v", cmd, err)
		}
		task.Exit()
		k := m.Kernel()
		vfs.CheckNoLeaks(t, k.VFS())
		require.NoError(t, m.Kexec(), "the state the ioctl left must still hand over")
		t2 := m.Kernel().NewTask()
		_, err = lu.OpenDevice(t2)
		require.NoError(t, err, "the next kernel must take it")
		t2.Exit()
	})
}

// checkGoroutines fails if more goroutines than before outlive an input
// (after a grace of a second for those that are exiting). Nothing the
// fuzzed paths run starts one; this says so cheaply, every execution.
func checkGoroutines(tb testing.TB, before int) {
	tb.Helper()
	for i := 0; runtime.NumGoroutine() > before; i++ {
		if i == 100 {
			buf := make([]byte, 1<<20)
			tb.Fatalf("%d goroutines, %d before the input:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// outgoingState renders what a first kernel's LUO will hand over: the
// outgoing sessions with their files, the double-preservation map and the
// handlers' user counts.
func outgoingState(l *liveupdate.LUO) string {
	st := l.Snapshot()
	var b strings.Builder
	for _, s := range st.Outgoing.Sessions {
		fmt.Fprintf(&b, "session %q:", s.Name)
		for _, f := range s.Files {
			fmt.Fprintf(&b, " %#x/%s", f.Token, f.Compatible)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "count %d, preserved %d, handler users %v", st.Outgoing.Count, len(st.Preserved), st.HandlerUsers)
	return b.String()
}

// TestIoctlHugeSizeAllocatesNothing is FuzzIoctl's first finding: a
// declared size of 4 GiB made copy_struct_from_user() allocate the tail
// before checking that the user buffer has it. It must fail with EFAULT
// at no cost.
func TestIoctlHugeSizeAllocatesNothing(t *testing.T) {
	m, task, _ := ioctlSetup(t, ioctlDev)
	defer task.Exit()
	arg := (&lu.SessionArgs{Size: lu.SizeofCreateSession, Name: [lu.SessionNameLength]byte{'x'}}).Marshal()
	binary.LittleEndian.PutUint32(arg, 0xffffffff)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := task.Ioctl(0, lu.IoctlCreateSession, arg)
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, syscall.EFAULT)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20))
	require.Zero(t, m.Kernel().LUO().Snapshot().Outgoing.Count-1, "only the setup's session exists")
}
