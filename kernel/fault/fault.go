// Package fault ports the shape of lib/fault-inject.c and its two best
// known users, failslab (mm/failslab.c) and fail_page_alloc
// (mm/fail_page_alloc.c): named fault sites, each of which can be armed to
// fail on the nth call, on every nth call, or with a seeded probability,
// within a budget of times, with per-site hit and fire counters.
//
// One Injector belongs to one machine: it is created with the machine,
// passed down at boot to every subsystem's Config, and outlives kexec like
// the machine's bug.Reporter, so a fault armed before a kexec can fire in
// the next kernel. There is no package-level mutable state.
//
// A site is consulted with one line where Linux's allocation or step would
// fail, e.g.
//
//	if err := k.faults.Fail(fault.KHOAllocPreserve); err != nil {
//		return 0, err
//	}
//
// Fail returns the errno the real failure gives (ENOMEM for allocations,
// EFAULT for copy_to_user, ...). When no site is armed and counting is off,
// Fail costs one atomic load; a nil *Injector never fails.
package fault

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
)

// Site names one fallible step of the port.
type Site int

// The fault sites. Each names the Linux function whose failure it stands
// for; Errno gives the error it injects.
const (
	// GetUnusedFD is fs/file.c:get_unused_fd_flags() failing to grow the
	// fd table (expand_files() allocation): ENOMEM. Reached by every
	// fd-returning call (open, dup, memfd_create, CREATE_SESSION,
	// RETRIEVE_SESSION, RETRIEVE_FD) once a free fd below the limit was
	// found; a full table is EMFILE without reaching it.
	GetUnusedFD Site = iota
	// AnonInodeGetfile is fs/anon_inodes.c:anon_inode_getfile() failing to
	// allocate the file (alloc_file_pseudo()): ENOMEM.
	AnonInodeGetfile
	// CopyToUser is copy_to_user() of an ioctl's response faulting: EFAULT.
	CopyToUser
	// KHOAllocPreserve is kho_alloc_preserve() failing to allocate: ENOMEM.
	KHOAllocPreserve
	// KHOPreserveFolio is kho_preserve_folio() failing to grow the
	// preserved-memory tracker: ENOMEM. Reached through every
	// kho_alloc_preserve() (a session's file array, a memfd_luo_ser, and
	// at boot KHO's and LUO's own blocks) and for each folio of a memfd
	// that PRESERVE_FD preserves.
	KHOPreserveFolio
	// KHOPreservePages is kho_preserve_pages() failing likewise: ENOMEM.
	// Reached through kho_preserve_vmalloc() of a memfd's folio array
	// (its chunks and pages) when PRESERVE_FD preserves a non-empty memfd.
	KHOPreservePages
	// KHOFinalize is kho_finalize() failing to build the memory map or the
	// root FDT: ENOMEM.
	KHOFinalize
	// LUOFDTSetup is luo_fdt_setup() failing to build the outgoing LUO
	// FDT (a libfdt error or an allocation, reported as EINVAL by the
	// port), before any of its steps (Attr.Nth picks which). Reached only
	// by luo_late_startup() of a booting kernel (a cold boot or the
	// kernel a kexec starts): LUO is then disabled in that kernel, with
	// no /dev/liveupdate, and hands no LUO tree to the next.
	LUOFDTSetup
	// LUOSessionAlloc is luo_session_alloc()'s kzalloc failing: ENOMEM.
	LUOSessionAlloc
	// LUOFileAlloc is luo_preserve_file() / luo_file_deserialize()
	// failing to kzalloc a struct luo_file: ENOMEM.
	LUOFileAlloc
	// HandlerPreserve is a file handler's preserve() failing; LUO consults
	// it instead of calling the handler: ENOMEM.
	HandlerPreserve
	// HandlerFreeze is a file handler's freeze() failing at reboot: EIO.
	HandlerFreeze
	// HandlerRetrieve is a file handler's retrieve() failing: ENOMEM.
	HandlerRetrieve
	// HandlerCanFinish is a file handler's can_finish() saying no, which
	// LUO turns into EBUSY.
	HandlerCanFinish
	// FolioAlloc is mm's page allocator (alloc_pages(), folio_alloc())
	// failing, as fail_page_alloc does: ENOMEM. Reached by every page
	// allocation: a memfd write into a page without a folio, filling a
	// hole at preservation, kho_alloc_preserve(), vmalloc areas, KHO's
	// tracker and memory map, and boot.
	FolioAlloc
	// FLBPreserve is an FLB's preserve() failing when the first file
	// depending on it is preserved (luo_flb_file_preserve_one()); LUO
	// consults it instead of calling the FLB: ENOMEM. Reached only by a
	// PRESERVE_FD whose handler has FLBs (the test module's).
	FLBPreserve
	// FLBRetrieve is an FLB's retrieve() failing (luo_flb_retrieve_one(),
	// from liveupdate_flb_get_incoming() or the last put): ENOMEM; the
	// retrieval can be retried. Reached only with FLBs handed over.
	FLBRetrieve

	// NumSites is the number of sites.
	NumSites
)

