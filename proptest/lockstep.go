package proptest

import (
	"fmt"
	"math/bits"
	"time"

	"pgregory.net/rapid"

	"luomodel/model"
)

// rapidSource draws from a rapid.T. Its values are (nearly) uniform:
// rapid's own integer generators favour small and extreme values, which
// would turn a 3% "bad fd" into a 25% one. A value above 16 is built from
// single unbiased bits, most significant first, so shrinking still moves
// it toward 0; up to 16 rapid's bias is mild (e.g. 27% instead of 25% for
// 0 of 4) and one draw shrinks faster than several.
type rapidSource struct {
	t     *rapid.T
	bit   *rapid.Generator[bool]
	small [17]*rapid.Generator[int] // small[n] draws from [0, n)
}

func newRapidSource(t *rapid.T) *rapidSource {
	r := &rapidSource{t: t, bit: rapid.Bool()}
	for n := 2; n < len(r.small); n++ {
		r.small[n] = rapid.IntRange(0, n-1)
	}
	return r
}

func (r *rapidSource) Intn(n int, label string) int {
	if n <= 1 {
		return 0
	}
	if n < len(r.small) {
		return r.small[n].Draw(r.t, label)
	}
	k := bits.Len(uint(n - 1))
	for {
		v := 0
		for range k {
			v <<= 1
			if r.bit.Draw(r.t, label) {
				v |= 1
			}
		}
		if v < n {
			return v
		}
	}
}

// fataler is what a run reports a failure to: a *rapid.T or a
// *testing.B.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Lockstep returns the rapid property: boot a machine with two tasks, run
// a random sequence of actions on port and model, check every result and
// the invariants after every step, then exit every task and check that
// nothing leaked. stats may be nil.
func Lockstep(stats *Stats) func(*rapid.T) { return LockstepSkipping(stats, nil) }

// LockstepSkipping is Lockstep without the actions named in skip (e.g.
// "kexec" while bisecting a failure to one side of a live update, or
// SkipFaults for no fault action).
//
// The state machine has a single rapid action, "step", which draws one of
// Actions() by its weight in the current state: rapid's own choice of
// action favours the first keys in sorted order, and weights have to
// follow the state (no RETRIEVE_SESSION storm before anything was handed
// over).
func LockstepSkipping(stats *Stats, skip map[string]bool) func(*rapid.T) {
	return lockstep(stats, skip, nil)
}

// LockstepShrinking is LockstepSkipping that shrinks a failing check
// itself, within budget, and reports the shrunk one (shrink.go): run it
// with rapid's own shrinking off (-rapid.shrinktime=0), as luo check
// does.
func LockstepShrinking(stats *Stats, skip map[string]bool, budget time.Duration) func(*rapid.T) {
	return lockstep(stats, skip, newShrinker(skip, budget))
}

func lockstep(stats *Stats, skip map[string]bool, sh *shrinker) func(*rapid.T) {
	return func(t *rapid.T) {
		r, err := newRun(t, true, stats, skip)
		if err != nil {
			t.Fatalf("boot: %v", err)
		}
		var src Source = newRapidSource(t)
		var rec *recordingSource
		if sh != nil {
			rec = &recordingSource{src: src}
			src = rec
			r.shrink = func(f failure) string { return sh.shrunk(rec.steps, f) }
			r.plant = sh.plant
		}
		t.Repeat(map[string]func(*rapid.T){
			"step": func(t *rapid.T) {
				rec.startStep()
				if !r.step(src) {
					t.Skip("not applicable")
				}
			},
			"": func(*rapid.T) { r.checkInvariants() },
		})
		r.teardown()
	}
}

