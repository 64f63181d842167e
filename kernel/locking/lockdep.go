package locking

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"luomodel/kernel/bug"
)

// MaxSubclasses ports MAX_LOCKDEP_SUBCLASSES: a nesting subclass passed to
// LockNested, DownReadNested or DownWriteNested is in [0, MaxSubclasses).
const MaxSubclasses = 8

const (
	depStackDepth = 64 // PCs kept per dependency (save_trace())
	// depsChunk and tracesChunk size the storage lockdep takes for
	// dependencies and their stacks at once: a boot's worth or so.
	depsChunk   = 32
	tracesChunk = 512
	taskShards  = 8 // shards of the task table, a power of two: a kernel runs a few dozen tasks at most
	// sweepEvery is how many times a shard's tasks drop their last lock
	// between two sweeps of the shard's idle tasks.
	sweepEvery = 64
	// familiesHint sizes a domain's family map for the lock names a
	// kernel registers (a few dozen), so that it does not grow at boot.
	familiesHint = 32
)

// lockKind is the type of lock a lockdepMap belongs to, for messages.
type lockKind uint8

const (
	kindMutex lockKind = iota
	kindRWSem
)

// lockMode is how a task holds (or wants) a lock.
type lockMode uint8

const (
	// modeWrite is exclusive: mutex_lock(), down_write().
	modeWrite lockMode = iota
	// modeRead is shared: down_read(). Readers of an rw_semaphore are
	// non-recursive (held_lock.read == 1): a waiting writer blocks new
	// readers, so for dependencies a read behaves like a write.
	modeRead
	// modeAny matches either mode (lockdep_assert_held()).
	modeAny
)

// lockdepMap ports struct lockdep_map, with the magic word of
// CONFIG_DEBUG_MUTEXES / CONFIG_DEBUG_RWSEMS: the identity a lock instance
// carries for lockdep, the scheduler and the lock debugging checks
// (lock_debug.go). All fields but early are written by Init and read-only
// afterwards (Init happens before the lock is shared, as mutex_init() does).
type lockdepMap struct {
	// magic ports mutex.magic / rw_semaphore.magic: Init points it at the
	// map itself, whose address is the lock's. nil: never Init'ed; another
	// address: a copy of an Init'ed lock. Either way the lock works as a
	// plain lock, outside lockdep and the scheduler, and the use is
	// reported (lockdepMap.uninitialized).
	magic *lockdepMap
	dom   *Domain     // nil: Init'ed outside any domain; invisible to lockdep and the scheduler
	fam   *lockFamily // nil unless dom has lockdep
	name  string      // class name given to Init
	kind  lockKind
	// early is the first use of the lock before Init, kept for the Init
	// that follows to report: before Init the lock has no domain to report
	// to. Set once (CompareAndSwap from nil); taken by Init.
	early atomic.Pointer[earlyUse]
}

// init ports lockdep_init_map() and debug_mutex_init()'s `lock->magic =
// lock`.
func (m *lockdepMap) init(d *Domain, name string, kind lockKind) {
	if name == "" {
		name = "(unnamed)"
	}
	m.dom, m.name, m.kind, m.fam = d, name, kind, nil
	if d != nil && d.ld != nil {
		m.fam = d.ld.family(name)
	}
	m.magic = m
}

// domain is the domain of an Init'ed lock (nil when Init'ed outside any
// domain): what every lock operation starts with. A lock whose magic is
// not its own address is reported (op names the operation) and is nil
// here too, so that it works as a plain lock.
func (m *lockdepMap) domain(op string) *Domain {
	if m.magic != m {
		m.uninitialized(op, 2)
		return nil
	}
	return m.dom
}

// lockFamily holds the classes of one class name, one per subclass.
type lockFamily struct {
	name string // immutable
	// sub ports lockdep_map.class_cache[]: created lazily under
	// lockdep.graphMu, read lock-free.
	sub [MaxSubclasses]atomic.Pointer[lockClass]
	// class0 is the storage of subclass 0's class, allocated with the
	// family: most names are only ever used at subclass 0. Written once
	// under lockdep.graphMu, before sub[0] publishes it.
	class0 lockClass
}

