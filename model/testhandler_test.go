package model

import (
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// calls renders the last operation's callbacks, one per line.
func (w *world) calls() string {
	var l []string
	for _, c := range w.s.Calls {
		l = append(l, c.String())
	}
	return strings.Join(l, "\n")
}

func (w *world) requireCalls(want ...string) {
	w.t.Helper()
	require.Equal(w.t, strings.Join(want, "\n"), w.calls())
}

func (w *world) loadTest() {
	w.t.Helper()
	w.ok(Op{Kind: OpInitModule, Task: 1, Name: TestModuleName})
}

// testFile opens a test file holding data and returns its fd and id.
func (w *world) testFile(data string) (int, TestFileID) {
	w.t.Helper()
	fd := w.open(DevLiveUpdateTest)
	if data != "" {
		w.ok(Op{Kind: OpWrite, Task: 1, FD: fd, Buf: []byte(data)})
	}
	return fd, w.s.Files[w.s.Tasks[1].FDs[fd]].Test
}

func (w *world) direct(id TestFileID, cb string, nth int, e syscall.Errno) {
	w.t.Helper()
	w.ok(Op{Kind: OpTestCtl, TestCmd: TestCmdFail, TestFile: id, Callback: cb, Nth: nth, Errno: e})
}

const (
	flb0 = "flb liveupdate-test-flb-v0"
	flb1 = "flb liveupdate-test-flb-v1"
)

// TestTestDeviceBuiltIn: /dev/liveupdate_test is built in (vfio's device
// files beside vfio_pci's handler): its files open without the module and
// pin it only while LUO preserves them.
func TestTestDeviceBuiltIn(t *testing.T) {
	w := newWorld(t)
	fd := int(w.ok(Op{Kind: OpOpen, Task: 1, Path: DevLiveUpdateTest, Flags: ORdwr}))
	w.loadTest()
	require.Zero(t, w.s.ModuleRefs(), "an open test file pins nothing")
	dev := w.open(DevLiveUpdate)
	s := w.create(dev, "a")
	require.Zero(t, w.preserve(s, fd, 1).Errno)
	require.Equal(t, 1+NTestFLBs, w.s.ModuleRefs(), "LUO's pin, and one per FLB in use")
	w.fails(syscall.EAGAIN, Op{Kind: OpDeleteModule, Task: 1, Name: TestModuleName})
	w.ok(Op{Kind: OpClose, Task: 1, FD: s})
	require.Zero(t, w.s.ModuleRefs(), "the session's close unpreserved it")
	w.ok(Op{Kind: OpDeleteModule, Task: 1, Name: TestModuleName})
	w.ok(Op{Kind: OpClose, Task: 1, FD: fd})
}

func TestTestFilePreserveTrace(t *testing.T) {
	w := newWorld(t)
	w.loadTest()
	dev := w.open(DevLiveUpdate)
	s := w.create(dev, "a")
	f1, id1 := w.testFile("one")
	f2, id2 := w.testFile("two")
	require.Zero(t, w.preserve(s, f1, 1).Errno)
	w.requireCalls(
		`memfd-v1.can_preserve(test#1) = false`,
		`liveupdate-test-v1.can_preserve(test#1) = true`,
		`liveupdate-test-v1.get_id(test#1) = 0`,
		flb0+`.preserve() = 0`,
		flb1+`.preserve() = 0`,
		`liveupdate-test-v1.preserve(test#1) = 0`)
	require.Equal(t, []byte("liveupdate-test-flb-v1"), w.s.Test.FLBs[1].OutObj)
	// The second file only counts.
	require.Zero(t, w.preserve(s, f2, 2).Errno)
	w.requireCalls(
		`memfd-v1.can_preserve(test#2) = false`,
		`liveupdate-test-v1.can_preserve(test#2) = true`,
		`liveupdate-test-v1.get_id(test#2) = 0`,
		`liveupdate-test-v1.preserve(test#2) = 0`)
	require.Equal(t, 2, w.s.Test.FLBs[0].OutCount)
	// LUO's per-file pins and the FLBs in use pin the module (the
	// built-in device's files do not).
	require.Equal(t, 2+2, w.s.ModuleRefs())
	w.fails(syscall.EAGAIN, Op{Kind: OpDeleteModule, Task: 1, Name: TestModuleName})
	// The same file again: the map refuses it.
	dup := int(w.ok(Op{Kind: OpDup, Task: 1, FD: f1}))
	require.Equal(t, syscall.EBUSY, w.preserve(s, dup, 3).Errno)
	// Closing the session unpreserves tail first; the last file
	// unpreserves the FLBs, in reverse link order.
	w.ok(Op{Kind: OpClose, Task: 1, FD: s})
	w.requireCalls(
		`liveupdate-test-v1.unpreserve(test#2) = 0`,
		`liveupdate-test-v1.get_id(test#2) = 0`,
		`liveupdate-test-v1.unpreserve(test#1) = 0`,
		flb1+`.unpreserve() = 0`,
		flb0+`.unpreserve() = 0`,
		`liveupdate-test-v1.get_id(test#1) = 0`)
	_ = id1
	_ = id2
	for _, fd := range []int{f1, f2, dup} {
		w.ok(Op{Kind: OpClose, Task: 1, FD: fd})
	}
	require.Zero(t, w.s.ModuleRefs())
	w.ok(Op{Kind: OpDeleteModule, Task: 1, Name: TestModuleName})
}

func TestTestFilePreserveFailuresUnwind(t *testing.T) {
	w := newWorld(t)
	w.loadTest()
	dev := w.open(DevLiveUpdate)
	s := w.create(dev, "a")
	f1, id1 := w.testFile("x")
	// flb1's preserve fails: flb0 is put back.
	w.ok(Op{Kind: OpTestCtl, TestCmd: TestCmdFail, Name: "flb", FLB: 1, Callback: FlbPreserve, Nth: 1, Errno: syscall.ENOSPC})
	require.Equal(t, syscall.ENOSPC, w.preserve(s, f1, 1).Errno)
	w.requireCalls(
		`memfd-v1.can_preserve(test#1) = false`,
		`liveupdate-test-v1.can_preserve(test#1) = true`,
		`liveupdate-test-v1.get_id(test#1) = 0`,
		flb0+`.preserve() = 0`,
		flb1+`.preserve() = -ENOSPC`,
		flb0+`.unpreserve() = 0`,
		`liveupdate-test-v1.get_id(test#1) = 0`)
	// The handler's preserve fails: both FLBs are put back, reverse.
	w.direct(id1, CbPreserve, 1, syscall.EIO)
	require.Equal(t, syscall.EIO, w.preserve(s, f1, 1).Errno)
	require.Contains(t, w.calls(), "liveupdate-test-v1.preserve(test#1) = -EIO\n"+flb1+".unpreserve() = 0\n"+flb0+".unpreserve() = 0")
	// can_preserve says no: no handler.
	w.direct(id1, CbCanPreserve, 1, 0)
	require.Equal(t, syscall.ENOENT, w.preserve(s, f1, 1).Errno)
	w.requireCalls(`memfd-v1.can_preserve(test#1) = false`, `liveupdate-test-v1.can_preserve(test#1) = false`)
	require.Zero(t, w.s.Test.FLBs[0].OutCount)
	require.Zero(t, w.preserve(s, f1, 1).Errno)
}

// TestFreezeRollback: a kexec whose third frozen file fails unfreezes the
// two before it in that session (forward), then the earlier session.
func TestFreezeRollback(t *testing.T) {
	w := newWorld(t)
	w.loadTest()
	dev := w.open(DevLiveUpdate)
	a := w.create(dev, "a")
	b := w.create(dev, "b")
	var ids []TestFileID
	for i, sess := range []int{a, b, b, b} {
		fd, id := w.testFile("p")
		ids = append(ids, id)
		require.Zero(t, w.preserve(sess, fd, uint64(i)).Errno)
	}
	m := w.memfd("mem")
	require.Zero(t, w.preserve(a, m, 9).Errno)
	w.direct(ids[3], CbFreeze, 1, syscall.ENOMEM)
	w.fails(syscall.ENOMEM, Op{Kind: OpKexec})
	w.requireCalls(
		`liveupdate-test-v1.freeze(test#1) = 0`,
		`memfd-v1.freeze("a"/9) = 0`,
		`liveupdate-test-v1.freeze(test#2) = 0`,
		`liveupdate-test-v1.freeze(test#3) = 0`,
		`liveupdate-test-v1.freeze(test#4) = -ENOMEM`,
		`liveupdate-test-v1.unfreeze(test#2) = 0`,
		`liveupdate-test-v1.unfreeze(test#3) = 0`,
		`liveupdate-test-v1.unfreeze(test#1) = 0`)
	// The handler_freeze site fails the 2nd file without calling it.
	r, ok := w.s.ApplyFaultNth(FaultHandlerFreeze, 2, Op{Kind: OpKexec})
	require.True(t, ok)
	require.Equal(t, syscall.EIO, r.Errno)
	w.requireCalls(`liveupdate-test-v1.freeze(test#1) = 0`, `liveupdate-test-v1.unfreeze(test#1) = 0`)
}

// TestKexecHandsTestFilesAndFLBsOver follows test files and FLBs across a
// kexec: payloads byte for byte, FLB retrieve on first get_incoming, the
// FLB finish at the last file's finish, can_finish all or nothing.
func TestKexecHandsTestFilesAndFLBsOver(t *testing.T) {
	w := newWorld(t)
	w.loadTest()
	dev := w.open(DevLiveUpdate)
	s := w.create(dev, "a")
	var ids []TestFileID
	for i, data := range []string{"alpha", "beta"} {
		fd, id := w.testFile(data)
		ids = append(ids, id)
		require.Zero(t, w.preserve(s, fd, uint64(i)).Errno)
	}
	require.Equal(t, []byte(TestFLBCompatible(1)), w.do(Op{Kind: OpTestCtl, TestCmd: TestCmdFLBOutgoing, FLB: 1}).Data)
	w.ok(Op{Kind: OpTestCtl, TestCmd: TestCmdSetFLBState, FLB: 1, Buf: []byte("s1")})
	// The state is saved by the next preserve: close and preserve again.
	w.ok(Op{Kind: OpClose, Task: 1, FD: s})
	s = w.create(dev, "a")
	for i, id := range ids {
		fd := w.open(DevLiveUpdateTest)
		_ = id
		ids[i] = w.s.Files[w.s.Tasks[1].FDs[fd]].Test
		w.ok(Op{Kind: OpWrite, Task: 1, FD: fd, Buf: []byte([]string{"alpha", "beta"}[i])})
		require.Zero(t, w.preserve(s, fd, uint64(i)).Errno)
	}
	w.ok(Op{Kind: OpKexec})
	require.Equal(t, []FLBSer{{TestFLBCompatible(0), []byte(TestFLBCompatible(0)), 2}, {TestFLBCompatible(1), []byte("s1"), 2}}, w.s.FLBIn)
	w.ok(Op{Kind: OpNewTask})
	// Without the module the test files cannot be deserialized.
	w2 := *w
	w2.s = w.s.Clone()
	r := w2.do(Op{Kind: OpOpen, Task: 2, Path: DevLiveUpdate, Flags: ORdwr})
	require.Equal(t, syscall.EIO, r.Errno)

	w.ok(Op{Kind: OpInitModule, Task: 2, Name: TestModuleName})
	// The module's init retrieves its incoming FLBs.
	w.requireCalls(flb0+`.retrieve() = 0`, flb1+`.retrieve() = 0`)
	dev = int(w.ok(Op{Kind: OpOpen, Task: 2, Path: DevLiveUpdate, Flags: ORdwr}))
	require.Equal(t, 2+2, w.s.ModuleRefs(), "one per deserialized file and retrieved FLB")
	w.fails(syscall.EAGAIN, Op{Kind: OpDeleteModule, Task: 2, Name: TestModuleName})
	r = w.do(Op{Kind: OpIoctl, Task: 2, FD: dev, Cmd: IoctlRetrieveSession, Buf: SessionArgBuf("a")})
	require.Zero(t, r.Errno)
	sfd := int(int32(le32(r.Data[4:])))
	require.Equal(t, []byte("s1"), w.do(Op{Kind: OpTestCtl, TestCmd: TestCmdFLBIncoming, FLB: 1}).Data)
	w.requireCalls()
	// Retrieve file 0; its payload crossed.
	r = w.do(Op{Kind: OpIoctl, Task: 2, FD: sfd, Cmd: IoctlSessionRetrieveFD, Buf: FDArgBuf(0, 0)})
	require.Zero(t, r.Errno)
	w.requireCalls(`liveupdate-test-v1.retrieve(test#3) = 0`, `liveupdate-test-v1.get_id(test#3) = 0`)
	tfd := int(int32(le32(r.Data[4:])))
	tf := w.s.Files[w.s.Tasks[2].FDs[tfd]]
	require.Equal(t, int64(5), tf.Pos, "the position crossed too")
	require.Equal(t, []byte("alpha"), w.s.TestFiles[tf.Test].Payload)
	// File 1 refuses to finish: nothing is finished.
	w.ok(Op{Kind: OpTestCtl, TestCmd: TestCmdRefuse, TestFile: ids[1], Nth: 1})
	fin := Op{Kind: OpIoctl, Task: 2, FD: sfd, Cmd: IoctlSessionFinish, Buf: FinishArgBuf(0)}
	w.fails(syscall.EBUSY, fin)
	w.requireCalls(`liveupdate-test-v1.can_finish(test#3) = true`, `liveupdate-test-v1.can_finish(test#4) = false`)
	w.ok(Op{Kind: OpTestCtl, TestCmd: TestCmdRefuse, TestFile: ids[1], Nth: 0})
	w.ok(fin)
	w.requireCalls(
		`liveupdate-test-v1.can_finish(test#3) = true`,
		`liveupdate-test-v1.can_finish(test#4) = true`,
		`liveupdate-test-v1.finish(test#4) = 0`,
		`liveupdate-test-v1.finish(test#3) = 0`,
		flb1+`.finish() = 0`,
		flb0+`.finish() = 0`,
		`liveupdate-test-v1.get_id(test#3) = 0`)
	require.Equal(t, 0, w.s.ModuleRefs(), "the retrieved file's fd pins nothing (built-in device)")
	w.ok(Op{Kind: OpDeleteModule, Task: 2, Name: TestModuleName})
	w.ok(Op{Kind: OpClose, Task: 2, FD: tfd})
	require.Zero(t, w.s.Warns)
}

func TestFLBRegistration(t *testing.T) {
	w := newWorld(t)
	w.fails(syscall.ENODEV, Op{Kind: OpTestCtl, TestCmd: TestCmdUnregisterFLB, FLB: 0})
	w.loadTest()
	w.ok(Op{Kind: OpTestCtl, TestCmd: TestCmdUnregisterFLB, FLB: 0})
	w.ok(Op{Kind: OpTestCtl, TestCmd: TestCmdUnregisterFLB, FLB: 0}) // a logged warning
	w.ok(Op{Kind: OpTestCtl, TestCmd: TestCmdRegisterFLB, FLB: 0})
	w.fails(syscall.EEXIST, Op{Kind: OpTestCtl, TestCmd: TestCmdRegisterFLB, FLB: 0})
	require.Equal(t, []int{1, 0}, w.s.Test.Links)
	dev := w.open(DevLiveUpdate)
	s := w.create(dev, "a")
	fd, _ := w.testFile("")
	require.Zero(t, w.preserve(s, fd, 0).Errno)
	require.Contains(t, w.calls(), flb1+".preserve() = 0\n"+flb0+".preserve() = 0")
	// Without incoming FLB data there is nothing to retrieve.
	w.fails(syscall.EINVAL, Op{Kind: OpTestCtl, TestCmd: TestCmdFLBIncoming + 100})
	w.fails(syscall.ENODATA, Op{Kind: OpTestCtl, TestCmd: TestCmdFLBIncoming, FLB: 1})
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// TestFLBRetrievedAtModuleLoad: the module's init loads the incoming FLB
// state, so finishing the last file finishes the FLBs.
func TestFLBRetrievedAtModuleLoad(t *testing.T) {
	w := newWorld(t)
	w.loadTest()
	dev := w.open(DevLiveUpdate)
	s := w.create(dev, "a")
	fd, _ := w.testFile("z")
	require.Zero(t, w.preserve(s, fd, 0).Errno)
	w.ok(Op{Kind: OpKexec})
	w.ok(Op{Kind: OpNewTask})
	w.ok(Op{Kind: OpInitModule, Task: 2, Name: TestModuleName})
	w.requireCalls(flb0+`.retrieve() = 0`, flb1+`.retrieve() = 0`)
	// Unload and load again: the FLBs are new, and retrieved again.
	dev = int(w.ok(Op{Kind: OpOpen, Task: 2, Path: DevLiveUpdate, Flags: ORdwr}))
	r := w.do(Op{Kind: OpIoctl, Task: 2, FD: dev, Cmd: IoctlRetrieveSession, Buf: SessionArgBuf("a")})
	require.Zero(t, r.Errno)
	w.ok(Op{Kind: OpIoctl, Task: 2, FD: int(int32(le32(r.Data[4:]))), Cmd: IoctlSessionFinish, Buf: FinishArgBuf(0)})
	require.Zero(t, w.s.Warns)
	w.requireCalls(`liveupdate-test-v1.can_finish(test#1) = true`, `liveupdate-test-v1.finish(test#1) = 0`,
		flb1+`.finish() = 0`, flb0+`.finish() = 0`)
}

// TestCanonSeesFLBDirections: states that differ only in what an FLB's
// next preserve saves, or in whether its handed-over page was consumed,
// are not Equal (porcupine would otherwise merge them).
func TestCanonSeesFLBDirections(t *testing.T) {
	a := NewState(true)
	b := a.Clone()
	require.True(t, Equal(a, b))
	b.TestCtl.FLBStates[1] = []byte("x")
	require.False(t, Equal(a, b))
	c := a.Clone()
	c.TestCtl.FLBConsumed[0] = true
	require.False(t, Equal(a, c))
}

// TestFLBSecondFinishLosesAPin: an FLB whose retrieve failed at the
// module's init is retrieved by its last put, which reloads its incoming
// count; a file preserved while it was unlinked puts it once more and
// finishes it again (upstream's liveupdate_flb_put_incoming()), dropping
// its owner's pin a second time: the module's refcnt falls to 0, so
// delete_module() meets try_release_module_ref()'s BUG_ON (a WARN) and
// EAGAIN, and no new pin can be taken.
func TestFLBSecondFinishLosesAPin(t *testing.T) {
	w := newWorld(t)
	w.loadTest()
	w.ok(Op{Kind: OpTestCtl, TestCmd: TestCmdUnregisterFLB, FLB: 0})
	dev := w.open(DevLiveUpdate)
	s := w.create(dev, "a")
	fd1, _ := w.testFile("")
	require.Zero(t, w.preserve(s, fd1, 0).Errno) // counts on flb1 only
	fd2, _ := w.testFile("")
	w.ok(Op{Kind: OpTestCtl, TestCmd: TestCmdRegisterFLB, FLB: 0})
	require.Zero(t, w.preserve(s, fd2, 1).Errno) // counts on flb0 and flb1
	w.ok(Op{Kind: OpKexec})
	w.ok(Op{Kind: OpNewTask})
	w.ok(Op{Kind: OpTestCtl, TestCmd: TestCmdFail, Name: "flb", FLB: 0, Callback: FlbRetrieve, Nth: 1, Errno: syscall.ENOMEM})
	w.ok(Op{Kind: OpInitModule, Task: 2, Name: TestModuleName})
	w.requireCalls(flb0+`.retrieve() = -ENOMEM`, flb1+`.retrieve() = 0`)
	dev = int(w.ok(Op{Kind: OpOpen, Task: 2, Path: DevLiveUpdate, Flags: ORdwr}))
	r := w.do(Op{Kind: OpIoctl, Task: 2, FD: dev, Cmd: IoctlRetrieveSession, Buf: SessionArgBuf("a")})
	require.Zero(t, r.Errno)
	w.ok(Op{Kind: OpIoctl, Task: 2, FD: int(int32(le32(r.Data[4:]))), Cmd: IoctlSessionFinish, Buf: FinishArgBuf(0)})
	require.Equal(t, 2, strings.Count(w.calls(), flb0+`.finish() = 0`), "flb0 finishes twice")
	require.Equal(t, -1, w.s.ModuleRefs(), "one pin lost: refcnt 0")
	require.Zero(t, w.s.Warns)
	w.fails(syscall.EAGAIN, Op{Kind: OpDeleteModule, Task: 2, Name: TestModuleName})
	require.Equal(t, 1, w.s.Warns, "try_release_module_ref()'s BUG_ON")
	// try_module_get() fails: the test handler takes no new file.
	r = w.do(Op{Kind: OpIoctl, Task: 2, FD: dev, Cmd: IoctlCreateSession, Buf: SessionArgBuf("b")})
	require.Zero(t, r.Errno)
	fd3 := int32(w.ok(Op{Kind: OpOpen, Task: 2, Path: DevLiveUpdateTest, Flags: ORdwr}))
	r = w.do(Op{Kind: OpIoctl, Task: 2, FD: int(int32(le32(r.Data[4:]))), Cmd: IoctlSessionPreserveFD, Buf: FDArgBuf(fd3, 0)})
	require.Equal(t, syscall.ENOENT, r.Errno)
}
