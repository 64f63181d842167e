package liveupdatetest_test

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"luomodel/kernel"
	"luomodel/kernel/bug"
	"luomodel/kernel/fault"
	lt "luomodel/kernel/lib/liveupdatetest"
	"luomodel/kernel/module"
	"luomodel/machine"
	"luomodel/proptest/account"
	lu "luomodel/userspace/libliveupdate"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func boot(t *testing.T) *machine.Machine {
	t.Helper()
	m, err := machine.New(machine.Config{
		LiveUpdate: true,
		Report:     func(r *bug.Report) { t.Errorf("%s", r.String()) },
	})
	require.NoError(t, err)
	return m
}

// load loads the test module in k with a new task, which it returns.
func load(t testing.TB, k *kernel.Kernel) *kernel.Task {
	t.Helper()
	task := k.NewTask()
	require.NoError(t, task.InitModule(lt.ModuleName))
	return task
}

func fileID(t *testing.T, task *kernel.Task, fd int) uint64 {
	t.Helper()
	var b [8]byte
	require.NoError(t, task.Ioctl(fd, lt.IoctlGetID, b[:]))
	return binary.LittleEndian.Uint64(b[:])
}

// newFile opens a test file holding payload, positioned at pos.
func newFile(t *testing.T, task *kernel.Task, payload []byte, pos int64) (int, uint64) {
	t.Helper()
	fd, err := task.Open(lt.DevicePath, syscall.O_RDWR)
	require.NoError(t, err)
	if len(payload) > 0 {
		n, err := task.Write(fd, payload)
		require.NoError(t, err)
		require.Equal(t, len(payload), n)
	}
	_, err = task.Lseek(fd, pos, 0)
	require.NoError(t, err)
	return fd, fileID(t, task, fd)
}

func readAll(t *testing.T, task *kernel.Task, fd int) []byte {
	t.Helper()
	_, err := task.Lseek(fd, 0, 0)
	require.NoError(t, err)
	buf := make([]byte, lt.PayloadMax+1)
	n, err := task.Read(fd, buf)
	require.NoError(t, err)
	return buf[:n]
}

func call(op lt.Op, file uint64, result int64) lt.Call {
	return lt.Call{Op: op, File: file, FLB: -1, Result: result}
}

func flbCall(op lt.Op, i int, result int64) lt.Call {
	return lt.Call{Op: op, FLB: i, Result: result}
}

func TestDeviceReadWriteLseek(t *testing.T) {
	m := boot(t)
	k := m.Kernel()
	task := k.NewTask()
	// The device is built in: it opens before the module is loaded.
	early, err := task.Open(lt.DevicePath, syscall.O_RDWR)
	require.NoError(t, err)
	require.NoError(t, task.Close(early))
	require.NoError(t, task.InitModule(lt.ModuleName))
	require.ErrorIs(t, task.InitModule(lt.ModuleName), syscall.EEXIST)

	a, ida := newFile(t, task, []byte("hello"), 0)
	b, idb := newFile(t, task, nil, 0)
	require.Equal(t, uint64(2), ida)
	require.Equal(t, uint64(3), idb)
	require.Equal(t, []byte("hello"), readAll(t, task, a))
	require.Empty(t, readAll(t, task, b))

	off, err := task.Lseek(a, 2, 2) // SEEK_END + 2: a hole
	require.NoError(t, err)
	require.EqualValues(t, 7, off)
	_, err = task.Write(a, []byte("!"))
	require.NoError(t, err)
	require.Equal(t, []byte("hello\x00\x00!"), readAll(t, task, a))
	_, err = task.Lseek(a, -1, 0)
	require.ErrorIs(t, err, syscall.EINVAL)
	_, err = task.Lseek(b, lt.PayloadMax-1, 0)
	require.NoError(t, err)
	n, err := task.Write(b, []byte("xyz"))
	require.NoError(t, err)
	require.Equal(t, 1, n, "a write is cut at PayloadMax")
	_, err = task.Write(b, []byte("z"))
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.Len(t, readAll(t, task, b), lt.PayloadMax)

	// The built-in device's open files do not pin the module: it
	// unloads under them, and they stay usable.
	mod := k.LiveupdateTest().Module()
	require.EqualValues(t, 0, mod.Refcount())
	require.NoError(t, task.DeleteModule(lt.ModuleName, 0))
	require.Equal(t, module.StateGone, mod.State())
	require.Equal(t, []byte("hello\x00\x00!"), readAll(t, task, a))
	require.NoError(t, task.Close(a))
	require.NoError(t, task.Close(b))

	// Reloaded: the file ids go on.
	require.NoError(t, task.InitModule(lt.ModuleName))
	c, idc := newFile(t, task, nil, 0)
	require.Equal(t, uint64(4), idc)
	require.NoError(t, task.Close(c))
	require.Empty(t, k.LiveupdateTest().Trace(), "open, read, write, lseek and a cold-boot load call no LUO callback")
	task.Exit()
}

