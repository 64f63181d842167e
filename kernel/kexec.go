package kernel

import (
	"fmt"

	"luomodel/kernel/locking"
	"luomodel/kernel/mm"
)

// PrepareKexec ports the live-update part of kernel_kexec()
// (kernel/kexec_core.c, 6.19): the reboot notifier liveupdate_reboot(),
// which serializes LUO's sessions and calls kho_finalize(), then
// kho_fill_kimage(), which hands the root FDT's address to the next kernel.
// With LUO off but KHO on, PrepareKexec finalizes KHO itself so that what
// was preserved directly through KHO is still handed over. It returns the
// hand-over descriptor (0 when KHO is disabled: a plain kexec).
//
// On error nothing is handed over and this kernel keeps running.
func (k *Kernel) PrepareKexec() (mm.PhysAddr, error) {
	luoOn := k.luo != nil && k.luo.Enabled()
	if luoOn {
		if err := k.luo.Reboot(); err != nil {
			return 0, fmt.Errorf("kernel: liveupdate_reboot: %w", err)
		}
		// kernel_restart_prepare() runs the reboot notifiers and
		// device_shutdown(), which sleep, and the other CPUs run tasks
		// until machine_shutdown() stops them: LUO is serialized but the
		// jump is not yet made.
		k.dom.Yield(locking.PointPhase)
	}
	if !k.kho.IsEnabled() {
		return 0, nil
	}
	if !luoOn {
		if err := k.kho.Finalize(); err != nil {
			return 0, fmt.Errorf("kernel: kho_finalize: %w", err)
		}
	}
	return k.kho.FDTAddr(), nil
}

// MarkDead ports the point of no return of kernel_kexec(): once the machine
// jumps to the next kernel this one is gone, and every syscall of its tasks
// fails with ESRCH. Its lock domain is retired and LUO drops the serialize
// rwsem the reboot kept (locking.Domain.Retire: so that nothing keeps the
// dead kernel reachable). The machine calls it after a successful
// PrepareKexec, on the task that ran the reboot.
func (k *Kernel) MarkDead() {
	k.dead.Store(true)
	k.dom.Retire()
	if k.luo != nil {
		k.luo.Retire()
	}
}

// Dead reports whether the kernel was replaced by kexec.
func (k *Kernel) Dead() bool { return k.dead.Load() }
