package sched

import (
	"math/rand/v2"
	"slices"
)

// PCT is the probabilistic concurrency testing scheduler (Burckhardt,
// Kothari, Musuvathi, Nagarakatte, ASPLOS 2010): each task gets a distinct
// random priority of at least Depth; at Depth-1 random steps in [1, Steps]
// the running task's priority drops below every initial one; the runnable
// task with the highest priority always runs. A bug that needs Depth
// ordering constraints is found with probability at least
// 1/(tasks * Steps^(Depth-1)) per run.
type PCT struct {
	prio    []int // by task index
	changes []int // sorted change-point steps
	next    int   // first change point not yet applied
}

// NewPCT returns the chooser for one run of tasks tasks that reach about
// steps scheduling points, with bug depth depth (>= 1), seeded by seed.
func NewPCT(seed uint64, tasks, depth, steps int) *PCT {
	r := rand.New(rand.NewPCG(seed, 0x706374))
	depth = max(depth, 1)
	steps = max(steps, 1)
	p := &PCT{prio: make([]int, tasks)}
	for i, j := range r.Perm(tasks) {
		p.prio[i] = depth + j
	}
	for range depth - 1 {
		p.changes = append(p.changes, 1+r.IntN(steps))
	}
	slices.Sort(p.changes)
	return p
}

// Choose implements Chooser.
func (p *PCT) Choose(d *Decision) int {
	for p.next < len(p.changes) && d.Step >= p.changes[p.next] {
		if d.Current >= 0 && d.Current < len(p.prio) {
			// The i-th change point gives priority i: below every
			// initial priority and every earlier change.
			p.prio[d.Current] = len(p.changes) - 1 - p.next
		}
		p.next++
	}
	best := 0
	for i, c := range d.Candidates {
		if c < len(p.prio) && p.prio[c] > p.prio[d.Candidates[best]] {
			best = i
		}
	}
	return best
}
