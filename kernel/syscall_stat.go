package kernel

import (
	"syscall"

	"luomodel/kernel/mm"
	"luomodel/kernel/vfs"
)

// Stat is the part of struct stat the model knows (fs/stat.c:cp_new_stat()).
// Owner, group and times are not modelled.
type Stat struct {
	Ino     uint64
	Mode    uint32 // file type and permission bits (S_IFREG|0777, ...)
	Nlink   uint32
	Rdev    uint64 // the device number of a character device
	Size    int64
	Blksize int64
	Blocks  int64 // 512-byte units allocated
}

// Device numbers of the character devices the model has.
const (
	memMajor  = 1  // drivers/char/mem.c: MEM_MAJOR
	nullMinor = 3  // /dev/null
	miscMajor = 10 // drivers/char/misc.c: MISC_MAJOR
	// liveupdateMinor stands in for the dynamic minor misc_register()
	// hands to /dev/liveupdate (MISC_DYNAMIC_MINOR).
	liveupdateMinor = 120
)

// mkdev ports include/linux/kdev_t.h:new_encode_dev() as glibc's makedev().
func mkdev(major, minor uint64) uint64 {
	return (major&0xfffff000)<<32 | (major&0xfff)<<8 | (minor&0xffffff00)<<12 | minor&0xff
}

// Fstat ports fs/stat.c:SYSCALL_DEFINE2(newfstat): EBADF unless fd holds
// a file, then vfs_getattr() of its inode:
//
//   - a memfd is a shmem regular file, mode S_IFREG|0777, never linked
//     (nlink 0), its size and the pages its page cache holds;
//   - an anonymous-inode file (a LUO session) shows anon_inode_inode:
//     mode 0600 with no file type, nlink 1, size 0;
//   - /dev/null and /dev/liveupdate are character devices (devtmpfs modes
//     0666 and 0600).
func (t *Task) Fstat(fd int) (Stat, error) {
	return doSyscall(t, "newfstat", Stat{}, func(ctx *vfs.Context) (Stat, error) {
		f, err := t.fds.Get(fd)
		if err != nil {
			return Stat{}, err
		}
		defer ctx.Fput(f)
		st := Stat{Ino: f.Inode().Ino(), Blksize: mm.PageSize, Nlink: 1}
		switch si := mm.ShmemInodeOf(f); {
		case si != nil:
			si.LockShared()
			st.Mode = syscall.S_IFREG | 0o777
			st.Nlink = si.Nlink()
			st.Size = si.Size()
			st.Blocks = int64(si.NrFoliosLocked()) * (mm.PageSize / 512)
			si.UnlockShared()
		case f.Inode() == t.k.vfs.AnonInode():
			st.Mode = syscall.S_IRUSR | syscall.S_IWUSR
		case f.Name() == "/dev/null":
			st.Mode = syscall.S_IFCHR | 0o666
			st.Rdev = mkdev(memMajor, nullMinor)
		default:
			st.Mode = syscall.S_IFCHR | 0o600
			st.Rdev = mkdev(miscMajor, liveupdateMinor)
		}
		return st, nil
	})
}
