// Package machine is a simulated computer: physical memory and the kernel
// running on it, which can replace itself by kexec with live update.
//
// Only physical memory crosses a kexec (design rule 2): Kexec asks the
// running kernel for its hand-over descriptor, poisons every page the
// hand-over does not name, kills the old kernel and boots a new one from
// the RAM, the command line and the descriptor alone.
package machine

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"luomodel/kernel"
	"luomodel/kernel/bug"
	"luomodel/kernel/fault"
	"luomodel/kernel/kho"
	"luomodel/kernel/liveupdate"
	"luomodel/kernel/mm"
)

// DefaultMemoryMiB is the memory of a Config with MemoryMiB 0.
const DefaultMemoryMiB = 256

// ErrKernelPanic is wrapped by the error of a kexec whose new kernel failed
// to boot: Linux would have panicked (a corrupt hand-over, LUO's early init
// failing). The machine is halted afterwards.
var ErrKernelPanic = errors.New("machine: kernel panic during boot")

// ErrHalted is returned by Kexec once the machine is halted.
var ErrHalted = errors.New("machine: halted")

// Config describes the machine and its kernel command line.
type Config struct {
	// LiveUpdate is "liveupdate=on" on the kernel command line.
	LiveUpdate bool
	// MemoryMiB is simulated physical memory; 0 picks the default
	// (DefaultMemoryMiB).
	MemoryMiB int
	// KHODisabled is "kho=off"; the zero Config has KHO enabled.
	KHODisabled bool
	// Report receives every report (WARN, lockdep, KASAN); nil panics.
	Report bug.Handler
	// Cmdline holds extra command-line words, appended after the ones the
	// fields above produce (so they win: the last occurrence counts).
	Cmdline string
	// NoLockdep turns lock validation off; it is on by default.
	NoLockdep bool
	// Faults is the machine's fault injector, shared by every kernel it
	// boots (like Report, it outlives kexec); nil gives the machine a
	// fresh one seeded with 0, with nothing armed.
	Faults *fault.Injector
	// NoDeadlockWatch keeps go-deadlock off the locks of every kernel the
	// machine boots (locking.Options.NoDeadlockWatch): for a machine whose
	// tasks run under a controlled scheduler.
	NoDeadlockWatch bool
	// Calls, if set, is told of every call the LUO of every kernel the
	// machine boots makes into a file handler or an FLB
	// (liveupdate.CallRecorder); like Report, it outlives kexec.
	Calls liveupdate.CallRecorder
}

// cmdline renders the kernel command line of c.
func (c Config) cmdline() string {
	words := []string{"liveupdate=off", "kho=on"}
	if c.LiveUpdate {
		words[0] = "liveupdate=on"
	}
	if c.KHODisabled {
		words[1] = "kho=off"
	}
	if c.Cmdline != "" {
		words = append(words, c.Cmdline)
	}
	return strings.Join(words, " ")
}

// Machine is the simulated computer.
type Machine struct {
	ram     *mm.RAM                 // immutable
	rep     *bug.Reporter           // immutable; outlives every kernel
	cmdline string                  // immutable
	lockdep bool                    // immutable
	noWatch bool                    // immutable: Config.NoDeadlockWatch
	faults  *fault.Injector         // immutable
	calls   liveupdate.CallRecorder // immutable

	// k is the running kernel, nil once halted. Written under mu, read
	// without it, so that Kernel never waits behind a Kexec in progress.
	k atomic.Pointer[kernel.Kernel]

	// mu serializes Kexec with itself. The machine, not a kernel task,
	// owns it, and no task ever waits on it (tasks never call Kexec), so
	// the controlled scheduler need not see it.
	mu      sync.Mutex
	halted  error       // guarded by mu; why the machine stopped
	kexecs  int         // guarded by mu; successful kexecs
	lastKHO mm.PhysAddr // guarded by mu; descriptor of the last kexec
}

// New cold-boots the first kernel.
func New(cfg Config) (*Machine, error) {
	mib := cfg.MemoryMiB
	if mib == 0 {
		mib = DefaultMemoryMiB
	}
	if mib < 0 {
		return nil, fmt.Errorf("machine: MemoryMiB %d", mib)
	}
	m := &Machine{
		ram:     mm.NewRAM(uint64(mib) << 20),
		rep:     bug.NewReporter(cfg.Report),
		cmdline: cfg.cmdline(),
		lockdep: !cfg.NoLockdep,
		noWatch: cfg.NoDeadlockWatch,
		faults:  cfg.Faults,
		calls:   cfg.Calls,
	}
	if m.faults == nil {
		m.faults = fault.New(0)
	}
	k, err := m.boot(0, nil)
	if err != nil {
		return nil, err
	}
	m.k.Store(k)
	return m, nil
}

