package mm

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"luomodel/kernel/locking"
	"luomodel/kernel/vfs"
)

// MaxLFSFileSize ports MAX_LFS_FILESIZE on 64-bit: shmem's s_maxbytes.
const MaxLFSFileSize = math.MaxInt64

// HugePageSize is the default huge page size of MFD_HUGETLB memfds (2 MiB).
const HugePageSize = 2 << 20

// Seek whence values (include/uapi/linux/fs.h).
const (
	SeekSet  = 0
	SeekCur  = 1
	SeekEnd  = 2
	SeekData = 3
	SeekHole = 4
)

// Shmem is one kernel's shmem filesystem instance (mm/shmem.c), the home
// of memfd files.
type Shmem struct {
	mm  *MM             // immutable
	vfs *vfs.VFS        // immutable
	dom *locking.Domain // immutable

	// listLock ports sb->s_inode_list_lock. It is a spinlock in Linux:
	// its sections never reach a scheduling point, so a sync.Mutex. It
	// guards list, sb->s_inodes: the inodes not yet evicted, oldest
	// first, which drop_caches walks.
	listLock sync.Mutex
	list     []*ShmemInode
}

// NewShmem mounts shmem for a kernel.
func NewShmem(m *MM, v *vfs.VFS) *Shmem {
	return &Shmem{mm: m, vfs: v, dom: v.Domain()}
}

// MM is the page allocator shmem's folios come from.
func (s *Shmem) MM() *MM { return s.mm }

// LiveInodes is the number of shmem inodes not yet evicted.
func (s *Shmem) LiveInodes() int64 {
	s.listLock.Lock()
	defer s.listLock.Unlock()
	return int64(len(s.list))
}

// ShmemInode ports struct shmem_inode_info together with the parts of
// struct inode and struct address_space shmem uses: size, page cache,
// seals and the LUO freeze flag.
//
// Its rwsem ports inode->i_rwsem (inode_lock()). It guards the page cache
// (i_pages) too, which Linux guards with the xarray lock and folio locks:
// here every page-cache access holds rwsem (read side for readers), which
// serialises what the finer Linux locks serialise.
type ShmemInode struct {
	sb      *Shmem     // immutable
	inode   *vfs.Inode // immutable once the inode is published
	hugetlb bool       // immutable: a hugetlbfs inode (MFD_HUGETLB), not shmem

	rwsem locking.RWSem

	// size ports i_size. Written with rwsem held for writing; read
	// anywhere (i_size_read()), hence atomic.
	size atomic.Int64
	// cache ports i_pages: page index -> order-0 folio. Each folio in it
	// holds one reference for the cache. Guarded by rwsem.
	cache map[uint64]*Folio
	// seals ports shmem_inode_info.seals (F_SEAL_*). Guarded by rwsem.
	seals uint32
	// execMode: the inode has exec permission bits (i_mode & 0111);
	// cleared by MFD_NOEXEC_SEAL. Guarded by rwsem.
	execMode bool
	// frozen ports SHMEM_F_MAPPING_FROZEN: no size change while set.
	// Guarded by rwsem.
	frozen bool
	// evicted is set when the last file went away. Guarded by rwsem.
	evicted bool
}

// newInode ports mm/shmem.c:shmem_get_inode(): an empty regular inode with F_SEAL_SEAL
// set (sealing is only allowed on memfds that ask for it).
func (s *Shmem) newInode(hugetlb bool) *ShmemInode {
	si := &ShmemInode{sb: s, hugetlb: hugetlb, cache: make(map[uint64]*Folio), seals: F_SEAL_SEAL, execMode: true}
	si.rwsem.Init(s.dom, "shmem_inode.i_rwsem")
	si.inode = s.vfs.NewInode(si)
	s.listLock.Lock()
	s.list = append(s.list, si)
	s.listLock.Unlock()
	return si
}

