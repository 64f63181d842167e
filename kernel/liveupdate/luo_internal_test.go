package liveupdate

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/bug"
	"luomodel/kernel/kho"
	"luomodel/kernel/locking"
	"luomodel/kernel/mm"
	"luomodel/kernel/usermem"
	"luomodel/kernel/vfs"
)

// faultyKHO injects a kho_finalize() failure.
type faultyKHO struct {
	khoHandover
	finalizeErr error
}

func (f *faultyKHO) Finalize() error {
	if f.finalizeErr != nil {
		return f.finalizeErr
	}
	return f.khoHandover.Finalize()
}

// testKernel is the slice of a kernel LUO needs, built by hand.
type testKernel struct {
	rep *bug.Reporter
	vfs *vfs.VFS
	kho *faultyKHO
	luo *LUO
	ctx *vfs.Context
	dev *vfs.File
}

func newTestKernel(t *testing.T) *testKernel {
	t.Helper()
	rep := bug.NewReporter(func(r *bug.Report) { t.Errorf("%s", r.String()) })
	dom := locking.NewDomain(locking.Options{Lockdep: true, Reporter: rep})
	m := mm.New(mm.NewRAM(64<<20), rep, nil)
	v := vfs.New(dom)
	k, err := kho.New(kho.Config{Enabled: true, MM: m, Domain: dom, Reporter: rep})
	require.NoError(t, err)
	h := &faultyKHO{khoHandover: khoHandover{k}}
	l, err := earlyInit(Config{Enabled: true, Domain: dom, Reporter: rep, MM: m, VFS: v, KHO: k}, h, mmMem{m})
	require.NoError(t, err)
	require.NoError(t, l.LateInit())
	tk := &testKernel{rep: rep, vfs: v, kho: h, luo: l, ctx: &vfs.Context{FDs: v.NewFDTable(1024)}}
	tk.dev, err = v.Open(tk.ctx, "/dev/liveupdate", syscall.O_RDWR)
	require.NoError(t, err)
	t.Cleanup(func() {
		tk.ctx.FDs.CloseAll()
		tk.dev.Put()
	})
	return tk
}

// ioctl runs one ioctl on f as the syscall layer does.
func (tk *testKernel) ioctl(f *vfs.File, cmd uint32, arg []byte) error {
	err := f.Ioctl(tk.ctx, cmd, usermem.NewBuffer(arg))
	tk.ctx.TaskWorkRun()
	return err
}

func (tk *testKernel) create(t *testing.T, name string) *vfs.File {
	t.Helper()
	b := make([]byte, SessionArgSize)
	a := SessionArg{Size: SessionArgSize}
	copy(a.Name[:], name)
	a.Encode(b)
	require.NoError(t, tk.ioctl(tk.dev, IoctlCreateSession, b))
	f, err := tk.ctx.FDs.Get(int(DecodeSessionArg(b).FD))
	require.NoError(t, err)
	f.Put() // the table keeps its reference
	return f
}

func (tk *testKernel) installNull(t *testing.T) int {
	t.Helper()
	f, err := tk.vfs.Open(tk.ctx, "/dev/null", syscall.O_RDWR)
	require.NoError(t, err)
	fd, err := tk.ctx.FDs.GetUnusedFD(0)
	require.NoError(t, err)
	tk.ctx.FDs.Install(fd, f)
	return fd
}

// countingHandler preserves /dev/null and counts freeze/unfreeze.
func countingHandler(freezes, unfreezes *int) *FileHandler {
	return &FileHandler{Compatible: "count-v1", Ops: &FileOps{
		CanPreserve: func(_ *FileHandler, f *vfs.File) bool { return f.Name() == "/dev/null" },
		Preserve:    func(a *FileOpArgs) error { a.SerializedData = 0x77; return nil },
		Unpreserve:  func(*FileOpArgs) {},
		Freeze:      func(*FileOpArgs) error { *freezes++; return nil },
		Unfreeze:    func(*FileOpArgs) { *unfreezes++ },
		Retrieve:    func(*FileOpArgs) error { return syscall.EIO },
		Finish:      func(*FileOpArgs) {},
	}}
}