// lockClass ports struct lock_class: a (name, subclass) pair of a domain.
type lockClass struct {
	name string // immutable
	sub  int    // immutable
	id   int    // immutable: registration order, for stable report keys
	// after ports lock_class.locks_after: the first of the dependencies
	// this -> next, in the order they were recorded, linked by
	// lockDep.sibling. Appended under lockdep.graphMu, walked lock-free
	// (list_add_tail_rcu(), list_for_each_entry_rcu()).
	after atomic.Pointer[lockDep]
	// afterTail is the last entry of after; guarded by lockdep.graphMu.
	afterTail *lockDep
	// depGen ports lock_class.dep_gen_id: the search (lockdep.depGen) that
	// last reached this class; guarded by lockdep.graphMu.
	depGen uint64
}

// String renders the class as lockdep does: name, and "/subclass" if any.
func (c *lockClass) String() string {
	if c.sub == 0 {
		return c.name
	}
	return fmt.Sprintf("%s/%d", c.name, c.sub)
}

// lockDep ports struct lock_list: the dependency prev -> next, recorded the
// first time a task acquired next while holding prev. The fields but
// sibling and parent are immutable.
type lockDep struct {
	prev, next *lockClass
	task       int64      // the task that recorded it
	prevIP     acquireIPs // where that task had acquired prev
	stack      []uintptr  // where it acquired next (save_trace())
	// sibling is the next entry of prev.after (lock_list.entry): stored
	// once under lockdep.graphMu, loaded lock-free.
	sibling atomic.Pointer[lockDep]
	// parent ports lock_list.parent: the dependency through which the
	// last search reached prev (nil: prev was its source); guarded by
	// lockdep.graphMu.
	parent *lockDep
}

// heldLock ports struct held_lock: one entry of a task's held-lock stack.
type heldLock struct {
	inst    *lockdepMap // the lock instance (held_lock.instance)
	class   *lockClass
	mode    lockMode
	trylock bool
	ip      acquireIPs // where it was acquired (held_lock.acquire_ip)
}

func (h *heldLock) pcs() []uintptr { return h.ip.pcs() }

// ldTask is the lockdep part of task_struct: the held-lock stack of one
// task (goroutine) in one domain.
type ldTask struct {
	id int64 // immutable
	// held is guarded by the shard's mu for writes and for readers other
	// than the owner; only the owning task writes it, so the owner may read
	// it without the lock.
	held []heldLock
	// recent is set when the task pushes a lock and cleared by a sweep;
	// guarded by the shard's mu.
	recent bool
	// heldBuf is held's first storage, enough for the usual nesting depth
	// (held_locks[] is a fixed array in task_struct).
	heldBuf [4]heldLock
}

// taskShard is one shard of a domain's task table.
type taskShard struct {
	mu sync.Mutex
	// tasks maps a task id to its held-lock stack; guarded by mu. A task
	// that drops its last lock stays (idle, with an empty stack) so that
	// the next acquisition of a busy task neither inserts nor deletes; a
	// sweep every sweepEvery emptyings drops the tasks that stayed idle
	// since the previous sweep, so the table does not grow with the number
	// of goroutines ever run. nil until the shard's first task.
	tasks   map[int64]*ldTask
	emptied int      // guarded by mu: stacks emptied since the last sweep
	_       [40]byte // keep shards on separate cache lines
}

// reportKey identifies one distinct problem, so that each is reported once.
type reportKey struct {
	what string
	a    int
	s    string
}

