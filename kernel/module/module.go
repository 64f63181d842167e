// Package module ports the slice of Linux's kernel/module/ that LUO's
// handler API leans on: a module's reference count and life cycle
// (try_module_get(), module_put(), init_module(), delete_module()), and the
// fate of a module's code and data once it is freed.
//
// A Module is loaded from an Image (the port's stand-in for a .ko file: a
// name and its init and exit functions) by Modules.Load, which follows
// load_module()/do_init_module(), and unloaded by Modules.Delete, which
// follows the delete_module syscall: refused with EWOULDBLOCK while
// references are held (the port has no forced unload, O_TRUNC), EBUSY while
// the module is still coming or already going. Once unloaded the module is
// gone: its code and data are freed. Every place that calls into a module
// or reads a structure it owns (a file handler's ops, an FLB's ops) asks
// Module.Check first, which files a use-after-free report with both stacks
// (where the module was freed, and where it was reached) if it is gone,
// as KASAN would on the freed module memory.
//
// # Lock order
//
// module_mutex (Modules.mutex) is a leaf for everything but a module's
// init and exit functions, which run without it, as in Linux. The
// reference count is an atomic, never waited on.
//
// # API summary
//
//	TryGet(m) / Put(m)          try_module_get() / module_put() (nil m: built in)
//	(*Module).Refcount()        module_refcount()
//	(*Module).State()           MODULE_STATE_LIVE/COMING/GOING, or StateGone
//	(*Module).Check(what)       report a use of a gone module's code or data
//	(*Modules).AddImage(img)    make a module loadable (the .ko on disk)
//	(*Modules).Load(name)       init_module()
//	(*Modules).Delete(name, f)  delete_module()
package module

import (
	"fmt"
	"sync/atomic"
	"syscall"

	"luomodel/kernel/bug"
	"luomodel/kernel/locking"
)

// State ports enum module_state, plus the state of freed module memory.
type State int32

// Module states.
const (
	// StateLive is MODULE_STATE_LIVE: normal state.
	StateLive State = iota
	// StateComing is MODULE_STATE_COMING: its init function is running.
	StateComing
	// StateGoing is MODULE_STATE_GOING: being removed (or its init
	// failed); try_module_get() fails.
	StateGoing
	// StateGone has no Linux counterpart: free_module() ran and the
	// module's code and data are freed; any use is a use-after-free.
	StateGone
)

