package liveupdate

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"

	"luomodel/kernel/bug"
	"luomodel/kernel/locking"
	"luomodel/kernel/mm"
	"luomodel/kernel/usermem"
	"luomodel/kernel/vfs"
)

// This file ports kernel/liveupdate/luo_internal.h: the types shared by
// luo_core, luo_session and luo_file, plus the seams through which LUO
// reaches KHO and physical memory.

// luoUcmd ports struct luo_ucmd: one ioctl call in flight.
type luoUcmd struct {
	ubuffer  usermem.Buffer // the caller's buffer
	userSize uint32         // the leading u32 of ubuffer
	cmd      []byte         // kernel copy of the struct, op.size bytes
}

// respond ports luo_ucmd_respond(): copy min(user_size, kernelCmdSize)
// bytes of the kernel struct back to the caller; EFAULT on a short buffer.
func (u *luoUcmd) respond(kernelCmdSize int) error {
	n := min(int(u.userSize), kernelCmdSize)
	if err := u.ubuffer.CopyOut(0, u.cmd[:n]); err != nil {
		return syscall.EFAULT
	}
	return nil
}

// fileSet ports struct luo_file_set: the files preserved in one session.
// Every field is guarded by the owning session's mutex.
type fileSet struct {
	// files is files_list, in preservation (or deserialization) order.
	files []*luoFile
	// filesPA is files: the preserved luo_file_ser array, 0 for NULL.
	filesPA mm.PhysAddr
	// count is count, kept apart from len(files) as in C so that a broken
	// update of one shows (invariant F1).
	count int
	// lock is the owning session's mutex, which guards the set: every
	// luo_file.c function on a set runs under it (luo_session.c takes it),
	// and the port's *Locked functions assert it. Not in C, which passes
	// the set alone; immutable.
	lock *locking.Mutex
	// owner is the session the set belongs to, and name its name as the
	// callback recorder is given it (luo_callback.go; set only when LUO
	// has a recorder). Not in C; immutable.
	owner *session
	name  string
}

// session ports struct luo_session.
type session struct {
	// name is NUL-padded; immutable after sessionAlloc, so read without
	// a lock, but only through (*LUO).sessionName, which checks the poison.
	name [SessionNameLength]byte
	// retrieved is set once, under mutex, by sessionRetrieve before the
	// session's file is published; release and the ioctl type check read
	// it without the mutex, ordered after the write by the fd publication.
	retrieved bool
	// fileSet is guarded by mutex.
	fileSet fileSet
	// mutex is luo_session.mutex.
	mutex locking.Mutex
	// freed poisons the object after sessionFree (use-after-free checks)
	// and remembers where it was freed.
	freed freeTrack
}

// sessionName is every read of session->name. Like KASAN instrumenting
// the load, it reports a use-after-free if s was freed (M4: the seed
// logged a session's name after luo_session_free()); the bytes are still
// returned, as freed slab memory still reads.
func (l *LUO) sessionName(s *session) []byte {
	if s.freed.Load() {
		reportUAF(l.rep, "luo_session", &s.freed)
	}
	return s.name[:]
}

// sessionNameString is the session name up to its NUL, read through
// sessionName.
func (l *LUO) sessionNameString(s *session) string {
	str, _ := cString(l.sessionName(s))
	return str
}

// luoFile ports struct luo_file (defined in luo_file.c).
type luoFile struct {
	fh  *FileHandler       // immutable
	reg *registeredHandler // immutable: fh's registry entry, pinned while this exists
	// file is nil in the new kernel until retrieved; guarded by mutex.
	file *vfs.File
	// serializedData is guarded by mutex (set under the session mutex at
	// preserve, before the luo_file is visible).
	serializedData uint64
	// privateData is runtime-only state from Preserve; guarded like
	// serializedData; never serialized.
	privateData any
	// retrieveStatus: 0 not attempted, 1 retrieved, a negative errno if
	// retrieve failed (M6). Guarded by mutex.
	retrieveStatus int
	// mutex is luo_file.mutex.
	mutex locking.Mutex
	token uint64 // immutable
	// key is the file's key in the double-preservation map, as computed
	// when it was inserted (preserve, retrieve); guarded by mutex. Only
	// Snapshot reads it, so that looking does not call the handler.
	key preservedKey
	// freed poisons the object once it is unpreserved or finished, and
	// remembers where.
	freed freeTrack
}

// registeredHandler is a handler's entry in the registry. users counts the
// luo_files that use it: the Go stand-in for the per-file module reference
// of M18, which keeps a handler in use from being unregistered.
type registeredHandler struct {
	fh    *FileHandler // immutable
	users atomic.Int64
	// flbs is the handler's flb_list: the FLBs it depends on, in
	// registration order; guarded by luo_register_rwlock.
	flbs []*FLB
}

// preservedKey keys the double-preservation map: the handler's GetID if it
// has one, otherwise the file's identity (the struct file pointer in C).
type preservedKey struct {
	file *vfs.File
	id   uint64
}

// preservedFiles ports luo_preserved_files (M17), an xarray in C. mu plays
// the xarray's internal spinlock: a leaf lock held only for a map access,
// never across a scheduling point or a wait, so a plain sync.Mutex is
// invisible to nobody that matters.
type preservedFiles struct {
	mu sync.Mutex
	m  map[preservedKey]*vfs.File // guarded by mu
}

// insert ports xa_insert(): EBUSY if key is present.
func (p *preservedFiles) insert(k preservedKey, f *vfs.File) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.m[k]; ok {
		return syscall.EBUSY
	}
	if p.m == nil {
		p.m = make(map[preservedKey]*vfs.File)
	}
	p.m[k] = f
	return nil
}