// lockdep is a domain's lock validator (kernel/locking/lockdep.c). Unlike
// Linux it has no global state: everything hangs off the Domain.
type lockdep struct {
	rep *bug.Reporter // immutable

	shards [taskShards]taskShard

	// graphMu ports lockdep_lock / graph_lock(): it serializes class
	// registration and every change to the dependency graph. It is a plain
	// sync.Mutex so the validator never recurses into itself, and no task
	// waits on it for long. Acquisitions that add no new class or
	// dependency never take it.
	graphMu sync.Mutex
	// familiesMu guards families, which maps a class name to its family.
	// A plain map: a boot registers a few dozen names and Inits a few
	// hundred locks, so an uncontended lock per Init costs less than a
	// lock-free map's nodes per name.
	familiesMu sync.Mutex
	families   map[string]*lockFamily
	// spare is the storage of the next families registered, allocated
	// familiesHint at a time (a kernel registers a few dozen names at
	// boot, and one allocation each was a fortieth of a concurrent
	// check's); guarded by familiesMu.
	spare []lockFamily
	// deps and traces are the storage of the next dependencies and their
	// stacks, as Linux's list_entries[] and stack_trace[] arrays are
	// (alloc_list_entry(), save_trace()): a fresh kernel records a few
	// dozen dependencies, which cost three allocations each. Guarded by
	// graphMu.
	deps     []lockDep
	traces   []uintptr
	nclasses int // guarded by graphMu
	// depGen ports lockdep_dependency_gen_id: the number of the last graph
	// search, which marks the classes it reached (lockClass.depGen), so a
	// search needs no set of its own. Guarded by graphMu.
	depGen uint64
	// bfsQueue ports lock_cq, the search's queue, kept between searches
	// for its storage; guarded by graphMu.
	bfsQueue []*lockDep

	// reported is the domain's record of problems already reported.
	reported *reportOnce // immutable
}

func newLockdep(rep *bug.Reporter, reported *reportOnce) *lockdep {
	return &lockdep{
		rep:      rep,
		reported: reported,
		families: make(map[string]*lockFamily, familiesHint),
	}
}

// family returns the class family of name, registering it if needed.
func (l *lockdep) family(name string) *lockFamily {
	l.familiesMu.Lock()
	defer l.familiesMu.Unlock()
	f := l.families[name]
	if f == nil {
		if len(l.spare) == 0 {
			l.spare = make([]lockFamily, familiesHint)
		}
		f, l.spare = &l.spare[0], l.spare[1:]
		f.name = name
		l.families[name] = f
	}
	return f
}

// class ports register_lock_class(): the class of subclass sub of m.
func (l *lockdep) class(m *lockdepMap, sub int) *lockClass {
	if c := m.fam.sub[sub].Load(); c != nil {
		return c
	}
	l.graphMu.Lock()
	defer l.graphMu.Unlock()
	c := m.fam.sub[sub].Load()
	if c == nil {
		l.nclasses++
		if sub == 0 {
			c = &m.fam.class0
		} else {
			c = new(lockClass)
		}
		c.name, c.sub, c.id = m.fam.name, sub, l.nclasses
		m.fam.sub[sub].Store(c)
	}
	return c
}

// once reports whether k is seen for the first time, and records it.
func (l *lockdep) once(k reportKey) bool { return l.reported.first(k) }

// reportOnce is a domain's record of the problems it has reported, so that
// each distinct one (class, cycle, ...) is reported once, as lockdep and
// DEBUG_LOCKS_WARN_ON() do.
type reportOnce struct {
	mu   sync.Mutex
	seen map[reportKey]struct{} // guarded by mu; allocated on first use
}

// first reports whether k is seen for the first time, and records it.
func (o *reportOnce) first(k reportKey) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.seen[k]; ok {
		return false
	}
	if o.seen == nil {
		o.seen = make(map[reportKey]struct{})
	}
	o.seen[k] = struct{}{}
	return true
}

func (l *lockdep) shard(id int64) *taskShard {
	return &l.shards[uint64(id)&(taskShards-1)]
}

// task returns the lockdep state of task id, nil if it has none (an idle
// task may have one with an empty stack).
func (l *lockdep) task(id int64) *ldTask {
	sh := l.shard(id)
	sh.mu.Lock()
	t := sh.tasks[id]
	sh.mu.Unlock()
	return t
}

