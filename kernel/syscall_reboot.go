package kernel

import (
	"syscall"

	"luomodel/kernel/mm"
)

// RebootKexec ports reboot(2) with LINUX_REBOOT_CMD_KEXEC
// (kernel/reboot.c:SYSCALL_DEFINE4(reboot), which calls
// kernel/kexec_core.c:kernel_kexec()) as a syscall of the calling task, the
// goroutine that asks for the live update: Machine.Kexec, whose shape
// design.md fixes, takes no Task. The body is PrepareKexec; the machine does
// the jump (machine_kexec()) after a success.
//
//   - entry: a dead kernel (already replaced) has no task to run it:
//     ESRCH;
//   - a successful kexec never returns to user space: the next kernel
//     replaces this one, and LUO keeps its serialize rwsem for write on
//     purpose until the jump (MarkDead), so no exit work runs;
//   - a failed one returns the error to the task, through the exit work of
//     every syscall (doSyscall): lockdep_sys_exit() reports any lock the
//     aborted reboot left held (M14, a serialization that fails and keeps
//     its lock), in the task that holds it, before its next syscall
//     blocks on it;
//   - a Go panic in the body is reported as in doSyscall and fails the call
//     with EFAULT; the exit check runs after it.
//
// No lock may be held on entry.
func (k *Kernel) RebootKexec() (handover mm.PhysAddr, err error) {
	if k.Dead() {
		return 0, syscall.ESRCH
	}
	defer func() {
		if r := recover(); r != nil {
			k.reportPanic("reboot", r)
			handover, err = 0, syscall.EFAULT
		}
		if err != nil {
			k.dom.CheckNoLocksHeld("reboot")
		}
	}()
	return k.PrepareKexec()
}