// erase ports xa_erase().
func (p *preservedFiles) erase(k preservedKey) {
	p.mu.Lock()
	delete(p.m, k)
	p.mu.Unlock()
}

// handover is the part of KHO that LUO calls (kernel/kho's *KHO); tests
// may substitute one that injects failures.
type handover interface {
	IsEnabled() bool
	AllocPreserve(size uint64) (mm.PhysAddr, error)
	UnpreserveFree(pa mm.PhysAddr)
	RestoreFree(pa mm.PhysAddr)
	AddSubtree(name string, fdt mm.PhysAddr) error
	RetrieveSubtree(name string) (mm.PhysAddr, error)
	Finalize() error
	// incoming reports whether [pa, pa+size) lies inside one block the
	// previous kernel preserved, starting at pa: incoming physical
	// addresses are untrusted and are checked before they are read.
	incoming(pa mm.PhysAddr, size uint64) bool
}

// physMem is LUO's access to physical memory.
type physMem interface {
	// Read and Write are the checked accessors of memory this kernel
	// owns (kernel/mm's *MM).
	Read(pa mm.PhysAddr, dst []byte) error
	Write(pa mm.PhysAddr, src []byte) error
	// readIncoming reads hand-over memory that the previous kernel
	// preserved and this kernel has not claimed yet: phys_to_virt() of a
	// reserved block, which the checked accessors refuse. Callers check
	// the range with handover.incoming first.
	readIncoming(pa mm.PhysAddr, dst []byte) error
}

// mmMem adapts *mm.MM to physMem.
type mmMem struct{ *mm.MM }

func (m mmMem) readIncoming(pa mm.PhysAddr, dst []byte) error {
	return m.RAM().ReadRaw(pa, dst)
}

// klog is LUO's slice of the kernel log (pr_info/pr_warn/pr_err). mu is a
// leaf lock held only to append or copy.
type klog struct {
	mu    sync.Mutex
	lines []string // guarded by mu; the newest maxLogLines lines
}

const maxLogLines = 256

func (k *klog) printf(level, format string, args ...any) {
	line := "liveupdate: " + level + ": " + fmt.Sprintf(format, args...)
	k.mu.Lock()
	if len(k.lines) == maxLogLines {
		copy(k.lines, k.lines[1:])
		k.lines = k.lines[:maxLogLines-1]
	}
	k.lines = append(k.lines, line)
	k.mu.Unlock()
}

func (k *klog) snapshot() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.lines...)
}

// toErrno turns a handler's error into the errno LUO stores and returns:
// an Errno as is, anything else as EIO.
func toErrno(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) && e != 0 {
		return e
	}
	return syscall.EIO
}

// reportUAF files a use-after-free report for a poisoned LUO object,
// with where it was freed, as KASAN prints the free stack.
func reportUAF(rep *bug.Reporter, what string, t *freeTrack) {
	rep.Filef(bug.KindUAF, "use-after-free of "+what, "LUO touched a %s after it was freed%s", what, t.stack())
}

// lockChecked takes m, the mutex embedded in an object that t tracks, as
// KASAN would check mutex_lock()'s accesses to the lock word: a
// use-after-free is reported if the object was freed before the call, or
// once the lock is taken if it was freed while the task waited (the
// acquisition is a scheduling point: the task can sleep there, or be
// preempted before its first access, while another frees the object).
func (l *LUO) lockChecked(m *locking.Mutex, what string, t *freeTrack) {
	before := t.Load()
	if before {
		reportUAF(l.rep, what, t)
	}
	m.Lock()
	if !before && t.Load() {
		reportUAF(l.rep, what, t)
	}
}

// preemptPoint is a scheduling point inside a critical section where C
// neither sleeps nor takes a lock: mutex and rwsem sections are
// preemptible, and other CPUs run meanwhile, so a controlled scheduler
// may run another task between a section's check of shared state and the
// update that depends on it. The lock makes that harmless; the point is
// what exposes a section that lost its lock. Placed at each such
// check-then-update that has no scheduling point of its own.
func (l *LUO) preemptPoint() { l.dom.Yield(locking.PointPhase) }

// mightSleep is C's might_sleep() before a call into a handler's or an
// FLB's ops: callbacks allocate and may sleep, a scheduling point inside
// whatever critical section LUO holds around them.
func (l *LUO) mightSleep() { l.dom.Yield(locking.PointPhase) }

// freeTrack is an object's poison flag (KASAN's freed shadow) and the
// stack of the free that set it (KASAN's free track). Recording costs a
// walk of the frame-pointer chain per free; the frames are only symbolized
// in a report.
type freeTrack struct {
	freed atomic.Bool
	// at is stored once, before freed is set, so that a reader that sees
	// freed also sees where.
	at atomic.Pointer[bug.Trace]
}

// Load reports whether the object was freed.
func (t *freeTrack) Load() bool { return t.freed.Load() }

// Swap marks the object freed (v true) and returns the previous state;
// the first free records its stack.
func (t *freeTrack) Swap(v bool) bool {
	if v && !t.freed.Load() {
		t.at.CompareAndSwap(nil, bug.CaptureTrace(1, 16)) // from the caller of Swap
	}
	return t.freed.Swap(v)
}

// stack renders where the object was freed ("" if unknown).
func (t *freeTrack) stack() string {
	if p := t.at.Load(); p != nil {
		return "\nfreed by:\n" + p.String()
	}
	return ""
}
