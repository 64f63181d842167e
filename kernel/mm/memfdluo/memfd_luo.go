package memfdluo

import (
	"syscall"

	"luomodel/kernel/bug"
	"luomodel/kernel/kho"
	"luomodel/kernel/liveupdate"
	"luomodel/kernel/mm"
	"luomodel/kernel/vfs"
)

// Handler is one kernel's memfd file handler: memfd_luo_handler and
// memfd_luo_file_ops, bound to the kernel services the callbacks use (C
// reaches them through globals). Every field is set by New and immutable.
type Handler struct {
	fh    liveupdate.FileHandler
	ops   liveupdate.FileOps
	shmem *mm.Shmem
	mm    *mm.MM
	kho   *kho.KHO
	rep   *bug.Reporter
}

// New returns the memfd handler of a kernel whose memfds live in shmem and
// whose hand-over is k.
func New(shmem *mm.Shmem, k *kho.KHO, rep *bug.Reporter) *Handler {
	h := &Handler{shmem: shmem, mm: shmem.MM(), kho: k, rep: rep}
	h.ops = liveupdate.FileOps{
		CanPreserve: h.canPreserve,
		Preserve:    h.preserve,
		Unpreserve:  h.unpreserve,
		Freeze:      h.freeze,
		Retrieve:    h.retrieve,
		Finish:      h.finish,
		GetID:       h.getID,
	}
	h.fh = liveupdate.FileHandler{Ops: &h.ops, Compatible: Compatible}
	return h
}

// FileHandler is the handler as LUO registers it.
func (h *Handler) FileHandler() *liveupdate.FileHandler { return &h.fh }

// Register ports mm/memfd_luo.c:memfd_luo_init(): register the handler
// with LUO. A disabled LUO (EOPNOTSUPP) is not an error.
func (h *Handler) Register(l *liveupdate.LUO) error {
	if err := l.RegisterFileHandler(&h.fh); err != nil && err != syscall.EOPNOTSUPP {
		return err
	}
	return nil
}

// readSer reads the struct memfd_luo_ser at pa, which the caller owns.
func (h *Handler) readSer(pa mm.PhysAddr) (Ser, error) {
	var b [SerSize]byte
	if err := h.mm.Read(pa, b[:]); err != nil {
		return Ser{}, err
	}
	return DecodeSer(b[:]), nil
}

// writeSer writes s at pa, which the caller owns.
func (h *Handler) writeSer(pa mm.PhysAddr, s Ser) error {
	var b [SerSize]byte
	s.Encode(b[:])
	return h.mm.Write(pa, b[:])
}

// readFolioSer reads entry i of a folio array.
func readFolioSer(area *kho.VmArea, i uint64) (FolioSer, error) {
	var b [FolioSerSize]byte
	if err := area.ReadAt(i*FolioSerSize, b[:]); err != nil {
		return FolioSer{}, err
	}
	return DecodeFolioSer(b[:]), nil
}

// checkNrFolios bounds an incoming nr_folios by the array that holds the
// entries, so that a corrupt count fails instead of reading past it.
func checkNrFolios(area *kho.VmArea, nr uint64) error {
	if nr > area.Size()/FolioSerSize {
		return syscall.EINVAL
	}
	return nil
}

