// Package kernel is one booted kernel: it wires the subsystems (locking,
// mm, vfs, kho, liveupdate) at boot and exposes user processes (Task) with
// their syscalls. Subsystems never import this package.
package kernel

import (
	"luomodel/kernel/bug"
	"luomodel/kernel/kho"
	"luomodel/kernel/liveupdate"
	"luomodel/kernel/locking"
	"luomodel/kernel/mm"
	"luomodel/kernel/vfs"
)

// BootParams is everything a kernel is built from: physical memory, the
// command line, and the hand-over descriptor left by the previous kernel.
// No Go object of a previous kernel is reachable from here.
type BootParams struct {
	RAM *mm.RAM
	// Cmdline is the kernel command line, e.g. "liveupdate=on kho=on".
	Cmdline string
	// Handover is the physical address of KHO's root FDT (0: cold boot).
	Handover mm.PhysAddr
	// Reporter receives WARN, lockdep and KASAN reports.
	Reporter *bug.Reporter
	// Lockdep turns on lock validation.
	Lockdep bool
}

// Kernel is one running kernel. Its subsystem pointers are set at boot and
// never change.
type Kernel struct {
	rep   *bug.Reporter
	dom   *locking.Domain
	mm    *mm.MM
	vfs   *vfs.VFS
	shmem *mm.Shmem
	kho   *kho.KHO
	luo   *liveupdate.LUO
}

// Boot builds and initialises a kernel (start_kernel()).
func Boot(p BootParams) (*Kernel, error) {
	k := &Kernel{rep: p.Reporter}
	k.dom = locking.NewDomain(locking.Options{Lockdep: p.Lockdep, Reporter: p.Reporter})
	k.mm = mm.New(p.RAM, p.Reporter, nil)
	k.vfs = vfs.New(k.dom)
	k.shmem = mm.NewShmem(k.mm, k.vfs)
	if err := k.liveupdateInit(); err != nil {
		return nil, err
	}
	if err := k.memfdLUOInit(); err != nil {
		return nil, err
	}
	return k, nil
}

// PrepareKexec ports the live-update part of kernel_kexec(): reboot
// notifiers (liveupdate_reboot()) and kho_finalize(). It returns the
// hand-over descriptor for the next kernel; on error this kernel keeps
// running.
func (k *Kernel) PrepareKexec() (mm.PhysAddr, error) { return 0, nil }
