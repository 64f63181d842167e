package vfs

import "syscall"

// FDTable ports struct files_struct / struct fdtable.
type FDTable struct{}

// NewFDTable returns an empty table with the given RLIMIT_NOFILE.
func (v *VFS) NewFDTable(limit int) *FDTable { return &FDTable{} }

// GetUnusedFD ports get_unused_fd_flags(): reserve the lowest free fd.
func (t *FDTable) GetUnusedFD(flags int) (int, error) { return -1, syscall.EMFILE }

// PutUnusedFD ports put_unused_fd(): release a reserved, uninstalled fd.
func (t *FDTable) PutUnusedFD(fd int) {}

// Install ports fd_install(): publish f at a reserved fd; consumes a reference.
func (t *FDTable) Install(fd int, f *File) {}

// Get ports fget(): a new reference to the file at fd, or EBADF.
func (t *FDTable) Get(fd int) (*File, error) { return nil, syscall.EBADF }

// Close ports close_fd().
func (t *FDTable) Close(fd int) error { return syscall.EBADF }

// Dup ports dup(2).
func (t *FDTable) Dup(fd int) (int, error) { return -1, syscall.EBADF }

// CloseAll closes every fd (exit_files()).
func (t *FDTable) CloseAll() {}