// preserveFolios ports memfd_luo_preserve_folios(): pin every folio of
// the file, filling holes, preserve each one and describe them in a
// preserved vmalloc array. It returns the array's descriptor, the array
// and the number of folios; a zero-sized file has none (zero descriptor,
// nil array). Every folio is dirtied and recorded dirty and uptodate
// (M27). On failure everything it did is undone, except that folios
// allocated for holes stay in the file and those preserved before the
// failure stay dirty, as in Linux.
//
// Requires si.Lock().
func (h *Handler) preserveFolios(si *mm.ShmemInode) (kho.Vmalloc, *kho.VmArea, uint64, error) {
	size := si.Size()
	if size == 0 {
		return kho.Vmalloc{}, nil, 0, nil
	}
	folios, err := si.PinFoliosLocked(0, size-1)
	if err != nil {
		return kho.Vmalloc{}, nil, 0, err
	}
	nr := uint64(len(folios))
	area, err := kho.NewVmArea(h.mm, nr*FolioSerSize)
	if err != nil {
		mm.UnpinFolios(folios)
		return kho.Vmalloc{}, nil, 0, syscall.ENOMEM
	}
	buf := make([]byte, nr*FolioSerSize)
	unwind := func(preserved int) {
		for i := preserved - 1; i >= 0; i-- {
			h.kho.UnpreserveFolio(folios[i])
		}
		area.Free()
		mm.UnpinFolios(folios)
	}
	for i, f := range folios {
		if err := h.kho.PreserveFolio(f); err != nil {
			unwind(i)
			return kho.Vmalloc{}, nil, 0, err
		}
		// A clean folio carries no user data as far as reclaim knows, so
		// the next kernel may drop it; it may be dirtied after this
		// preserve, too. So every folio is dirtied and recorded dirty
		// ("mm: memfd_luo: always dirty all folios"). One not uptodate
		// was fallocated and never used: zero it now, so that the next
		// kernel exposes zeros and no stale memory ("mm: memfd_luo:
		// always make all folios uptodate").
		f.MarkDirty()
		if !f.TestUptodate() {
			if err := f.ZeroAll(); err != nil {
				unwind(i + 1)
				return kho.Vmalloc{}, nil, 0, err
			}
			f.MarkUptodate()
		}
		FolioSer{PFN: f.PFN(), Flags: FolioDirty | FolioUptodate, Index: f.Index()}.Encode(buf[i*FolioSerSize:])
	}
	if err := area.WriteAt(0, buf); err != nil {
		unwind(len(folios))
		return kho.Vmalloc{}, nil, 0, err
	}
	v, err := h.kho.PreserveVmalloc(area)
	if err != nil {
		unwind(len(folios))
		return kho.Vmalloc{}, nil, 0, err
	}
	// The pins stay until unpreserve: they keep the folios where the
	// array says they are.
	return v, area, nr, nil
}

// unpreserveFolios ports memfd_luo_unpreserve_folios(): undo
// preserveFolios, finding each folio again from its PFN.
//
// Requires the inode lock.
func (h *Handler) unpreserveFolios(v kho.Vmalloc, area *kho.VmArea, nr uint64) {
	if nr == 0 {
		return
	}
	if h.rep.WarnOn(area == nil, "memfd_luo: unpreserve of %d folios without their array", nr) {
		return
	}
	h.kho.UnpreserveVmalloc(v)
	for i := uint64(0); i < nr; i++ {
		e, err := readFolioSer(area, i)
		if h.rep.WarnOn(err != nil, "memfd_luo: folio array entry %d unreadable: %v", i, err) {
			break
		}
		if e.PFN == 0 {
			continue
		}
		f := h.mm.PFNFolio(e.PFN)
		if h.rep.WarnOn(f == nil, "memfd_luo: preserved pfn %#x is not a folio", uint64(e.PFN)) {
			continue
		}
		h.kho.UnpreserveFolio(f)
		f.Unpin()
	}
	area.Free()
}

// preserve ports memfd_luo_preserve(): freeze the inode's size, record
// position and size in a preserved struct memfd_luo_ser and preserve the
// folios. serialized_data becomes the struct's PA, private_data the folio
// array (*kho.VmArea, nil for an empty file).
//
// Called by LUO with the session and file mutexes held; takes the inode
// lock. The file position is read before it: f_pos_lock ranks above
// i_rwsem (read/write take them in that order), and C reads f_pos without
// a lock here anyway.
func (h *Handler) preserve(a *liveupdate.FileOpArgs) error {
	si := mm.ShmemInodeOf(a.File)
	if si == nil {
		return syscall.EINVAL
	}
	pos := a.File.Pos()
	si.Lock()
	defer si.Unlock()
	si.FreezeLocked(true)

	serPA, err := h.kho.AllocPreserve(SerSize)
	if err != nil {
		si.FreezeLocked(false)
		return err
	}
	ser := Ser{Pos: uint64(pos), Size: uint64(si.Size())}
	v, area, nr, err := h.preserveFolios(si)
	if err != nil {
		h.kho.UnpreserveFree(serPA)
		si.FreezeLocked(false)
		return err
	}
	ser.NrFolios, ser.Folios = nr, v
	if err := h.writeSer(serPA, ser); err != nil {
		h.unpreserveFolios(v, area, nr)
		h.kho.UnpreserveFree(serPA)
		si.FreezeLocked(false)
		return err
	}
	if area != nil {
		a.PrivateData = area
	} else {
		a.PrivateData = nil
	}
	a.SerializedData = uint64(serPA)
	return nil
}