func TestUnloadRefusedWithPreservedFile(t *testing.T) {
	m := boot(t)
	k := m.Kernel()
	task := load(t, k)
	d := k.LiveupdateTest()
	dev, err := lu.OpenDevice(task)
	require.NoError(t, err)
	s, err := lu.CreateSession(task, dev, "s")
	require.NoError(t, err)
	fd, id := newFile(t, task, []byte("x"), 0)
	require.NoError(t, lu.PreserveFD(task, s, fd, 7))
	require.NoError(t, task.Close(fd)) // only LUO holds the file now
	mod := d.Module()
	// LUO's per-file pin and one per FLB in use (the built-in device's
	// file pins nothing).
	require.EqualValues(t, 3, mod.Refcount())
	require.ErrorIs(t, task.DeleteModule(lt.ModuleName, 0), syscall.EWOULDBLOCK)
	require.Equal(t, module.StateLive, mod.State())

	d.TakeTrace()
	require.NoError(t, task.Close(s))
	require.Equal(t, lt.Trace{
		call(lt.OpUnpreserve, id, 0),
		flbCall(lt.OpFLBUnpreserve, 1, 0), flbCall(lt.OpFLBUnpreserve, 0, 0),
		call(lt.OpGetID, id, int64(id)),
	}, d.TakeTrace())
	require.EqualValues(t, 0, mod.Refcount())
	require.NoError(t, task.DeleteModule(lt.ModuleName, 0))
	st := k.LUO().Snapshot()
	require.Equal(t, []string{"memfd-v1"}, st.Handlers)
	require.Empty(t, st.FLBs)
	task.Exit()
	require.NoError(t, account.TakeKernel(k).Err())
}

// preserveThree preserves three test files in session "s" and returns the
// task, the session fd and the ids.
func preserveThree(t *testing.T, k *kernel.Kernel) (*kernel.Task, int, []uint64) {
	t.Helper()
	task := load(t, k)
	dev, err := lu.OpenDevice(task)
	require.NoError(t, err)
	s, err := lu.CreateSession(task, dev, "s")
	require.NoError(t, err)
	var ids []uint64
	for i := range 3 {
		fd, id := newFile(t, task, []byte{byte('a' + i)}, 0)
		require.NoError(t, lu.PreserveFD(task, s, fd, uint64(10+i)))
		ids = append(ids, id)
	}
	return task, s, ids
}

