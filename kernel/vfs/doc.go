// Package vfs ports the slice of Linux's fs/ that LUO stands on: struct
// file with its reference count and file operations, anonymous-inode files,
// the per-process fd table, misc character devices and /dev/null.
//
// A VFS is one kernel's instance: it owns the misc-device registry, the
// shared anonymous inode and the registry of live files that tests use to
// find leaks.
//
// File map (Go file: C origin):
//
//	file.go         include/linux/fs.h: struct file, struct inode
//	file_table.go   fs/file_table.c: alloc_file_pseudo(), get_file(), fput(), __fput()
//	fdtable.go      fs/file.c: files_struct, alloc_fd(), fd_install(), fget(), close_fd(), dup,
//	                dup_fd() (fork), do_close_on_exec() (exec); fs/fcntl.c: f_dupfd()
//	fops.go         struct file_operations and the defaults of an absent operation
//	read_write.go   fs/read_write.c: vfs_read(), vfs_write(), vfs_llseek()
//	ioctl.go        fs/ioctl.c: vfs_ioctl()
//	open.go         fs/open.c + fs/namei.c: path lookup under /dev, do_ftruncate()
//	anon_inodes.go  fs/anon_inodes.c
//	misc.go         drivers/char/misc.c
//	mem.go          drivers/char/mem.c: /dev/null
//	context.go      the calling task's side of a file operation, task_work fput
//	leak.go         the live-file registry and the test helper CheckNoLeaks
//
// Locks: files_struct.file_lock (FDTable) and file.f_pos_lock (File) are
// leaves: no other lock is taken under them and no release hook runs under
// them. misc_mtx is held across a misc device's open hook, as in Linux, so
// it orders before every lock such a hook takes.
//
// Release hooks run synchronously in the Put that drops the last reference
// (__fput_sync()); Context.Fput defers them to syscall exit instead, as
// fput() from a task does in Linux (task_work).
package vfs
