package vfs

import (
	"math/bits"
	"strconv"
	"sync/atomic"
	"syscall"

	"luomodel/kernel/bug"
	"luomodel/kernel/fault"
	"luomodel/kernel/locking"
)

// nrOpenDefault ports NR_OPEN_DEFAULT: the initial size of the fd array.
const nrOpenDefault = 64

// DefaultNoFile ports INR_OPEN_CUR: the default RLIMIT_NOFILE.
const DefaultNoFile = 1024

// fdArray ports struct fdtable's fd array. It is replaced, never resized in
// place, when the table grows (expand_fdtable()), so a lockless reader that
// loaded an old array sees a consistent, possibly stale, snapshot; the
// garbage collector stands in for RCU.
type fdArray struct {
	fd []atomic.Pointer[File]
}

// FDTable ports struct files_struct / struct fdtable: one process's file
// descriptors. It is safe for concurrent use.
//
// fget() is lockless, as in Linux: it reads the published fd array and
// takes a reference with inc-not-zero. Everything that changes the table
// holds fileLock.
type FDTable struct {
	vfs   *VFS // immutable
	limit int  // immutable: RLIMIT_NOFILE

	// fdt is the current fd array. Loaded locklessly; stored, and its
	// entries stored, only with fileLock held.
	fdt atomic.Pointer[fdArray]

	// fileLock ports files_struct.file_lock.
	fileLock locking.Mutex
	// openFDs ports open_fds: an fd is set from its reservation until it
	// is closed. Guarded by fileLock.
	openFDs []uint64
	// closeOnExec ports close_on_exec. Guarded by fileLock.
	closeOnExec []uint64
	// nextFD ports next_fd: no fd below it is free. Guarded by fileLock.
	nextFD int
}

// NewFDTable returns an empty table with the given RLIMIT_NOFILE (a limit
// below 1 means DefaultNoFile).
func (v *VFS) NewFDTable(limit int) *FDTable {
	if limit < 1 {
		limit = DefaultNoFile
	}
	words := (limit + 63) / 64
	t := &FDTable{vfs: v, limit: limit, openFDs: make([]uint64, words), closeOnExec: make([]uint64, words)}
	t.fileLock.Init(v.dom, "files_struct.file_lock")
	t.fdt.Store(&fdArray{fd: make([]atomic.Pointer[File], min(limit, nrOpenDefault))})
	return t
}

// Limit is the table's RLIMIT_NOFILE.
func (t *FDTable) Limit() int { return t.limit }

func testBit(m []uint64, fd int) bool { return m[fd/64]&(1<<(fd%64)) != 0 }
func setBit(m []uint64, fd int)       { m[fd/64] |= 1 << (fd % 64) }
func clearBit(m []uint64, fd int)     { m[fd/64] &^= 1 << (fd % 64) }

// validFD reports whether fd lies inside the table's limit.
func (t *FDTable) validFD(fd int) bool { return fd >= 0 && fd < t.limit }

// findNextFDLocked ports fs/file.c:find_next_fd(): the lowest fd >= start that is not
// open, or t.limit if there is none. Requires fileLock.
func (t *FDTable) findNextFDLocked(start int) int {
	for w := start / 64; w < len(t.openFDs); w++ {
		free := ^t.openFDs[w]
		if w == start/64 {
			free &= ^uint64(0) << (start % 64)
		}
		if free != 0 {
			return min(w*64+bits.TrailingZeros64(free), t.limit)
		}
	}
	return t.limit
}

// expandLocked ports fs/file.c:expand_files(): grow the fd array so that fd fits,
// doubling as Linux does, up to the limit. Requires fileLock.
func (t *FDTable) expandLocked(fd int) {
	old := t.fdt.Load()
	if fd < len(old.fd) {
		return
	}
	n := len(old.fd)
	for n <= fd {
		n *= 2
	}
	nfdt := &fdArray{fd: make([]atomic.Pointer[File], min(n, t.limit))}
	for i := range old.fd {
		nfdt.fd[i].Store(old.fd[i].Load())
	}
	t.fdt.Store(nfdt)
}