func TestPreserveAndUnpreserveOrder(t *testing.T) {
	m := boot(t)
	k := m.Kernel()
	task, s, ids := preserveThree(t, k)
	d := k.LiveupdateTest()
	// memfd's can_preserve says no first; FLBs are preserved by the first
	// file only, before its handler's preserve.
	first := lt.Trace{
		call(lt.OpCanPreserve, ids[0], 1), call(lt.OpGetID, ids[0], int64(ids[0])),
		flbCall(lt.OpFLBPreserve, 0, 0), flbCall(lt.OpFLBPreserve, 1, 0),
		call(lt.OpPreserve, ids[0], 0),
	}
	tr := d.TakeTrace()
	require.Equal(t, first, tr[:5])
	require.Equal(t, lt.Trace{
		call(lt.OpCanPreserve, ids[1], 1), call(lt.OpGetID, ids[1], int64(ids[1])), call(lt.OpPreserve, ids[1], 0),
		call(lt.OpCanPreserve, ids[2], 1), call(lt.OpGetID, ids[2], int64(ids[2])), call(lt.OpPreserve, ids[2], 0),
	}, tr[5:])
	require.Equal(t, "liveupdate_test_flb_preserve(flb=liveupdate-test-flb-v1) = 0", tr[3].String())

	// Unpreserve walks newest first; the FLBs go with the last file.
	require.NoError(t, task.Close(s))
	require.Equal(t, lt.Trace{
		call(lt.OpUnpreserve, ids[2], 0), call(lt.OpGetID, ids[2], int64(ids[2])),
		call(lt.OpUnpreserve, ids[1], 0), call(lt.OpGetID, ids[1], int64(ids[1])),
		call(lt.OpUnpreserve, ids[0], 0),
		flbCall(lt.OpFLBUnpreserve, 1, 0), flbCall(lt.OpFLBUnpreserve, 0, 0),
		call(lt.OpGetID, ids[0], int64(ids[0])),
	}, d.TakeTrace())
	task.Exit()
	require.NoError(t, account.TakeKernel(k).Err())
}

func TestNthCallFailsWithChosenErrno(t *testing.T) {
	m := boot(t)
	k := m.Kernel()
	task := load(t, k)
	d := k.LiveupdateTest()
	require.ErrorIs(t, d.FailNth(lt.Directive{Op: lt.OpFinish, Nth: 1}), syscall.EINVAL, "void")
	require.ErrorIs(t, d.FailNth(lt.Directive{Op: lt.OpPreserve, Nth: 1}), syscall.EINVAL, "no errno")
	require.NoError(t, d.FailNth(lt.Directive{Op: lt.OpPreserve, Nth: 2, Errno: syscall.ENOMEM}))
	require.NoError(t, d.FailNth(lt.Directive{Op: lt.OpFLBPreserve, FLB: 1, Nth: 1, Errno: syscall.ENOSPC}))
	dev, err := lu.OpenDevice(task)
	require.NoError(t, err)
	s, err := lu.CreateSession(task, dev, "s")
	require.NoError(t, err)
	fd1, id1 := newFile(t, task, nil, 0)
	fd2, id2 := newFile(t, task, nil, 0)

	// First file: FLB 1 fails, FLB 0 is undone, the handler is not called.
	require.ErrorIs(t, lu.PreserveFD(task, s, fd1, 1), syscall.ENOSPC)
	require.Equal(t, lt.Trace{
		call(lt.OpCanPreserve, id1, 1), call(lt.OpGetID, id1, int64(id1)),
		flbCall(lt.OpFLBPreserve, 0, 0), flbCall(lt.OpFLBPreserve, 1, -int64(syscall.ENOSPC)),
		flbCall(lt.OpFLBUnpreserve, 0, 0), call(lt.OpGetID, id1, int64(id1)),
	}, d.TakeTrace())
	require.NoError(t, lu.PreserveFD(task, s, fd1, 1))
	d.TakeTrace()
	// Second preserve call fails with the chosen errno and is undone.
	require.ErrorIs(t, lu.PreserveFD(task, s, fd2, 2), syscall.ENOMEM)
	require.Equal(t, lt.Trace{
		call(lt.OpCanPreserve, id2, 1), call(lt.OpGetID, id2, int64(id2)),
		call(lt.OpPreserve, id2, -int64(syscall.ENOMEM)), call(lt.OpGetID, id2, int64(id2)),
	}, d.TakeTrace())
	require.Empty(t, d.Directives())
	require.EqualValues(t, 1, k.LUO().Snapshot().FLBs[0].OutgoingCount)
	task.Exit()
	require.NoError(t, account.TakeKernel(k).Err())
}