// run is one check in progress.
type run struct {
	t     fataler
	e     *Env
	stats *Stats
	acts  []Action
	// ops records every executed operation when non-nil (benchmarks
	// replay them on the port alone).
	ops *[]recordedOp
	// touched is set when an operation since the last invariant check
	// may have changed LUO's state; the port's snapshot (which takes
	// every LUO lock, each acquisition costing lockdep a stack trace) is
	// skipped otherwise.
	touched bool
	// memfdsTouched is set when an operation since the last invariant
	// check may have changed a memfd's contents or folios (memfdsAgree).
	memfdsTouched bool
	// scratch is the model check's working space, reused from step to
	// step.
	scratch model.CheckScratch
	// weights is step's scratch: each action's weight in the current
	// state; names are the actions' names.
	weights []int
	names   []string
	// shrink, if set, turns a failure into the report of the shrunk
	// check (shrink.go).
	shrink func(failure) string
	// plant, if set, is one more invariant (the shrinker's tests plant
	// a failure with it).
	plant func(*run) error
}

// recordedOp is an executed operation and the fault armed for it (Site
// "" for none), or a hostile hand-over (Hostile set, Op the kexec).
type recordedOp struct {
	Op      model.Op
	Site    string
	Nth     int
	Hostile *model.Hostile
}

// touchesLUO says whether op may change LUO's state: file I/O, memfd
// creation, dup and new tasks cannot (a dup adds a reference, it never
// releases one).
func touchesLUO(op model.Op) bool {
	switch op.Kind {
	case model.OpRead, model.OpWrite, model.OpLseek, model.OpFtruncate, model.OpMemfdCreate, model.OpDup, model.OpNewTask, model.OpDropCaches:
		return false
	}
	return true
}

// touchesMemfds says whether op may change a memfd's contents or the
// folios that hold them: writes and truncation, drop_caches, the LUO
// ioctls (a preserve fills holes, a retrieve builds a file), a kexec.
func touchesMemfds(op model.Op) bool {
	switch op.Kind {
	case model.OpWrite, model.OpFtruncate, model.OpDropCaches, model.OpIoctl, model.OpKexec:
		return true
	}
	return false
}

// newRun boots a machine (in lockstep with the model or not) and starts
// two tasks. The campaign's actions are Actions() and, rarely drawn, the
// fault actions, less those named in skip.
func newRun(t fataler, lockstep bool, stats *Stats, skip map[string]bool) (*run, error) {
	return newRunWeighted(t, lockstep, stats, skip, faultWeight)
}

// newRunWeighted is newRun with the fault actions drawn with faultW (0:
// never).
func newRunWeighted(t fataler, lockstep bool, stats *Stats, skip map[string]bool, faultW int) (*run, error) {
	e, err := NewEnv(lockstep)
	if err != nil {
		return nil, err
	}
	stats.check()
	r := &run{t: t, e: e, stats: stats, touched: true}
	for _, a := range append(Actions(), HandlerActions()...) {
		if !skip[a.Name] {
			r.acts = append(r.acts, a)
		}
	}
	if faultW > 0 {
		r.acts = append(r.acts, r.faultActions(faultW, skip)...)
	}
	r.acts = append(r.acts, registrationActions(skip)...)
	r.acts = append(r.acts, r.hostileActions(skip)...)
	r.exec(model.Op{Kind: model.OpNewTask})
	r.exec(model.Op{Kind: model.OpNewTask})
	return r, nil
}

// step draws an action by weight and runs it; false if it did nothing.
func (r *run) step(src Source) bool {
	if rs, ok := src.(*replaySource); ok && rs.rec.op != nil {
		r.exec(*rs.rec.op) // an operation the shrinker split out
		return true
	}
	s := &r.e.S
	if len(r.weights) != len(r.acts) {
		r.weights = make([]int, len(r.acts))
		r.names = make([]string, len(r.acts))
		for i, a := range r.acts {
			r.names[i] = a.Name
		}
	}
	weights := r.weights
	total := 0
	for i, a := range r.acts {
		weights[i] = a.Weight(s)
		total += weights[i]
	}
	if total == 0 {
		return false
	}
	v := src.Intn(total, "action")
	i := 0
	for v >= weights[i] {
		v -= weights[i]
		i++
	}
	i = choose(src, r.names, i, func(j int) bool { return weights[j] > 0 })
	c := &Ctx{S: s, Src: src, exec: r.exec}
	if !r.acts[i].Run(c) {
		return false
	}
	r.stats.action(r.acts[i].Name)
	return true
}