// shmemFileOperations ports shmem_file_operations (and, for hugetlb
// inodes, the hugetlbfs behaviour that differs). Shmem has no ioctls.
type shmemFileOperations struct {
	vfs.NoFileOperations
}

// ShmemInodeOf returns the shmem inode of f, or nil if f is not a shmem
// file (shmem_file() is false: another kind of file, or a hugetlb memfd).
func ShmemInodeOf(f *vfs.File) *ShmemInode {
	if f == nil || f.Inode() == nil {
		return nil
	}
	si, ok := f.Inode().Impl().(*ShmemInode)
	if !ok || si.hugetlb {
		return nil
	}
	return si
}

// IsShmemFile ports include/linux/shmem_fs.h:shmem_file().
func IsShmemFile(f *vfs.File) bool { return ShmemInodeOf(f) != nil }

// inodeOf returns f's shmem or hugetlb inode; f must be one of ours.
func inodeOf(f *vfs.File) *ShmemInode { return f.Inode().Impl().(*ShmemInode) }

// Inode is the VFS inode.
func (si *ShmemInode) Inode() *vfs.Inode { return si.inode }

// ID is a stable identity of the inode within its kernel (the inode
// number), what memfd_luo's get_id returns.
func (si *ShmemInode) ID() uint64 { return si.inode.Ino() }

// Nlink ports inode->i_nlink: always 0, a memfd has no name in any
// directory (memfd_luo's can_preserve checks it).
func (si *ShmemInode) Nlink() uint32 { return 0 }

// Lock ports include/linux/fs.h:inode_lock(): i_rwsem for writing.
func (si *ShmemInode) Lock() { si.rwsem.DownWrite() }

// Unlock ports include/linux/fs.h:inode_unlock().
func (si *ShmemInode) Unlock() { si.rwsem.UpWrite() }

// LockShared ports include/linux/fs.h:inode_lock_shared().
func (si *ShmemInode) LockShared() { si.rwsem.DownRead() }

// UnlockShared ports include/linux/fs.h:inode_unlock_shared().
func (si *ShmemInode) UnlockShared() { si.rwsem.UpRead() }

// Size ports include/linux/fs.h:i_size_read().
func (si *ShmemInode) Size() int64 { return si.size.Load() }

// SetSizeLocked ports include/linux/fs.h:i_size_write(), as memfd_luo's retrieve does to set
// the restored size. Requires Lock (asserted; instrumentation: i_size_write()
// documents that i_rwsem must be held, it does not assert it).
func (si *ShmemInode) SetSizeLocked(size int64) {
	si.rwsem.AssertHeldWrite()
	si.size.Store(size)
}

// FreezeLocked ports include/linux/shmem_fs.h:shmem_freeze(): while frozen
// the size cannot change (ftruncate, and writes past EOF, fail with EPERM),
// so the folios memfd_luo preserved stay the file's folios. Requires Lock
// (asserted; instrumentation: memfd_luo calls shmem_freeze() under
// inode_lock(), which shmem_freeze() does not assert).
func (si *ShmemInode) FreezeLocked(freeze bool) {
	si.rwsem.AssertHeldWrite()
	si.frozen = freeze
}

// FrozenLocked reports whether the inode is frozen. Requires Lock or
// LockShared (asserted; instrumentation: no C counterpart).
func (si *ShmemInode) FrozenLocked() bool {
	si.rwsem.AssertHeld()
	return si.frozen
}

// NrFoliosLocked is the number of folios in the page cache (the inode's
// allocated blocks). Requires Lock or LockShared (asserted;
// instrumentation: no C counterpart).
func (si *ShmemInode) NrFoliosLocked() int {
	si.rwsem.AssertHeld()
	return len(si.cache)
}

// LookupFolioLocked ports mm/filemap.c:filemap_get_entry() without taking a reference:
// the folio at page index, or nil for a hole. Requires Lock or LockShared
// (asserted; instrumentation: upstream's page cache is RCU-safe, the port's
// map is guarded by i_rwsem).
func (si *ShmemInode) LookupFolioLocked(index uint64) *Folio {
	si.rwsem.AssertHeld()
	return si.cache[index]
}

