package liveupdatetest

import (
	"sync"
	"syscall"

	"luomodel/kernel/bug"
	"luomodel/kernel/kho"
	"luomodel/kernel/liveupdate"
	"luomodel/kernel/locking"
	"luomodel/kernel/mm"
	"luomodel/kernel/module"
	"luomodel/kernel/vfs"
)

// Driver is one kernel's test driver: the built-in device
// /dev/liveupdate_test (DeviceInit), the loadable Image of the module
// holding the handler and FLBs, the instance loaded from it (if any), and
// the test controls, which outlive a reload of the module within the
// kernel (not a kexec: the next kernel has its own Driver).
type Driver struct {
	luo *liveupdate.LUO // immutable
	dom *locking.Domain // immutable
	vfs *vfs.VFS        // immutable
	mm  *mm.MM          // immutable
	kho *kho.KHO        // immutable
	rep *bug.Reporter   // immutable
	// misc and fops are the built-in device and its file operations;
	// immutable once DeviceInit returns.
	misc vfs.MiscDevice
	fops fileOps

	// mu is a leaf lock: it guards the fields below for the few
	// instructions of a record or a decision, never across a callback
	// or a wait, like the log buffer of LUO.
	mu sync.Mutex
	// inst is the loaded module instance, nil when not loaded.
	inst *instance
	// seq numbers the test files of this kernel (from 1, across reloads).
	seq uint64
	// paID remembers the id of each incoming file by its serialized
	// data, read at the first callback that needs it: a retrieve may
	// consume the page (then fail), and can_finish and finish must
	// still name the file.
	paID map[uint64]uint64
	// restored are the serialized pages a retrieve restored: finish
	// frees the others (a retrieve that failed before restoring, or
	// none).
	restored map[uint64]bool
	// live are the ids of the test files that exist (open, preserved or
	// retrieved): get_id keys LUO's double-preservation map, so a
	// retrieved file must not take the id of another (a corrupt
	// hand-over can say so).
	live map[uint64]bool
	// trace is every callback received, in order.
	trace Trace
	// directives are the armed failures, in arming order.
	directives []*directive
	// refuse are the files whose can_finish says no.
	refuse map[uint64]bool
	// flbState is what each FLB's next preserve saves.
	flbState [NumFLBs][]byte
}

// Config is what a booting kernel gives the test module.
type Config struct {
	LUO      *liveupdate.LUO
	Domain   *locking.Domain
	VFS      *vfs.VFS
	MM       *mm.MM
	KHO      *kho.KHO
	Reporter *bug.Reporter
}

// New returns a kernel's test module driver, not loaded.
func New(cfg Config) *Driver {
	d := &Driver{luo: cfg.LUO, dom: cfg.Domain, vfs: cfg.VFS, mm: cfg.MM, kho: cfg.KHO, rep: cfg.Reporter, refuse: map[uint64]bool{}, live: map[uint64]bool{}}
	for i := range d.flbState {
		d.flbState[i] = []byte(FLBCompatible(i))
	}
	d.fops = fileOps{d: d}
	d.misc = vfs.MiscDevice{Name: DeviceName, Fops: &d.fops, Open: d.open}
	return d
}

// DeviceInit registers /dev/liveupdate_test, built into the kernel: the
// test files' code is not the module's, so an open, preserved or retrieved
// test file does not pin the module whose handler preserves it; only LUO's
// per-file try_module_get() of the handler's owner does. This is upstream
// vfio's split (the device files' fops belong to vfio, the LUO handler to
// vfio_pci): the shape in which LUO's own pin is the handler module's only
// protection while LUO calls it.
func (d *Driver) DeviceInit() error { return d.vfs.MiscRegister(&d.misc) }

// Image is the loadable module (install it with module.Modules.AddImage,
// then load it with init_module).
func (d *Driver) Image() module.Image {
	return module.Image{Name: ModuleName, Init: d.moduleInit, Exit: d.moduleExit}
}

// Loaded reports whether the module is loaded (live, coming or going).
func (d *Driver) Loaded() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.inst != nil
}

// Module returns the loaded module, nil if none.
func (d *Driver) Module() *module.Module {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inst == nil {
		return nil
	}
	return d.inst.mod
}

// FileHandler returns the loaded instance's file handler, nil if none.
func (d *Driver) FileHandler() *liveupdate.FileHandler {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inst == nil {
		return nil
	}
	return &d.inst.fh
}

// FLB returns the loaded instance's FLB i, nil if none.
func (d *Driver) FLB(i int) *liveupdate.FLB {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inst == nil || i < 0 || i >= NumFLBs {
		return nil
	}
	return d.inst.flbs[i]
}

