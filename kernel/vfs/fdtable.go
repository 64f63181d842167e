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

// NrOpen ports sysctl_nr_open (its default, 1024*1024): no fd table grows
// beyond it, so it bounds RLIMIT_NOFILE.
const NrOpen = 1024 * 1024

// fdArray ports struct fdtable's fd array. It is replaced, never resized in
// place, when the table grows (expand_fdtable()), so a lockless reader that
// loaded an old array sees a consistent, possibly stale, snapshot; the
// garbage collector stands in for RCU. Its length is max_fds.
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
	vfs *VFS // immutable

	// nofile ports current->signal->rlim[RLIMIT_NOFILE].rlim_cur, the
	// bound alloc_fd() reads (locklessly, as rlimit() does). It lives
	// here because every process owns exactly one table (no CLONE_FILES
	// sharing between processes). Atomic.
	nofile atomic.Int64

	// fdt is the current fd array. Loaded locklessly; stored, and its
	// entries stored, only with fileLock held.
	fdt atomic.Pointer[fdArray]

	// fileLock ports files_struct.file_lock.
	fileLock locking.Mutex
	// openFDs ports open_fds: an fd is set from its reservation until it
	// is closed. It covers the fd array (max_fds bits, rounded up to a
	// word). Guarded by fileLock.
	openFDs []uint64
	// closeOnExec ports close_on_exec; same size as openFDs. Guarded by
	// fileLock.
	closeOnExec []uint64
	// nextFD ports next_fd: no fd below it is free. Guarded by fileLock.
	nextFD int
}

// NewFDTable returns an empty table with the given RLIMIT_NOFILE (a limit
// below 1 means DefaultNoFile; one above NrOpen means NrOpen).
func (v *VFS) NewFDTable(limit int) *FDTable {
	if limit < 1 {
		limit = DefaultNoFile
	}
	t := &FDTable{vfs: v}
	t.nofile.Store(int64(min(limit, NrOpen)))
	t.fileLock.Init(v.dom, "files_struct.file_lock")
	t.fdt.Store(&fdArray{fd: make([]atomic.Pointer[File], nrOpenDefault)})
	t.openFDs = make([]uint64, fdWords(nrOpenDefault))
	t.closeOnExec = make([]uint64, fdWords(nrOpenDefault))
	return t
}

// fdWords is the number of bitmap words covering n fds.
func fdWords(n int) int { return (n + 63) / 64 }

// Limit is the table's RLIMIT_NOFILE (rlimit(RLIMIT_NOFILE)).
func (t *FDTable) Limit() int { return int(t.nofile.Load()) }

// SetLimit sets the RLIMIT_NOFILE that later fd allocations are bounded by
// (the rlim_cur store of kernel/sys.c:do_prlimit()). Lowering it below an
// open fd closes nothing: that fd stays usable, as in Linux. The caller
// validated n (1 <= n <= NrOpen).
func (t *FDTable) SetLimit(n int) { t.nofile.Store(int64(n)) }

func testBit(m []uint64, fd int) bool { return m[fd/64]&(1<<(fd%64)) != 0 }
func setBit(m []uint64, fd int)       { m[fd/64] |= 1 << (fd % 64) }
func clearBit(m []uint64, fd int)     { m[fd/64] &^= 1 << (fd % 64) }

// validFD reports whether fd lies inside the fd array (fd < max_fds).
func (t *FDTable) validFD(fd int) bool { return fd >= 0 && fd < t.maxFDsLocked() }

// maxFDsLocked ports files_fdtable(files)->max_fds: the size of the fd
// array. Requires fileLock. Instrumentation: files_fdtable()'s
// rcu_dereference_check() accepts file_lock or an RCU read section; every
// caller here holds file_lock.
func (t *FDTable) maxFDsLocked() int {
	t.fileLock.AssertHeld()
	return len(t.fdt.Load().fd)
}

