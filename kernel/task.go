package kernel

import (
	"sync/atomic"

	"luomodel/kernel/locking"
	"luomodel/kernel/vfs"
)

// Task is a user process: an fd table and the syscalls of design.md. Its
// methods are the syscalls; each is entered and left through doSyscall
// (syscall_entry.go). A Task may be driven from several goroutines at once
// (threads sharing one fd table), except that Exit must not race with its
// other syscalls.
type Task struct {
	k   *Kernel      // immutable
	fds *vfs.FDTable // immutable: the task's files_struct
	// exited is set by Exit; a task that exited makes no more syscalls.
	exited atomic.Bool

	// allocLock ports task_lock() (task_struct.alloc_lock of the group
	// leader), which do_prlimit() holds to update a limit.
	allocLock locking.Mutex
	// nofileMax ports signal->rlim[RLIMIT_NOFILE].rlim_max; rlim_cur lives
	// in the fd table (vfs.FDTable.Limit), which alloc_fd() reads. Guarded
	// by allocLock.
	nofileMax uint64
}

// NewTask ports fork() of a fresh process: an empty fd table with Linux's
// default RLIMIT_NOFILE (1024, hard limit 4096). A task of a dead kernel is
// born dead: its syscalls fail with ESRCH.
func (k *Kernel) NewTask() *Task {
	return k.newTask(k.vfs.NewFDTable(vfs.DefaultNoFile), NrOpenMax)
}

// newTask builds a task on fds with hard RLIMIT_NOFILE nofileMax.
func (k *Kernel) newTask(fds *vfs.FDTable, nofileMax uint64) *Task {
	t := &Task{k: k, fds: fds, nofileMax: nofileMax}
	t.allocLock.Init(k.dom, "task_struct.alloc_lock")
	return t
}

// Kernel is the kernel the task runs on.
func (t *Task) Kernel() *Kernel { return t.k }

// Exited reports whether the task has exited.
func (t *Task) Exited() bool { return t.exited.Load() }

// Exit ports kernel/exit.c:do_exit()'s exit_files(): close every fd, lowest first, then
// the task is gone and its syscalls fail with ESRCH. Exit of a task that
// already exited, or of a dead kernel's task, does nothing.
func (t *Task) Exit() {
	_, _ = doSyscall(t, "exit", 0, func(*vfs.Context) (int, error) {
		if t.exited.Swap(true) {
			return 0, nil
		}
		t.fds.CloseAll()
		return 0, nil
	})
}
