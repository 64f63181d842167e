package sched

// DFS enumerates schedules exhaustively, depth first, with at most Bound
// preemptions each (iterative context bounding, Musuvathi and Qadeer, PLDI
// 2007): most concurrency bugs need very few preemptions, and the number of
// schedules with at most b preemptions grows polynomially, not
// exponentially, with the length of the run. Use it on tiny configurations
// (two or three short tasks); the run must be deterministic given its
// choices.
//
//	x := sched.NewDFS(2)
//	for x.Next() {
//		s := sched.New(dom, sched.Options{Chooser: x})
//		... s.Run() ...
//	}
type DFS struct {
	bound  int
	prefix []dfsChoice // the schedule being replayed
	trace  []dfsChoice // the choices of the current run
	pos    int
	runs   int
	done   bool
}

type dfsChoice struct {
	c, n    int
	preempt bool // the current task was runnable: c > 0 preempts it
}

// NewDFS returns an explorer of the schedules with at most bound
// preemptions.
func NewDFS(bound int) *DFS { return &DFS{bound: bound} }

// Runs returns how many schedules Next has started.
func (x *DFS) Runs() int { return x.runs }

// Next prepares the next schedule; false once every schedule within the
// bound has been run.
func (x *DFS) Next() bool {
	if x.done {
		return false
	}
	if x.runs > 0 {
		if !x.backtrack() {
			x.done = true
			return false
		}
	}
	x.trace, x.pos = x.trace[:0], 0
	x.runs++
	return true
}

// backtrack turns the last run's trace into the next prefix: the deepest
// choice that can still be incremented within the preemption bound.
func (x *DFS) backtrack() bool {
	t := x.trace
	pre := make([]int, len(t)+1) // pre[i]: preemptions in t[:i]
	for i, c := range t {
		pre[i+1] = pre[i]
		if c.preempt && c.c > 0 {
			pre[i+1]++
		}
	}
	for i := len(t) - 1; i >= 0; i-- {
		c := t[i]
		if c.c+1 >= c.n {
			continue
		}
		cost := pre[i]
		if c.preempt {
			cost++
		}
		if cost > x.bound {
			continue
		}
		x.prefix = append(append(x.prefix[:0], t[:i]...), dfsChoice{c: c.c + 1, n: c.n, preempt: c.preempt})
		return true
	}
	return false
}

// Choose implements Chooser: replay the prefix, then never preempt.
func (x *DFS) Choose(d *Decision) int {
	c := 0
	if x.pos < len(x.prefix) {
		c = x.prefix[x.pos].c
		if c >= len(d.Candidates) {
			c = 0 // the run diverged from its prefix: not deterministic
		}
	}
	x.pos++
	x.trace = append(x.trace, dfsChoice{c: c, n: len(d.Candidates), preempt: d.CurrentRunnable})
	return c
}
