package sched

import (
	"pgregory.net/rapid"

	"luomodel/kernel/locking"
)

// Decision is one scheduling choice to make.
type Decision struct {
	// Step counts the scheduling points reached so far in the run.
	Step int
	// Current is the index of the task that reached the point, -1 before
	// the first task runs.
	Current int
	// CurrentRunnable says whether Current may keep running (it yields
	// rather than blocks or finishes). Then Candidates[0] == Current and
	// any other choice is a preemption.
	CurrentRunnable bool
	// Candidates are the runnable tasks' indices, current first, then in
	// round-robin order after it. There are at least two.
	Candidates []int
	// Held lists the lock classes Current holds, in order taken.
	Held []string
	// Point is the kind of scheduling point Current reached when it may
	// keep running (0 otherwise).
	Point locking.Point
}

// Chooser picks who runs next: an index into d.Candidates. It is called on
// the goroutine of the task that reached the point, never concurrently.
// d and its slices belong to the scheduler, which reuses them for the next
// decision: a Chooser must not keep them after Choose returns.
type Chooser interface {
	Choose(d *Decision) int
}

// Rapid returns a Chooser that draws every choice from t. Where the
// current task could keep running it first draws whether to preempt it
// (label "preempt", in [0, 3]: 3 preempts), then, only if so, which other
// task runs ("sched"). rapid shrinks draws toward 0, so a failing schedule
// shrinks to the fewest preemptions, and removing one preemption does not
// shift the draws of the others.
func Rapid(t *rapid.T) Chooser { return RapidSteered(t, nil) }

// RapidSteered is Rapid where steer, if not nil, marks decisions worth a
// preemption (e.g. the current task is inside a critical section another
// candidate has not yet been seen to contend). A point that is only there
// to preempt inside a critical section (locking.PointLockHeld) is drawn
// at all only where steer marks it (as any other point, one in four):
// drawn everywhere, so many extra points would thin out the preemptions
// elsewhere (a preemption more likely at steered points of every kind made
// M12 slower to find, too). Shrinking still moves toward no preemption.
func RapidSteered(t *rapid.T, steer func(d *Decision) bool) Chooser {
	return &rapidChooser{t: t, preempt: rapid.IntRange(0, 3), steer: steer, gens: map[int]*rapid.Generator[int]{}}
}

// RapidFocused is RapidSteered where a point steer does not mark preempts
// one time in 32 instead of one in four: the schedule's preemptions
// gather where steer marks, and a long call gets there undisturbed (a
// preemption anywhere before it would mostly let the other task run its
// call to the end first, as PCT's few, well-placed priority changes
// avoid).
func RapidFocused(t *rapid.T, steer func(d *Decision) bool) Chooser {
	return &rapidChooser{t: t, preempt: rapid.IntRange(0, 3), rare: rapid.IntRange(0, 31), steer: steer, gens: map[int]*rapid.Generator[int]{}}
}

type rapidChooser struct {
	t       *rapid.T
	preempt *rapid.Generator[int]
	// rare, if set, draws the preemptions at points steer does not mark
	// (the last value preempts).
	rare  *rapid.Generator[int]
	steer func(d *Decision) bool
	gens  map[int]*rapid.Generator[int] // by number of choices
}

func (r *rapidChooser) Choose(d *Decision) int {
	n := len(d.Candidates)
	if d.CurrentRunnable {
		// steer is asked only where its answer matters.
		steered := r.steer != nil && (d.Point == locking.PointLockHeld || r.rare != nil) && r.steer(d)
		if d.Point == locking.PointLockHeld && !steered {
			return 0
		}
		if r.rare != nil && !steered {
			if r.rare.Draw(r.t, "preempt-rare") != 31 {
				return 0
			}
		} else if r.preempt.Draw(r.t, "preempt") != 3 {
			return 0
		}
		return 1 + r.pick(n-1)
	}
	return r.pick(n)
}

// pick draws an index in [0, n).
func (r *rapidChooser) pick(n int) int {
	if n <= 1 {
		return 0
	}
	g := r.gens[n]
	if g == nil {
		g = rapid.IntRange(0, n-1)
		r.gens[n] = g
	}
	return g.Draw(r.t, "sched")
}

// Replay returns a Chooser that makes the choices in order, then 0 (no
// preemption) once they run out; a choice out of range is taken modulo the
// number of candidates.
func Replay(choices []int) Chooser { return &replayChooser{choices: choices} }

type replayChooser struct {
	choices []int
	i       int
}

func (r *replayChooser) Choose(d *Decision) int {
	if r.i >= len(r.choices) {
		return 0
	}
	c := r.choices[r.i]
	r.i++
	if c < 0 {
		c = -c
	}
	return c % len(d.Candidates)
}

// Func adapts a function to a Chooser.
type Func func(d *Decision) int

// Choose calls f.
func (f Func) Choose(d *Decision) int { return f(d) }