func TestFreezeFailureUnfreezesTheFrozenFiles(t *testing.T) {
	m := boot(t)
	k := m.Kernel()
	task, _, ids := preserveThree(t, k)
	d := k.LiveupdateTest()
	require.NoError(t, d.FailNth(lt.Directive{Op: lt.OpFreeze, File: ids[2], Nth: 1, Errno: syscall.EIO}))
	d.TakeTrace()
	require.ErrorIs(t, m.Kexec(), syscall.EIO)
	// The files frozen before the failure are unfrozen, exactly those, in
	// list order (upstream's __luo_file_unfreeze()).
	require.Equal(t, lt.Trace{
		call(lt.OpFreeze, ids[0], 0), call(lt.OpFreeze, ids[1], 0), call(lt.OpFreeze, ids[2], -int64(syscall.EIO)),
		call(lt.OpUnfreeze, ids[0], 0), call(lt.OpUnfreeze, ids[1], 0),
	}, d.TakeTrace())
	// Retried, it goes through.
	require.NoError(t, m.Kexec())
	require.Equal(t, lt.Trace{
		call(lt.OpFreeze, ids[0], 0), call(lt.OpFreeze, ids[1], 0), call(lt.OpFreeze, ids[2], 0),
	}, d.TakeTrace())
	_ = task
}

// TestKexecByteForByte: payloads (a full page among them), positions, ids
// and the FLBs' states cross kexec unchanged; finish is all-or-nothing when
// a can_finish refuses; everything preserved is accounted for.
func TestKexecByteForByte(t *testing.T) {
	m := boot(t)
	k := m.Kernel()
	task := load(t, k)
	d := k.LiveupdateTest()
	rng := rand.New(rand.NewPCG(1, 2))
	state0 := make([]byte, lt.FLBStateMax)
	for i := range state0 {
		state0[i] = byte(rng.Uint32())
	}
	require.NoError(t, d.SetFLBState(0, state0))
	require.NoError(t, d.SetFLBState(1, []byte("flb one")))
	dev, err := lu.OpenDevice(task)
	require.NoError(t, err)
	s, err := lu.CreateSession(task, dev, "s")
	require.NoError(t, err)
	payloads := [][]byte{make([]byte, lt.PayloadMax), []byte("short"), nil}
	for i := range payloads[0] {
		payloads[0][i] = byte(rng.Uint32())
	}
	var ids []uint64
	var fds []int
	for i, p := range payloads {
		fd, id := newFile(t, task, p, int64(i*3))
		require.NoError(t, lu.PreserveFD(task, s, fd, uint64(100+i)))
		ids, fds = append(ids, id), append(fds, fd)
	}
	// Written after preserve, before freeze: freeze saves it.
	_, err = task.Lseek(fds[1], 0, 2)
	require.NoError(t, err)
	_, err = task.Write(fds[1], []byte("+late"))
	require.NoError(t, err)
	payloads[1] = []byte("short+late")
	_, err = task.Lseek(fds[1], 3, 0)
	require.NoError(t, err)
	require.NoError(t, m.Kexec())

	k2 := m.Kernel()
	t2 := load(t, k2)
	d2 := k2.LiveupdateTest()
	// The module retrieves its FLBs at load.
	require.Equal(t, lt.Trace{flbCall(lt.OpFLBRetrieve, 0, 0), flbCall(lt.OpFLBRetrieve, 1, 0)}, d2.TakeTrace())
	for i, want := range [][]byte{state0, []byte("flb one")} {
		obj, err := k2.LUO().FLBGetIncoming(d2.FLB(i))
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, obj.(*lt.FLBObject).State), "FLB %d state", i)
		k2.LUO().FLBPutIncoming(d2.FLB(i))
	}
	dev2, err := lu.OpenDevice(t2)
	require.NoError(t, err)
	s2, err := lu.RetrieveSession(t2, dev2, "s")
	require.NoError(t, err)
	for _, i := range []int{1, 0} {
		fd, err := lu.RetrieveFD(t2, s2, uint64(100+i))
		require.NoError(t, err)
		require.Equal(t, ids[i], fileID(t, t2, fd))
		pos, err := t2.Lseek(fd, 0, 1)
		require.NoError(t, err)
		want := int64(i * 3)
		require.Equal(t, want, pos, "file %d position", i)
		require.True(t, bytes.Equal(payloads[i], readAll(t, t2, fd)), "file %d payload", i)
		require.NoError(t, t2.Close(fd))
	}
	require.Equal(t, lt.Trace{
		call(lt.OpRetrieve, ids[1], 0), call(lt.OpGetID, ids[1], int64(ids[1])),
		call(lt.OpRetrieve, ids[0], 0), call(lt.OpGetID, ids[0], int64(ids[0])),
	}, d2.TakeTrace())

	// All or nothing: one can_finish says no, nothing is finished.
	d2.RefuseCanFinish(ids[1], true)
	require.ErrorIs(t, lu.FinishSession(t2, s2), syscall.EBUSY)
	require.Equal(t, lt.Trace{call(lt.OpCanFinish, ids[0], 1), call(lt.OpCanFinish, ids[1], 0)}, d2.TakeTrace())
	require.ErrorIs(t, t2.DeleteModule(lt.ModuleName, 0), syscall.EWOULDBLOCK)
	d2.RefuseCanFinish(ids[1], false)
	require.NoError(t, lu.FinishSession(t2, s2))
	require.Equal(t, lt.Trace{
		call(lt.OpCanFinish, ids[0], 1), call(lt.OpCanFinish, ids[1], 1), call(lt.OpCanFinish, ids[2], 1),
		call(lt.OpFinish, ids[2], 0),
		call(lt.OpFinish, ids[1], 0), call(lt.OpGetID, ids[1], int64(ids[1])),
		call(lt.OpFinish, ids[0], 0),
		flbCall(lt.OpFLBFinish, 1, 0), flbCall(lt.OpFLBFinish, 0, 0),
		call(lt.OpGetID, ids[0], int64(ids[0])),
	}, d2.TakeTrace())
	require.Equal(t, "liveupdate_test_finish(file=0x3)", lt.Call{Op: lt.OpFinish, File: 3, FLB: -1}.String())
	require.NoError(t, t2.Close(s2))
	require.NoError(t, t2.DeleteModule(lt.ModuleName, 0), "nothing pins the module any more")
	t2.Exit()
	require.NoError(t, account.TakeKernel(k2).Err())
}