// AddToPageCacheLocked ports mm/shmem.c:shmem_add_to_page_cache() (with
// the accounting memfd_luo's retrieve does around it): insert folio at page
// index; the page cache takes its own reference. Only order-0 folios are
// supported (EINVAL otherwise), as shmem here never makes larger ones;
// EEXIST if index is occupied; EINVAL if the folio is already in a page
// cache, or (with a WARN) if the inode was evicted. Requires Lock
// (asserted; instrumentation: memfd_luo's retrieve holds inode_lock(),
// shmem_add_to_page_cache() asserts only the folio lock).
func (si *ShmemInode) AddToPageCacheLocked(f *Folio, index uint64) error {
	si.rwsem.AssertHeldWrite()
	if si.sb.mm.rep.WarnOn(si.evicted, "shmem: add to the page cache of an evicted inode") ||
		f.order != 0 || f.mapping != nil {
		return syscall.EINVAL
	}
	if si.cache[index] != nil {
		return syscall.EEXIST
	}
	f.Get()
	f.mapping, f.index = si, index
	si.cache[index] = f
	return nil
}

// deleteFromPageCacheLocked ports mm/filemap.c:filemap_remove_folio() + folio_put() of
// the cache's reference. Requires Lock (asserted; instrumentation:
// filemap_remove_folio() asserts the folio lock; the port's page cache is
// guarded by i_rwsem, held for writing by truncate and evict).
func (si *ShmemInode) deleteFromPageCacheLocked(index uint64) {
	si.rwsem.AssertHeldWrite()
	f := si.cache[index]
	delete(si.cache, index)
	f.mapping, f.index = nil, 0
	f.Put()
}

// sgpType ports enum sgp_type: what shmem_get_folio() may do on a hole.
type sgpType int

const (
	sgpRead  sgpType = iota // SGP_READ: do not allocate, a hole stays one
	sgpCache                // SGP_CACHE: allocate a zeroed, uptodate folio inside i_size
	sgpWrite                // SGP_WRITE: allocate for a write (which may extend i_size)
)

// getFolioLocked ports mm/shmem.c:shmem_get_folio_gfp(): the folio at
// index, allocating it on a hole as sgp allows. New folios are zeroed and
// uptodate (shmem clears new folios before exposing them). A cached folio
// that is not uptodate (retrieved without PG_uptodate: it holds no data
// yet) is a hole to sgpRead, is cleared and marked uptodate for sgpCache,
// and is returned as it is to sgpWrite, whose write_end clears what the
// write leaves. Returns nil, nil for a hole under sgpRead; EINVAL for
// sgpCache at or beyond i_size; ENOMEM when no memory is left. Requires
// Lock (LockShared for sgpRead) (asserted; instrumentation:
// shmem_get_folio_gfp() relies on the folio lock and the xarray, the
// port's page cache on i_rwsem).
func (si *ShmemInode) getFolioLocked(index uint64, sgp sgpType) (*Folio, error) {
	if sgp == sgpRead {
		si.rwsem.AssertHeld()
	} else {
		si.rwsem.AssertHeldWrite()
	}
	if f := si.cache[index]; f != nil {
		switch {
		case f.TestUptodate() || sgp == sgpWrite:
			return f, nil
		case sgp == sgpRead:
			return nil, nil
		}
		// The "clear:" step for a folio fallocated (here: handed over)
		// but never written.
		if err := f.ZeroAll(); err != nil {
			return nil, err
		}
		f.MarkUptodate()
		return f, nil
	}
	if sgp == sgpRead {
		return nil, nil
	}
	if sgp == sgpCache && index >= pagesFor(si.Size()) {
		return nil, syscall.EINVAL
	}
	f, err := si.sb.mm.FolioAlloc(0, true)
	if err != nil {
		return nil, err
	}
	f.MarkUptodate()
	f.mapping, f.index = si, index
	si.cache[index] = f // the allocation's reference becomes the cache's
	return f, nil
}

