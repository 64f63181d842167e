package kernel

import (
	"sync/atomic"
	"syscall"

	"luomodel/kernel/mm"
	"luomodel/kernel/vfs"
)

// mmap(2) prot and flags (include/uapi/asm-generic/mman-common.h).
const (
	ProtRead          = 0x1
	ProtWrite         = 0x2
	MapShared         = 0x01
	MapPrivate        = 0x02
	MapSharedValidate = 0x03
	mapType           = 0x0f
)

// MaxMappingBytes bounds one mapping: the model copies a mapping's
// contents whole, so a larger one fails as an exhausted address space
// would (ENOMEM).
const MaxMappingBytes = 64 << 20

// Mapping is a file mapping (a vma of vm_file) of a memfd. The model has
// no page tables: Mmap hands out the mapped bytes as they are at map time
// and Msync stores a shared writable mapping's bytes back, which is what a
// process sees of a mapping as long as nobody else writes the file in
// between. A Mapping holds a reference to its file until Munmap, as a vma
// does, so the fd may be closed while it is mapped.
type Mapping struct {
	f        *vfs.File // immutable; a reference, dropped by Munmap
	off      int64     // immutable: file offset of the first byte
	length   int64     // immutable: page-aligned length
	shared   bool      // immutable: MAP_SHARED
	writable bool      // immutable: PROT_WRITE
	// unmapped is set by Munmap, once.
	unmapped atomic.Bool
}

// Len is the mapping's page-aligned length.
func (m *Mapping) Len() int64 { return m.length }

// SharedWritable reports a MAP_SHARED mapping with PROT_WRITE: its writes
// reach the file.
func (m *Mapping) SharedWritable() bool { return m.shared && m.writable }

// Clone ports the get_file() of kernel/fork.c:dup_mmap(): the child of a
// fork gets its own vma on the same file.
func (m *Mapping) Clone() *Mapping {
	return &Mapping{f: m.f.Get(), off: m.off, length: m.length, shared: m.shared, writable: m.writable}
}

// Mmap ports mmap(2) of a file (arch sys_mmap(), mm/util.c:ksys_mmap_pgoff()
// and mm/mmap.c:do_mmap()), in Linux's order: EINVAL for an offset that is
// not page-aligned, EBADF for a bad fd, EINVAL for a zero length or a
// flags type other than MAP_SHARED, MAP_SHARED_VALIDATE or MAP_PRIVATE,
// ENOMEM for a length beyond MaxMappingBytes; then EACCES for a shared
// writable mapping of a file not open for writing or any mapping of a file
// not open for reading, ENODEV for a file without ->mmap (everything but a
// memfd), EPERM for a shared writable mapping of a memfd sealed against
// writes (mm/memfd.c:memfd_check_seals_mmap()). It returns the mapping and
// its bytes: the file's contents from off, zeros past the end of file.
func (t *Task) Mmap(fd int, length int64, prot, flags int, off int64) (*Mapping, []byte, error) {
	type result struct {
		m    *Mapping
		data []byte
	}
	r, err := doSyscall(t, "mmap", result{}, func(ctx *vfs.Context) (result, error) {
		if off&(mm.PageSize-1) != 0 || off < 0 {
			return result{}, syscall.EINVAL
		}
		f, err := t.fds.Get(fd)
		if err != nil {
			return result{}, err
		}
		defer ctx.Fput(f)
		if length <= 0 {
			return result{}, syscall.EINVAL
		}
		shared := false
		switch flags & mapType {
		case MapShared, MapSharedValidate:
			shared = true
		case MapPrivate:
		default:
			return result{}, syscall.EINVAL
		}
		length = (length + mm.PageSize - 1) &^ (mm.PageSize - 1)
		if length > MaxMappingBytes {
			return result{}, syscall.ENOMEM
		}
		writable := prot&ProtWrite != 0
		if shared && writable && !f.CanWrite() {
			return result{}, syscall.EACCES
		}
		if !f.CanRead() {
			return result{}, syscall.EACCES
		}
		si := mm.ShmemInodeOf(f)
		if si == nil {
			return result{}, syscall.ENODEV
		}
		if shared && writable && si.Seals()&(mm.F_SEAL_WRITE|mm.F_SEAL_FUTURE_WRITE) != 0 {
			return result{}, syscall.EPERM
		}
		data := make([]byte, length)
		if _, err := f.PRead(ctx, data, off); err != nil {
			return result{}, err
		}
		return result{&Mapping{f: f.Get(), off: off, length: length, shared: shared, writable: writable}, data}, nil
	})
	return r.m, r.data, err
}

// Msync ports the write-back of a shared writable mapping
// (mm/msync.c:SYSCALL_DEFINE3(msync) -> vfs_fsync_range(), the dirty pages
// reaching the page cache): data, the mapping's bytes from offset off
// within it, is stored into the file. A page past the end of file has no
// page-cache page to dirty (touching it would SIGBUS), so bytes at or past
// i_size are dropped. A private or read-only mapping stores nothing.
// EINVAL for a range outside the mapping, ENOMEM for a mapping that is
// gone.
func (t *Task) Msync(m *Mapping, off int64, data []byte) error {
	_, err := doSyscall(t, "msync", 0, func(ctx *vfs.Context) (int, error) {
		return 0, t.msync(ctx, m, off, data)
	})
	return err
}

func (t *Task) msync(ctx *vfs.Context, m *Mapping, off int64, data []byte) error {
	if m == nil || m.unmapped.Load() {
		return syscall.ENOMEM
	}
	if off < 0 || off > m.length || int64(len(data)) > m.length-off {
		return syscall.EINVAL
	}
	if !m.SharedWritable() || len(data) == 0 {
		return nil
	}
	pos := m.off + off
	if si := mm.ShmemInodeOf(m.f); si != nil {
		size := si.Size()
		if pos >= size {
			return nil
		}
		data = data[:min(int64(len(data)), size-pos)]
	}
	for len(data) > 0 {
		n, err := m.f.PWrite(ctx, data, pos)
		if err != nil {
			return err
		}
		data, pos = data[n:], pos+int64(n)
	}
	return nil
}

// Munmap ports munmap(2) of the whole mapping (mm/mmap.c:do_munmap() ->
// remove_vma() -> fput()): a shared writable mapping's bytes, data (nil
// for none), are stored first as Msync stores them, then the mapping's
// file reference drops. Unmapping what is no longer mapped is not an
// error in Linux: a second Munmap does nothing.
func (t *Task) Munmap(m *Mapping, data []byte) error {
	_, err := doSyscall(t, "munmap", 0, func(ctx *vfs.Context) (int, error) {
		if m == nil || m.unmapped.Load() {
			return 0, nil
		}
		var err error
		if data != nil {
			err = t.msync(ctx, m, 0, data)
		}
		if !m.unmapped.Swap(true) {
			ctx.Fput(m.f)
		}
		return 0, err
	})
	return err
}

// Unmap drops the mapping's file reference outside any syscall, for a
// process that is gone (exit_mmap()); its bytes are not stored.
func (m *Mapping) Unmap() {
	if m != nil && !m.unmapped.Swap(true) {
		var ctx *vfs.Context
		ctx.Fput(m.f)
	}
}