// GetUnusedFD ports fs/file.c:get_unused_fd_flags() / alloc_fd(): reserve the lowest
// free fd, recording O_CLOEXEC. The fd is open but reads as EBADF until
// Install publishes a file; PutUnusedFD gives it back. EMFILE when every fd
// below the limit is taken.
//
// The fault.GetUnusedFD site stands for expand_files() failing to
// allocate (ENOMEM). Like that allocation it is reached only once a free
// fd below the limit was found: a full table fails with EMFILE without
// consulting it. It is consulted on every such reservation, not only where
// the array must grow, so that a lockstep action can fail any of them.
//
// Requires: fileLock not held.
func (t *FDTable) GetUnusedFD(flags int) (int, error) {
	t.fileLock.Lock()
	defer t.fileLock.Unlock()
	fd := t.findNextFDLocked(t.nextFD)
	if fd >= t.limit {
		return -1, syscall.EMFILE
	}
	if err := t.vfs.faults.Fail(fault.GetUnusedFD); err != nil {
		return -1, err // expand_files() could not allocate
	}
	t.expandLocked(fd)
	setBit(t.openFDs, fd)
	if flags&syscall.O_CLOEXEC != 0 {
		setBit(t.closeOnExec, fd)
	} else {
		clearBit(t.closeOnExec, fd)
	}
	t.nextFD = fd + 1
	return fd, nil
}

// putUnusedFDLocked ports fs/file.c:__put_unused_fd(). Requires fileLock.
func (t *FDTable) putUnusedFDLocked(fd int) {
	clearBit(t.openFDs, fd)
	clearBit(t.closeOnExec, fd)
	if fd < t.nextFD {
		t.nextFD = fd
	}
}

// PutUnusedFD ports fs/file.c:put_unused_fd(): release a reserved, uninstalled fd.
func (t *FDTable) PutUnusedFD(fd int) {
	t.fileLock.Lock()
	bad := !t.validFD(fd) || !testBit(t.openFDs, fd) || t.fdt.Load().fd[fd].Load() != nil
	if !bad {
		t.putUnusedFDLocked(fd)
	}
	t.fileLock.Unlock()
	if bad {
		t.vfs.rep.File(&bug.Report{Kind: bug.KindWarn, Title: TitlePutUnusedFD, Detail: "fd " + strconv.Itoa(fd)})
	}
}

// Install ports fs/file.c:fd_install(): publish f at fd, which GetUnusedFD reserved.
// It consumes the caller's reference. Installing at an fd that is not
// reserved, or already holds a file, is a kernel bug (BUG_ON in Linux): it
// is reported and the reference is dropped.
func (t *FDTable) Install(fd int, f *File) {
	t.vfs.dom.Yield(locking.PointFDInstall)
	t.fileLock.Lock()
	fdt := t.fdt.Load()
	bad := f == nil || !t.validFD(fd) || !testBit(t.openFDs, fd) || fdt.fd[fd].Load() != nil
	if !bad {
		fdt.fd[fd].Store(f)
	}
	t.fileLock.Unlock()
	if bad {
		t.vfs.rep.File(&bug.Report{Kind: bug.KindWarn, Title: TitleInstallFD, Detail: "fd " + strconv.Itoa(fd)})
		if f != nil {
			f.Put()
		}
	}
}

// Get ports fs/file.c:fget(): a new reference to the file at fd, or EBADF for an fd
// that is out of range, free, or reserved but not yet installed. Like
// __fget_files_rcu() it takes no lock: it takes the reference only if the
// file is still alive, then checks that the fd still names it.
func (t *FDTable) Get(fd int) (*File, error) {
	if !t.validFD(fd) {
		return nil, syscall.EBADF
	}
	for {
		fdt := t.fdt.Load()
		if fd >= len(fdt.fd) {
			return nil, syscall.EBADF
		}
		f := fdt.fd[fd].Load()
		if f == nil {
			return nil, syscall.EBADF
		}
		if !f.tryGet() {
			// Being closed right now: the fd must already name
			// something else, else the table lost its reference.
			if t.fdt.Load().fd[fd].Load() == f {
				t.vfs.rep.File(&bug.Report{Kind: bug.KindUAF, Title: TitleFgetDead, Detail: "fd " + strconv.Itoa(fd) + ": " + f.String() + f.freedStack()})
				return nil, syscall.EBADF
			}
			continue
		}
		if t.fdt.Load().fd[fd].Load() == f {
			return f, nil
		}
		// Closed, and maybe replaced, between the load and the get.
		f.Put()
	}
}