// Trace returns a copy of the callbacks received so far.
func (d *Driver) Trace() Trace {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append(Trace(nil), d.trace...)
}

// TakeTrace returns the callbacks received since the last TakeTrace and
// forgets them.
func (d *Driver) TakeTrace() Trace {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.trace
	d.trace = nil
	return t
}

// record appends one call.
func (d *Driver) record(c Call) {
	d.mu.Lock()
	d.trace = append(d.trace, c)
	d.mu.Unlock()
}

// SetFLBState sets what FLB i's next preserve saves (at most FLBStateMax
// bytes; EINVAL otherwise). The default is the FLB's compatible string.
func (d *Driver) SetFLBState(i int, state []byte) error {
	if i < 0 || i >= NumFLBs || len(state) > FLBStateMax {
		return syscall.EINVAL
	}
	d.mu.Lock()
	d.flbState[i] = append([]byte(nil), state...)
	d.mu.Unlock()
	return nil
}

// RefuseCanFinish makes can_finish of the test file id answer false (on)
// or true again (off).
func (d *Driver) RefuseCanFinish(id uint64, on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if on {
		d.refuse[id] = true
	} else {
		delete(d.refuse, id)
	}
}

// Directive makes the Nth call of a callback fail.
type Directive struct {
	Op Op
	// File restricts the directive to one test file's calls (0: any).
	// Ignored for FLB callbacks.
	File uint64
	// FLB restricts an FLB directive to one FLB (-1: any).
	FLB int
	// Nth is which matching call fails, counted from arming (1: the
	// next one).
	Nth uint64
	// Errno is the error returned by a callback that returns an int; a
	// bool callback (can_preserve, can_finish) answers false instead.
	Errno syscall.Errno
}

type directive struct {
	Directive
	calls uint64 // matching calls seen since arming
}

// FailNth arms dir. EINVAL for a callback that cannot fail (void ones,
// get_id), Nth 0, an FLB index out of range, or a missing Errno for an
// int callback.
func (d *Driver) FailNth(dir Directive) error {
	if dir.Op < 0 || dir.Op >= NumOps || dir.Nth == 0 {
		return syscall.EINVAL
	}
	switch dir.Op.Kind() {
	case KindVoid, KindID:
		return syscall.EINVAL
	case KindErrno:
		if dir.Errno == 0 {
			return syscall.EINVAL
		}
	}
	if dir.Op.IsFLB() && (dir.FLB < -1 || dir.FLB >= NumFLBs) {
		return syscall.EINVAL
	}
	d.mu.Lock()
	d.directives = append(d.directives, &directive{Directive: dir})
	d.mu.Unlock()
	return nil
}

// ClearDirectives disarms every directive and refusal.
func (d *Driver) ClearDirectives() {
	d.mu.Lock()
	d.directives = nil
	d.refuse = map[uint64]bool{}
	d.mu.Unlock()
}

// Directives returns the armed directives.
func (d *Driver) Directives() []Directive {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Directive, len(d.directives))
	for i, dir := range d.directives {
		out[i] = dir.Directive
	}
	return out
}

// decide counts a call of op on file (or flb) against the directives and
// returns the errno of the one that fires (0 if none). A fired directive
// is disarmed. Only the first matching directive in arming order counts
// the call.
func (d *Driver) decide(op Op, file uint64, flb int) syscall.Errno {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, dir := range d.directives {
		if dir.Op != op {
			continue
		}
		if op.IsFLB() {
			if dir.FLB != -1 && dir.FLB != flb {
				continue
			}
		} else if dir.File != 0 && dir.File != file {
			continue
		}
		dir.calls++
		if dir.calls < dir.Nth {
			return 0
		}
		d.directives = append(d.directives[:i:i], d.directives[i+1:]...)
		if dir.Errno == 0 {
			return syscall.EPERM // a bool callback's "no"
		}
		return dir.Errno
	}
	return 0
}

// refused reports whether can_finish of file is refused.
func (d *Driver) refused(file uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.refuse[file]
}

// nextID is the id of a new test file: the kernel's live-update number
// in the high half, a per-kernel sequence number in the low half, so ids
// never repeat across kexec.
func (d *Driver) nextID() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		d.seq++
		id := d.seq
		if d.luo != nil {
			id |= d.luo.LiveupdateNumber() << 32
		}
		if !d.live[id] {
			d.live[id] = true
			return id
		}
	}
}

// claimID records that a file with id exists; false if one does already.
func (d *Driver) claimID(id uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.live[id] {
		return false
	}
	d.live[id] = true
	return true
}

// releaseID forgets a file's id at its release.
func (d *Driver) releaseID(id uint64) {
	d.mu.Lock()
	delete(d.live, id)
	d.mu.Unlock()
}
