package locking

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"luomodel/kernel/bug"
)

// MaxSubclasses ports MAX_LOCKDEP_SUBCLASSES: a nesting subclass passed to
// LockNested, DownReadNested or DownWriteNested is in [0, MaxSubclasses).
const MaxSubclasses = 8

const (
	heldStackDepth = 16 // PCs kept per held lock: its acquisition stack
	depStackDepth  = 64 // PCs kept per dependency (save_trace())
	taskShards     = 64 // shards of the task table; a power of two
	maxFreeTasks   = 8  // recycled ldTasks kept per shard
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

// lockdepMap ports struct lockdep_map: the identity a lock instance carries
// for lockdep and the scheduler. All fields are written by Init and read-only
// afterwards (Init happens before the lock is shared, as mutex_init() does).
type lockdepMap struct {
	dom  *Domain     // nil: never Init'ed; the lock is invisible to lockdep and the scheduler
	fam  *lockFamily // nil unless dom has lockdep
	name string      // class name given to Init
	kind lockKind
}

// init ports lockdep_init_map().
func (m *lockdepMap) init(d *Domain, name string, kind lockKind) {
	if name == "" {
		name = "(unnamed)"
	}
	m.dom, m.name, m.kind, m.fam = d, name, kind, nil
	if d != nil && d.ld != nil {
		m.fam = d.ld.family(name)
	}
}

// lockFamily holds the classes of one class name, one per subclass.
type lockFamily struct {
	name string // immutable
	// sub ports lockdep_map.class_cache[]: created lazily under
	// lockdep.graphMu, read lock-free.
	sub [MaxSubclasses]atomic.Pointer[lockClass]
}

// lockClass ports struct lock_class: a (name, subclass) pair of a domain.
type lockClass struct {
	name string // immutable
	sub  int    // immutable
	id   int    // immutable: registration order, for stable report keys
	// after ports lock_class.locks_after: the dependencies this -> next,
	// keyed by next. Copy-on-write: replaced under lockdep.graphMu, loaded
	// lock-free on the fast path.
	after atomic.Pointer[map[*lockClass]*lockDep]
}

// String renders the class as lockdep does: name, and "/subclass" if any.
func (c *lockClass) String() string {
	if c.sub == 0 {
		return c.name
	}
	return fmt.Sprintf("%s/%d", c.name, c.sub)
}

// lockDep ports struct lock_list: the dependency prev -> next, recorded the
// first time a task acquired next while holding prev. Immutable.
type lockDep struct {
	prev, next *lockClass
	task       int64     // the task that recorded it
	prevStack  []uintptr // where that task had acquired prev
	stack      []uintptr // where it acquired next (save_trace())
}

// heldLock ports struct held_lock: one entry of a task's held-lock stack.
type heldLock struct {
	inst    *lockdepMap // the lock instance (held_lock.instance)
	class   *lockClass
	mode    lockMode
	trylock bool
	nstack  int
	stack   [heldStackDepth]uintptr // acquisition stack (Linux keeps acquire_ip)
}

func (h *heldLock) pcs() []uintptr { return h.stack[:h.nstack] }

// ldTask is the lockdep part of task_struct: the held-lock stack of one
// task (goroutine) in one domain.
type ldTask struct {
	id int64 // guarded by the shard's mu
	// held is guarded by the shard's mu for writes and for readers other
	// than the owner; only the owning task writes it, so the owner may read
	// it without the lock.
	held []heldLock
}

// taskShard is one shard of a domain's task table.
type taskShard struct {
	mu sync.Mutex
	// tasks maps a task id to its held-lock stack; guarded by mu. A task
	// is present only while it holds a lock, so the table does not grow
	// with the number of goroutines ever run.
	tasks map[int64]*ldTask
	free  []*ldTask // guarded by mu: emptied ldTasks for reuse
	_     [40]byte  // keep shards on separate cache lines
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
	// sync.Mutex so the validator never recurses into itself.
	graphMu  sync.Mutex
	families map[string]*lockFamily // guarded by graphMu
	nclasses int                    // guarded by graphMu

	reportMu sync.Mutex
	reported map[reportKey]struct{} // guarded by reportMu
}

func newLockdep(rep *bug.Reporter) *lockdep {
	l := &lockdep{
		rep:      rep,
		families: make(map[string]*lockFamily),
		reported: make(map[reportKey]struct{}),
	}
	for i := range l.shards {
		l.shards[i].tasks = make(map[int64]*ldTask)
	}
	return l
}

// family returns the class family of name, registering it if needed.
func (l *lockdep) family(name string) *lockFamily {
	l.graphMu.Lock()
	defer l.graphMu.Unlock()
	f := l.families[name]
	if f == nil {
		f = &lockFamily{name: name}
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
		c = &lockClass{name: m.fam.name, sub: sub, id: l.nclasses}
		m.fam.sub[sub].Store(c)
	}
	return c
}

// once reports whether k is seen for the first time, and records it.
func (l *lockdep) once(k reportKey) bool {
	l.reportMu.Lock()
	defer l.reportMu.Unlock()
	if _, ok := l.reported[k]; ok {
		return false
	}
	l.reported[k] = struct{}{}
	return true
}

func (l *lockdep) shard(id int64) *taskShard {
	return &l.shards[uint64(id)&(taskShards-1)]
}

// task returns the lockdep state of task id, nil if it holds no lock.
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
// reported before it blocks; if the report handler panics, nothing is
// recorded and the lock is not taken.
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
	h.nstack = runtime.Callers(skip+2, h.stack[:])
	t := l.task(id)
	if !try && t != nil {
		reports = l.validateChain(t, &h, reports, skip+1)
	}
	for _, r := range reports {
		l.rep.File(r)
	}
	l.push(id, t, &h)
}