// pagesFor is the number of pages that hold size bytes.
func pagesFor(size int64) uint64 {
	return (uint64(size) + PageSize - 1) >> PageShift
}

// PinFoliosLocked ports mm/gup.c:memfd_pin_folios() for a shmem inode:
// pin every folio of the byte range [start, end] (inclusive, as in C),
// allocating the holes (memfd_alloc_folio(), SGP_CACHE), and return them in
// index order. EINVAL if start < 0, start > end, or the range reaches past
// i_size; ENOMEM if a hole cannot be filled, after unpinning what was
// pinned (folios allocated for holes stay in the file, as in Linux).
// Requires Lock: memfd_luo calls it under inode_lock() (asserted;
// instrumentation: memfd_pin_folios() does not assert it).
func (si *ShmemInode) PinFoliosLocked(start, end int64) ([]*Folio, error) {
	si.rwsem.AssertHeldWrite()
	if start < 0 || start > end {
		return nil, syscall.EINVAL
	}
	first, last := uint64(start)>>PageShift, uint64(end)>>PageShift
	// The range may be far larger than memory (a sparse file of any
	// size); ENOMEM ends it, so do not size the slice by it.
	folios := make([]*Folio, 0, min(last-first+1, 1024))
	for index := first; index <= last; index++ {
		// filemap_get_folios_contig() takes the cached folios as they
		// are; memfd_alloc_folio() fills a hole (SGP_CACHE).
		f := si.cache[index]
		var err error
		if f == nil {
			f, err = si.getFolioLocked(index, sgpCache)
		}
		if err != nil {
			UnpinFolios(folios)
			return nil, err
		}
		f.Pin()
		folios = append(folios, f)
	}
	return folios, nil
}

// UnpinFolios ports mm/gup.c:unpin_folios().
func UnpinFolios(folios []*Folio) {
	for _, f := range folios {
		f.Unpin()
	}
}

// truncateLocked ports mm/shmem.c:shmem_truncate_range(inode, newsize, -1) for a
// shrink: drop every folio wholly beyond newsize and zero the tail of the
// folio that straddles it. Requires Lock (asserted; instrumentation:
// shmem_setattr() calls it under inode_lock(), it does not assert it).
func (si *ShmemInode) truncateLocked(newsize int64) error {
	si.rwsem.AssertHeldWrite()
	keep := pagesFor(newsize)
	for index := range si.cache {
		if index >= keep {
			si.deleteFromPageCacheLocked(index)
		}
	}
	if off := uint64(newsize) & (PageSize - 1); off != 0 {
		if f := si.cache[uint64(newsize)>>PageShift]; f != nil {
			// shmem_undo_range() dirties the partial folio before
			// truncate_inode_partial_folio() zeroes its tail.
			f.MarkDirty()
			return f.zero(off, PageSize-off)
		}
	}
	return nil
}

// evict ports mm/shmem.c:shmem_evict_inode(): the last file is gone; drop the page
// cache. Folios someone else still holds (pinned by memfd_luo, say) live
// on until their last reference.
func (si *ShmemInode) evict() {
	si.Lock()
	for index := range si.cache {
		si.deleteFromPageCacheLocked(index)
	}
	si.evicted = true
	si.Unlock()
	si.sb.listLock.Lock()
	if i := slices.Index(si.sb.list, si); i >= 0 {
		si.sb.list = slices.Delete(si.sb.list, i, i+1)
	}
	si.sb.listLock.Unlock()
}

// Release ports shmem's ->release path (fs/file_table.c:__fput() ->
// mm/shmem.c:shmem_evict_inode()): the file was the inode's only
// user (a memfd has exactly one file), so its last reference evicts the
// inode (dput() -> iput() -> evict()).
func (shmemFileOperations) Release(f *vfs.File) { inodeOf(f).evict() }

