package concurrent

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"

	"luomodel/kernel/locking"
	"luomodel/kernel/sched"
	"luomodel/proptest/summary"
)

// Critical-section coverage: for every LUO lock and every pair of
// instructions that take it, whether some schedule preempted one inside
// its critical section while the other went to take the lock (waited for
// it, or entered beside a reader). The scheduler reports the holders of a
// lock each time a task starts to take it (sched.Options.OnContend); the
// checker knows which instruction each thread is running.

// luoLocks are the LUO lock classes of the lock order (kernel/liveupdate's
// package doc), outer to inner, and module_mutex (kernel/module), which
// init_module() and delete_module() take around a module's state changes.
var luoLocks = []string{
	"luo_session_serialize_rwsem",
	"luo_session_global.incoming.rwsem",
	"luo_session_global.outgoing.rwsem",
	"luo_session.mutex",
	"luo_file.mutex",
	"luo_register_rwlock",
	"luo_flb_private.outgoing.lock",
	"luo_flb_private.incoming.lock",
	"module_mutex",
	moduleLastPut,
}

// moduleLastPut is not a lock but the test module's last reference: its
// rows pair an instruction whose calls drop it (a release that
// unpreserves or finishes a test file, a FINISH), preempted right after
// module_put() (locking.PointModulePut), with a delete_module() that runs
// then and may unload the module under the caller, which must not use
// the module's code any more (M16: the handler's get_id after LUO's last
// put). The scheduler steers there as to a lock (steeredChooser).
const moduleLastPut = "liveupdate_test.refcnt (last put)"

// flbOutgoingLock is an FLB's outgoing lock: the preserve and the
// unpreserve (a release of a new session) of a test file take each test
// FLB's.
const flbOutgoingLock = "luo_flb_private.outgoing.lock"

// takes lists, for each instruction, the LUO locks it takes, including
// those of a session's release for close. (A release that the fdput() of a
// call racing the close runs takes them in that call: the table counts
// such contentions under the call, in cells outside the goals.) The goals are every pair of
// instructions that take a lock, less the pairs unreachable proves can
// never meet on one instance of it; TestCSTakesDeclared checks that a
// campaign takes no lock this list does not declare.
var takes = map[Kind][]string{
	KCreate:     {"luo_session_serialize_rwsem", "luo_session_global.outgoing.rwsem", "luo_session.mutex"},
	KRetrieve:   {"luo_session_serialize_rwsem", "luo_session_global.incoming.rwsem", "luo_session.mutex"},
	KClose:      {"luo_session_serialize_rwsem", "luo_session_global.incoming.rwsem", "luo_session_global.outgoing.rwsem", "luo_session.mutex", "luo_file.mutex", "luo_register_rwlock", flbOutgoingLock, "luo_flb_private.incoming.lock", moduleLastPut},
	KPreserve:   {"luo_session_serialize_rwsem", "luo_session.mutex", "luo_register_rwlock", flbOutgoingLock},
	KRetrieveFD: {"luo_session_serialize_rwsem", "luo_session.mutex", "luo_file.mutex"},
	KFinish:     {"luo_session_serialize_rwsem", "luo_session.mutex", "luo_file.mutex", "luo_register_rwlock", "luo_flb_private.incoming.lock", moduleLastPut},
	KGetName:    {"luo_session_serialize_rwsem"},
	KReboot:     {"luo_session_serialize_rwsem", "luo_session_global.outgoing.rwsem", "luo_session.mutex", "luo_file.mutex", "luo_register_rwlock"},
	KFLBGet:     {"luo_flb_private.incoming.lock"},
	// The test module's load registers its handler and FLBs and takes
	// and puts their incoming objects; its unload unregisters them.
	KLoadMod:    {"luo_register_rwlock", "luo_flb_private.incoming.lock", "module_mutex"},
	KUnloadMod:  {"luo_register_rwlock", "module_mutex", moduleLastPut},
	KRegFLB:     {"luo_register_rwlock"},
	KUnregFLB:   {"luo_register_rwlock"},
	KRegister:   {"luo_register_rwlock"},
	KUnregister: {"luo_register_rwlock"},
}