// findNextFDLocked ports fs/file.c:find_next_fd(): the lowest fd >= start
// that is not open, or max_fds if there is none. Requires fileLock
// (asserted; instrumentation: alloc_fd() calls it under file_lock, which
// find_next_fd() does not assert).
func (t *FDTable) findNextFDLocked(start int) int {
	t.fileLock.AssertHeld()
	maxFDs := t.maxFDsLocked()
	for w := start / 64; w < fdWords(maxFDs); w++ {
		free := ^t.openFDs[w]
		if w == start/64 {
			free &= ^uint64(0) << (start % 64)
		}
		if free != 0 {
			return min(w*64+bits.TrailingZeros64(free), maxFDs)
		}
	}
	return maxFDs
}

// expandLocked ports fs/file.c:expand_files() / expand_fdtable(): grow the
// fd array and its bitmaps so that fd fits, to the next power of two as
// Linux does (roundup_pow_of_two(nr + 1)), at most NrOpen. The caller
// checked fd against RLIMIT_NOFILE, which is at most NrOpen. Requires
// fileLock (asserted; instrumentation: upstream documents it with sparse's
// __releases/__acquires(files->file_lock), not lockdep).
func (t *FDTable) expandLocked(fd int) {
	t.fileLock.AssertHeld()
	old := t.fdt.Load()
	if fd < len(old.fd) {
		return
	}
	n := len(old.fd)
	for n <= fd {
		n *= 2
	}
	n = min(n, NrOpen)
	nfdt := &fdArray{fd: make([]atomic.Pointer[File], n)}
	for i := range old.fd {
		nfdt.fd[i].Store(old.fd[i].Load())
	}
	t.openFDs = append(t.openFDs, make([]uint64, fdWords(n)-len(t.openFDs))...)
	t.closeOnExec = append(t.closeOnExec, make([]uint64, fdWords(n)-len(t.closeOnExec))...)
	t.fdt.Store(nfdt)
}

// GetUnusedFD ports fs/file.c:get_unused_fd_flags(): reserve the lowest
// free fd, recording O_CLOEXEC. The fd is open but reads as EBADF until
// Install publishes a file; PutUnusedFD gives it back. EMFILE when every fd
// below RLIMIT_NOFILE is taken.
//
// Requires: fileLock not held.
func (t *FDTable) GetUnusedFD(flags int) (int, error) {
	return t.allocFD(0, flags)
}

// allocFD ports fs/file.c:alloc_fd(start, rlimit(RLIMIT_NOFILE), flags):
// reserve the lowest free fd >= start, close-on-exec as flags&O_CLOEXEC
// says; EMFILE when there is none below RLIMIT_NOFILE.
//
// The fault.GetUnusedFD site stands for expand_files() failing to
// allocate (ENOMEM). Like that allocation it is reached only once a free
// fd below the limit was found: a full table fails with EMFILE without
// consulting it. It is consulted on every such reservation, not only where
// the array must grow, so that a lockstep action can fail any of them.
//
// Requires: fileLock not held.
func (t *FDTable) allocFD(start, flags int) (int, error) {
	end := t.Limit()
	t.fileLock.Lock()
	defer t.fileLock.Unlock()
	fd := max(start, t.nextFD)
	if fd < t.maxFDsLocked() {
		fd = t.findNextFDLocked(fd)
	}
	if fd >= end {
		return -1, syscall.EMFILE
	}
	if err := t.vfs.faults.Fail(fault.GetUnusedFD); err != nil {
		return -1, err // expand_files() could not allocate
	}
	t.expandLocked(fd)
	if start <= t.nextFD {
		t.nextFD = fd + 1
	}
	setBit(t.openFDs, fd)
	if flags&syscall.O_CLOEXEC != 0 {
		setBit(t.closeOnExec, fd)
	} else {
		clearBit(t.closeOnExec, fd)
	}
	return fd, nil
}