// Read ports mm/shmem.c:shmem_file_read_iter(): copy from the page
// cache, holes read as zeros, nothing past i_size. Unlike Linux it holds i_rwsem shared, so
// that a concurrent write never races with the copy in Go's sense.
func (shmemFileOperations) Read(ctx *vfs.Context, f *vfs.File, dst []byte, pos *int64) (int, error) {
	si := inodeOf(f)
	if *pos < 0 {
		return 0, syscall.EINVAL
	}
	si.LockShared()
	defer si.UnlockShared()
	size := si.Size()
	if *pos >= size || len(dst) == 0 {
		return 0, nil
	}
	n := int(min(int64(len(dst)), size-*pos))
	done := 0
	for done < n {
		off := uint64(*pos) + uint64(done)
		index, pgoff := off>>PageShift, off&(PageSize-1)
		k := int(min(uint64(n-done), PageSize-pgoff))
		chunk := dst[done : done+k]
		folio, _ := si.getFolioLocked(index, sgpRead)
		if folio != nil {
			if err := folio.Read(pgoff, chunk); err != nil {
				if done > 0 {
					break
				}
				return 0, err
			}
		} else {
			clear(chunk)
		}
		done += k
	}
	*pos += int64(done)
	return done, nil
}

// Write ports shmem's write path (mm/filemap.c:generic_perform_write() with
// shmem_write_begin()/shmem_write_end()) under inode_lock(): page by page,
// each allocating its folio if needed, checking seals and the LUO freeze
// before it, and extending i_size after it. An error after some progress
// ends the write short. A hugetlb memfd has no write method (EINVAL).
func (shmemFileOperations) Write(ctx *vfs.Context, f *vfs.File, src []byte, pos *int64) (int, error) {
	si := inodeOf(f)
	if si.hugetlb {
		return 0, syscall.EINVAL
	}
	if *pos < 0 {
		return 0, syscall.EINVAL
	}
	si.Lock()
	defer si.Unlock()
	if len(src) == 0 {
		return 0, nil
	}
	// generic_write_checks(): nothing at or beyond s_maxbytes.
	if *pos >= MaxLFSFileSize {
		return 0, syscall.EFBIG
	}
	src = src[:min(int64(len(src)), MaxLFSFileSize-*pos)]
	done := 0
	var err error
	for done < len(src) {
		off := *pos + int64(done)
		index, pgoff := uint64(off)>>PageShift, uint64(off)&(PageSize-1)
		k := int(min(uint64(len(src)-done), PageSize-pgoff))
		if err = si.writeBeginLocked(off, k); err != nil {
			break
		}
		var folio *Folio
		if folio, err = si.getFolioLocked(index, sgpWrite); err != nil {
			break
		}
		if err = folio.Write(pgoff, src[done:done+k]); err != nil {
			break
		}
		// shmem_write_end(): a folio that was not uptodate holds nothing
		// but what was just written.
		if !folio.TestUptodate() {
			if err = folio.zeroOutside(pgoff, uint64(k)); err != nil {
				break
			}
			folio.MarkUptodate()
		}
		folio.MarkDirty()
		if end := off + int64(k); end > si.Size() {
			si.size.Store(end)
		}
		done += k
	}
	*pos += int64(done)
	if done > 0 {
		return done, nil
	}
	return 0, err
}

// writeBeginLocked ports the checks of mm/shmem.c:shmem_write_begin() for
// writing n bytes at off. Requires Lock (asserted; instrumentation:
// shmem_file_write_iter() holds inode_lock() across
// generic_perform_write(), shmem_write_begin() does not assert it).
func (si *ShmemInode) writeBeginLocked(off int64, n int) error {
	si.rwsem.AssertHeldWrite()
	if si.seals&(F_SEAL_WRITE|F_SEAL_FUTURE_WRITE) != 0 {
		return syscall.EPERM
	}
	grows := off+int64(n) > si.Size()
	if grows && si.seals&F_SEAL_GROW != 0 {
		return syscall.EPERM
	}
	if grows && si.frozen {
		return syscall.EPERM
	}
	return nil
}

