package model

import (
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// fault applies op with site armed for its nth call and checks the state's
// invariants; it returns the result.
func (w *world) fault(site string, nth int, op Op) Result {
	w.t.Helper()
	next := w.s.Clone()
	r, ok := next.ApplyFaultNth(site, nth, op)
	require.True(w.t, ok, "%s#%d not predicted for %s", site, nth, Format(op, r))
	require.NoError(w.t, next.Check())
	require.Equal(w.t, armedFault{}, next.armed, "the armed site outlived the operation")
	w.s = next
	return r
}

// unchanged applies op with site armed for its nth call and requires errno
// e and no change of the state.
func (w *world) unchanged(site string, nth int, e syscall.Errno, op Op) {
	w.t.Helper()
	before := w.s.Canon()
	r := w.fault(site, nth, op)
	require.Equal(w.t, ErrnoName(e), ErrnoName(r.Errno), "%s", Format(op, r))
	require.Equal(w.t, before, w.s.Canon())
}

func (w *world) pages(fd int) string {
	w.t.Helper()
	f := w.s.Files[w.s.Tasks[1].FDs[fd]]
	return w.s.Inodes[f.Inode].PageMap()
}

func TestFaultGetUnusedFDEveryFDCall(t *testing.T) {
	w := newWorld(t)
	dev := w.open(DevLiveUpdate)
	w.create(dev, "a")
	w.unchanged(FaultGetUnusedFD, 1, syscall.ENOMEM, Op{Kind: OpOpen, Task: 1, Path: DevNull, Flags: ORdwr})
	// The fd comes before the path lookup and luo_open()'s checks.
	w.unchanged(FaultGetUnusedFD, 1, syscall.ENOMEM, Op{Kind: OpOpen, Task: 1, Path: "/nope", Flags: ORdwr})
	w.unchanged(FaultGetUnusedFD, 1, syscall.ENOMEM, Op{Kind: OpOpen, Task: 1, Path: DevLiveUpdate, Flags: ORdwr})
	// dup: EBADF first.
	w.unchanged(FaultGetUnusedFD, 1, syscall.EBADF, Op{Kind: OpDup, Task: 1, FD: 99})
	w.unchanged(FaultGetUnusedFD, 1, syscall.ENOMEM, Op{Kind: OpDup, Task: 1, FD: dev})
	// memfd_create: flags and name first.
	w.unchanged(FaultGetUnusedFD, 1, syscall.EINVAL, Op{Kind: OpMemfdCreate, Task: 1, Name: strings.Repeat("m", 250)})
	w.unchanged(FaultGetUnusedFD, 1, syscall.ENOMEM, Op{Kind: OpMemfdCreate, Task: 1, Name: "m"})
	// CREATE_SESSION: the dispatch first, then the fd before the name
	// checks (a duplicate name is ENOMEM too).
	w.unchanged(FaultGetUnusedFD, 1, syscall.EINVAL, Op{Kind: OpIoctl, Task: 1, FD: dev, Cmd: IoctlCreateSession, Buf: withSize(SessionArgBuf("b"), 8)})
	w.unchanged(FaultGetUnusedFD, 1, syscall.ENOMEM, Op{Kind: OpIoctl, Task: 1, FD: dev, Cmd: IoctlCreateSession, Buf: SessionArgBuf("a")})
	w.unchanged(FaultGetUnusedFD, 1, syscall.ENOMEM, Op{Kind: OpIoctl, Task: 1, FD: dev, Cmd: IoctlRetrieveSession, Buf: SessionArgBuf("x")})
	w.create(dev, "b")
	// Not reached: a call that returns no fd.
	fd := int(w.ok(Op{Kind: OpOpen, Task: 1, Path: DevNull, Flags: ORdwr}))
	r := w.fault(FaultGetUnusedFD, 1, Op{Kind: OpClose, Task: 1, FD: fd})
	require.Zero(t, r.Errno)
}

func TestFaultGetUnusedFDFullTableIsEMFILE(t *testing.T) {
	w := newWorld(t)
	for range NRFileMax {
		require.Zero(t, w.s.Apply(Op{Kind: OpOpen, Task: 1, Path: DevNull, Flags: ORdwr}).Errno)
	}
	w.unchanged(FaultGetUnusedFD, 1, syscall.EMFILE, Op{Kind: OpOpen, Task: 1, Path: DevNull, Flags: ORdwr})
	w.unchanged(FaultGetUnusedFD, 1, syscall.EMFILE, Op{Kind: OpDup, Task: 1, FD: 0})
}

func TestFaultAllocPagesWrite(t *testing.T) {
	w := newWorld(t)
	fd := w.memfd("")
	write := func(n int) Op {
		return Op{Kind: OpWrite, Task: 1, FD: fd, Buf: []byte(strings.Repeat("x", n))}
	}
	w.unchanged(FaultAllocPages, 1, syscall.ENOMEM, write(3))
	require.Equal(t, int64(3), w.ok(write(3)))
	require.Equal(t, "2", w.pages(fd))
	// Page 0 has its folio: a write into it allocates nothing, and one
	// across into page 1 ends short at the page boundary.
	w.ok(Op{Kind: OpLseek, Task: 1, FD: fd, Off: 0, Whence: SeekSet})
	r := w.fault(FaultAllocPages, 1, write(PageSize+10))
	require.Zero(t, r.Errno)
	require.Equal(t, int64(PageSize), r.Ret, "short at the page that needed a folio")
	require.Equal(t, "2", w.pages(fd))
	// A grow leaves a hole; a write there needs a folio.
	w.ok(Op{Kind: OpFtruncate, Task: 1, FD: fd, Off: 3 * PageSize})
	require.Equal(t, "200", w.pages(fd))
	w.ok(Op{Kind: OpLseek, Task: 1, FD: fd, Off: 2 * PageSize, Whence: SeekSet})
	w.unchanged(FaultAllocPages, 1, syscall.ENOMEM, write(1))
	// A shrink drops the folios past the end.
	w.ok(write(1))
	require.Equal(t, "202", w.pages(fd))
	w.ok(Op{Kind: OpFtruncate, Task: 1, FD: fd, Off: 5})
	require.Equal(t, "2", w.pages(fd))
	// alloc_pages is predicted for the first call only.
	c := w.s.Clone()
	_, ok := c.ApplyFaultNth(FaultAllocPages, 2, write(1))
	require.False(t, ok)
}

func TestFaultPreserveFolioAndPages(t *testing.T) {
	w := newWorld(t)
	dev := w.open(DevLiveUpdate)
	sess := w.create(dev, "a")
	fd := w.memfd("abc")
	w.ok(Op{Kind: OpFtruncate, Task: 1, FD: fd, Off: 3 * PageSize})
	require.Equal(t, "200", w.pages(fd))
	preserve := Op{Kind: OpIoctl, Task: 1, FD: sess, Cmd: IoctlSessionPreserveFD, Buf: FDArgBuf(int32(fd), 1)}
	// Calls of kho_preserve_folio: the file array (the session holds no
	// file yet), the memfd_luo_ser, then pages 0, 1, 2.
	for _, nth := range []int{1, 2} {
		w.unchanged(FaultKHOPreserveFolio, nth, syscall.ENOMEM, preserve)
		require.Equal(t, "200", w.pages(fd), "no hole filled before the pin")
	}
	for _, site := range []string{FaultAllocPages, FaultKHOAllocPreserve} {
		w.unchanged(site, 1, syscall.ENOMEM, preserve)
	}
	r := w.fault(FaultKHOPreserveFolio, 4, preserve)
	require.Equal(t, "ENOMEM", ErrnoName(r.Errno))
	require.Equal(t, "211", w.pages(fd), "the pinned holes stay filled; the folio preserved before the failure is dirtied")
	require.False(t, w.s.Inodes[w.s.Files[w.s.Tasks[1].FDs[fd]].Inode].Frozen)
	require.Empty(t, w.s.Sessions[w.s.Outgoing[0]].Out)
	// drop_caches drops the clean folios: holes again.
	w.ok(Op{Kind: OpDropCaches, Task: 1, Arg: 3})
	require.Equal(t, "200", w.pages(fd))
	// kho_preserve_pages: the folio array's first chunk, then its page;
	// by then the holes are filled again and every folio is dirtied.
	r = w.fault(FaultKHOPreservePages, 1, preserve)
	require.Equal(t, "ENOMEM", ErrnoName(r.Errno))
	require.Equal(t, "222", w.pages(fd))
	w.unchanged(FaultKHOPreservePages, 2, syscall.ENOMEM, preserve)
	// Armed past the calls the operation makes: it succeeds.
	r = w.fault(FaultKHOPreservePages, 3, preserve)
	require.Zero(t, r.Errno)
	require.Len(t, w.s.Sessions[w.s.Outgoing[0]].Out, 1)
	// The session holds a file now: its array is allocated, so the
	// memfd_luo_ser is the first call; an empty memfd has no pages.
	full := w.memfd("zz")
	w.unchanged(FaultKHOPreserveFolio, 1, syscall.ENOMEM, Op{Kind: OpIoctl, Task: 1, FD: sess, Cmd: IoctlSessionPreserveFD, Buf: FDArgBuf(int32(full), 2)})
	w.unchanged(FaultKHOPreservePages, 1, syscall.ENOMEM, Op{Kind: OpIoctl, Task: 1, FD: sess, Cmd: IoctlSessionPreserveFD, Buf: FDArgBuf(int32(full), 2)})
	empty := w.memfd("")
	r = w.fault(FaultKHOPreserveFolio, 2, Op{Kind: OpIoctl, Task: 1, FD: sess, Cmd: IoctlSessionPreserveFD, Buf: FDArgBuf(int32(empty), 3)})
	require.Zero(t, r.Errno)
	// Where no handler runs, the file array is the only call.
	null := w.open(DevNull)
	sess2 := w.create(dev, "b")
	w.unchanged(FaultKHOPreserveFolio, 1, syscall.ENOMEM, Op{Kind: OpIoctl, Task: 1, FD: sess2, Cmd: IoctlSessionPreserveFD, Buf: FDArgBuf(int32(null), 1)})
	w.unchanged(FaultKHOPreserveFolio, 2, syscall.ENOENT, Op{Kind: OpIoctl, Task: 1, FD: sess2, Cmd: IoctlSessionPreserveFD, Buf: FDArgBuf(int32(null), 1)})
}

func TestFaultFDTSetupDisablesLUOInTheNextKernel(t *testing.T) {
	w := newWorld(t)
	dev := w.open(DevLiveUpdate)
	sess := w.create(dev, "a")
	require.Zero(t, w.preserve(sess, w.memfd("data"), 1).Errno)
	r := w.fault(FaultLUOFDTSetup, 1, Op{Kind: OpKexec})
	require.Zero(t, r.Errno)
	require.False(t, w.s.Enabled)
	require.True(t, w.s.SetupFailed)
	require.Equal(t, uint64(1), w.s.LiveUpdateNum, "the incoming tree was read")
	task := TaskID(w.ok(Op{Kind: OpNewTask}))
	w.fails(syscall.ENOENT, Op{Kind: OpOpen, Task: task, Path: DevLiveUpdate, Flags: ORdwr})
	// No LUO tree is handed on: the next kernel starts over.
	w.ok(Op{Kind: OpKexec})
	require.True(t, w.s.Enabled)
	require.False(t, w.s.SetupFailed)
	require.Zero(t, w.s.LiveUpdateNum)
	require.Empty(t, w.s.Incoming)
	// Any other operation does not reach luo_fdt_setup().
	task = TaskID(w.ok(Op{Kind: OpNewTask}))
	r = w.fault(FaultLUOFDTSetup, 1, Op{Kind: OpOpen, Task: task, Path: DevLiveUpdate, Flags: ORdwr})
	require.Zero(t, r.Errno)
}

func TestFaultRetrievedMemfdHasEveryPage(t *testing.T) {
	w := newWorld(t)
	dev := w.open(DevLiveUpdate)
	sess := w.create(dev, "a")
	fd := w.memfd("x")
	w.ok(Op{Kind: OpFtruncate, Task: 1, FD: fd, Off: 2*PageSize + 1})
	require.Equal(t, "200", w.pages(fd))
	require.Zero(t, w.preserve(sess, fd, 1).Errno)
	require.Equal(t, "222", w.pages(fd))
	task := w.kexec()
	mfd := w.retrieve(task, "a", 1)
	f := w.s.Files[w.s.Tasks[task].FDs[mfd]]
	require.Equal(t, "222", w.s.Inodes[f.Inode].PageMap())
	// No page needs a folio: an armed alloc_pages does not fire.
	r := w.fault(FaultAllocPages, 1, Op{Kind: OpWrite, Task: task, FD: mfd, Buf: []byte("y")})
	require.Zero(t, r.Errno)
}
