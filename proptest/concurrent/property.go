package concurrent

import (
	"slices"
	"sync/atomic"

	"pgregory.net/rapid"

	"luomodel/kernel/sched"
)

// Stats counts what a campaign explored; safe for concurrent use.
type Stats struct {
	Checks    atomic.Int64 // rapid test cases (machines)
	Schedules atomic.Int64 // rounds run under the scheduler (one schedule each)
	Ops       atomic.Int64 // syscalls issued by threads
	Switches  atomic.Int64
	Preempts  atomic.Int64
	// Undecided counts the checks cut short by a round whose
	// linearizability check timed out (Config.LinTimeout).
	Undecided atomic.Int64
	// CS is the critical-section coverage (cscov.go).
	CS CSCoverage
	// Out counts the instructions' results (outcomes.go).
	Out Outcomes
}

// Property returns the rapid property of the concurrent lockstep check:
// boot, hand two sessions over, then cfg.Rounds rounds of a drawn program
// run under the controlled scheduler with rapid choosing every context
// switch, each checked as described in the package doc. onFail, if not
// nil, sees every failure (the last one it sees is rapid's shrunk one).
func Property(cfg Config, stats *Stats, onFail func(*Failure)) func(*rapid.T) {
	return property(cfg, stats, onFail, true)
}

// StressProperty is Property with the threads running free on real
// goroutines (no scheduler, reboot instructions skipped): under -race, and
// with go-deadlock's watchdog on, an independent check of the same
// programs.
func StressProperty(cfg Config, stats *Stats, onFail func(*Failure)) func(*rapid.T) {
	return property(cfg, stats, onFail, false)
}

func property(cfg Config, stats *Stats, onFail func(*Failure), scheduled bool) func(*rapid.T) {
	cfg = cfg.withDefaults()
	su := &setups{}
	gens := newGenerators()
	return func(t *rapid.T) {
		c, err := newChecker(cfg, scheduled, su)
		if err != nil {
			t.Fatalf("boot and setup: %v", err)
		}
		c.steer = &CSCoverage{}
		if stats != nil {
			stats.Checks.Add(1)
			c.cov = &stats.CS
			c.out = &stats.Out
		}
		var progs []Program
		var choices [][]int
		for r := 1; r <= cfg.Rounds; r++ {
			var prog Program
			var ch sched.Chooser
			d := drawer{t, gens}
			if scheduled {
				prog = cfg.Gen.draw(d, c.steer)
				rs := sched.RapidSteered
				if d.intn(0, 1, "focused") == 1 {
					rs = sched.RapidFocused
				}
				ch = c.steered(rs(t, c.steerTo))
			} else {
				prog = cfg.Gen.draw(d, nil)
			}
			progs = append(progs, prog)
			f := c.round(r, prog, ch)
			if stats != nil {
				stats.Schedules.Add(1)
				for _, th := range prog {
					stats.Ops.Add(int64(len(th)))
				}
				if f != nil {
					stats.Switches.Add(int64(f.Switches))
				}
			}
			if f == nil {
				choices = append(choices, c.lastChoices)
				if c.undecided {
					if stats != nil {
						stats.Undecided.Add(1)
					}
					return
				}
			}
			if f != nil {
				f.attach(progs, choices)
				if onFail != nil {
					onFail(f)
				}
				// rapid shrinks only toward the same error text, so the
				// fatal message is the failure's stable category; the
				// account (addresses, paths) is logged.
				t.Logf("%v", f)
				t.Fatalf("%s", f.Category)
			}
		}
	}
}

// attach gives f, a failure of the last of progs, every round's program
// and scheduling choices: those of the rounds before (done), then its
// own, none if it failed before its schedule ran (a setup or prologue
// failure), so that Choices always has one entry per program.
func (f *Failure) attach(progs []Program, done [][]int) {
	own := f.Choices
	if len(own) == 0 {
		own = [][]int{nil}
	}
	f.Programs = progs
	f.Choices = append(slices.Clone(done), own...)
}

// Replay runs the given rounds again, each under a Replay chooser of its
// choices; it returns the failure, or nil if every round passes.
func Replay(cfg Config, progs []Program, choices [][]int) *Failure {
	return replay(cfg, nil, progs, choices, nil)
}

// replay is Replay with the last round's choices made by last instead, if
// not nil, and the setup saved in su (nil: run it).
func replay(cfg Config, su *setups, progs []Program, choices [][]int, last sched.Chooser) *Failure {
	cfg = cfg.withDefaults()
	c, err := newChecker(cfg, true, su)
	if err != nil {
		return &Failure{Category: "boot and setup failed", What: err.Error()}
	}
	var done [][]int
	for i, prog := range progs {
		var ch []int
		if i < len(choices) {
			ch = choices[i]
		}
		var chooser sched.Chooser = sched.Replay(ch)
		if last != nil && i == len(progs)-1 {
			chooser = last
		}
		if f := c.round(i+1, prog, chooser); f != nil {
			f.attach(progs[:i+1], done)
			return f
		}
		if c.undecided {
			return nil // the rounds after it cannot be checked
		}
		done = append(done, c.lastChoices)
	}
	return nil
}