// Llseek ports mm/shmem.c:shmem_file_llseek(): SEEK_SET/CUR/END through
// generic_file_llseek_size(), SEEK_DATA/SEEK_HOLE through
// mapping_seek_hole_data() under inode_lock. A page-cache folio is data;
// a hole is a page without one.
func (shmemFileOperations) Llseek(f *vfs.File, pos *int64, off int64, whence int) (int64, error) {
	si := inodeOf(f)
	var newpos int64
	switch whence {
	case SeekSet:
		newpos = off
	case SeekCur:
		if off == 0 {
			return *pos, nil
		}
		if off > 0 && *pos > MaxLFSFileSize-off {
			return 0, syscall.EINVAL
		}
		newpos = *pos + off
	case SeekEnd:
		size := si.Size()
		if off > 0 && size > MaxLFSFileSize-off {
			return 0, syscall.EINVAL
		}
		newpos = size + off
	case SeekData, SeekHole:
		if off < 0 {
			return 0, syscall.ENXIO
		}
		si.LockShared()
		p, err := si.seekHoleDataLocked(off, whence)
		si.UnlockShared()
		if err != nil {
			return 0, err
		}
		newpos = p
	default:
		return 0, syscall.EINVAL
	}
	// vfs_setpos().
	if newpos < 0 {
		return 0, syscall.EINVAL
	}
	*pos = newpos
	return newpos, nil
}

// seekHoleDataLocked ports mm/filemap.c:mapping_seek_hole_data() over
// [start, i_size). Its cost is bounded by the number of folios, not by the
// file size, so sparse files of any size seek fast. Requires Lock or
// LockShared (asserted; instrumentation: shmem_file_llseek() holds
// inode_lock_shared(), mapping_seek_hole_data() does not assert it).
func (si *ShmemInode) seekHoleDataLocked(start int64, whence int) (int64, error) {
	si.rwsem.AssertHeld()
	end := si.Size()
	if start >= end {
		return 0, syscall.ENXIO
	}
	// folio_seek_hole_data(): a folio that is not uptodate is a hole
	// (shmem has no ->is_partially_uptodate), as it is to a read.
	isData := func(index uint64) bool { f, _ := si.getFolioLocked(index, sgpRead); return f != nil }
	index := uint64(start) >> PageShift
	if whence == SeekHole {
		for isData(index) {
			index++
		}
		return min(max(start, int64(index<<PageShift)), end), nil
	}
	if isData(index) {
		return start, nil
	}
	next, found := uint64(0), false
	for i := range si.cache {
		if i > index && isData(i) && (!found || i < next) {
			next, found = i, true
		}
	}
	if !found || next >= pagesFor(end) {
		return 0, syscall.ENXIO
	}
	return int64(next << PageShift), nil
}

// Truncate ports mm/shmem.c:shmem_setattr() for ATTR_SIZE (ftruncate):
// seals and the LUO freeze forbid size changes (EPERM); a shrink frees the
// folios beyond the end and zeroes the tail of the last partial page; a
// grow leaves a hole. A hugetlb memfd's size must be a multiple of the huge
// page size (hugetlbfs_setattr()).
func (shmemFileOperations) Truncate(f *vfs.File, length int64) error {
	si := inodeOf(f)
	if length < 0 {
		return syscall.EINVAL
	}
	si.Lock()
	defer si.Unlock()
	if si.hugetlb && length%HugePageSize != 0 {
		return syscall.EINVAL
	}
	old := si.Size()
	if (length < old && si.seals&F_SEAL_SHRINK != 0) || (length > old && si.seals&F_SEAL_GROW != 0) {
		return syscall.EPERM
	}
	if length == old {
		return nil
	}
	if si.frozen {
		return syscall.EPERM
	}
	si.size.Store(length)
	if length < old {
		return si.truncateLocked(length)
	}
	return nil
}