// removeLocked ports fs/file.c:file_close_fd_locked(): take the file out of fd and
// free the fd. It returns nil if fd holds no file. Requires fileLock.
func (t *FDTable) removeLocked(fd int) *File {
	if !t.validFD(fd) {
		return nil
	}
	fdt := t.fdt.Load()
	if fd >= len(fdt.fd) {
		return nil
	}
	f := fdt.fd[fd].Load()
	if f == nil {
		return nil
	}
	fdt.fd[fd].Store(nil)
	t.putUnusedFDLocked(fd)
	return f
}

// Close ports fs/file.c:close_fd() + filp_close(): EBADF unless fd holds a file. The
// reference the table held is dropped after fileLock is released, so the
// release hook, if this was the last reference, runs outside it.
func (t *FDTable) Close(fd int) error {
	t.vfs.dom.Yield(locking.PointFDRemove)
	t.fileLock.Lock()
	f := t.removeLocked(fd)
	t.fileLock.Unlock()
	if f == nil {
		return syscall.EBADF
	}
	f.Put()
	return nil
}

// Dup ports fs/file.c:ksys_dup(): a new fd, the lowest free, on the same
// open file, with close-on-exec clear. Not atomic, as in Linux: fget, then
// get_unused_fd_flags(0), then fd_install.
func (t *FDTable) Dup(fd int) (int, error) {
	f, err := t.Get(fd)
	if err != nil {
		return -1, err
	}
	nfd, err := t.GetUnusedFD(0)
	if err != nil {
		f.Put()
		return -1, err
	}
	t.Install(nfd, f)
	return nfd, nil
}

// CloseAll ports fs/file.c:exit_files() / close_files(): close every fd, lowest
// first, each file dropped outside fileLock; reserved but uninstalled fds
// are freed too. The table stays usable (empty) afterwards.
func (t *FDTable) CloseAll() {
	for fd := 0; ; fd++ {
		t.vfs.dom.Yield(locking.PointFDRemove)
		t.fileLock.Lock()
		fd = t.nextOpenLocked(fd)
		if fd < 0 {
			t.fileLock.Unlock()
			return
		}
		f := t.removeLocked(fd)
		if f == nil {
			t.putUnusedFDLocked(fd)
		}
		t.fileLock.Unlock()
		if f != nil {
			f.Put()
		}
	}
}

// nextOpenLocked returns the lowest open (reserved or installed) fd >=
// start, or -1. Requires fileLock.
func (t *FDTable) nextOpenLocked(start int) int {
	for w := start / 64; w < len(t.openFDs); w++ {
		set := t.openFDs[w]
		if w == start/64 {
			set &= ^uint64(0) << (start % 64)
		}
		if set != 0 {
			return w*64 + bits.TrailingZeros64(set)
		}
	}
	return -1
}

// IsCloseOnExec ports fs/file.c:close_on_exec(): whether fd is marked O_CLOEXEC.
// False for an fd that is not open.
func (t *FDTable) IsCloseOnExec(fd int) bool {
	if !t.validFD(fd) {
		return false
	}
	t.fileLock.Lock()
	defer t.fileLock.Unlock()
	return testBit(t.openFDs, fd) && testBit(t.closeOnExec, fd)
}

// SetCloseOnExec ports fs/file.c:__set_close_on_exec()/__clear_close_on_exec() as
// fcntl(F_SETFD) uses them: EBADF unless fd holds a file.
func (t *FDTable) SetCloseOnExec(fd int, on bool) error {
	if !t.validFD(fd) {
		return syscall.EBADF
	}
	t.fileLock.Lock()
	defer t.fileLock.Unlock()
	if fdt := t.fdt.Load(); fd >= len(fdt.fd) || fdt.fd[fd].Load() == nil {
		return syscall.EBADF
	}
	if on {
		setBit(t.closeOnExec, fd)
	} else {
		clearBit(t.closeOnExec, fd)
	}
	return nil
}

// FDs returns the installed fds in ascending order (what /proc/self/fd
// lists).
func (t *FDTable) FDs() []int {
	t.fileLock.Lock()
	defer t.fileLock.Unlock()
	var fds []int
	fdt := t.fdt.Load()
	for fd := range fdt.fd {
		if fdt.fd[fd].Load() != nil {
			fds = append(fds, fd)
		}
	}
	return fds
}