// boot builds a kernel on the machine's RAM, handing it over the hand-over
// at handover, which populated is the parse of (nil: the kernel parses
// it).
func (m *Machine) boot(handover mm.PhysAddr, populated *kho.Handover) (*kernel.Kernel, error) {
	return kernel.Boot(kernel.BootParams{
		RAM:       m.ram,
		Cmdline:   m.cmdline,
		Handover:  handover,
		Populated: populated,
		Reporter:  m.rep,
		Lockdep:   m.lockdep,
		Faults:    m.faults,
		Calls:     m.calls,

		NoDeadlockWatch: m.noWatch,
	})
}

// Kernel returns the running kernel, nil once the machine is halted.
func (m *Machine) Kernel() *kernel.Kernel { return m.k.Load() }

// Faults returns the machine's fault injector.
func (m *Machine) Faults() *fault.Injector { return m.faults }

// RAM returns the machine's physical memory.
func (m *Machine) RAM() *mm.RAM { return m.ram }

// Reporter returns the machine's report sink, shared by all its kernels.
func (m *Machine) Reporter() *bug.Reporter { return m.rep }

// Cmdline returns the kernel command line every kernel boots with.
func (m *Machine) Cmdline() string { return m.cmdline }

// Kexecs returns how many kexecs succeeded.
func (m *Machine) Kexecs() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.kexecs
}

// LastHandover returns the hand-over descriptor of the last successful
// kexec (0 if none, or if it handed nothing over).
func (m *Machine) LastHandover() mm.PhysAddr {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastKHO
}

// Halted returns why the machine stopped, or nil while it runs.
func (m *Machine) Halted() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.halted
}

// Kexec ports reboot(LINUX_REBOOT_CMD_KEXEC) with live update (on error
// the current kernel keeps running):
//
//  1. the running kernel prepares (kernel_kexec(): liveupdate_reboot(),
//     kho_finalize()) and returns the hand-over descriptor; an error
//     aborts the kexec and is returned. This is the reboot syscall of the
//     calling goroutine (Kernel.RebootKexec): a failed one returns to user
//     space through the syscall exit checks (lockdep_sys_exit());
//  2. the old kernel dies: its tasks' syscalls fail with ESRCH;
//  3. every page of RAM that the hand-over does not keep is poisoned with
//     mm.PoisonByte: what survives is found by parsing the hand-over from
//     the RAM bytes, exactly as the next kernel will;
//  4. a new kernel boots from the RAM bytes, the command line and the
//     descriptor. If it fails (Linux would panic), the machine halts:
//     Kexec returns an error wrapping ErrKernelPanic, Kernel returns nil
//     and later Kexecs fail with ErrHalted.
func (m *Machine) Kexec() error { return m.KexecWith(nil) }

// HandoverHook sees physical memory between the two kernels of a kexec:
// the old kernel has prepared the hand-over at descriptor and is dead, the
// new one has not booted. It may rewrite RAM as a buggy or malicious
// previous kernel would have left it; what it writes is what the next
// kernel finds (pages the resulting hand-over does not keep are poisoned
// afterwards). Its error aborts nothing: KexecWith returns it after the
// boot (joined with a boot failure's), for the caller to report.
type HandoverHook func(ram *mm.RAM, descriptor mm.PhysAddr) error

// KexecWith is Kexec with hook (nil: none) run between step 2 and step
// 3: the checker's seam for hostile hand-overs.
func (m *Machine) KexecWith(hook HandoverHook) error {
	_, err := m.kexec(hook, false)
	return err
}

// KexecSave is Kexec, and also returns the hand-over the new kernel booted
// from, for Boot to start more machines from (nil with an error).
func (m *Machine) KexecSave() (*Handover, error) {
	h, err := m.kexec(nil, true)
	if err != nil {
		return nil, err
	}
	return h, nil
}

