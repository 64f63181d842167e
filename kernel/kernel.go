// Package kernel is one booted kernel: it wires the subsystems (locking,
// mm, vfs, kho, liveupdate) at boot and exposes user processes (Task) with
// their syscalls. Subsystems never import this package.
package kernel

import (
	"fmt"
	"sync/atomic"

	"luomodel/kernel/bug"
	"luomodel/kernel/fault"
	"luomodel/kernel/kho"
	"luomodel/kernel/lib/liveupdatetest"
	"luomodel/kernel/liveupdate"
	"luomodel/kernel/locking"
	"luomodel/kernel/mm"
	"luomodel/kernel/module"
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
	// Populated, if set, is what kho.Populate returned for Handover on
	// this RAM: the machine parses the hand-over to scrub around it, and
	// every page Populate reads survives the scrub, so the kernel's own
	// kho_populate() would find the same. nil: Boot parses it.
	Populated *kho.Handover
	// Reporter receives WARN, lockdep and KASAN reports.
	Reporter *bug.Reporter
	// Lockdep turns on lock validation.
	Lockdep bool
	// NoDeadlockWatch keeps go-deadlock off the kernel's locks
	// (locking.Options.NoDeadlockWatch).
	NoDeadlockWatch bool
	// Faults is the machine's fault injector, handed to every subsystem;
	// nil for none.
	Faults *fault.Injector
	// Calls, if set, records LUO's calls into handlers and FLBs.
	Calls liveupdate.CallRecorder
}

// Kernel is one running kernel. Its subsystem pointers are set at boot and
// never change.
type Kernel struct {
	rep     *bug.Reporter
	faults  *fault.Injector         // the machine's; nil for none
	calls   liveupdate.CallRecorder // the machine's; nil for none
	cmdline Cmdline
	dom     *locking.Domain
	mm      *mm.MM
	vfs     *vfs.VFS
	shmem   *mm.Shmem
	kho     *kho.KHO
	luo     *liveupdate.LUO
	modules *module.Modules
	ltest   *liveupdatetest.Driver
	// memfdFH is the memfd file handler memfd_luo_init() registers (nil
	// without LUO); set at boot.
	memfdFH *liveupdate.FileHandler
	// dead is set once the kernel is replaced by kexec (MarkDead).
	dead atomic.Bool
}

// Boot builds and initialises a kernel (start_kernel()) from p alone. The
// order follows Linux: command line (parse_early_param()), KHO's early
// hand-over parsing (kho_populate() / kho_memory_init(), before the page
// allocator exists), the page allocator with the preserved memory reserved
// (mm_core_init()), vfs and shmem, kho_init() (fs_initcall), LUO's
// initcalls, then the memfd handler's late_initcall.
//
// An error is a boot failure: a corrupt hand-over, or LUO's early init
// failing, which panics in Linux (luo_restore_fail()).
func Boot(p BootParams) (*Kernel, error) {
	k := &Kernel{rep: p.Reporter, faults: p.Faults, calls: p.Calls, cmdline: ParseCmdline(p.Cmdline)}
	k.dom = locking.NewDomain(locking.Options{Lockdep: p.Lockdep, Reporter: p.Reporter, NoDeadlockWatch: p.NoDeadlockWatch})

	var in *kho.Handover
	if k.cmdline.KHO && p.Handover != 0 {
		in = p.Populated
		if in == nil {
			h, err := kho.Populate(p.RAM, p.Handover)
			if err != nil {
				return nil, fmt.Errorf("kernel: early KHO: %w", err)
			}
			in = h
		}
	}
	k.mm = mm.NewWithFaults(p.RAM, p.Reporter, in.Reserved(), k.faults)
	k.vfs = vfs.NewWithFaults(k.dom, k.faults)
	k.shmem = mm.NewShmem(k.mm, k.vfs)
	k.modules = module.New(k.dom, p.Reporter)

	kh, err := kho.New(kho.Config{
		Enabled:  k.cmdline.KHO,
		MM:       k.mm,
		Domain:   k.dom,
		Reporter: p.Reporter,
		Incoming: in,
		Faults:   k.faults,
	})
	if err != nil {
		return nil, fmt.Errorf("kernel: kho_init: %w", err)
	}
	k.kho = kh

	if err := k.liveupdateInit(); err != nil {
		return nil, fmt.Errorf("kernel: liveupdate: %w", err)
	}
	if err := k.memfdLUOInit(); err != nil {
		return nil, fmt.Errorf("kernel: memfd_luo: %w", err)
	}
	if err := k.liveupdateTestInit(); err != nil {
		return nil, fmt.Errorf("kernel: liveupdate_test: %w", err)
	}
	return k, nil
}

// Cmdline returns the parsed command line this kernel booted with.
func (k *Kernel) Cmdline() Cmdline { return k.cmdline }

// Reporter returns the kernel's report sink.
func (k *Kernel) Reporter() *bug.Reporter { return k.rep }

// Faults returns the machine's fault injector the kernel booted with, nil
// if none.
func (k *Kernel) Faults() *fault.Injector { return k.faults }

// Domain returns the kernel's locking domain.
func (k *Kernel) Domain() *locking.Domain { return k.dom }

// MM returns the kernel's page allocator.
func (k *Kernel) MM() *mm.MM { return k.mm }

// KHO returns the kernel's Kexec HandOver state.
func (k *Kernel) KHO() *kho.KHO { return k.kho }

// LUO returns the kernel's Live Update Orchestrator, nil before its init.
func (k *Kernel) LUO() *liveupdate.LUO { return k.luo }

// Modules returns the kernel's module list and loadable module images.
func (k *Kernel) Modules() *module.Modules { return k.modules }
