package model

import (
	"slices"
	"syscall"
)

// read ports vfs_read() over /dev/null, a memfd (shmem_file_read_iter) and
// files without a read op.
func (s *State) read(t *Task, fd int, n int) Result {
	id, f, e := s.fget(t, fd)
	if e != 0 {
		return errResult(e)
	}
	if !f.Readable {
		return errResult(syscall.EBADF)
	}
	switch f.Kind {
	case KindNull:
		return Result{Data: []byte{}}
	case KindTest:
		return s.testRead(id, f, n)
	case KindMemfd:
		data := s.Inodes[f.Inode].Data
		if f.Pos >= int64(len(data)) || n == 0 {
			return Result{Data: []byte{}}
		}
		end := f.Pos + int64(n)
		if end > int64(len(data)) {
			end = int64(len(data))
		}
		out := cloneBytes(data[f.Pos:end])
		s.wFile(id).Pos = end
		return Result{Ret: int64(len(out)), Data: out}
	}
	return errResult(syscall.EINVAL) // no read op: !FMODE_CAN_READ
}

// write ports vfs_write(); for a memfd, generic_perform_write() page by
// page, where a frozen (preserved) inode refuses to grow (EPERM from
// shmem_write_begin), a page without a folio gets one (alloc_pages, which
// an armed fault fails with ENOMEM), and a short write returns what was
// written.
func (s *State) write(t *Task, fd int, p []byte) Result {
	id, f, e := s.fget(t, fd)
	if e != 0 {
		return errResult(e)
	}
	if !f.Writable {
		return errResult(syscall.EBADF)
	}
	switch f.Kind {
	case KindNull:
		return okResult(int64(len(p)))
	case KindTest:
		return s.testWrite(id, f, p)
	case KindMemfd:
		if len(p) == 0 {
			return okResult(0)
		}
		in := s.wInode(f.Inode)
		pos, written := f.Pos, int64(0)
		var err syscall.Errno
		for written < int64(len(p)) {
			chunk := PageSize - pos%PageSize
			if rem := int64(len(p)) - written; chunk > rem {
				chunk = rem
			}
			// shmem_write_begin(): the seals, then LUO's freeze.
			grows := pos+chunk > int64(len(in.Data))
			if in.Seals&(SealWrite|SealFutureWrite) != 0 || grows && (in.Seals&SealGrow != 0 || in.Frozen) {
				err = syscall.EPERM
				break
			}
			// shmem_get_folio(SGP_WRITE): a hole gets a folio;
			// shmem_write_end() dirties it.
			index := pos / PageSize
			if !in.hasPage(index) && s.failAt(FaultAllocPages) {
				err = syscall.ENOMEM
				break
			}
			in.Pages = dirtyPages(in.Pages, index, index+1)
			in.Data = writeAt(in.Data, pos, p[written:written+chunk])
			pos += chunk
			written += chunk
		}
		if written == 0 {
			return errResult(err)
		}
		s.wFile(id).Pos = pos
		return okResult(written)
	}
	return errResult(syscall.EINVAL) // no write op: !FMODE_CAN_WRITE
}

// writeAt returns a new slice: data with p written at pos (zero-filling a
// hole).
func writeAt(data []byte, pos int64, p []byte) []byte {
	size := int64(len(data))
	if end := pos + int64(len(p)); end > size {
		size = end
	}
	out := make([]byte, size)
	copy(out, data)
	copy(out[pos:], p)
	return out
}

// lseek ports ksys_lseek(): whence beyond SEEK_MAX is EINVAL, files
// without llseek are ESPIPE, /dev/null always returns 0, and a memfd
// uses generic_file_llseek_size().
func (s *State) lseek(t *Task, fd int, off int64, whence int) Result {
	id, f, e := s.fget(t, fd)
	if e != 0 {
		return errResult(e)
	}
	if whence < 0 || whence > seekMax {
		return errResult(syscall.EINVAL)
	}
	switch f.Kind {
	case KindNull:
		return okResult(0)
	case KindTest:
		return s.testLseek(id, f, off, whence)
	case KindMemfd:
		var npos int64
		switch whence {
		case SeekSet:
			npos = off
		case SeekCur:
			if off == 0 {
				return okResult(f.Pos)
			}
			npos = f.Pos + off
		case SeekEnd:
			npos = int64(len(s.Inodes[f.Inode].Data)) + off
		default:
			var e syscall.Errno
			if npos, e = s.Inodes[f.Inode].seekHoleData(off, whence); e != 0 {
				return errResult(e)
			}
		}
		if npos < 0 {
			return errResult(syscall.EINVAL)
		}
		s.wFile(id).Pos = npos
		return okResult(npos)
	}
	return errResult(syscall.ESPIPE)
}

// ftruncate ports do_sys_ftruncate() / shmem_setattr().
func (s *State) ftruncate(t *Task, fd int, length int64) Result {
	if length < 0 {
		return errResult(syscall.EINVAL)
	}
	_, f, e := s.fget(t, fd)
	if e != 0 {
		return errResult(e)
	}
	if f.Kind != KindMemfd || !f.Writable {
		return errResult(syscall.EINVAL) // not a regular file opened for write
	}
	in := s.Inodes[f.Inode]
	if size := int64(len(in.Data)); length < size && in.Seals&SealShrink != 0 || length > size && in.Seals&SealGrow != 0 {
		return errResult(syscall.EPERM)
	}
	if length == int64(len(in.Data)) {
		return okResult(0)
	}
	if in.Frozen {
		return errResult(syscall.EPERM)
	}
	in = s.wInode(f.Inode)
	out := make([]byte, length)
	copy(out, in.Data)
	in.Data = out
	// shmem_truncate_range(): a shrink drops the folios wholly past the
	// end and dirties the partial last one; a grow leaves a hole.
	if keep := pagesFor(length); int64(len(in.Pages)) > keep {
		in.Pages = in.Pages[:keep:keep]
		if last := length / PageSize; length%PageSize != 0 && in.hasPage(last) {
			in.Pages = dirtyPages(in.Pages, last, last+1)
		}
	}
	return okResult(0)
}