// siteInfo is the static description of a site.
type siteInfo struct {
	name  string
	errno syscall.Errno
}

// sites is indexed by Site. It is immutable.
var sites = [NumSites]siteInfo{
	GetUnusedFD:      {"get_unused_fd_flags", syscall.ENOMEM},
	AnonInodeGetfile: {"anon_inode_getfile", syscall.ENOMEM},
	CopyToUser:       {"copy_to_user", syscall.EFAULT},
	KHOAllocPreserve: {"kho_alloc_preserve", syscall.ENOMEM},
	KHOPreserveFolio: {"kho_preserve_folio", syscall.ENOMEM},
	KHOPreservePages: {"kho_preserve_pages", syscall.ENOMEM},
	KHOFinalize:      {"kho_finalize", syscall.ENOMEM},
	LUOFDTSetup:      {"luo_fdt_setup", syscall.EINVAL},
	LUOSessionAlloc:  {"luo_session_alloc", syscall.ENOMEM},
	LUOFileAlloc:     {"luo_file_alloc", syscall.ENOMEM},
	HandlerPreserve:  {"handler_preserve", syscall.ENOMEM},
	HandlerFreeze:    {"handler_freeze", syscall.EIO},
	HandlerRetrieve:  {"handler_retrieve", syscall.ENOMEM},
	HandlerCanFinish: {"handler_can_finish", syscall.EBUSY},
	FolioAlloc:       {"alloc_pages", syscall.ENOMEM},
	FLBPreserve:      {"flb_preserve", syscall.ENOMEM},
	FLBRetrieve:      {"flb_retrieve", syscall.ENOMEM},
}

// String is the site's name, e.g. "kho_alloc_preserve".
func (s Site) String() string {
	if s < 0 || s >= NumSites {
		return fmt.Sprintf("fault.Site(%d)", int(s))
	}
	return sites[s].name
}

// Errno is the error the site injects unless Attr.Err overrides it.
func (s Site) Errno() syscall.Errno {
	if s < 0 || s >= NumSites {
		return syscall.EINVAL
	}
	return sites[s].errno
}

// Sites returns every site, in declaration order.
func Sites() []Site {
	out := make([]Site, NumSites)
	for i := range out {
		out[i] = Site(i)
	}
	return out
}

// ParseSite returns the site named name.
func ParseSite(name string) (Site, bool) {
	for i, si := range sites {
		if si.name == name {
			return Site(i), true
		}
	}
	return 0, false
}

// Attr ports struct fault_attr: when an armed site fires. Calls are counted
// from the moment the site is armed. Nth, Interval and Probability combine
// as in should_fail(): a call fires only if every rule that is set agrees.
type Attr struct {
	// Nth fires the Nth call after arming (1: the next call) and no call
	// before it; 0 leaves it unset. (fail_nth of a task.)
	Nth uint64
	// Interval fires only every Interval-th call (interval); 0 or 1
	// leaves it unset.
	Interval uint64
	// Probability fires a call with this probability in [0, 1], drawn
	// from the injector's seeded generator (probability); 0 leaves it
	// unset, which with no other rule means "always".
	Probability float64
	// Times is the budget: the site disarms itself after firing this
	// many times (times); 0 means once, a negative value means without
	// limit.
	Times int
	// Err overrides the site's errno; 0 keeps Site.Errno.
	Err syscall.Errno
}

// siteState is one site's arming and counters.
type siteState struct {
	armed bool   // guarded by Injector.mu
	attr  Attr   // guarded by Injector.mu
	calls uint64 // guarded by Injector.mu; calls since arming
	left  int    // guarded by Injector.mu; remaining fires, <0 unlimited

	hits  atomic.Uint64 // calls seen while the injector was active
	fires atomic.Uint64 // injected failures
}

// Injector is one machine's set of fault sites. It is safe for concurrent
// use. A nil *Injector is valid: it never fails and counts nothing.
type Injector struct {
	// active is the number of armed sites, plus one while counting is
	// on: the only thing Fail reads when nothing is armed.
	active atomic.Int32
	// counting is whether SetCounting(true) is in effect; guarded by mu.
	counting bool

	// mu is a plain sync.Mutex on purpose: it guards the arming state
	// and the generator for the few instructions of a decision, no task
	// ever waits on it for long, and it must stay invisible to lockdep
	// and the controlled scheduler (fault injection is the test harness,
	// not part of the modelled kernel).
	mu    sync.Mutex
	rng   *rand.Rand // guarded by mu
	seed  uint64     // immutable
	sites [NumSites]siteState
}

