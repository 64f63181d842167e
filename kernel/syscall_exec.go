package kernel

import "luomodel/kernel/vfs"

// Exec ports fs/exec.c:execve() as far as files go: the new program image
// keeps the fd table except the fds marked close-on-exec, which
// begin_new_exec() closes (do_close_on_exec()). A file whose last fd this
// closes is released when the syscall returns (filp_close()'s fput runs
// as task_work); for a LUO session that is its release. The model has no
// program image: the task stays the same process with the same limits.
// Unlike Linux (de_thread()), other threads of the task are not killed: a
// caller must not run them across Exec. ESRCH for a task that exited or
// belongs to a dead kernel.
func (t *Task) Exec() error {
	_, err := doSyscall(t, "execve", 0, func(ctx *vfs.Context) (int, error) {
		t.fds.CloseOnExec(ctx)
		return 0, nil
	})
	return err
}