// TestGetIncomingRacesFinish: FLBGetIncoming/FLBPutIncoming in a loop while
// the session finishes, free running under the race detector: a successful
// get always sees the live object, the FLB finishes exactly once, after
// the last reference, and nothing is reported (M20).
func TestGetIncomingRacesFinish(t *testing.T) {
	m := boot(t)
	k := m.Kernel()
	task, _, _ := preserveThree(t, k)
	_ = task
	require.NoError(t, m.Kexec())
	k2 := m.Kernel()
	t2 := load(t, k2)
	d2 := k2.LiveupdateTest()
	l2 := k2.LUO()
	dev, err := lu.OpenDevice(t2)
	require.NoError(t, err)
	s, err := lu.RetrieveSession(t2, dev, "s")
	require.NoError(t, err)
	flb := d2.FLB(0)

	done := make(chan struct{})
	var gets int
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			obj, err := l2.FLBGetIncoming(flb)
			if err != nil {
				assert.ErrorIs(t, err, syscall.ENODATA)
				return
			}
			gets++
			if o, ok := obj.(*lt.FLBObject); assert.True(t, ok) {
				assert.Equal(t, []byte(lt.FLBCompatible(0)), o.State)
			}
			l2.FLBPutIncoming(flb)
		}
	}()
	require.NoError(t, lu.FinishSession(t2, s))
	<-done
	finishes := 0
	for _, c := range d2.Trace() {
		if c.Op == lt.OpFLBFinish && c.FLB == 0 {
			finishes++
		}
	}
	require.Equal(t, 1, finishes, "after %d gets", gets)
	require.True(t, l2.Snapshot().FLBs[0].Finished)
	require.NoError(t, t2.Close(s))
	t2.Exit()
	require.NoError(t, account.TakeKernel(k2).Err())
}