// freeze ports memfd_luo_freeze(): record the file position as of the
// reboot; everything else was fixed at preserve.
//
// Called by LUO with the session and file mutexes held.
func (h *Handler) freeze(a *liveupdate.FileOpArgs) error {
	if h.rep.WarnOn(a.SerializedData == 0, "memfd_luo: freeze without serialized data") {
		return syscall.EINVAL
	}
	return h.mm.WriteU64(mm.PhysAddr(a.SerializedData)+SerOffPos, uint64(a.File.Pos()))
}

// unpreserve ports memfd_luo_unpreserve(): thaw the inode, unpin and
// unpreserve its folios and free the array and the struct.
//
// Called by LUO with the session and file mutexes held; takes the inode
// lock.
func (h *Handler) unpreserve(a *liveupdate.FileOpArgs) {
	if h.rep.WarnOn(a.SerializedData == 0, "memfd_luo: unpreserve without serialized data") {
		return
	}
	si := mm.ShmemInodeOf(a.File)
	if h.rep.WarnOn(si == nil, "memfd_luo: unpreserve of a file that is not a memfd") {
		return
	}
	si.Lock()
	defer si.Unlock()
	si.FreezeLocked(false)
	serPA := mm.PhysAddr(a.SerializedData)
	ser, err := h.readSer(serPA)
	if h.rep.WarnOn(err != nil, "memfd_luo: unreadable memfd_luo_ser at %#x: %v", uint64(serPA), err) {
		return
	}
	area, _ := a.PrivateData.(*kho.VmArea)
	h.unpreserveFolios(ser.Folios, area, ser.NrFolios)
	h.kho.UnpreserveFree(serPA)
}

// discardFolios ports memfd_luo_discard_folios(): restore and free every
// folio of an array nobody retrieved. KHO WARNs about entries that do not
// name a preserved folio; they are skipped.
func (h *Handler) discardFolios(area *kho.VmArea, first, nr uint64) {
	for i := first; i < nr; i++ {
		e, err := readFolioSer(area, i)
		if err != nil {
			return
		}
		if e.PFN == 0 {
			continue
		}
		f, err := h.kho.RestoreFolio(e.PFN.Addr())
		if err != nil {
			continue
		}
		f.Put()
	}
}

// restoreSer claims the incoming struct memfd_luo_ser at pa
// (kho_restore_folio(), which validates pa) and reads it. The caller frees
// the returned folio (kho_restore_free()).
func (h *Handler) restoreSer(pa mm.PhysAddr) (*mm.Folio, Ser, error) {
	f, err := h.kho.RestoreFolio(pa)
	if err != nil {
		return nil, Ser{}, syscall.EINVAL
	}
	if f.Size() < SerSize {
		f.Put()
		return nil, Ser{}, syscall.EINVAL
	}
	var b [SerSize]byte
	if err := f.Read(0, b[:]); err != nil {
		f.Put()
		return nil, Ser{}, syscall.EINVAL
	}
	return f, DecodeSer(b[:]), nil
}

// finish ports memfd_luo_finish() (7.0+): a file that was never retrieved
// is discarded, its folios and descriptors freed. After a retrieve, good
// or failed (retrieve_status != 0), retrieve has already cleaned up.
//
// Called by LUO with the session and file mutexes held.
func (h *Handler) finish(a *liveupdate.FileOpArgs) {
	if a.RetrieveStatus != 0 || a.SerializedData == 0 {
		return
	}
	serFolio, ser, err := h.restoreSer(mm.PhysAddr(a.SerializedData))
	if err != nil {
		return
	}
	defer serFolio.Put()
	if ser.NrFolios == 0 {
		return
	}
	area, err := h.kho.RestoreVmalloc(ser.Folios)
	if err != nil {
		return
	}
	defer area.Free()
	if checkNrFolios(area, ser.NrFolios) != nil {
		return
	}
	h.discardFolios(area, 0, ser.NrFolios)
}