// TestRebootUndoesSerializationWhenFinalizeFails checks the profile's
// repair: a kho_finalize() failure after a successful serialize unfreezes
// every session, clears the image, releases the serialize rwsem and
// returns EAGAIN; a retried reboot succeeds and writes the image (R1).
func TestRebootUndoesSerializationWhenFinalizeFails(t *testing.T) {
	tk := newTestKernel(t)
	var freezes, unfreezes int
	require.NoError(t, tk.luo.RegisterFileHandler(countingHandler(&freezes, &unfreezes)))
	s := tk.create(t, "a")
	fb := make([]byte, FDArgSize)
	(&FDArg{Size: FDArgSize, FD: int32(tk.installNull(t)), Token: 5}).Encode(fb)
	require.NoError(t, tk.ioctl(s, IoctlSessionPreserveFD, fb))
	tk.create(t, "b")

	tk.kho.finalizeErr = syscall.ENOMEM
	require.ErrorIs(t, tk.luo.Reboot(), syscall.EAGAIN)
	require.Equal(t, 1, freezes)
	require.Equal(t, 1, unfreezes)
	require.False(t, tk.luo.Snapshot().Serialized)
	img, err := tk.luo.OutgoingImage(2)
	require.NoError(t, err)
	require.Zero(t, img.Header.Count)
	require.Equal(t, []SessionSer{{}, {}}, img.Sessions)
	// The rwsem is free again: the subsystem is usable.
	require.True(t, tk.luo.serializeRwsem.TryDownWrite())
	tk.luo.serializeRwsem.UpWrite()
	st := tk.luo.Snapshot()
	require.Equal(t, uint64(0x77), st.Outgoing.Sessions[0].Files[0].SerializedData, "M7")

	tk.kho.finalizeErr = nil
	require.NoError(t, tk.luo.Reboot())
	require.True(t, tk.luo.Snapshot().Serialized)
	require.False(t, tk.luo.serializeRwsem.TryDownRead(), "kept for write until kexec (M13)")
	img, err = tk.luo.OutgoingImage(2)
	require.NoError(t, err)
	require.Equal(t, uint64(2), img.Header.Count)
	name, _ := cString(img.Sessions[0].Name[:])
	require.Equal(t, "a", name)
	require.Equal(t, uint64(1), img.Sessions[0].FileSetSer.Count)
	require.Equal(t, uint64(st.Outgoing.Sessions[0].FilesPA), img.Sessions[0].FileSetSer.Files)
	require.Equal(t, uint64(5), img.Files[0][0].Token)
	require.Equal(t, uint64(0x77), img.Files[0][0].Data)
	compat, _ := cString(img.Files[0][0].Compatible[:])
	require.Equal(t, "count-v1", compat)
	require.Zero(t, img.Sessions[1].FileSetSer, "an empty set writes no file_set_ser")
	// Undo the kept lock so that cleanup (session release) can run.
	tk.luo.sessionUnserialize()
}

// TestUseAfterFreeIsReported: a freed session is poisoned.
func TestUseAfterFreeIsReported(t *testing.T) {
	var got []*bug.Report
	rep := bug.NewReporter(func(r *bug.Report) { got = append(got, r) })
	dom := locking.NewDomain(locking.Options{Reporter: rep})
	l := &LUO{dom: dom, rep: rep}
	s := l.sessionAlloc([SessionNameLength]byte{'x'})
	l.sessionFree(s)
	l.sessionLock(s)
	s.mutex.Unlock()
	l.sessionFree(s)
	require.Len(t, got, 2)
	require.Equal(t, bug.KindUAF, got[0].Kind)
	require.Equal(t, bug.KindUAF, got[1].Kind)
	// The report says where the session was freed, from sessionFree out.
	require.Contains(t, got[0].Detail, "freed by:\n luomodel/kernel/liveupdate.(*LUO).sessionFree\n")
	require.Contains(t, got[0].Detail, "TestUseAfterFreeIsReported")
}

// TestCopyStructFromUser covers copy_struct_from_user()'s three cases.
func TestCopyStructFromUser(t *testing.T) {
	dst := []byte{9, 9, 9, 9}
	require.NoError(t, copyStructFromUser(dst, usermem.NewBuffer([]byte{1, 2}), 2))
	require.Equal(t, []byte{1, 2, 0, 0}, dst)
	require.NoError(t, copyStructFromUser(dst, usermem.NewBuffer([]byte{1, 2, 3, 4, 0, 0}), 6))
	require.Equal(t, []byte{1, 2, 3, 4}, dst)
	require.ErrorIs(t, copyStructFromUser(dst, usermem.NewBuffer([]byte{1, 2, 3, 4, 0, 1}), 6), syscall.E2BIG)
	require.ErrorIs(t, copyStructFromUser(dst, usermem.NewBuffer([]byte{1, 2, 3, 4}), 6), syscall.EFAULT)
}