func (r *run) fail(format string, args ...any) {
	r.t.Helper()
	r.stats.failure()
	msg := fmt.Sprintf(format, args...)
	f := failure{where: failurePlace(msg), ops: r.e.TraceLen(),
		report: fmt.Sprintf("%s\n\ntrace (%d operations):\n%s", msg, r.e.TraceLen(), r.e.TraceString())}
	if r.shrink != nil {
		f.report = r.shrink(f)
	}
	if ft, ok := r.t.(*replayTB); ok {
		ft.fail(f)
	}
	r.t.Fatalf("%s", f.report)
}

func (r *run) exec(op model.Op) model.Result {
	res, err := r.e.Exec(op)
	r.touched = r.touched || touchesLUO(op)
	r.memfdsTouched = r.memfdsTouched || touchesMemfds(op)
	r.stats.op(op, res.Errno)
	r.stats.calls(op, res, r.e.S.Calls)
	if r.ops != nil {
		*r.ops = append(*r.ops, recordedOp{Op: op})
	}
	if err != nil {
		r.fail("%v", err)
	}
	return res
}

// checkInvariants runs after every step.
func (r *run) checkInvariants() {
	if r.plant != nil {
		if err := r.plant(r); err != nil {
			r.fail("planted: %v", err)
		}
	}
	if err := r.e.checkReports(); err != nil {
		r.fail("%v", err)
	}
	r.stats.invariant("no WARN/lockdep/KASAN report")
	if err := r.e.S.CheckWith(&r.scratch); err != nil {
		r.fail("model invariant: %v", err)
	}
	r.stats.invariant("model: S2-S8, F2, F3, F7, refcounts")
	if err := fdTablesAgree(r.e); err != nil {
		r.fail("%s: %v", fdTablesCheck, err)
	}
	r.stats.invariant(fdTablesCheck)
	if err := moduleRefsAgree(r.e); err != nil {
		r.fail("%s: %v", moduleRefsCheck, err)
	}
	r.stats.invariant(moduleRefsCheck)
	if r.memfdsTouched {
		r.memfdsTouched = false
		if err := memfdsAgree(r.e); err != nil {
			r.fail("%s: %v", memfdsCheck, err)
		}
		r.stats.invariant(memfdsCheck)
	}
	if !r.touched {
		return
	}
	r.touched = false
	d, err := r.e.snapshot()
	if err != nil {
		r.fail("%v", err)
	}
	for _, c := range portChecks {
		if err := c.fn(d, &r.e.S); err != nil {
			r.fail("%s: %v", c.name, err)
		}
		r.stats.invariant(c.name)
	}
}

// teardown exits every live task; afterwards no file may be alive in the
// model or in the port, and every block of preserved memory must be
// handed over, restored, or reserved for a documented reason (the ledger
// of proptest/account). The fault sites' counters go to the stats.
func (r *run) teardown() {
	r.t.Helper()
	for _, id := range liveTasks(&r.e.S) {
		r.exec(model.Op{Kind: model.OpExit, Task: id})
	}
	if strandedFiles(&r.e.S) {
		// A session whose finish a file refused keeps its files
		// until the next kexec (as upstream): reboot to drop them.
		r.exec(model.Op{Kind: model.OpKexec})
	}
	r.touched = true
	r.checkInvariants()
	if n := len(r.e.S.Files); n != 0 {
		r.fail("model: %d files alive after every task exited", n)
	}
	if err := portLeaks(r.e); err != nil {
		r.fail("leak: %v", err)
	}
	r.stats.invariant("no leaked files after exit")
	r.stats.faultSites(r.e.M.Faults().Stats())
	if led := r.e.ledger(); led.Err() != nil {
		r.fail("leak: %v\n\nledger:\n%s", led.Err(), led)
	}
	r.stats.invariant("ledger: preserved memory accounted for")
}
