package kernel

import "luomodel/kernel/vfs"

// Fork ports kernel/fork.c:kernel_clone() for fork(2) as far as files and
// limits go: the child gets a copy of the parent's fd table
// (copy_files() -> dup_fd(): the same fds on the same open files, each
// with a new reference, the same close-on-exec bits) and of its
// RLIMIT_NOFILE (copy_signal()). The child is a new process: its fds are
// its own from then on, but the open files (and so LUO sessions) are
// shared with the parent until both close them. ESRCH for a task that
// exited or belongs to a dead kernel.
func (t *Task) Fork() (*Task, error) {
	return doSyscall(t, "fork", nil, func(*vfs.Context) (*Task, error) {
		t.allocLock.Lock()
		nofileMax := t.nofileMax
		t.allocLock.Unlock()
		return t.k.newTask(t.fds.Fork(), nofileMax), nil
	})
}
