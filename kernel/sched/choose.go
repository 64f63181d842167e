package sched

import (
	"pgregory.net/rapid"
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
}

// Chooser picks who runs next: an index into d.Candidates. It is called on
// the goroutine of the task that reached the point, never concurrently.
type Chooser interface {
	Choose(d *Decision) int
}

// Rapid returns a Chooser that draws every choice from t (label "sched").
// rapid shrinks draws toward 0, which keeps the current task running, so a
// failing schedule shrinks to the fewest preemptions.
func Rapid(t *rapid.T) Chooser { return &rapidChooser{t: t} }

type rapidChooser struct {
	t    *rapid.T
	gens map[int]*rapid.Generator[int] // by candidate count
}

func (r *rapidChooser) Choose(d *Decision) int {
	n := len(d.Candidates)
	g := r.gens[n]
	if g == nil {
		if r.gens == nil {
			r.gens = map[int]*rapid.Generator[int]{}
		}
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