// acquire ports lock_acquire() / __lock_acquire(): it validates that the
// current task may take m (subclass sub, in mode; try for a successful
// trylock) and pushes m on the task's held-lock stack. As in Linux it runs
// before a blocking acquisition, so a lock that would block forever is
// reported before it blocks; if the report handler panics, nothing stays
// recorded and the lock is not taken.
//
// The common case, a class order seen before, costs the task table's shard
// lock once, a few return addresses off the frame-pointer chain, and
// lock-free lookups of the class and the dependency; full stacks are taken
// only for a new dependency or a report.
//
// Functions here that take skip are told how many frames of this package
// sit between them and the lock's caller, whose stack the reports show.
func (l *lockdep) acquire(m *lockdepMap, sub int, mode lockMode, try bool, skip int) {
	var reports []*bug.Report
	if sub < 0 || sub >= MaxSubclasses {
		if r := l.badSubclass(m, sub, skip+1); r != nil {
			reports = append(reports, r)
		}
		sub = min(max(sub, 0), MaxSubclasses-1)
	}
	id := CurrentTask()
	h := heldLock{inst: m, class: l.class(m, sub), mode: mode, trylock: try}
	// Called here, not in a helper, so that the one frame skipped is ours.
	h.ip.n = uint8(bug.FrameCallers(1, h.ip.pc[:]))
	// Pushed first, validated against the locks below it: one trip to the
	// shard instead of a lookup and a push.
	t := l.push(id, &h)
	if held := t.held[:len(t.held)-1]; !try && len(held) > 0 {
		reports = l.validateChain(t, held, &h, reports, skip+1)
	}
	if len(reports) > 0 {
		l.fileAcquireReports(t, m, reports)
	}
}

// push appends h to the held-lock stack of task id and returns the task.
func (l *lockdep) push(id int64, h *heldLock) *ldTask {
	sh := l.shard(id)
	sh.mu.Lock()
	t := sh.tasks[id]
	if t == nil {
		if sh.tasks == nil {
			// Made on first use: a kernel's few tasks use a few shards.
			sh.tasks = make(map[int64]*ldTask)
		}
		t = &ldTask{id: id}
		t.held = t.heldBuf[:0]
		sh.tasks[id] = t
	}
	t.held = append(t.held, *h)
	t.recent = true
	sh.mu.Unlock()
	return t
}

// fileAcquireReports files the reports of an acquisition of m by t, which
// has pushed m already. A handler that panics aborts the acquisition: m is
// then popped again, so nothing stays recorded.
func (l *lockdep) fileAcquireReports(t *ldTask, m *lockdepMap, reports []*bug.Report) {
	filed := false
	defer func() {
		if !filed {
			l.unwindAcquire(t, m)
		}
	}()
	for _, r := range reports {
		l.rep.File(r)
	}
	filed = true
}

