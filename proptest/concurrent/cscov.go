package concurrent

import (
	"fmt"
	"io"
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
// package doc), outer to inner.
var luoLocks = []string{
	"luo_session_serialize_rwsem",
	"luo_session_global.incoming.rwsem",
	"luo_session_global.outgoing.rwsem",
	"luo_session.mutex",
	"luo_file.mutex",
	"luo_register_rwlock",
	"luo_flb_private.outgoing.lock",
	"luo_flb_private.incoming.lock",
}

// takes lists, for each instruction, the LUO locks through which it can
// meet another thread's instruction on the same lock instance: the pairs of
// instructions sharing a lock are the coverage goals. Left out, because no
// schedule can make them meet: a lock of an object not yet published (the
// new session's mutex in create, the new luo_file's in preserve), the
// inner locks of a reboot (it holds the serialize rwsem for write, which
// excludes every mutator), the locks an instruction takes only when its
// fdput() happens to run a session's release (counted under close), and
// the luo_file mutex, which this port takes only under the session mutex
// (two instructions on one file meet on the session mutex first).
var takes = map[Kind][]string{
	KCreate:     {"luo_session_serialize_rwsem", "luo_session_global.outgoing.rwsem"},
	KRetrieve:   {"luo_session_serialize_rwsem", "luo_session_global.incoming.rwsem", "luo_session.mutex"},
	KClose:      {"luo_session_serialize_rwsem", "luo_session_global.incoming.rwsem", "luo_session_global.outgoing.rwsem", "luo_session.mutex", "luo_register_rwlock", "luo_flb_private.incoming.lock"},
	KPreserve:   {"luo_session_serialize_rwsem", "luo_session.mutex", "luo_register_rwlock"},
	KRetrieveFD: {"luo_session_serialize_rwsem", "luo_session.mutex"},
	KFinish:     {"luo_session_serialize_rwsem", "luo_session.mutex", "luo_register_rwlock", "luo_flb_private.incoming.lock"},
	KGetName:    {"luo_session_serialize_rwsem"},
	KReboot:     {"luo_session_serialize_rwsem"},
	KFLBGet:     {"luo_flb_private.incoming.lock"},
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
// anything (EINVAL, M11), and retrieve takes only listed incoming
// sessions' mutexes. close's release takes either kind's.
var sessionSide = map[Kind]string{
	KRetrieve: "incoming", KRetrieveFD: "incoming", KFinish: "incoming",
	KPreserve: "outgoing",
}

// unreachable reports the pairs of instructions that take a lock but can
// never meet on one instance of it: two reboots (one a round); and on a
// session's mutex, instructions that take it only on different kinds of
// session (a preserve's outgoing session, a finish's incoming one), and a
// close (the session's release, which runs only once the last reference
// to the session's file is gone) with anything but a retrieve (which finds
// the session in the incoming list): a session ioctl holds a reference to
// the file for its whole call, and a session is released once.
func unreachable(class string, a, b Kind) bool {
	if a == KReboot && b == KReboot {
		return true
	}
	if class != "luo_session.mutex" {
		return false
	}
	if a == KClose || b == KClose {
		return a != KRetrieve && b != KRetrieve
	}
	return sessionSide[a] != sessionSide[b]
}

// expectedPairs are the goals: for each lock, every pair of instructions
// that take it, except those that can never meet (unreachable).
func expectedPairs() []csKey {
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
}

// CSGoals is the number of critical-section pairs the table aims at.
func CSGoals() int { return len(expectedPairs()) }

// CSCoverage is the critical-section coverage of a campaign; safe for
// concurrent use.
type CSCoverage struct {
	mu sync.Mutex
	// hits counts the contentions seen per goal; guarded by mu.
	hits map[csKey]int64
}

func (c *CSCoverage) hit(k csKey) {
	c.mu.Lock()
	if c.hits == nil {
		c.hits = map[csKey]int64{}
	}
	c.hits[k]++
	c.mu.Unlock()
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
	for k, v := range hits {
		c.mu.Lock()
		if c.hits == nil {
			c.hits = map[csKey]int64{}
		}
		c.hits[k] += v
		c.mu.Unlock()
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
func isLUOLock(class string) bool { return slices.Contains(luoLocks, class) }

// contend is sched.Options.OnContend: thread holder holds a lock of class
// that thread waiter goes to take.
func (c *checker) contend(holder, waiter int, class string) {
	if !isLUOLock(class) || holder >= maxThreads || waiter >= maxThreads {
		return
	}
	if int(c.window.Load()) == waiter {
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
func (c *checker) steerTo(d *sched.Decision) bool { return c.steerTarget(d) > 0 }

// steerTarget returns the index in d.Candidates of the first other
// runnable thread whose instruction takes a LUO lock the current thread
// holds, for a pair this check has not reached; 0 if none.
func (c *checker) steerTarget(d *sched.Decision) int {
	if c.steer == nil || d.Current < 0 || d.Current >= maxThreads {
		return 0
	}
	a := c.cur[d.Current].Load()
	if a < 0 {
		return 0
	}
	for _, class := range d.Held {
		if !isLUOLock(class) {
			continue
		}
		for i, o := range d.Candidates[1:] {
			if o >= maxThreads {
				continue
			}
			b := c.cur[o].Load()
			if b >= 0 && slices.Contains(takes[Kind(b)], class) && !unreachable(class, Kind(a), Kind(b)) && !c.steer.reached(pairKey(class, Kind(a), Kind(b))) {
				return 1 + i
			}
		}
	}
	return 0
}

// steerWindow bounds the scheduling points a steered window lasts.
const steerWindow = 64

// steeredChooser completes the scheduler's steering: once the inner
// chooser preempts a thread inside a critical section at a steered point
// (locking.PointLockHeld), the CPU goes to the thread whose instruction
// takes that lock, and that thread keeps it, with no preemption drawn,
// until it goes to take a lock another thread holds (contend), its
// instruction ends, it blocks, or steerWindow points pass: on its way to
// the lock it may pass many scheduling points, and a preemption drawn at
// each would mostly hand the CPU back before it gets there. Every choice
// is recorded in the run's Choices, so a failure replays as any other.
type steeredChooser struct {
	c     *checker
	inner sched.Chooser
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
	i := s.inner.Choose(d)
	if i > 0 && d.CurrentRunnable && d.Point == locking.PointLockHeld {
		if j := s.c.steerTarget(d); j > 0 {
			i = j
			s.waiter, s.left = d.Candidates[j], steerWindow
			s.kind = s.c.cur[s.waiter].Load()
			s.c.waiterMet.Store(false)
			s.c.window.Store(int32(s.waiter))
		}
	}
	return i
}

// unreached returns the goals c has not seen contended, in the table's
// order; without reboot, those with a reboot are left out.
func (c *CSCoverage) unreached(reboot bool) []csKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []csKey
	for _, k := range expectedPairs() {
		if c.hits[k] == 0 && (reboot || (k.A != KReboot && k.B != KReboot)) {
			out = append(out, k)
		}
	}
	return out
}

// boost is the generator's steering: extra weight for an instruction that
// takes a lock in a pair this check has not reached.
func (c *CSCoverage) boost(k Kind) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, class := range takes[k] {
		for o := range numKinds {
			if slices.Contains(takes[o], class) && !unreachable(class, k, o) && c.hits[pairKey(class, k, o)] == 0 {
				return 2
			}
		}
	}
	return 0
}
