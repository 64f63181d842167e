// Package kernel is one booted kernel: it wires the subsystems (locking,
// mm, vfs, kho, liveupdate) at boot and exposes user processes (Task) with
// their syscalls. Subsystems never import this package.
package kernel

import (
	"luomodel/kernel/bug"
	"luomodel/kernel/mm"
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

// Kernel is one running kernel.
type Kernel struct{}

// Boot builds and initialises a kernel (start_kernel()).
func Boot(p BootParams) (*Kernel, error) { return &Kernel{}, nil }

// NewTask returns a user process with an empty fd table.
func (k *Kernel) NewTask() *Task { return &Task{k: k} }

// PrepareKexec ports the live-update part of kernel_kexec(): reboot
// notifiers (liveupdate_reboot()) and kho_finalize(). It returns the
// hand-over descriptor for the next kernel; on error this kernel keeps
// running.
func (k *Kernel) PrepareKexec() (mm.PhysAddr, error) { return 0, nil }