// New returns an injector with nothing armed whose probabilistic decisions
// are drawn from a generator seeded with seed, so a run replays exactly.
func New(seed uint64) *Injector {
	return &Injector{seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Seed returns the seed the injector was created with.
func (i *Injector) Seed() uint64 {
	if i == nil {
		return 0
	}
	return i.seed
}

// Arm arms site s with a. Arming an armed site replaces its attributes and
// restarts its call count.
func (i *Injector) Arm(s Site, a Attr) {
	if s < 0 || s >= NumSites {
		panic(fmt.Sprintf("fault: Arm of unknown site %d", int(s)))
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	st := &i.sites[s]
	if !st.armed {
		i.active.Add(1)
	}
	st.armed, st.attr, st.calls = true, a, 0
	st.left = a.Times
	if a.Times == 0 {
		st.left = 1
	}
}

// ArmNext arms s to fail its next call, once: the common case of a
// lockstep fault action.
func (i *Injector) ArmNext(s Site) { i.Arm(s, Attr{Nth: 1}) }

// Disarm disarms s; its counters are kept.
func (i *Injector) Disarm(s Site) {
	if i == nil || s < 0 || s >= NumSites {
		return
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.disarmLocked(s)
}

// disarmLocked requires i.mu.
func (i *Injector) disarmLocked(s Site) {
	if st := &i.sites[s]; st.armed {
		st.armed = false
		i.active.Add(-1)
	}
}

// DisarmAll disarms every site.
func (i *Injector) DisarmAll() {
	if i == nil {
		return
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	for s := range NumSites {
		i.disarmLocked(s)
	}
}

// Armed reports whether s is armed (it disarms itself when its budget is
// spent).
func (i *Injector) Armed(s Site) bool {
	if i == nil || s < 0 || s >= NumSites {
		return false
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.sites[s].armed
}

// SetCounting turns hit counting on or off for sites that are not armed.
// Armed sites always count their hits.
func (i *Injector) SetCounting(on bool) {
	if i == nil {
		return
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if on != i.counting {
		i.counting = on
		if on {
			i.active.Add(1)
		} else {
			i.active.Add(-1)
		}
	}
}

// Fail ports should_fail() for site s: it returns the site's errno if the
// call is to fail, else nil. With nothing armed and counting off it costs
// one atomic load.
func (i *Injector) Fail(s Site) error {
	if i == nil || i.active.Load() == 0 {
		return nil
	}
	if e := i.decide(s); e != 0 {
		return e
	}
	return nil
}

// Should is Fail for boolean sites (can_finish saying no): it reports
// whether the call is to fail.
func (i *Injector) Should(s Site) bool {
	if i == nil || i.active.Load() == 0 {
		return false
	}
	return i.decide(s) != 0
}

// decide is the slow path of Fail: count the hit and apply the site's
// rules. It returns 0 when the call goes through.
func (i *Injector) decide(s Site) syscall.Errno {
	if s < 0 || s >= NumSites {
		return 0
	}
	st := &i.sites[s]
	i.mu.Lock()
	defer i.mu.Unlock()
	if !st.armed {
		if i.counting {
			st.hits.Add(1)
		}
		return 0
	}
	st.hits.Add(1)
	st.calls++
	a := &st.attr
	if a.Nth != 0 && st.calls < a.Nth {
		return 0
	}
	if a.Nth != 0 && a.Interval <= 1 && st.calls > a.Nth {
		// The nth call is past and no interval asks for more.
		i.disarmLocked(s)
		return 0
	}
	if a.Interval > 1 && st.calls%a.Interval != 0 {
		return 0
	}
	if a.Probability > 0 && i.rng.Float64() >= a.Probability {
		return 0
	}
	st.fires.Add(1)
	if st.left > 0 {
		st.left--
		if st.left == 0 {
			i.disarmLocked(s)
		}
	}
	if a.Err != 0 {
		return a.Err
	}
	return sites[s].errno
}

// Hits returns how many calls reached s while it was armed or counting was
// on.
func (i *Injector) Hits(s Site) uint64 {
	if i == nil || s < 0 || s >= NumSites {
		return 0
	}
	return i.sites[s].hits.Load()
}

// Fires returns how many failures s injected.
func (i *Injector) Fires(s Site) uint64 {
	if i == nil || s < 0 || s >= NumSites {
		return 0
	}
	return i.sites[s].fires.Load()
}

// SiteStats is one site's counters.
type SiteStats struct {
	Site  Site
	Name  string
	Hits  uint64
	Fires uint64
	Armed bool
}

// Stats returns the counters of every site, in declaration order.
func (i *Injector) Stats() []SiteStats {
	out := make([]SiteStats, 0, NumSites)
	for _, s := range Sites() {
		out = append(out, SiteStats{Site: s, Name: s.String(), Hits: i.Hits(s), Fires: i.Fires(s), Armed: i.Armed(s)})
	}
	return out
}

// Summary renders the sites that were hit or fired, busiest first, one per
// line: "name: fired F of H calls".
func (i *Injector) Summary() string {
	st := i.Stats()
	sort.SliceStable(st, func(a, b int) bool { return st[a].Fires > st[b].Fires })
	var out string
	for _, s := range st {
		if s.Hits == 0 && s.Fires == 0 {
			continue
		}
		out += fmt.Sprintf("%-22s fired %d of %d calls\n", s.Name+":", s.Fires, s.Hits)
	}
	return out
}