func (s State) String() string {
	switch s {
	case StateLive:
		return "live"
	case StateComing:
		return "coming"
	case StateGoing:
		return "going"
	case StateGone:
		return "gone"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// refBase ports MODULE_REF_BASE: the reference a loaded module holds on
// itself, dropped by delete_module() to test for other users.
const refBase = 1

// Image is a loadable module: the port's stand-in for a .ko file.
type Image struct {
	// Name is the module's name (at most 55 bytes, MODULE_NAME_LEN-1).
	Name string
	// Init ports the module's init function (module_init()); an error
	// fails init_module() and the module is freed. Nil for none.
	Init func(m *Module) error
	// Exit ports the module's exit function (module_exit()); a module with
	// an Init but no Exit cannot be unloaded. Nil for none.
	Exit func(m *Module)
}

// nameLen ports MODULE_NAME_LEN (64 - sizeof(unsigned long)).
const nameLen = 56

// Module ports struct module: one loaded instance of an Image.
type Module struct {
	name string          // immutable
	img  Image           // immutable
	rep  *bug.Reporter   // immutable
	dom  *locking.Domain // immutable
	// refcnt ports atomic_t refcnt: refBase plus the users' references.
	refcnt atomic.Int64
	// state is a State; written under Modules.mutex or by the loader of a
	// coming module, read without a lock (module_is_live()).
	state atomic.Int32
	// freedAt is where free_module() ran (set once, before state becomes
	// StateGone).
	freedAt atomic.Pointer[bug.Trace]
}

// Name returns the module's name.
func (m *Module) Name() string { return m.name }

// State returns the module's state.
func (m *Module) State() State { return State(m.state.Load()) }

// Refcount ports module_refcount(): the references users hold.
func (m *Module) Refcount() int64 { return m.refcnt.Load() - refBase }

// String names the module for logs and traces.
func (m *Module) String() string {
	if m == nil {
		return "(built-in)"
	}
	return m.name
}

// Check reports a use-after-free if m is gone: what (e.g. "memfd-v1
// .preserve") names the code or data of m that was reached. A nil m is
// built into the kernel and never goes away. It returns whether m is gone.
func (m *Module) Check(what string) bool {
	if m == nil || m.State() != StateGone {
		return false
	}
	freed := ""
	if at := m.freedAt.Load(); at != nil {
		freed = "\nfreed by (delete_module):\n" + at.String()
	}
	if m.rep != nil {
		m.rep.Filef(bug.KindUAF, "use-after-free in module "+m.name,
			"%s of module %s was reached after the module was unloaded and freed%s", what, m.name, freed)
	}
	return true
}

// TryGet ports kernel/module/main.c:try_module_get(): a reference on m,
// unless m is going away (or gone, which is also a use-after-free). A nil
// m is built in: always true.
func TryGet(m *Module) bool {
	if m == nil {
		return true
	}
	if m.Check("try_module_get() of struct module") {
		return false
	}
	if State(m.state.Load()) == StateGoing {
		return false
	}
	// atomic_inc_not_zero(): zero only while delete_module() tests for
	// users.
	for {
		v := m.refcnt.Load()
		if v == 0 {
			return false
		}
		if m.refcnt.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

// Put ports kernel/module/main.c:module_put(). A put with no reference
// held is a WARN (atomic_dec_if_positive() going negative).
func Put(m *Module) {
	if m == nil {
		return
	}
	m.Check("module_put() of struct module")
	for {
		v := m.refcnt.Load()
		if v <= 0 {
			if m.rep != nil {
				m.rep.WarnOn(true, "module_put: module %s refcount underflow", m.name)
			}
			return
		}
		if m.refcnt.CompareAndSwap(v, v-1) {
			// preempt_enable(): a preemption point, where the
			// last reference's drop can meet a delete_module().
			if m.dom != nil {
				p := locking.PointPhase
				if v-1 == refBase {
					p = locking.PointModulePut
				}
				m.dom.Yield(p)
			}
			return
		}
	}
}

// tryReleaseRef ports try_release_module_ref(): drop refBase; if users
// remain, take it back unless the count reached zero meanwhile. It returns
// true if the module is still in use.
func (m *Module) tryReleaseRef() bool {
	v := m.refcnt.Add(-refBase)
	if v < 0 && m.rep != nil {
		m.rep.WarnOn(true, "module %s refcount below its base", m.name) // BUG_ON(ret < 0)
	}
	if v == 0 {
		return false
	}
	// atomic_add_unless(&refcnt, MODULE_REF_BASE, 0).
	for {
		c := m.refcnt.Load()
		if c == 0 {
			return false
		}
		if m.refcnt.CompareAndSwap(c, c+refBase) {
			return true
		}
	}
}

// Modules is one kernel's module list (kernel/module/main.c's modules and
// module_mutex) and the images it can load.
type Modules struct {
	rep *bug.Reporter   // immutable
	dom *locking.Domain // immutable
	// mutex is module_mutex.
	mutex locking.Mutex
	// list is the loaded modules (coming, live or going), in load order;
	// guarded by mutex.
	list []*Module
	// images are the loadable modules by name; guarded by mutex.
	images map[string]Image
	// observe, if not nil, is told of every state change the moment it
	// happens (SetObserver); written only while no module changes state.
	observe func(m *Module, s State)
}

// SetObserver installs fn to be told of every module state change at the
// instant it takes effect (no scheduling point in between): listed as
// coming, live,
// going (from then try_module_get() fails), and unlisted (StateGone: a
// new module of the name may load). Instrumentation with no Linux
// counterpart (the module notifier chain reports COMING/LIVE/GOING at
// other points): a checker records these atomic phases of init_module()
// and delete_module() as events of its history. fn must not block or take
// a lock. Call while no module is loading or unloading.
func (ms *Modules) SetObserver(fn func(m *Module, s State)) { ms.observe = fn }

// setState changes m's state and tells the observer. Coming, going (by
// delete_module()) and gone are set under module_mutex, live and going
// after a failed init without it, as in Linux.
func (ms *Modules) setState(m *Module, s State) {
	m.state.Store(int32(s))
	if ms.observe != nil {
		ms.observe(m, s)
	}
}

// New returns an empty module list for a kernel.
func New(dom *locking.Domain, rep *bug.Reporter) *Modules {
	ms := &Modules{rep: rep, dom: dom, images: make(map[string]Image)}
	ms.mutex.Init(dom, "module_mutex")
	return ms
}

// AddImage makes img loadable by name (installs the .ko). EINVAL for a bad
// name, EEXIST if an image of that name exists.
func (ms *Modules) AddImage(img Image) error {
	if img.Name == "" || len(img.Name) > nameLen-1 {
		return syscall.EINVAL
	}
	ms.mutex.Lock()
	defer ms.mutex.Unlock()
	if _, ok := ms.images[img.Name]; ok {
		return syscall.EEXIST
	}
	ms.images[img.Name] = img
	return nil
}

// findLocked ports find_module(): the module of that name in the list
// (any state), or nil. Requires the module mutex (asserted: upstream's
// find_module_all() runs module_assert_mutex_or_preempt()).
func (ms *Modules) findLocked(name string) *Module {
	ms.mutex.AssertHeld()
	for _, m := range ms.list {
		if m.name == name {
			return m
		}
	}
	return nil
}

// Find returns the loaded module called name (coming, live or going), or
// nil.
func (ms *Modules) Find(name string) *Module {
	ms.mutex.Lock()
	defer ms.mutex.Unlock()
	return ms.findLocked(name)
}

// Loaded returns the names of the modules in the list, in load order.
func (ms *Modules) Loaded() []string {
	ms.mutex.Lock()
	defer ms.mutex.Unlock()
	out := make([]string, 0, len(ms.list))
	for _, m := range ms.list {
		out = append(out, m.name)
	}
	return out
}

// Load ports init_module() (load_module(), add_unformed_module(),
// do_init_module()): ENOENT if no image has that name, EEXIST if a module
// of that name is loaded (or going), EBUSY if one is still coming (Linux
// waits for it to finish and then fails with EEXIST or retries); then the
// module is listed as coming, its init runs without module_mutex, and it
// goes live. If init fails the module goes away (going, unlisted, freed)
// and its error is returned.
func (ms *Modules) Load(name string) (*Module, error) {
	ms.mutex.Lock()
	img, ok := ms.images[name]
	if !ok {
		ms.mutex.Unlock()
		return nil, syscall.ENOENT
	}
	if old := ms.findLocked(name); old != nil {
		ms.mutex.Unlock()
		if old.State() == StateComing {
			return nil, syscall.EBUSY
		}
		return nil, syscall.EEXIST
	}
	m := &Module{name: name, img: img, rep: ms.rep, dom: ms.dom}
	m.refcnt.Store(refBase)
	ms.list = append(ms.list, m)
	ms.setState(m, StateComing)
	ms.mutex.Unlock()

	if img.Init != nil {
		if err := img.Init(m); err != nil {
			ms.setState(m, StateGoing)
			ms.free(m)
			return nil, err
		}
	}
	ms.setState(m, StateLive)
	return m, nil
}

// Delete ports the delete_module syscall: ENOENT if no module has that
// name, EBUSY if it is not live (coming or already going) or has an init
// but no exit, EWOULDBLOCK while anyone holds a reference (try_stop_module()
// without forced unload). Otherwise the module goes away: going (no new
// references), its exit runs without module_mutex, it is unlisted and
// freed. flags are delete_module()'s (O_NONBLOCK, O_TRUNC); the port
// accepts and ignores them, as it has no forced unload.
func (ms *Modules) Delete(name string, flags uint) error {
	_ = flags
	ms.mutex.Lock()
	m := ms.findLocked(name)
	if m == nil {
		ms.mutex.Unlock()
		return syscall.ENOENT
	}
	// Doing init or already dying?
	if m.State() != StateLive {
		ms.mutex.Unlock()
		return syscall.EBUSY
	}
	// If it has an init func, it must have an exit func to unload.
	if m.img.Init != nil && m.img.Exit == nil {
		ms.mutex.Unlock()
		return syscall.EBUSY
	}
	// try_stop_module().
	if m.tryReleaseRef() {
		ms.mutex.Unlock()
		return syscall.EWOULDBLOCK
	}
	ms.setState(m, StateGoing)
	ms.mutex.Unlock()

	// Final destruction now no one is using it.
	if m.img.Exit != nil {
		m.img.Exit(m)
	}
	ms.free(m)
	return nil
}

// free ports free_module(): unlist m and free its memory.
func (ms *Modules) free(m *Module) {
	m.freedAt.CompareAndSwap(nil, bug.CaptureTrace(1, 16))
	ms.mutex.Lock()
	for i, it := range ms.list {
		if it == m {
			ms.list = append(ms.list[:i], ms.list[i+1:]...)
			break
		}
	}
	ms.setState(m, StateGone)
	ms.mutex.Unlock()
}
