package proptest

import (
	"fmt"
	"sort"

	"pgregory.net/rapid"

	"luomodel/model"
)

// rapidSource draws from a rapid.T.
type rapidSource struct{ t *rapid.T }

func (r rapidSource) Intn(n int, label string) int {
	if n <= 1 {
		return 0
	}
	return rapid.IntRange(0, n-1).Draw(r.t, label)
}

// Lockstep returns the rapid property: boot a machine with two tasks, run
// a random sequence of actions on port and model, check every result and
// the invariants after every step, then exit every task and check that
// nothing leaked. stats may be nil.
func Lockstep(stats *Stats) func(*rapid.T) { return LockstepSkipping(stats, nil) }

// LockstepSkipping is Lockstep without the actions named in skip (e.g.
// "kexec" while bisecting a failure to one side of a live update).
func LockstepSkipping(stats *Stats, skip map[string]bool) func(*rapid.T) {
	return func(t *rapid.T) {
		e, err := NewEnv(true)
		if err != nil {
			t.Fatalf("boot: %v", err)
		}
		stats.check()
		r := &run{t: t, e: e, stats: stats}
		r.exec(model.Op{Kind: model.OpNewTask})
		r.exec(model.Op{Kind: model.OpNewTask})
		acts := Actions()
		names := make([]string, 0, len(acts))
		for n := range acts {
			if !skip[n] {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		m := make(map[string]func(*rapid.T), len(acts)+1)
		for _, n := range names {
			a := acts[n]
			m[n] = func(t *rapid.T) {
				r.t = t
				ops := a(&e.S, rapidSource{t})
				if ops == nil {
					t.Skip("not applicable")
				}
				for _, op := range ops {
					r.exec(op)
				}
			}
		}
		m[""] = func(t *rapid.T) {
			r.t = t
			r.checkInvariants()
		}
		t.Repeat(m)
		r.t = t
		r.teardown()
	}
}

// run is one check in progress.
type run struct {
	t     *rapid.T
	e     *Env
	stats *Stats
}

func (r *run) fail(format string, args ...any) {
	r.t.Helper()
	msg := fmt.Sprintf(format, args...)
	r.t.Fatalf("%s\n\ntrace (%d operations):\n%s", msg, len(r.e.Trace), r.e.TraceString())
}

func (r *run) exec(op model.Op) model.Result {
	r.t.Helper()
	res, err := r.e.Exec(op)
	r.stats.op(op, res.Errno)
	if err != nil {
		r.fail("%v", err)
	}
	return res
}

// checkInvariants runs after every step.
func (r *run) checkInvariants() {
	r.t.Helper()
	if reps := r.e.Reports(); len(reps) > 0 {
		r.fail("the kernel filed %d report(s); first:\n%s", len(reps), reps[0])
	}
	r.stats.invariant("no WARN/lockdep/KASAN report")
	if err := r.e.S.Check(); err != nil {
		r.fail("model invariant: %v", err)
	}
	r.stats.invariant("model: S2-S8, F2, F3, F7, refcounts")
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
// model or in the port.
func (r *run) teardown() {
	r.t.Helper()
	for _, id := range liveTasks(&r.e.S) {
		r.exec(model.Op{Kind: model.OpExit, Task: id})
	}
	r.checkInvariants()
	if n := len(r.e.S.Files); n != 0 {
		r.fail("model: %d files alive after every task exited", n)
	}
	if err := portLeaks(r.e); err != nil {
		r.fail("leak: %v", err)
	}
	r.stats.invariant("no leaked files after exit")
}
