// Package mm ports the slice of Linux's mm/ that LUO and KHO stand on:
// simulated physical memory, a page/folio allocator, and shmem-backed memfd.
//
// # Physical memory and the allocator
//
// RAM (phys.go) is the machine's memory: bytes at physical addresses, and
// nothing else, so it is the one thing that crosses a kexec (design rule
// 2). It is sparse: only frames that were written cost Go memory. The
// machine reads and writes it unchecked (ReadRaw, WriteRaw) and, at kexec,
// poisons everything the outgoing kernel did not preserve (Scrub, Poison:
// PoisonByte, 0xaa, as PAGE_POISON).
//
// MM (page_alloc.go) is one kernel's view of RAM, rebuilt at every boot: a
// buddy allocator (AllocPages, FreePages by order, up to MaxOrder) that
// never hands out the ranges given to New as reserved (memory the previous
// kernel preserved) until KHO claims them (Claim, ClaimFolio) or gives them
// up (FreeReserved, ReleaseReserved). Frame 0 is always reserved, so PA 0
// can mean "none". Every access a kernel makes goes through MM's checked
// accessors (access.go: Read, Write, Zero, ReadU64, WriteU32, ...), which a
// KASAN-like checker (kasan.go) guards: touching a frame that is free,
// never allocated, reserved or beyond RAM files a bug.KindKASAN report
// ("KASAN: use-after-free in <caller>", "wild-memory-access") naming the
// address, the frame's state and, for recent frees, the freeing stack, and
// fails with EFAULT. Double and invalid frees are reported the same way.
//
// Folio (folio.go) is a reference-counted block of pages with the
// dirty/uptodate flags, a pin count, and its page-cache mapping and index.
//
// # shmem and memfd
//
// Shmem (shmem.go) is one kernel's shmem instance; memfd.go ports
// memfd_create() on top of it. A memfd's inode is a ShmemInode: size, a
// sparse page cache of order-0 folios, seals, and the LUO freeze flag, all
// guarded by the inode's i_rwsem (class "shmem_inode.i_rwsem"). Its file
// operations implement read, write, lseek (including SEEK_DATA/SEEK_HOLE)
// and ftruncate as mm/shmem.c does. Lock order: i_rwsem, then the
// allocator's zone lock.
//
// # What memfd_luo uses (mm/memfd_luo.c)
//
//	can_preserve  ShmemInodeOf(f) != nil && si.Nlink() == 0
//	              (ShmemInodeOf is nil for non-shmem files and for
//	              MFD_HUGETLB memfds; IsShmemFile(f) is shmem_file())
//	get_id        si.ID() (the inode number)
//	inode_lock    si.Lock() / si.Unlock()
//	shmem_freeze  si.FreezeLocked(true/false)
//	i_size_read   si.Size()
//	memfd_pin_folios(file, 0, size-1, ...)
//	              si.PinFoliosLocked(0, size-1): every folio of the range
//	              in index order, holes filled (zeroed, uptodate), each
//	              pinned once; f.Index(), f.PFN(), f.PA(), f.Order(),
//	              f.TestDirty(), f.TestUptodate()
//	unpin_folio(s) f.Unpin(), UnpinFolios(folios)
//	pfn_folio     m.PFNFolio(pfn) (live folio heads only)
//	kho_restore_folio (allocator half)
//	              m.ClaimFolio(pa, order): reserved -> allocated, refcount 1
//	memfd_alloc_file("", 0)
//	              shmem.MemfdAllocFile(name, flags): O_RDWR|O_LARGEFILE,
//	              unsealable without MFD_ALLOW_SEALING
//	i_size_write  si.SetSizeLocked(size)
//	shmem_add_to_page_cache (+ accounting)
//	              si.AddToPageCacheLocked(folio, index): the cache takes
//	              its own reference; EEXIST if occupied
//	folio_mark_uptodate / folio_mark_dirty / folio_put
//	              f.MarkUptodate(), f.MarkDirty(), f.Put()
//
// The file position lives in the vfs File. Closing the last reference of
// a memfd evicts its inode and drops the page cache's references; pinned
// folios survive until unpinned.
package mm