// csKey is one coverage goal: lock class and an unordered pair of
// instructions (A <= B).
type csKey struct {
	Class string
	A, B  Kind
}

func pairKey(class string, a, b Kind) csKey {
	if b < a {
		a, b = b, a
	}
	return csKey{Class: class, A: a, B: b}
}

// sessionSide is the kind of session whose mutex a session instruction
// takes: the session ioctls check the session's kind before taking
// anything (EINVAL, M11), retrieve takes only listed incoming sessions'
// mutexes, and create only its new session's, before anyone can see it.
// close's release takes either kind's.
var sessionSide = map[Kind]string{
	KRetrieve: "incoming", KRetrieveFD: "incoming", KFinish: "incoming",
	KPreserve: "outgoing", KCreate: "new",
}

// serializeRwsem is the outermost LUO lock. An instruction that takes it
// takes its other LUO locks inside it (every session and file path does);
// a reboot takes it for write.
const serializeRwsem = "luo_session_serialize_rwsem"

// unreachable reports the pairs of instructions that take a lock but can
// never meet on one instance of it:
//   - two reboots (one a round);
//   - a reboot's locks inside the serialize rwsem, which it holds for
//     write, with an instruction that takes them inside it too;
//   - the luo_file mutex, which the port takes only under the file's
//     session's mutex: two instructions on one file meet there first;
//   - on a session's mutex, instructions that take it only on different
//     kinds of session (sessionSide), two creates (each its own new
//     session), and a close (the session's release,
//     which runs only once the last reference to the session's file is
//     gone) with anything but a retrieve (which finds the session in the
//     incoming list): a session ioctl holds a reference to the file for
//     its whole call, and a session is released once.
func unreachable(class string, a, b Kind) bool {
	if a == KReboot && b == KReboot {
		return true
	}
	// The last put meets an unload, not another put.
	if class == moduleLastPut {
		return (a == KUnloadMod) == (b == KUnloadMod)
	}
	if class != serializeRwsem && (a == KReboot && slices.Contains(takes[b], serializeRwsem) ||
		b == KReboot && slices.Contains(takes[a], serializeRwsem)) {
		return true
	}
	// Of two loads or unloads of the test module, one is refused under
	// module_mutex (the module is coming, going, loaded or not) before
	// it registers or unregisters anything.
	mod := func(k Kind) bool { return k == KLoadMod || k == KUnloadMod }
	if class != "module_mutex" && mod(a) && mod(b) {
		return true
	}
	// The test module's FLB (un)registrations run only while it is live,
	// with a reference on it: a load or unload holds the register rwsem
	// only while the module is coming or going (the registration is
	// refused before it takes the lock), and meets a registration's
	// reference or the live module before it takes it (EWOULDBLOCK,
	// EEXIST).
	flbReg := func(k Kind) bool { return k == KRegFLB || k == KUnregFLB }
	if class == "luo_register_rwlock" && (mod(a) && flbReg(b) || mod(b) && flbReg(a)) {
		return true
	}
	// A load's FLB objects are new: only a query of the coming module's
	// FLB meets it on their locks (a file finished by a close or finish
	// pins the module, so no load runs while it counts on an FLB).
	if class == "luo_flb_private.incoming.lock" && (a == KLoadMod) != (b == KLoadMod) && a != KFLBGet && b != KFLBGet {
		return true
	}
	switch class {
	case "luo_file.mutex":
		return true
	case "luo_session.mutex":
		if a == KClose || b == KClose {
			return a != KRetrieve && b != KRetrieve
		}
		sa, sb := sessionSide[a], sessionSide[b]
		return sa != sb || sa == "new"
	}
	return false
}