// unwindAcquire pops the topmost entry of m from t's held-lock stack.
func (l *lockdep) unwindAcquire(t *ldTask, m *lockdepMap) {
	sh := l.shard(t.id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for j := len(t.held) - 1; j >= 0; j-- {
		if t.held[j].inst == m {
			l.removeLocked(sh, t, j)
			return
		}
	}
}

// removeLocked removes entry i of t's held-lock stack. When the stack
// empties, every sweepEvery-th time, the shard drops the tasks that have
// been idle since the previous sweep. sh.mu must be held.
func (l *lockdep) removeLocked(sh *taskShard, t *ldTask, i int) {
	n := len(t.held)
	copy(t.held[i:], t.held[i+1:])
	t.held[n-1] = heldLock{}
	t.held = t.held[:n-1]
	if n > 1 {
		return
	}
	if sh.emptied++; sh.emptied < sweepEvery {
		return
	}
	sh.emptied = 0
	for id, o := range sh.tasks {
		if len(o.held) == 0 && !o.recent {
			delete(sh.tasks, id)
		}
		o.recent = false
	}
}

// validateChain ports validate_chain(): check_deadlock() against the locks
// t held before next (held, which only t may read without the shard lock),
// then check_prevs_add() for the new dependencies.
func (l *lockdep) validateChain(t *ldTask, held []heldLock, next *heldLock, reports []*bug.Report, skip int) []*bug.Report {
	// check_deadlock(): the same class taken twice is a self-deadlock
	// unless a nesting subclass tells the classes apart. Readers of an
	// rwsem are not recursive (a waiting writer blocks the second read),
	// so read-after-read is reported too. The same instance under another
	// subclass is a certain self-deadlock, which a subclass cannot excuse
	// (Linux's mutex debugging catches it as owner == current).
	for i := range held {
		if held[i].class == next.class || held[i].inst == next.inst {
			if r := l.recursiveBug(t.id, held, &held[i], next, skip+1); r != nil {
				reports = append(reports, r)
			}
			return reports
		}
	}
	// check_prevs_add(): add prev -> next for the most recent held lock,
	// and for each trylock above it, which added no dependencies of its own.
	for i := len(held) - 1; i >= 0; i-- {
		prev := &held[i]
		if r := l.checkPrevAdd(t.id, held, prev, next, skip+1); r != nil {
			reports = append(reports, r)
		}
		if !prev.trylock {
			break
		}
	}
	return reports
}

// checkPrevAdd ports check_prev_add(): record prev -> next unless known,
// after check_noncircular() has looked for a path next -> ... -> prev, which
// with the new dependency closes a cycle. It returns the report, if any.
// Task id holds held, prev among them. A new dependency saves the full
// stack of this acquisition (save_trace()); a known one costs a lock-free
// walk of prev's few dependencies.
func (l *lockdep) checkPrevAdd(id int64, held []heldLock, prev, next *heldLock, skip int) *bug.Report {
	if prev.class.dependsOn(next.class) {
		return nil // the fast path: a dependency seen before
	}
	l.graphMu.Lock()
	if prev.class.dependsOn(next.class) {
		l.graphMu.Unlock()
		return nil
	}
	path := l.bfsLocked(next.class, prev.class)
	dep := l.allocDepLocked()
	*dep = lockDep{
		prev:   prev.class,
		next:   next.class,
		task:   id,
		prevIP: prev.ip,
		stack:  l.saveTraceLocked(),
	}
	// The dependency is recorded even when it closes a cycle: the cycle is
	// reported once, and later acquisitions in the same order take the
	// fast path instead of searching the graph again.
	prev.class.addAfterLocked(dep)
	l.graphMu.Unlock()
	if path == nil {
		return nil
	}
	return l.circularBug(id, held, prev, next, path, skip+1)
}

// dependsOn reports whether the dependency c -> next is recorded: the walk
// of locks_after in check_prev_add(). It takes no lock.
func (c *lockClass) dependsOn(next *lockClass) bool {
	for d := c.after.Load(); d != nil; d = d.sibling.Load() {
		if d.next == next {
			return true
		}
	}
	return false
}

// addAfterLocked ports add_lock_to_list(): it appends dep to c's
// dependencies, publishing it to lock-free walkers last. lockdep.graphMu
// must be held.
func (c *lockClass) addAfterLocked(dep *lockDep) {
	if c.afterTail == nil {
		c.after.Store(dep)
	} else {
		c.afterTail.sibling.Store(dep)
	}
	c.afterTail = dep
}

// bfsLocked ports check_noncircular() / __bfs_forwards(): the shortest
// dependency path from src to target, nil if there is none (or src is
// target, a case check_deadlock() owns). Like __bfs() it queues
// dependencies, searched in the order they were recorded, and marks each
// one with the dependency it was reached from (lock_list.parent; nil for
// src's own). graphMu must be held.
func (l *lockdep) bfsLocked(src, target *lockClass) []*lockDep {
	if src == target {
		return nil
	}
	l.depGen++
	src.depGen = l.depGen
	queue := l.bfsQueue[:0]
	defer func() { l.bfsQueue = queue[:0] }()
	var from *lockDep // the dependency that reached c
	for c, i := src, 0; ; i++ {
		for dep := c.after.Load(); dep != nil; dep = dep.sibling.Load() {
			if dep.next.depGen == l.depGen {
				continue
			}
			dep.next.depGen = l.depGen
			dep.parent = from
			if dep.next == target {
				var path []*lockDep
				for d := dep; d != nil; d = d.parent {
					path = append(path, d)
				}
				slices.Reverse(path)
				return path
			}
			queue = append(queue, dep)
		}
		if i == len(queue) {
			return nil
		}
		from = queue[i]
		c = from.next
	}
}

// release ports lock_release(): it pops m (held in mode) from the current
// task's held-lock stack. If the task does not hold m so, it files an
// unlock-imbalance report and returns false; the caller then leaves the
// real lock alone. (Linux releases it anyway; here that would turn the
// rightful holder's unlock into a fatal "unlock of unlocked mutex".)
func (l *lockdep) release(m *lockdepMap, mode lockMode, skip int) bool {
	id := CurrentTask()
	sh := l.shard(id)
	sh.mu.Lock()
	t := sh.tasks[id]
	i := -1
	if t != nil {
		for j := len(t.held) - 1; j >= 0; j-- {
			if t.held[j].inst == m {
				i = j
				break
			}
		}
	}
	if i < 0 || t.held[i].mode != mode {
		var got *heldLock
		if i >= 0 {
			h := t.held[i]
			got = &h
		}
		sh.mu.Unlock()
		if r := l.unlockImbalanceBug(id, m, mode, got, skip+1); r != nil {
			l.rep.File(r)
		}
		return false
	}
	l.removeLocked(sh, t, i)
	sh.mu.Unlock()
	return true
}

// isHeld ports lockdep_is_held_type(): whether the current task holds m in
// mode (modeAny: either).
func (l *lockdep) isHeld(m *lockdepMap, mode lockMode) bool {
	t := l.task(CurrentTask())
	if t == nil {
		return false
	}
	for i := range t.held {
		if h := &t.held[i]; h.inst == m && (mode == modeAny || h.mode == mode) {
			return true
		}
	}
	return false
}

// assertHeld ports lockdep_assert_held{,_read,_write}(): it reports if the
// current task does not hold m in mode.
func (l *lockdep) assertHeld(m *lockdepMap, mode lockMode, skip int) {
	if l.isHeld(m, mode) {
		return
	}
	if r := l.assertBug(m, mode, skip+1); r != nil {
		l.rep.File(r)
	}
}

// sysExit ports lockdep_sys_exit(): a task returning to user space must
// hold no lock.
func (l *lockdep) sysExit(where string, skip int) {
	id := CurrentTask()
	t := l.task(id)
	if t == nil || len(t.held) == 0 {
		return
	}
	if r := l.sysExitBug(t, where, skip+1); r != nil {
		l.rep.File(r)
	}
}

// saveTraceLocked ports save_trace(): the stack of the current
// acquisition, for a new dependency, kept in l.traces. Every new
// dependency saves one (a fresh kernel's graph starts empty), so it is
// walked off the frame-pointer chain; the frames of this package it starts
// with are dropped when rendered. graphMu must be held.
func (l *lockdep) saveTraceLocked() []uintptr {
	if len(l.traces) < depStackDepth {
		l.traces = make([]uintptr, tracesChunk)
	}
	n := bug.FrameCallers(1, l.traces[:depStackDepth])
	pcs := l.traces[:n:n]
	l.traces = l.traces[n:]
	return pcs
}

// allocDepLocked ports alloc_list_entry(): storage for a new dependency.
// graphMu must be held.
func (l *lockdep) allocDepLocked() *lockDep {
	if len(l.deps) == 0 {
		l.deps = make([]lockDep, depsChunk)
	}
	d := &l.deps[0]
	l.deps = l.deps[1:]
	return d
}

// callers returns the stack of the lock's caller, for a function of this
// package with skip frames of ours between it and that caller.
func callers(skip, depth int) []uintptr {
	pcs := make([]uintptr, depth)
	return pcs[:runtime.Callers(skip+3, pcs)]
}
