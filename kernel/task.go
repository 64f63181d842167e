package kernel

import "syscall"

// Task is a user process: an fd table and the syscalls of design.md.
type Task struct {
	k *Kernel
}

// Open ports open(2).
func (t *Task) Open(path string, flags int) (int, error) { return -1, syscall.ENOSYS }

// Close ports close(2).
func (t *Task) Close(fd int) error { return syscall.ENOSYS }

// Ioctl ports ioctl(2); arg is the user buffer, read and written in place.
func (t *Task) Ioctl(fd int, cmd uint32, arg []byte) error { return syscall.ENOSYS }

// Read ports read(2).
func (t *Task) Read(fd int, p []byte) (int, error) { return 0, syscall.ENOSYS }

// Write ports write(2).
func (t *Task) Write(fd int, p []byte) (int, error) { return 0, syscall.ENOSYS }

// Lseek ports lseek(2).
func (t *Task) Lseek(fd int, off int64, whence int) (int64, error) { return 0, syscall.ENOSYS }

// Ftruncate ports ftruncate(2).
func (t *Task) Ftruncate(fd int, length int64) error { return syscall.ENOSYS }

// Dup ports dup(2).
func (t *Task) Dup(fd int) (int, error) { return -1, syscall.ENOSYS }

// MemfdCreate ports memfd_create(2).
func (t *Task) MemfdCreate(name string, flags uint) (int, error) { return -1, syscall.ENOSYS }

// Exit closes every fd (do_exit()).
func (t *Task) Exit() {}