// expectedPairs are the goals: for each lock, every pair of instructions
// that take it, except those that can never meet (unreachable). Computed
// once from the constant tables (the generator asks at every check);
// callers must not modify the slice.
var expectedPairs = sync.OnceValue(func() []csKey {
	var out []csKey
	for _, class := range luoLocks {
		var ks []Kind
		for k := range numKinds {
			if slices.Contains(takes[k], class) {
				ks = append(ks, k)
			}
		}
		for i, a := range ks {
			for _, b := range ks[i:] {
				if unreachable(class, a, b) {
					continue
				}
				out = append(out, csKey{Class: class, A: a, B: b})
			}
		}
	}
	return out
})

// lockMeets is a table for the scheduler's steering, which asks at every
// scheduling point: by LUO lock (lockIndex), the instruction of the
// thread that holds it (a) and another's (b), whether b takes the lock
// and the two may meet in it.
var lockMeets = sync.OnceValue(func() [][numKinds][numKinds]bool {
	t := make([][numKinds][numKinds]bool, len(luoLocks))
	for i, class := range luoLocks {
		for a := range numKinds {
			for b := range numKinds {
				t[i][a][b] = slices.Contains(takes[b], class) && !unreachable(class, a, b)
			}
		}
	}
	return t
})

// dropsLastRef says, by instruction, whether it takes moduleLastPut.
var dropsLastRef = sync.OnceValue(func() (t [numKinds]bool) {
	for k := range numKinds {
		t[k] = slices.Contains(takes[k], moduleLastPut)
	}
	return t
})

// lockIndex maps each LUO lock class to its index in luoLocks.
var lockIndex = sync.OnceValue(func() map[string]int {
	m := make(map[string]int, len(luoLocks))
	for i, class := range luoLocks {
		m[class] = i
	}
	return m
})

// CSGoals is the number of critical-section pairs the table aims at.
func CSGoals() int { return len(expectedPairs()) }

// CSCoverage is the critical-section coverage of a campaign; safe for
// concurrent use.
type CSCoverage struct {
	mu sync.Mutex
	// hits counts the contentions seen per goal; guarded by mu.
	hits map[csKey]int64
	// seen records the acquisitions seen (Config.RecordTaken); guarded by
	// mu.
	seen map[takenKey]bool
	// steering is the generator's view of hits, computed when hits had
	// steeringAt keys; guarded by mu. Keys are only added, so it is stale
	// exactly when len(hits) moved. A round draws from it, and the rounds
	// of a check add few pairs.
	steering   *csSteering
	steeringAt int
}

// csSteering is what the generator steers by (Gen.draw): each kind's
// boost, and the goals not reached, with and without the reboot's pairs,
// as drawGoal draws them. Immutable once built.
type csSteering struct {
	boosts             [numKinds]int
	plan, planNoReboot *goalPlan
}

func (c *CSCoverage) hit(k csKey) {
	c.mu.Lock()
	c.addLocked(k, 1)
	c.mu.Unlock()
}

// addLocked adds n to k's count. Precondition: c.mu held.
func (c *CSCoverage) addLocked(k csKey, n int64) {
	if c.hits == nil {
		c.hits = map[csKey]int64{}
	}
	c.hits[k] += n
}

func (c *CSCoverage) reached(k csKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits[k] > 0
}

// Missing returns the goals not reached, as "lock: a x b".
func (c *CSCoverage) Missing() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, k := range expectedPairs() {
		if c.hits[k] == 0 {
			out = append(out, fmt.Sprintf("%s: %s x %s", k.Class, k.A, k.B))
		}
	}
	return out
}

// Merge adds o's counts to c.
func (c *CSCoverage) Merge(o *CSCoverage) {
	o.mu.Lock()
	hits := make(map[csKey]int64, len(o.hits))
	for k, v := range o.hits {
		hits[k] = v
	}
	o.mu.Unlock()
	c.mu.Lock()
	for k, v := range hits {
		c.addLocked(k, v)
	}
	c.mu.Unlock()
}

// takenKey is a LUO lock class an instruction was seen to take; release
// marks an acquisition inside a session's release (luo_session_release()),
// which runs in whichever instruction drops the file's last reference
// (close, or the fdput() of a call racing the close).
type takenKey struct {
	Kind    Kind
	Class   string
	Release bool
}