// push appends h to the held-lock stack of task id (t, if it exists).
func (l *lockdep) push(id int64, t *ldTask, h *heldLock) {
	sh := l.shard(id)
	sh.mu.Lock()
	if t == nil {
		if n := len(sh.free); n > 0 {
			t = sh.free[n-1]
			sh.free = sh.free[:n-1]
		} else {
			t = &ldTask{}
		}
		t.id = id
		sh.tasks[id] = t
	}
	t.held = append(t.held, *h)
	sh.mu.Unlock()
}

// validateChain ports validate_chain(): check_deadlock() against the locks
// t holds, then check_prevs_add() for the new dependencies.
func (l *lockdep) validateChain(t *ldTask, next *heldLock, reports []*bug.Report, skip int) []*bug.Report {
	// check_deadlock(): the same class taken twice is a self-deadlock
	// unless a nesting subclass tells the classes apart. Readers of an
	// rwsem are not recursive (a waiting writer blocks the second read),
	// so read-after-read is reported too. The same instance under another
	// subclass is a certain self-deadlock, which a subclass cannot excuse
	// (Linux's mutex debugging catches it as owner == current).
	for i := range t.held {
		if t.held[i].class == next.class || t.held[i].inst == next.inst {
			if r := l.recursiveBug(t, &t.held[i], next, skip+1); r != nil {
				reports = append(reports, r)
			}
			return reports
		}
	}
	// check_prevs_add(): add prev -> next for the most recent held lock,
	// and for each trylock above it, which added no dependencies of its own.
	for i := len(t.held) - 1; i >= 0; i-- {
		prev := &t.held[i]
		if r := l.checkPrevAdd(t, prev, next, skip+1); r != nil {
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
func (l *lockdep) checkPrevAdd(t *ldTask, prev, next *heldLock, skip int) *bug.Report {
	if deps := prev.class.after.Load(); deps != nil {
		if _, ok := (*deps)[next.class]; ok {
			return nil // the fast path: a dependency seen before
		}
	}
	l.graphMu.Lock()
	old := prev.class.after.Load()
	if old != nil {
		if _, ok := (*old)[next.class]; ok {
			l.graphMu.Unlock()
			return nil
		}
	}
	path := l.bfsLocked(next.class, prev.class)
	dep := &lockDep{
		prev:      prev.class,
		next:      next.class,
		task:      t.id,
		prevStack: append([]uintptr(nil), prev.pcs()...),
		stack:     callers(skip, depStackDepth),
	}
	// The dependency is recorded even when it closes a cycle: the cycle is
	// reported once, and later acquisitions in the same order take the
	// fast path instead of searching the graph again.
	deps := make(map[*lockClass]*lockDep, 1)
	if old != nil {
		for k, v := range *old {
			deps[k] = v
		}
	}
	deps[next.class] = dep
	prev.class.after.Store(&deps)
	l.graphMu.Unlock()
	if path == nil {
		return nil
	}
	return l.circularBug(t, prev, next, path, skip+1)
}

// bfsLocked ports check_noncircular() / __bfs_forwards(): the shortest
// dependency path from src to target, nil if there is none (or src is
// target, a case check_deadlock() owns). graphMu must be held.
func (l *lockdep) bfsLocked(src, target *lockClass) []*lockDep {
	if src == target {
		return nil
	}
	parent := map[*lockClass]*lockDep{src: nil}
	queue := []*lockClass{src}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		deps := c.after.Load()
		if deps == nil {
			continue
		}
		for next, dep := range *deps {
			if _, seen := parent[next]; seen {
				continue
			}
			parent[next] = dep
			if next == target {
				var path []*lockDep
				for d := dep; d != nil; d = parent[d.prev] {
					path = append(path, d)
				}
				for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
					path[i], path[j] = path[j], path[i]
				}
				return path
			}
			queue = append(queue, next)
		}
	}
	return nil
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
	n := len(t.held)
	copy(t.held[i:], t.held[i+1:])
	t.held[n-1] = heldLock{}
	t.held = t.held[:n-1]
	if n == 1 {
		delete(sh.tasks, id)
		if len(sh.free) < maxFreeTasks {
			sh.free = append(sh.free, t)
		}
	}
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

// callers returns the stack of the lock's caller, for a function of this
// package with skip frames of ours between it and that caller.
func callers(skip, depth int) []uintptr {
	pcs := make([]uintptr, depth)
	return pcs[:runtime.Callers(skip+3, pcs)]
}
