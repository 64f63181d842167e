package mm

import (
	"syscall"

	"luomodel/kernel/vfs"
)

// Shmem is one kernel's shmem filesystem instance (mm/shmem.c), the home
// of memfd files.
type Shmem struct {
	mm  *MM
	vfs *vfs.VFS
}

// NewShmem mounts shmem for a kernel.
func NewShmem(m *MM, v *vfs.VFS) *Shmem { return &Shmem{mm: m, vfs: v} }

// MemfdCreate ports mm/memfd.c:memfd_create() minus the fd: it returns a
// new file with one reference.
func (s *Shmem) MemfdCreate(name string, flags uint) (*vfs.File, error) {
	return nil, syscall.ENOSYS
}