// kexec is KexecWith; with save, it returns the hand-over as the new
// kernel finds it.
func (m *Machine) kexec(hook HandoverHook, save bool) (*Handover, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.halted != nil {
		return nil, fmt.Errorf("%w: %w", ErrHalted, m.halted)
	}
	old := m.k.Load()
	handover, err := old.RebootKexec()
	if err != nil {
		return nil, err
	}
	old.MarkDead()
	var hookErr error
	if hook != nil {
		if hookErr = hook(m.ram, handover); hookErr != nil {
			hookErr = fmt.Errorf("machine: hand-over hook: %w", hookErr)
		}
	}
	populated, keep := m.scrub(handover)
	var h *Handover
	if save {
		h = &Handover{ram: m.ram.Size(), cmdline: m.cmdline, descriptor: handover, populated: populated, kexecs: m.kexecs + 1}
		// Whole frames: Scrub keeps a partly covered frame whole.
		frames := make([]mm.Range, len(keep))
		for i, r := range keep {
			start := r.Start &^ (mm.PageSize - 1)
			end := (uint64(r.Start) + r.Size + mm.PageSize - 1) &^ (mm.PageSize - 1)
			frames[i] = mm.Range{Start: start, Size: min(end, m.ram.Size()) - uint64(start)}
		}
		if h.img, err = m.ram.Save(frames); err != nil {
			return nil, err
		}
	}
	k, err := m.boot(handover, populated)
	if err != nil {
		m.k.Store(nil)
		m.halted = fmt.Errorf("%w: %w", ErrKernelPanic, err)
		return nil, errors.Join(m.halted, hookErr)
	}
	m.k.Store(k)
	m.kexecs++
	m.lastKHO = handover
	return h, hookErr
}

// scrub poisons every page the hand-over at descriptor does not keep, and
// returns its parse and the ranges it keeps. A hand-over that does not
// parse keeps nothing and returns no parse: the boot that follows parses
// the scrubbed memory itself and fails on it.
func (m *Machine) scrub(handover mm.PhysAddr) (*kho.Handover, []mm.Range) {
	var populated *kho.Handover
	var keep []mm.Range
	if handover != 0 {
		if h, err := kho.Populate(m.ram, handover); err == nil {
			populated, keep = h, h.Keep()
		}
	}
	m.ram.Scrub(keep)
	return populated, keep
}

// Handover is what a kexec left in RAM between the two kernels: the
// frames the hand-over keeps (every other frame is poison) and its
// descriptor. Boot starts any number of machines from it, each like the
// machine that saved it right after that kexec, so that a harness does a
// sequential setup once and starts every check from there. Immutable.
type Handover struct {
	ram        uint64 // bytes of RAM of the saving machine
	cmdline    string
	img        *mm.RAMImage
	descriptor mm.PhysAddr
	populated  *kho.Handover // descriptor's parse; nil if it did not parse
	kexecs     int           // the saving machine's Kexecs after the kexec
}

// Boot starts a machine from h: its RAM holds h's frames and poison
// elsewhere, and its kernel boots from h's descriptor, as after the kexec
// that saved h. cfg must give the saving machine's memory and command
// line; its report handler, fault injector and deadlock watch are the new
// machine's own. A boot failure (the kexec's boot failed too) is an error
// wrapping ErrKernelPanic.
func Boot(cfg Config, h *Handover) (*Machine, error) {
	mib := cfg.MemoryMiB
	if mib == 0 {
		mib = DefaultMemoryMiB
	}
	if mib < 0 || uint64(mib)<<20 != h.ram || cfg.cmdline() != h.cmdline {
		return nil, fmt.Errorf("machine: boot of a hand-over saved by another machine (%d bytes of RAM, %q)", h.ram, h.cmdline)
	}
	m := &Machine{
		ram:     mm.NewRAM(h.ram),
		rep:     bug.NewReporter(cfg.Report),
		cmdline: h.cmdline,
		lockdep: !cfg.NoLockdep,
		noWatch: cfg.NoDeadlockWatch,
		faults:  cfg.Faults,
		kexecs:  h.kexecs,
		lastKHO: h.descriptor,
	}
	if m.faults == nil {
		m.faults = fault.New(0)
	}
	m.ram.Restore(h.img)
	k, err := m.boot(h.descriptor, h.populated)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKernelPanic, err)
	}
	m.k.Store(k)
	return m, nil
}
