package kernel

import (
	"syscall"

	"luomodel/kernel/vfs"
)

// DropCaches ports a write of mode to /proc/sys/vm/drop_caches
// (fs/drop_caches.c:drop_caches_sysctl_handler()), which user space uses
// to put the page cache under the pressure reclaim would: a mode outside
// [1, 4] is EINVAL (proc_dointvec_minmax() with extra1 = SYSCTL_ONE,
// extra2 = SYSCTL_FOUR); bit 1 drops the clean page cache of every
// superblock (iterate_supers(drop_pagecache_sb)), here shmem's, the only
// one with a page cache; bit 2 shrinks the slab caches and bit 4 silences
// the log line, neither of which the port has. Tasks run as root, so the
// sysctl file's mode 0644 allows the write.
func (t *Task) DropCaches(mode int) error {
	_, err := doSyscall(t, "write", 0, func(*vfs.Context) (int, error) {
		if mode < 1 || mode > 4 {
			return 0, syscall.EINVAL
		}
		if mode&1 != 0 {
			t.k.shmem.DropPagecache()
		}
		return 0, nil
	})
	return err
}