// TestFLBFaultSites: the flb_preserve and flb_retrieve sites fail the nth
// FLB call in LUO, for any handler with FLBs; the FLB is not called.
func TestFLBFaultSites(t *testing.T) {
	inj := fault.New(1)
	m, err := machine.New(machine.Config{LiveUpdate: true, Faults: inj,
		Report: func(r *bug.Report) { t.Errorf("%s", r.String()) }})
	require.NoError(t, err)
	k := m.Kernel()
	task := load(t, k)
	d := k.LiveupdateTest()
	dev, err := lu.OpenDevice(task)
	require.NoError(t, err)
	s, err := lu.CreateSession(task, dev, "s")
	require.NoError(t, err)
	fd, id := newFile(t, task, []byte("p"), 0)
	inj.Arm(fault.FLBPreserve, fault.Attr{Nth: 2})
	require.ErrorIs(t, lu.PreserveFD(task, s, fd, 1), syscall.ENOMEM)
	require.Equal(t, lt.Trace{
		call(lt.OpCanPreserve, id, 1), call(lt.OpGetID, id, int64(id)),
		flbCall(lt.OpFLBPreserve, 0, 0), flbCall(lt.OpFLBUnpreserve, 0, 0),
		call(lt.OpGetID, id, int64(id)),
	}, d.TakeTrace())
	require.NoError(t, lu.PreserveFD(task, s, fd, 1))
	require.NoError(t, m.Kexec())

	k2 := m.Kernel()
	inj.Arm(fault.FLBRetrieve, fault.Attr{Nth: 1})
	t2 := load(t, k2)
	d2 := k2.LiveupdateTest()
	// flb-v0's retrieval at load failed in LUO; flb-v1's went through.
	require.Equal(t, lt.Trace{flbCall(lt.OpFLBRetrieve, 1, 0)}, d2.TakeTrace())
	st := k2.LUO().Snapshot()
	require.False(t, st.FLBs[0].Retrieved)
	// Retried by the last put of the finish.
	dev2, err := lu.OpenDevice(t2)
	require.NoError(t, err)
	s2, err := lu.RetrieveSession(t2, dev2, "s")
	require.NoError(t, err)
	require.NoError(t, lu.FinishSession(t2, s2))
	require.Equal(t, lt.Trace{
		call(lt.OpCanFinish, id, 1), call(lt.OpFinish, id, 0),
		flbCall(lt.OpFLBFinish, 1, 0), flbCall(lt.OpFLBRetrieve, 0, 0), flbCall(lt.OpFLBFinish, 0, 0),
	}, d2.TakeTrace())
	require.NoError(t, t2.Close(s2))
	t2.Exit()
	require.NoError(t, account.TakeKernel(k2).Err())
}

// TestReloadAfterFLBFinish: a module reloaded after its FLBs finished
// retrieves them again (fresh FLB objects, the same incoming entries, as
// upstream); the pages are gone, so the retrieval fails quietly.
func TestReloadAfterFLBFinish(t *testing.T) {
	m := boot(t)
	k := m.Kernel()
	task, _, _ := preserveThree(t, k)
	_ = task
	require.NoError(t, m.Kexec())
	k2 := m.Kernel()
	t2 := load(t, k2)
	dev, err := lu.OpenDevice(t2)
	require.NoError(t, err)
	s, err := lu.RetrieveSession(t2, dev, "s")
	require.NoError(t, err)
	require.NoError(t, lu.FinishSession(t2, s))
	require.NoError(t, t2.Close(s))
	require.NoError(t, t2.DeleteModule(lt.ModuleName, 0))
	d := k2.LiveupdateTest()
	d.TakeTrace()
	require.NoError(t, t2.InitModule(lt.ModuleName))
	require.Equal(t, lt.Trace{
		flbCall(lt.OpFLBRetrieve, 0, -int64(syscall.EINVAL)), flbCall(lt.OpFLBRetrieve, 1, -int64(syscall.EINVAL)),
	}, d.TakeTrace())
	require.EqualValues(t, 0, d.Module().Refcount())
	require.NoError(t, t2.DeleteModule(lt.ModuleName, 0))
	t2.Exit()
	require.NoError(t, account.TakeKernel(k2).Err())
}