// retrieveFolios ports memfd_luo_retrieve_folios(): put every preserved
// folio back into the new file's page cache with its flags. On failure the
// folios not yet added are restored and freed; those added go with the
// file.
//
// A folio that cannot be restored fails the retrieve with EIO wherever it
// comes (M25): "mm/memfd_luo: report error when restoring a folio fails
// mid-loop" (0fb1daf0b78d, 7.1, Cc: stable). In 6.19 (02e117b8ca58) err
// started as -EIO but each restored folio overwrote it with 0, so a
// failure after the first folio returned 0 and a file missing the rest of
// its contents (TestRetrieveFolioRestoreFailsMidLoop).
//
// Requires si.Lock().
func (h *Handler) retrieveFolios(si *mm.ShmemInode, area *kho.VmArea, nr uint64) error {
	for i := uint64(0); i < nr; i++ {
		e, err := readFolioSer(area, i)
		if err != nil {
			h.discardFolios(area, i+1, nr)
			return syscall.EIO
		}
		if e.PFN == 0 {
			continue
		}
		f, err := h.kho.RestoreFolio(e.PFN.Addr())
		if err != nil {
			h.discardFolios(area, i+1, nr)
			return syscall.EIO
		}
		if err := si.AddToPageCacheLocked(f, e.Index); err != nil {
			f.Put()
			h.discardFolios(area, i+1, nr)
			return err
		}
		if e.Flags&FolioUptodate != 0 {
			f.MarkUptodate()
		}
		if e.Flags&FolioDirty != 0 {
			f.MarkDirty()
		}
		f.Put() // the page cache holds its own reference
	}
	return nil
}

// retrieve ports memfd_luo_retrieve(): build a new memfd (no name, no
// seals, no close-on-exec) with the preserved size, position and folios,
// and free the descriptors. On failure the new file is dropped and the
// descriptors freed; LUO records the error and finish does nothing more.
//
// Called by LUO with the session and file mutexes held; takes the new
// inode's lock.
func (h *Handler) retrieve(a *liveupdate.FileOpArgs) error {
	if a.SerializedData == 0 {
		return syscall.EINVAL
	}
	serFolio, ser, err := h.restoreSer(mm.PhysAddr(a.SerializedData))
	if err != nil {
		return err
	}
	defer serFolio.Put()
	if ser.Size > mm.MaxLFSFileSize {
		return syscall.EINVAL
	}
	file, err := h.shmem.MemfdAllocFile("", 0)
	if err != nil {
		return err
	}
	si := mm.ShmemInodeOf(file)
	si.Lock()
	si.SetSizeLocked(int64(ser.Size))
	if ser.NrFolios != 0 {
		err = h.restoreFolios(si, ser)
	}
	si.Unlock()
	if err != nil {
		file.Put()
		return err
	}
	// vfs_setpos(); as in C, a position it refuses leaves f_pos at 0.
	_, _ = file.Llseek(int64(ser.Pos), mm.SeekSet)
	a.File = file
	return nil
}

// restoreFolios restores the folio array ser describes and fills si's
// page cache from it: the kho_restore_vmalloc() part of
// memfd_luo_retrieve().
//
// Requires si.Lock().
func (h *Handler) restoreFolios(si *mm.ShmemInode, ser Ser) error {
	area, err := h.kho.RestoreVmalloc(ser.Folios)
	if err != nil {
		return syscall.EINVAL
	}
	defer area.Free()
	if err := checkNrFolios(area, ser.NrFolios); err != nil {
		// Nothing of the file can be trusted; what the array lists
		// is discarded, so that no folio stays reserved for good.
		h.discardFolios(area, 0, area.Size()/FolioSerSize)
		return err
	}
	return h.retrieveFolios(si, area, ser.NrFolios)
}

// canPreserve ports memfd_luo_can_preserve(): a shmem file with no links,
// i.e. a memfd; hugetlb memfds are not shmem files.
func (h *Handler) canPreserve(_ *liveupdate.FileHandler, f *vfs.File) bool {
	si := mm.ShmemInodeOf(f)
	return si != nil && si.Nlink() == 0
}

// getID ports memfd_luo_get_id(): the inode identifies a memfd, so every
// fd and dup of it counts as the same file for double-preservation.
func (h *Handler) getID(f *vfs.File) uint64 {
	if si := mm.ShmemInodeOf(f); si != nil {
		return si.ID()
	}
	return 0
}