// putUnusedFDLocked ports fs/file.c:__put_unused_fd(): the number is
// free. Its close-on-exec bit stays until the number is handed out again
// (allocFD sets or clears it), as in Linux, so an F_GETFD that looked the
// fd up before a sibling thread's close reads the closed fd's bit.
// Requires fileLock (asserted; instrumentation: every upstream caller
// holds file_lock, the function does not assert it).
func (t *FDTable) putUnusedFDLocked(fd int) {
	t.fileLock.AssertHeld()
	clearBit(t.openFDs, fd)
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
		if fn := t.vfs.installed.Load(); fn != nil {
			(*fn)(fd, f)
		}
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
	if fd < 0 {
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
// free the fd. It returns nil if fd holds no file. Requires fileLock
// (asserted: upstream's lockdep_assert_held(&files->file_lock)).
func (t *FDTable) removeLocked(fd int) *File {
	t.fileLock.AssertHeld()
	if !t.validFD(fd) {
		return nil
	}
	fdt := t.fdt.Load()
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

// DupFrom ports fs/fcntl.c:f_dupfd(): a new fd on f, the lowest free one
// >= from, close-on-exec as flags&O_CLOEXEC says (F_DUPFD,
// F_DUPFD_CLOEXEC). EINVAL if from is negative (a huge unsigned in Linux)
// or not below RLIMIT_NOFILE, EMFILE if no fd in [from, RLIMIT_NOFILE) is
// free. The caller holds a reference to f (its fget); the new fd gets its
// own (get_file()).
func (t *FDTable) DupFrom(f *File, from, flags int) (int, error) {
	if from < 0 || from >= t.Limit() {
		return -1, syscall.EINVAL
	}
	nfd, err := t.allocFD(from, flags)
	if err != nil {
		return -1, err
	}
	t.Install(nfd, f.Get())
	return nfd, nil
}

// Fork ports fs/file.c:dup_fd(): a new table for a child process, a copy of
// t taken under t's fileLock: the same fds on the same open files (each
// gets a reference, get_file()), the same close-on-exec bits, the same
// RLIMIT_NOFILE (copy_signal() copies the rlimits). An fd reserved but not
// yet installed (a sibling thread is partway through open()) is free in
// the child. The child's next_fd starts at 0.
//
// Requires: fileLock not held.
func (t *FDTable) Fork() *FDTable {
	n := &FDTable{vfs: t.vfs}
	n.nofile.Store(t.nofile.Load())
	n.fileLock.Init(t.vfs.dom, "files_struct.file_lock")

	t.fileLock.Lock()
	defer t.fileLock.Unlock()
	old := t.fdt.Load()
	nfdt := &fdArray{fd: make([]atomic.Pointer[File], len(old.fd))}
	n.openFDs = append([]uint64(nil), t.openFDs...)
	n.closeOnExec = append([]uint64(nil), t.closeOnExec...)
	for fd := range old.fd {
		if f := old.fd[fd].Load(); f != nil {
			nfdt.fd[fd].Store(f.Get())
		} else {
			clearBit(n.openFDs, fd)
			clearBit(n.closeOnExec, fd)
		}
	}
	n.fdt.Store(nfdt)
	return n
}

// CloseOnExec ports fs/file.c:do_close_on_exec(): close every fd marked
// close-on-exec, lowest first, each dropped outside fileLock with
// filp_close()'s fput (ctx.Fput: the release, if it was the last
// reference, runs when the syscall returns to user space). The bits are
// cleared a word at a time, so a reserved fd marked close-on-exec stays
// reserved with its bit cleared, as in Linux.
//
// Requires: fileLock not held.
func (t *FDTable) CloseOnExec(ctx *Context) {
	t.fileLock.Lock()
	for w := 0; w < len(t.closeOnExec); w++ {
		set := t.closeOnExec[w]
		if set == 0 {
			continue
		}
		t.closeOnExec[w] = 0
		for ; set != 0; set &= set - 1 {
			fd := w*64 + bits.TrailingZeros64(set)
			f := t.fdt.Load().fd[fd].Load()
			if f == nil {
				continue
			}
			t.fdt.Load().fd[fd].Store(nil)
			t.putUnusedFDLocked(fd)
			t.fileLock.Unlock()
			ctx.Fput(f)
			t.vfs.dom.Yield(locking.PointFDRemove)
			t.fileLock.Lock()
		}
	}
	t.fileLock.Unlock()
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
// start, or -1. Requires fileLock (asserted; instrumentation: close_files()
// walks open_fds of a table no one else can reach, the port locks it).
func (t *FDTable) nextOpenLocked(start int) int {
	t.fileLock.AssertHeld()
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

// IsCloseOnExec ports fs/file.c:get_close_on_exec(): whether fd's
// close-on-exec bit is set. The bit alone, as in Linux: a closed fd keeps
// its last holder's bit until the number is reused (putUnusedFDLocked);
// false for an fd beyond the table.
func (t *FDTable) IsCloseOnExec(fd int) bool {
	t.fileLock.Lock()
	defer t.fileLock.Unlock()
	return t.validFD(fd) && testBit(t.closeOnExec, fd)
}

// SetCloseOnExec ports fs/file.c:__set_close_on_exec()/__clear_close_on_exec() as
// fcntl(F_SETFD) uses them: EBADF unless fd holds a file.
func (t *FDTable) SetCloseOnExec(fd int, on bool) error {
	t.fileLock.Lock()
	defer t.fileLock.Unlock()
	if !t.validFD(fd) || t.fdt.Load().fd[fd].Load() == nil {
		return syscall.EBADF
	}
	if on {
		setBit(t.closeOnExec, fd)
	} else {
		clearBit(t.closeOnExec, fd)
	}
	return nil
}

// FDInfo is what /proc/<pid>/fdinfo/<fd> tells of an installed fd that
// the checkers compare: the fd and its close-on-exec flag (O_CLOEXEC in
// fdinfo's "flags:").
type FDInfo struct {
	FD          int
	CloseOnExec bool
}

// FDInfos returns every installed fd in ascending order with its
// close-on-exec flag, read under one fileLock (a consistent snapshot).
func (t *FDTable) FDInfos() []FDInfo {
	t.fileLock.Lock()
	defer t.fileLock.Unlock()
	var infos []FDInfo
	fdt := t.fdt.Load()
	for fd := range fdt.fd {
		if fdt.fd[fd].Load() != nil {
			infos = append(infos, FDInfo{FD: fd, CloseOnExec: testBit(t.closeOnExec, fd)})
		}
	}
	return infos
}

// FDs returns the installed fds in ascending order (what /proc/self/fd
// lists).
func (t *FDTable) FDs() []int {
	installed, _ := t.Listing()
	return installed
}

// Listing returns, in ascending order, the installed fds (what
// /proc/self/fd lists) and the reserved ones: set in open_fds by
// get_unused_fd_flags() but not installed yet, which no /proc file
// shows. Each reservation ends in fd_install() or put_unused_fd() within
// the syscall that made it, so a table no syscall is using has none; the
// checkers hold the port to that. One snapshot, under fileLock.
func (t *FDTable) Listing() (installed, reserved []int) {
	t.fileLock.Lock()
	defer t.fileLock.Unlock()
	return t.listingLocked()
}

// listingLocked is Listing for a caller holding fileLock.
func (t *FDTable) listingLocked() (installed, reserved []int) {
	t.fileLock.AssertHeld()
	fdt := t.fdt.Load()
	for fd := range fdt.fd {
		switch {
		case fdt.fd[fd].Load() != nil:
			installed = append(installed, fd)
		case testBit(t.openFDs, fd):
			reserved = append(reserved, fd)
		}
	}
	return installed, reserved
}