// taken records an acquisition (Config.RecordTaken).
func (c *CSCoverage) taken(k takenKey) {
	c.mu.Lock()
	if c.seen == nil {
		c.seen = map[takenKey]bool{}
	}
	c.seen[k] = true
	c.mu.Unlock()
}

// Undeclared returns the acquisitions seen (Config.RecordTaken) that the
// goals do not account for, as "kind takes class": a lock taken by an
// instruction outside a release that takes does not list for it, or
// inside a release one close does not list. Empty when takes is complete
// for what ran.
func (c *CSCoverage) Undeclared() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for k := range c.seen {
		kind := k.Kind
		if k.Release {
			kind = KClose
		}
		if !slices.Contains(takes[kind], k.Class) {
			s := fmt.Sprintf("%s takes %s", k.Kind, k.Class)
			if k.Release {
				s += " (in a session release)"
			}
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// Unseen returns the declared acquisitions (takes) never seen
// (Config.RecordTaken), as "kind takes class".
func (c *CSCoverage) Unseen() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for k := range numKinds {
		for _, class := range takes[k] {
			if !c.seen[takenKey{k, class, false}] && !(k == KClose && c.seen[takenKey{k, class, true}]) {
				out = append(out, fmt.Sprintf("%s takes %s", k, class))
			}
		}
	}
	return out
}

// inSessionRelease reports whether the calling goroutine runs a session's
// release (a stack walk: for Config.RecordTaken only).
func inSessionRelease() bool {
	pc := make([]uintptr, 64)
	frames := runtime.CallersFrames(pc[:runtime.Callers(2, pc)])
	for {
		f, more := frames.Next()
		if strings.HasSuffix(f.Function, "liveupdate.(*LUO).sessionRelease") {
			return true
		}
		if !more {
			return false
		}
	}
}

// acquired is sched.Options.OnAcquire with Config.RecordTaken.
func (c *checker) acquired(task int, class string) {
	if !isLUOLock(class) || task >= maxThreads || c.cov == nil {
		return
	}
	if k := c.cur[task].Load(); k >= 0 {
		c.cov.taken(takenKey{Kind: Kind(k), Class: class, Release: inSessionRelease()})
	}
}

// csTableName is the summary table's name.
const csTableName = "critical-sections"

// shortClass names a LUO lock class in the table's rows.
func shortClass(class string) string {
	class = strings.TrimPrefix(class, "luo_session_global.")
	class = strings.TrimPrefix(class, "luo_session_")
	class = strings.TrimPrefix(class, "luo_")
	return class
}

// Table renders the coverage as a summary table: a row per lock and
// instruction a, a column per instruction b, a cell counting the
// schedules where one of a and b was preempted inside the lock while the
// other went to take it (each pair once: b not before a); the goals are
// the table's Expected cells, "!" when never reached.
func (c *CSCoverage) Table() *summary.Table {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := summary.New(csTableName, "lock: a \\ b")
	t.Expected = map[string][]string{}
	t.Note = "critical sections: a preempted inside the lock while b goes to take it, or b inside and a taking it (\"!\": never; locks: " + strings.Join(luoLocks, ", ") + ")"
	for k := range numKinds {
		if len(takes[k]) > 0 {
			t.Lead = append(t.Lead, k.String())
		}
	}
	for _, k := range expectedPairs() {
		row := shortClass(k.Class) + ": " + k.A.String()
		if !slices.Contains(t.LeadRows, row) {
			t.LeadRows = append(t.LeadRows, row)
		}
		t.Expected[row] = append(t.Expected[row], k.B.String())
	}
	for k, n := range c.hits {
		t.Add(shortClass(k.Class)+": "+k.A.String(), k.B.String(), n)
	}
	t.Normalize()
	return t
}

// WriteTable prints the coverage table.
func (c *CSCoverage) WriteTable(w io.Writer) { c.Table().Write(w) }

// isLUOLock reports whether class is one of luoLocks.
func isLUOLock(class string) bool { _, ok := lockIndex()[class]; return ok }

// contend is sched.Options.OnContend: thread holder holds a lock of class
// that thread waiter goes to take.
func (c *checker) contend(holder, waiter int, class string) {
	if !isLUOLock(class) || holder >= maxThreads || waiter >= maxThreads {
		return
	}
	if int(c.window.Load()) == waiter && int(c.windowClass.Load()) == slices.Index(luoLocks, class) {
		c.waiterMet.Store(true)
	}
	a, b := c.cur[holder].Load(), c.cur[waiter].Load()
	if a < 0 || b < 0 {
		return
	}
	k := pairKey(class, Kind(a), Kind(b))
	for _, cov := range []*CSCoverage{c.cov, c.steer} {
		if cov != nil {
			cov.hit(k)
		}
	}
}

// steerTo is the scheduler's steering (sched.RapidSteered): a preemption
// is worth more where the current thread holds a LUO lock that another
// runnable thread's instruction takes, for a pair this check has not yet
// reached.
func (c *checker) steerTo(d *sched.Decision) bool {
	j, _ := c.steerTarget(d)
	return j > 0
}

// steerTarget returns the index in d.Candidates of the first other
// runnable thread whose instruction takes a LUO lock the current thread
// holds, for a pair this check has not reached, and that lock's class; 0
// if none. At a phase point (the long parts of LUO's operations: the
// serialization between sessions, the reboot's wait for the jump, the
// might_sleep() before a handler's or an FLB's callback) the locks the
// current instruction takes count too, held there or not, and so do pairs
// already reached (after the unreached ones): a port that drops a lock,
// or releases it early, runs that part outside the section, and the pair
// must meet there to show it, though it may have met elsewhere in the
// section already (an FLB's last put counts down under its lock, then
// runs Finish).
func (c *checker) steerTarget(d *sched.Decision) (int, string) {
	if c.steer == nil || d.Current < 0 || d.Current >= maxThreads {
		return 0, ""
	}
	// One decision asks up to three times (lastPut, the inner chooser's
	// steer, Choose), and nothing it depends on changes in between.
	if m := &c.steerMemo; m.valid && m.step == d.Step {
		return m.j, m.class
	}
	j, class := c.steerTargetUncached(d)
	c.steerMemo = steerMemo{valid: true, step: d.Step, j: j, class: class}
	return j, class
}

// steerMemo is steerTarget's answer at the scheduling point step of the
// round in progress (valid: set since the round started).
type steerMemo struct {
	valid bool
	step  int
	j     int
	class string
}

func (c *checker) steerTargetUncached(d *sched.Decision) (int, string) {
	a := c.cur[d.Current].Load()
	if a < 0 {
		return 0, ""
	}
	classes := d.Held
	phase := d.Point == locking.PointPhase
	if phase {
		classes = append(slices.Clip(classes), takes[Kind(a)]...)
	}
	fallback, fallbackClass := 0, ""
	for _, class := range classes {
		li, ok := lockIndex()[class]
		if !ok {
			continue
		}
		meets := &lockMeets()[li][a]
		for i, o := range d.Candidates[1:] {
			if o >= maxThreads {
				continue
			}
			b := c.cur[o].Load()
			if b < 0 || !meets[b] {
				continue
			}
			if !c.steer.reached(pairKey(class, Kind(a), Kind(b))) {
				return 1 + i, class
			}
			if phase && fallback == 0 {
				fallback, fallbackClass = 1+i, class
			}
		}
	}
	return fallback, fallbackClass
}

// steerWindow bounds the scheduling points a steered window lasts.
const steerWindow = 64

// steeredChooser completes the scheduler's steering: once the inner
// chooser preempts a thread inside a critical section at a steered point
// (locking.PointLockHeld), or at a phase point inside one (a long section's
// yields between its parts, a might_sleep() before a callback, the
// reboot's wait for the jump after the serialization: where most of the
// section's work is done), the CPU goes to the thread whose instruction
// takes that lock, and that thread keeps it, with no preemption drawn,
// until it goes to take the lock (of that class) another thread holds
// (contend), its
// instruction ends, it blocks, or steerWindow points pass: on its way to
// the lock it may pass many scheduling points, and a preemption drawn at
// each would mostly hand the CPU back before it gets there. Every choice
// is recorded in the run's Choices, so a failure replays as any other.
type steeredChooser struct {
	c     *checker
	inner sched.Chooser
	// published is set once the round's publication window was steered
	// into (publication).
	published bool
	// waiter is the thread the window runs (-1: no window), kind its
	// instruction then, left the points remaining.
	waiter int
	kind   int32
	left   int
}

func (c *checker) steered(inner sched.Chooser) *steeredChooser {
	c.window.Store(-1)
	c.waiterMet.Store(false)
	return &steeredChooser{c: c, inner: inner, waiter: -1}
}

// Choose implements sched.Chooser.
func (s *steeredChooser) Choose(d *sched.Decision) int {
	if s.waiter >= 0 {
		if d.Current == s.waiter && d.CurrentRunnable && s.left > 0 &&
			s.c.cur[s.waiter].Load() == s.kind && !s.c.waiterMet.Load() {
			s.left--
			return 0
		}
		s.waiter = -1
		s.c.window.Store(-1)
	}
	if j, ok := s.lastPut(d); ok {
		return j
	}
	if j, ok := s.publication(d); ok {
		return j
	}
	i := s.inner.Choose(d)
	if i > 0 && d.Point == locking.PointModulePut && d.CurrentRunnable && d.Current < maxThreads &&
		d.Candidates[i] < maxThreads && s.c.cur[d.Candidates[i]].Load() == int32(KUnloadMod) {
		if a := s.c.cur[d.Current].Load(); a >= 0 && !unreachable(moduleLastPut, Kind(a), KUnloadMod) {
			for _, cov := range []*CSCoverage{s.c.cov, s.c.steer} {
				if cov != nil {
					cov.hit(pairKey(moduleLastPut, Kind(a), KUnloadMod))
				}
			}
		}
	}
	if i > 0 && d.CurrentRunnable && (d.Point == locking.PointLockHeld || d.Point == locking.PointPhase) {
		if j, class := s.c.steerTarget(d); j > 0 {
			i = j
			s.waiter, s.left = d.Candidates[j], steerWindow
			s.kind = s.c.cur[s.waiter].Load()
			s.c.waiterMet.Store(false)
			s.c.windowClass.Store(int32(slices.Index(luoLocks, class)))
			s.c.window.Store(int32(s.waiter))
		}
	}
	return i
}

// publication steers into a publication window once a round: the
// current thread's call has installed an fd (fd_install(): the number is
// visible, checker.observeInstall put it in the call's slot) and has not
// returned, and another thread's next instruction names that slot. That
// thread runs now, on the fd, while the installing call is still inside
// the kernel: a reference the call takes after fd_install(), or state it
// sets, meets a close or a use of the fd (a get_file() after install is
// a use-after-free). Deterministic, so replays and shrinking keep it.
func (s *steeredChooser) publication(d *sched.Decision) (int, bool) {
	c := s.c
	if s.published || !d.CurrentRunnable || d.Current < 0 || d.Current >= maxThreads || c.child[d.Current] != nil {
		return 0, false
	}
	slot := int(c.published[d.Current].Load())
	if slot < 0 {
		return 0, false
	}
	for i, o := range d.Candidates[1:] {
		if c.nextUses(o, slot) {
			s.published = true
			return 1 + i, true
		}
	}
	return 0, false
}

// lastPut steers to the module's last put (moduleLastPut): while the
// current thread runs an instruction that can drop the test module's last
// reference and another runnable thread's is delete-module, for a pair this
// check has not reached, the current thread runs on undisturbed (0; at a
// lock it holds that another thread's unreached pair takes, the lock
// pairs' steering decides) until
// module_put() drops the last reference; there the CPU goes to the
// delete-module thread, in a window that lasts until its instruction ends
// (or blocks, or steerWindow points pass). A switch there to a
// delete-module thread, steered or drawn (Choose), reaches the pair. ok
// is false where it does not decide.
func (s *steeredChooser) lastPut(d *sched.Decision) (int, bool) {
	c := s.c
	if c.steer == nil || !d.CurrentRunnable || d.Current < 0 || d.Current >= maxThreads {
		return 0, false
	}
	// Inside a lock that another thread's unreached pair waits for, the
	// lock pairs' steering decides (a release's FLB outgoing lock, say,
	// before its last put).
	if d.Point == locking.PointLockHeld {
		if j, _ := c.steerTarget(d); j > 0 {
			return 0, false
		}
	}
	a := c.cur[d.Current].Load()
	if a < 0 || !dropsLastRef()[a] || Kind(a) == KUnloadMod {
		return 0, false
	}
	k := pairKey(moduleLastPut, Kind(a), KUnloadMod)
	if c.steer.reached(k) {
		return 0, false
	}
	for i, o := range d.Candidates[1:] {
		if o >= maxThreads || c.cur[o].Load() != int32(KUnloadMod) {
			continue
		}
		if d.Point != locking.PointModulePut {
			return 0, true
		}
		for _, cov := range []*CSCoverage{c.cov, c.steer} {
			if cov != nil {
				cov.hit(k)
			}
		}
		s.waiter, s.left, s.kind = o, steerWindow, int32(KUnloadMod)
		c.waiterMet.Store(false)
		c.windowClass.Store(int32(slices.Index(luoLocks, moduleLastPut)))
		c.window.Store(int32(o))
		return 1 + i, true
	}
	return 0, false
}

// plan returns the goals c has not seen contended, in the table's order,
// grouped for drawGoal; without reboot, those with a reboot are left out.
func (c *CSCoverage) plan(reboot bool) *goalPlan {
	st := c.steeringView()
	if reboot {
		return st.plan
	}
	return st.planNoReboot
}

// boosts is the generator's steering: by instruction kind, extra weight
// for one that takes a lock in a pair not yet reached.
func (c *CSCoverage) boosts() [numKinds]int { return c.steeringView().boosts }

// steeringView returns the steering view of the current hits, rebuilt
// only if a key was added since the last.
func (c *CSCoverage) steeringView() *csSteering {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case len(c.hits) == 0:
		return emptySteering()
	case c.steering != nil && c.steeringAt == len(c.hits):
		return c.steering
	}
	c.steering, c.steeringAt = c.steeringLocked(), len(c.hits)
	return c.steering
}

