package kernel

import (
	"fmt"
	"runtime/debug"
	"syscall"

	"luomodel/kernel/bug"
	"luomodel/kernel/vfs"
)

// TitleSyscallPanic starts the title of the report filed when a Go panic
// reaches a syscall's boundary.
const TitleSyscallPanic = "panic in syscall"

// doSyscall runs body as syscall name of t, between the entry and exit
// work of kernel/entry/common.c:
//
//   - entry: a task of a dead kernel (replaced by kexec), or a task that
//     exited, no longer exists: ESRCH, and body does not run;
//   - body gets a fresh vfs.Context: the task's fd table and its task_work
//     list;
//   - a Go panic escaping body is a kernel bug, not a crash of the model:
//     it is filed as a KindWarn report (titled TitleSyscallPanic, with the
//     panic value and stack) and the syscall fails with EFAULT and result
//     fail, so a checker sees a failure and the process lives on. (With no
//     report handler the Reporter panics, as panic_on_warn would.)
//   - exit_to_user_mode(): run the task_work the syscall queued (delayed
//     fputs, so releases run with no lock held), then lockdep_sys_exit():
//     the task must hold no lock.
//
// No lock may be held on entry; doSyscall takes none itself.
func doSyscall[T any](t *Task, name string, fail T, body func(ctx *vfs.Context) (T, error)) (res T, err error) {
	if t.k.Dead() || t.exited.Load() {
		return fail, syscall.ESRCH
	}
	ctx := &vfs.Context{FDs: t.fds}
	defer func() {
		if r := recover(); r != nil {
			t.k.reportPanic(name, r)
			res, err = fail, syscall.EFAULT
		}
		t.exitToUserMode(name, ctx)
	}()
	return body(ctx)
}

// exitToUserMode ports the end of syscall_exit_to_user_mode(): task_work
// (delayed fput), then lockdep_sys_exit(). A panic in a release hook run
// here is reported like one in the syscall body; the syscall's result
// stands, as the work runs after it was decided.
func (t *Task) exitToUserMode(name string, ctx *vfs.Context) {
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.k.reportPanic(name+" (task_work)", r)
			}
		}()
		ctx.TaskWorkRun()
	}()
	t.k.dom.CheckNoLocksHeld(name)
}

// reportPanic files a panic recovered at the boundary of syscall name.
func (k *Kernel) reportPanic(name string, r any) {
	k.rep.File(&bug.Report{
		Kind:   bug.KindWarn,
		Title:  fmt.Sprintf("%s %s: %v", TitleSyscallPanic, name, r),
		Detail: "a Go panic reached the syscall boundary; the syscall returns EFAULT",
		Stack:  string(debug.Stack()),
	})
}
