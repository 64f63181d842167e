package mm

import (
	"strings"
	"syscall"

	"luomodel/kernel/vfs"
)

// memfd_create() flags (include/uapi/linux/memfd.h).
const (
	MFD_CLOEXEC       = 0x0001
	MFD_ALLOW_SEALING = 0x0002
	MFD_HUGETLB       = 0x0004
	MFD_NOEXEC_SEAL   = 0x0008
	MFD_EXEC          = 0x0010

	// MFD_HUGE_SHIFT and MFD_HUGE_MASK encode a huge page size in the
	// flags of an MFD_HUGETLB memfd.
	MFD_HUGE_SHIFT = 26
	MFD_HUGE_MASK  = 0x3f

	mfdAllFlags = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_NOEXEC_SEAL | MFD_EXEC
)

// File seals (include/uapi/linux/fcntl.h).
const (
	F_SEAL_SEAL         = 0x0001
	F_SEAL_SHRINK       = 0x0002
	F_SEAL_GROW         = 0x0004
	F_SEAL_WRITE        = 0x0008
	F_SEAL_FUTURE_WRITE = 0x0010
	F_SEAL_EXEC         = 0x0020

	fAllSeals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE | F_SEAL_EXEC
)

// Name limits of memfd_create().
const (
	// MemfdNamePrefix starts the name of every file memfd_create() makes.
	MemfdNamePrefix = "memfd:"
	// MemfdNameMaxLen ports MFD_NAME_MAX_LEN: NAME_MAX (255) minus the
	// prefix.
	MemfdNameMaxLen = 255 - len(MemfdNamePrefix)
)

// OLargefile is O_LARGEFILE as the kernel stores it in f_flags on x86
// (0100000); Go's syscall.O_LARGEFILE is 0 on 64-bit hosts.
const OLargefile = 0o100000

// MemfdFileFlags are the open flags of every memfd: O_RDWR|O_LARGEFILE.
const MemfdFileFlags = syscall.O_RDWR | OLargefile

// MemfdCreate ports mm/memfd.c:memfd_create() minus the fd: it returns a
// new file with one reference. The caller installs it, with FD_CLOEXEC if
// flags has MFD_CLOEXEC. Unknown flags, huge-page bits without
// MFD_HUGETLB, MFD_EXEC with MFD_NOEXEC_SEAL, and names longer than
// MemfdNameMaxLen fail with EINVAL. As in C, the name ends at its first
// NUL byte. The file is named MemfdNamePrefix+name.
func (s *Shmem) MemfdCreate(name string, flags uint) (*vfs.File, error) {
	if flags&MFD_HUGETLB == 0 {
		if flags&^uint(mfdAllFlags) != 0 {
			return nil, syscall.EINVAL
		}
	} else if flags&^uint(mfdAllFlags|MFD_HUGE_MASK<<MFD_HUGE_SHIFT) != 0 {
		return nil, syscall.EINVAL
	}
	if flags&MFD_EXEC != 0 && flags&MFD_NOEXEC_SEAL != 0 {
		return nil, syscall.EINVAL
	}
	// The vm.memfd_noexec sysctl at its default (MEMFD_NOEXEC_SCOPE_EXEC).
	if flags&(MFD_EXEC|MFD_NOEXEC_SEAL) == 0 {
		flags |= MFD_EXEC
	}
	if i := strings.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	if len(name) > MemfdNameMaxLen {
		return nil, syscall.EINVAL
	}
	return s.MemfdAllocFile(MemfdNamePrefix+name, flags)
}

// MemfdAllocFile ports mm/memfd.c:memfd_alloc_file(): a new, empty memfd
// file (one reference) named exactly name, with flags already validated
// (only MFD_HUGETLB, MFD_NOEXEC_SEAL and MFD_ALLOW_SEALING matter here).
// memfd_luo's retrieve calls it with ("", 0): an unsealable shmem memfd.
// Its inode is ShmemInodeOf(file).
func (s *Shmem) MemfdAllocFile(name string, flags uint) (*vfs.File, error) {
	si := s.newInode(flags&MFD_HUGETLB != 0)
	switch {
	case flags&MFD_NOEXEC_SEAL != 0:
		si.execMode = false
		si.seals &^= F_SEAL_SEAL
		si.seals |= F_SEAL_EXEC
	case flags&MFD_ALLOW_SEALING != 0:
		si.seals &^= F_SEAL_SEAL
	}
	return s.vfs.NewFile(name, MemfdFileFlags, shmemFileOperations{}, si.inode, nil), nil
}

// IsMemfd reports whether f was made by memfd_create() or MemfdAllocFile
// (a shmem or hugetlb memfd).
func IsMemfd(f *vfs.File) bool {
	if f == nil || f.Inode() == nil {
		return false
	}
	_, ok := f.Inode().Impl().(*ShmemInode)
	return ok
}

// Hugetlb reports whether the inode is a hugetlbfs one (MFD_HUGETLB).
func (si *ShmemInode) Hugetlb() bool { return si.hugetlb }

// fcntl commands of file seals (include/uapi/linux/fcntl.h).
const (
	F_ADD_SEALS = 1033
	F_GET_SEALS = 1034
)

// MemfdFcntl ports mm/memfd.c:memfd_fcntl(), fcntl(2)'s F_ADD_SEALS and
// F_GET_SEALS on f: EINVAL for another cmd, and for a file with no seals
// (memfd_file_seals_ptr() NULL: not a shmem or hugetlbfs file). F_ADD_SEALS
// needs FMODE_WRITE first (EPERM), as memfd_add_seals() checks it before
// anything. F_GET_SEALS returns the seals.
func MemfdFcntl(f *vfs.File, cmd int, arg uint32) (int, error) {
	si, _ := f.Inode().Impl().(*ShmemInode)
	switch cmd {
	case F_ADD_SEALS:
		if !f.CanWrite() {
			return -1, syscall.EPERM
		}
		if arg&^fAllSeals != 0 || si == nil {
			return -1, syscall.EINVAL
		}
		return 0, si.AddSeals(arg)
	case F_GET_SEALS:
		if si == nil {
			return -1, syscall.EINVAL
		}
		return int(si.Seals()), nil
	}
	return -1, syscall.EINVAL
}

// Seals ports mm/memfd.c:memfd_get_seals() (fcntl F_GET_SEALS).
func (si *ShmemInode) Seals() uint32 {
	si.LockShared()
	defer si.UnlockShared()
	return si.seals
}

// AddSeals ports mm/memfd.c:memfd_add_seals() (fcntl F_ADD_SEALS): EINVAL
// for unknown seals, EPERM once F_SEAL_SEAL is set, EBUSY when
// F_SEAL_WRITE is asked for while folios are pinned (memfd_wait_for_pins()
// gives up; there are no mmaps to deny). F_SEAL_EXEC on an executable
// inode implies the write and size seals.
func (si *ShmemInode) AddSeals(seals uint32) error {
	if seals&^fAllSeals != 0 {
		return syscall.EINVAL
	}
	si.Lock()
	defer si.Unlock()
	if si.seals&F_SEAL_SEAL != 0 {
		return syscall.EPERM
	}
	if seals&F_SEAL_WRITE != 0 && si.seals&F_SEAL_WRITE == 0 {
		for _, f := range si.cache {
			if f.Pincount() > 0 {
				return syscall.EBUSY
			}
		}
	}
	if seals&F_SEAL_EXEC != 0 && si.execMode {
		seals |= F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE
	}
	si.seals |= seals
	return nil
}