// seekHoleData ports shmem_file_llseek()'s SEEK_DATA and SEEK_HOLE
// (mapping_seek_hole_data()): a page holding a folio is data, any other a
// hole, and the end of file is a hole; ENXIO at or past the end, or for
// a negative offset, or for SEEK_DATA with no data from off on.
func (in *Inode) seekHoleData(off int64, whence int) (int64, syscall.Errno) {
	size := int64(len(in.Data))
	if off < 0 || off >= size {
		return 0, syscall.ENXIO
	}
	index := off / PageSize
	if whence == SeekHole {
		for in.hasPage(index) {
			index++
		}
		return min(max(off, index*PageSize), size), 0
	}
	for ; index < pagesFor(size); index++ {
		if in.hasPage(index) {
			return max(off, index*PageSize), 0
		}
	}
	return 0, syscall.ENXIO
}

// pagesFor is the number of pages that hold size bytes.
func pagesFor(size int64) int64 { return (size + PageSize - 1) / PageSize }

// PageState is what a page of a memfd holds.
type PageState uint8

// Page states.
const (
	PageHole  PageState = iota // no folio
	PageClean                  // a folio never written (zeros): reclaim may drop it
	PageDirty                  // a folio written (PG_dirty): it stays
)

// hasPage says whether page index of the file holds a folio.
func (in *Inode) hasPage(index int64) bool {
	return index < int64(len(in.Pages)) && in.Pages[index] != PageHole
}

// filledPages returns a new page map: pages with the holes of [from, to)
// holding clean folios.
func filledPages(pages []PageState, from, to int64) []PageState {
	out := make([]PageState, max(int64(len(pages)), to))
	copy(out, pages)
	for i := from; i < to; i++ {
		out[i] = max(out[i], PageClean)
	}
	return out
}

// dirtyPages returns a new page map: pages with [from, to) holding dirty
// folios.
func dirtyPages(pages []PageState, from, to int64) []PageState {
	out := make([]PageState, max(int64(len(pages)), to))
	copy(out, pages)
	for i := from; i < to; i++ {
		out[i] = PageDirty
	}
	return out
}

// PageMap renders the page map: one digit per page of the file, its
// PageState (0 a hole, 1 a clean folio, 2 a dirty one). Canon uses it.
func (in *Inode) PageMap() string {
	b := make([]byte, pagesFor(int64(len(in.Data))))
	for i := range b {
		b[i] = '0'
		if i < len(in.Pages) {
			b[i] += byte(in.Pages[i])
		}
	}
	return string(b)
}

// dropCaches ports a write of mode to /proc/sys/vm/drop_caches
// (fs/drop_caches.c:drop_caches_sysctl_handler()): a mode outside [1, 4]
// is EINVAL (proc_dointvec_minmax()); bit 1 drops every memfd's clean
// folios, which then read as zeros and are holes again (a write must
// allocate them anew). Their contents are zeros anyway: a folio only
// holds data once written, which dirties it. Bit 2 (slab) and bit 4 (no
// log line) change nothing the model sees.
func (s *State) dropCaches(mode int) Result {
	if mode < 1 || mode > 4 {
		return errResult(syscall.EINVAL)
	}
	if mode&1 == 0 {
		return okResult(0)
	}
	var clean []InodeID
	for id, in := range s.Inodes {
		if slices.Contains(in.Pages, PageClean) {
			clean = append(clean, id)
		}
	}
	for _, id := range clean {
		in := s.wInode(id)
		pages := slices.Clone(in.Pages)
		data := slices.Clone(in.Data)
		for i, st := range pages {
			if st == PageClean {
				pages[i] = PageHole
				clear(data[min(int64(i)*PageSize, int64(len(data))):min(int64(i+1)*PageSize, int64(len(data)))])
			}
		}
		in.Pages, in.Data = pages, data
	}
	return okResult(0)
}

// memfdCreate ports memfd_create(2): name and flags first, then the fd.
func (s *State) memfdCreate(t *Task, name string, flags int) Result {
	if flags&^mfdAllFlags != 0 || flags&mfdHugetlb != 0 {
		return errResult(syscall.EINVAL)
	}
	if flags&MfdExec != 0 && flags&MfdNoexecSeal != 0 {
		return errResult(syscall.EINVAL)
	}
	if len(name) > MemfdNameMax {
		return errResult(syscall.EINVAL)
	}
	if e := s.reserveFD(t); e != 0 {
		return errResult(e)
	}
	ino := s.newInode([]byte{})
	switch {
	case flags&MfdNoexecSeal != 0:
		in := s.wInode(ino)
		in.NoExec, in.Seals = true, SealExec
	case flags&MfdAllowSealing != 0:
		s.wInode(ino).Seals = 0
	}
	fid := s.newFile(File{Kind: KindMemfd, Readable: true, Writable: true, Inode: ino})
	return okResult(int64(s.installFlags(t, fid, flags&MfdCloexec != 0)))
}