// emptySteering is the steering view of no hits: where every check's
// first round starts (Property steers by the check's own hits).
var emptySteering = sync.OnceValue(func() *csSteering { return new(CSCoverage).steeringLocked() })

// steeringLocked computes the steering view. Precondition: c.mu held (or
// c not shared).
func (c *CSCoverage) steeringLocked() *csSteering {
	var unreached, unreachedNoReboot []csKey
	for _, k := range expectedPairs() {
		if c.hits[k] == 0 {
			unreached = append(unreached, k)
			if k.A != KReboot && k.B != KReboot {
				unreachedNoReboot = append(unreachedNoReboot, k)
			}
		}
	}
	st := &csSteering{plan: newGoalPlan(unreached), planNoReboot: newGoalPlan(unreachedNoReboot)}
	for k := range numKinds {
		st.boosts[k] = c.boostLocked(k)
	}
	return st
}

// boostLocked is k's extra weight: 2 if it takes a lock in a pair not yet
// reached. Precondition: c.mu held.
func (c *CSCoverage) boostLocked(k Kind) int {
	for _, class := range takes[k] {
		meets := &lockMeets()[lockIndex()[class]][k]
		for o := range numKinds {
			if meets[o] && c.hits[pairKey(class, k, o)] == 0 {
				return 2
			}
		}
	}
	return 0
}