// Minimize shrinks a failure further, deterministically, the way delta
// debugging does: it drops instructions of the failing round and turns
// scheduling choices to 0 (no preemption; the next task in round-robin
// order when the current one cannot run), keeping each change that still
// fails with the same category, until nothing more can go. rapid's own
// shrinking gets stuck where removing one draw shifts the meaning of the
// draws after it; replaying recorded choices has no such coupling.
func Minimize(cfg Config, f *Failure) *Failure {
	if f == nil || len(f.Programs) == 0 {
		return f
	}
	best := f
	su := &setups{}
	budget := maxMinimizeRuns
	try := func(progs []Program, choices [][]int) bool {
		if budget == 0 {
			return false
		}
		budget--
		g := replay(cfg, su, progs, choices, nil)
		if g == nil || g.Category != best.Category || len(g.Programs) != len(best.Programs) {
			return false
		}
		best = g
		return true
	}
	last := len(f.Programs) - 1
	// search looks for a failing schedule of progs with at most one
	// preemption, exhaustively up to n runs: after a program change the
	// recorded choices no longer mean the same tasks.
	search := func(progs []Program, n int) bool {
		x := sched.NewDFS(1)
		for x.Next() && n > 0 && budget > 0 {
			n--
			budget--
			g := replay(cfg, su, progs, best.Choices[:last], x)
			if g != nil && g.Category == best.Category && len(g.Programs) == len(best.Programs) && (progsSize(progs) < progsSize(best.Programs) || g.Switches < best.Switches) {
				best = g
				return true
			}
		}
		return false
	}
	for changed := true; changed && budget > 0; {
		changed = false
		// The shortest prefix of the failing round's choices that still
		// fails (replay continues with 0s), by bisection.
		lo, hi := 0, len(best.Choices[last])
		for lo < hi {
			mid := (lo + hi) / 2
			cand := cloneChoices(best.Choices)
			cand[last] = cand[last][:mid]
			if try(best.Programs, cand) {
				hi = min(mid, len(best.Choices[last]))
				changed = changed || mid < hi
			} else {
				lo = mid + 1
			}
		}
		// Drop instructions of the failing round, last first.
		for th := len(best.Programs[last]) - 1; th >= 0; th-- {
			for i := len(best.Programs[last][th]) - 1; i >= 0; i-- {
				if th >= len(best.Programs[last]) || i >= len(best.Programs[last][th]) {
					continue
				}
				cand := clonePrograms(best.Programs)
				p := cand[last]
				p[th] = append(p[th][:i:i], p[th][i+1:]...)
				if len(p[th]) == 0 {
					cand[last] = append(p[:th:th], p[th+1:]...)
				}
				if len(cand[last]) > 0 && (try(cand, best.Choices) || search(cand, dropSearchRuns)) {
					changed = true
				}
			}
		}
		// Drop a whole thread.
		if best.Switches > 3 && len(best.Programs[last]) > 2 {
			for th := len(best.Programs[last]) - 1; th >= 0 && budget > 0; th-- {
				cand := clonePrograms(best.Programs)
				cand[last] = append(cand[last][:th:th], cand[last][th+1:]...)
				if search(cand, budget) {
					changed = true
					break
				}
			}
		}
		// The same program under a schedule with at most one preemption.
		if !changed && best.Switches > 3 && search(best.Programs, budget) {
			changed = true
		}
		// Turn each remaining choice to 0, last first.
		for i := len(best.Choices[last]) - 1; i >= 0; i-- {
			if i >= len(best.Choices[last]) || best.Choices[last][i] == 0 {
				continue
			}
			cand := cloneChoices(best.Choices)
			cand[last][i] = 0
			if try(best.Programs, cand) {
				changed = true
			}
		}
	}
	return best
}

// maxMinimizeRuns bounds the replays of one Minimize, and dropSearchRuns
// the schedules searched after dropping one instruction.
const (
	maxMinimizeRuns = 1500
	dropSearchRuns  = 60
)

// progsSize counts instructions.
func progsSize(ps []Program) int {
	n := 0
	for _, p := range ps {
		for _, th := range p {
			n += len(th)
		}
	}
	return n
}

func clonePrograms(ps []Program) []Program {
	out := make([]Program, len(ps))
	for i, p := range ps {
		out[i] = make(Program, len(p))
		for j, th := range p {
			out[i][j] = append([]Instr(nil), th...)
		}
	}
	return out
}

func cloneChoices(cs [][]int) [][]int {
	out := make([][]int, len(cs))
	for i, c := range cs {
		out[i] = append([]int(nil), c...)
	}
	return out
}

// Exhaust runs one round of prog under every schedule with at most bound
// preemptions (sched.DFS), up to limit schedules, and returns how many ran;
// the first failing schedule is returned as an error (a *Failure).
func Exhaust(cfg Config, prog Program, bound, limit int) (int, error) {
	x := sched.NewDFS(bound)
	su := &setups{}
	for x.Next() {
		if x.Runs() > limit {
			return x.Runs() - 1, nil
		}
		if f := replay(cfg, su, []Program{prog}, nil, x); f != nil {
			return x.Runs(), f
		}
	}
	return x.Runs(), nil
}
