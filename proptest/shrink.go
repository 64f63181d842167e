package proptest

import (
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file is the lockstep campaign's own shrinking of a failing check
// (LockstepShrinking; luo check runs it with rapid's shrinking off).
//
// rapid shrinks by editing the bits it drew and replaying the whole check
// for each edit: about twenty thousand replays for one failure of the
// campaign, most of them lowering single 53-bit floats (each step's "one
// more?" coin and rapid's integer bias) bit by bit, or swapping same-kind
// draws pairwise, while the failing check still carried every step before
// the failure (a limit action of a thousand operations replayed each
// time). It took the 30 s cap for most mutants of the zoo, with the
// failure found in milliseconds.
//
// This shrinker works on what a reviewer reads: the steps. The check
// records every step's choices (the values its Source returned); a
// candidate is replayed from them on a fresh machine, a step's missing
// choices read as 0 and out-of-range ones wrap. A candidate is kept if it
// fails at the same place of the checker, the same way (failurePlace, as
// rapid compares tracebacks), and is smaller: fewer operations, then
// fewer steps, then smaller choices. Replays stop at the failure, so the
// steps after it are gone at once. The passes, repeated while one makes
// progress and the budget lasts: remove each heavy step (the most
// operations first: a limit action, a kexec with its flow), then halves,
// quarters, ... of the steps (a session's whole flow), then single steps,
// then lower each choice (to 0, half, one less: the simpler action, the
// first fd, the first free name). Identical candidates are replayed once.
// It is deterministic, so the replay command that the report prints
// shrinks the same way to the same trace (unless the budget cut it).

// failure is a failed check as run.fail reports it.
type failure struct {
	// where is the check that failed: the call path in the checker and
	// the message's kind (failurePlace).
	where  string
	ops    int    // operations in the trace
	report string // what the check reports: message and trace
}

// failurePlace identifies a failure of a check: the call path from
// run.fail's caller up to the step, invariant check, teardown or boot it
// happened in (the frames rapid's traceback compares, without those of
// the driver around them), and the message up to its first colon (which
// invariant, a disagreement, a leak).
func failurePlace(msg string) string {
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs)])
	var b strings.Builder
	if kind, _, ok := strings.Cut(msg, ":"); ok {
		b.WriteString(kind)
		b.WriteByte('\n')
	}
	for {
		f, more := frames.Next()
		b.WriteString(f.Function)
		switch f.Function {
		case "luomodel/proptest.(*run).step", "luomodel/proptest.(*run).checkInvariants",
			"luomodel/proptest.(*run).teardown", "luomodel/proptest.newRunWeighted":
			return b.String()
		}
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(f.Line))
		b.WriteByte('\n')
		if !more {
			return b.String()
		}
	}
}

// recordingSource records the choices of each step of a check.
type recordingSource struct {
	src   Source
	steps [][]int
}

// startStep begins the record of a step; a nil source records nothing.
func (s *recordingSource) startStep() {
	if s != nil {
		s.steps = append(s.steps, nil)
	}
}

func (s *recordingSource) Intn(n int, label string) int {
	v := s.src.Intn(n, label)
	if k := len(s.steps); k > 0 {
		s.steps[k-1] = append(s.steps[k-1], v)
	}
	return v
}

// replaySource replays a step's recorded choices: missing ones are 0,
// those out of range wrap. used is what it returned.
type replaySource struct {
	draws []int
	used  []int
}

func (s *replaySource) Intn(n int, _ string) int {
	v := 0
	if i := len(s.used); i < len(s.draws) {
		v = s.draws[i]
	}
	if n <= 1 {
		v = 0
	} else if v >= n {
		v %= n
	}
	s.used = append(s.used, v)
	return v
}

// replayTB is the fataler of a replayed check: it keeps the failure and
// unwinds the check.
type replayTB struct{ failure *failure }

// replayStop unwinds a replayed check after its failure.
type replayStop struct{}

func (*replayTB) Helper() {}

// fail records f; run.fail calls it before Fatalf.
func (tb *replayTB) fail(f failure) { tb.failure = &f }

func (tb *replayTB) Fatalf(format string, args ...any) {
	if tb.failure == nil {
		msg := fmt.Sprintf(format, args...)
		tb.failure = &failure{where: "fatal: " + msg, report: msg}
	}
	panic(replayStop{})
}

// candidate is a replayed check: the choices each step used, the
// operations each ran, and how it failed (nil: it passed).
type candidate struct {
	steps   [][]int
	stepOps []int
	f       *failure
}

// draws is the sum of the choices: the last measure of size.
func (c *candidate) draws() int {
	n := 0
	for _, s := range c.steps {
		for _, v := range s {
			n += v
		}
	}
	return n
}

// smaller says whether c is smaller than d: fewer operations, then fewer
// steps, then smaller choices.
func (c *candidate) smaller(d *candidate) bool {
	if c.f.ops != d.f.ops {
		return c.f.ops < d.f.ops
	}
	if len(c.steps) != len(d.steps) {
		return len(c.steps) < len(d.steps)
	}
	return c.draws() < d.draws()
}

// shrinker shrinks the failures of one property's checks. Not locked: a
// property runs one check at a time.
type shrinker struct {
	skip   map[string]bool
	budget time.Duration
	plant  func(*run) error // tests: run.plant of every check
	// done maps a failed check (its choices and failure place) to its
	// shrunk report: rapid runs a failing check three times (found,
	// reproduced, reported) and each must report the same.
	done map[string]string
}

func newShrinker(skip map[string]bool, budget time.Duration) *shrinker {
	return &shrinker{skip: skip, budget: budget, done: map[string]string{}}
}

// key encodes a check's choices.
func key(steps [][]int) string {
	var b strings.Builder
	for _, s := range steps {
		for _, v := range s {
			b.WriteString(strconv.Itoa(v))
			b.WriteByte(',')
		}
		b.WriteByte(';')
	}
	return b.String()
}

// replay runs a check from its steps' choices on a fresh machine, in
// lockstep, up to its failure.
func (sh *shrinker) replay(steps [][]int) *candidate {
	tb := &replayTB{}
	c := &candidate{}
	var r *run
	var cur *replaySource
	before := 0
	func() {
		defer func() {
			if p := recover(); p != nil {
				if _, ok := p.(replayStop); !ok {
					tb.failure = &failure{where: fmt.Sprintf("panic: %v", p), report: fmt.Sprint(p)}
				}
			}
			if cur != nil { // failed inside the step
				c.steps = append(c.steps, cur.used)
				c.stepOps = append(c.stepOps, r.e.TraceLen()-before)
			}
		}()
		var err error
		if r, err = newRun(tb, true, nil, sh.skip); err != nil {
			tb.failure = &failure{where: "boot: " + err.Error()}
			return
		}
		r.plant = sh.plant
		r.checkInvariants()
		for _, d := range steps {
			cur, before = &replaySource{draws: d}, r.e.TraceLen()
			ok := r.step(cur)
			c.steps = append(c.steps, cur.used)
			c.stepOps = append(c.stepOps, r.e.TraceLen()-before)
			cur = nil
			if ok {
				r.checkInvariants()
			}
		}
		r.teardown()
	}()
	c.f = tb.failure
	return c
}

// shrunk returns the report of the smallest check found that fails as f
// did, from the choices of the check that failed.
func (sh *shrinker) shrunk(steps [][]int, f failure) string {
	k := key(steps) + "\n" + f.where
	if rep, ok := sh.done[k]; ok {
		return rep
	}
	rep := sh.shrink(steps, f)
	sh.done[k] = rep
	return rep
}

func (sh *shrinker) shrink(steps [][]int, f failure) string {
	deadline := time.Now().Add(sh.budget)
	best := sh.replay(steps)
	replays := 1
	if best.f == nil || best.f.where != f.where {
		return f.report + "\n\n(not shrunk: its replay did not fail the same way)"
	}
	tried := map[string]bool{key(best.steps): true}
	// try replays steps unless tried before; it keeps them if they fail
	// the same way and are smaller.
	try := func(steps [][]int) bool {
		k := key(steps)
		if tried[k] || time.Now().After(deadline) {
			return false
		}
		tried[k] = true
		replays++
		c := sh.replay(steps)
		if c.f == nil || c.f.where != f.where || !c.smaller(best) {
			return false
		}
		best = c
		return true
	}
	without := func(i, j int) [][]int {
		return append(slices.Clone(best.steps[:i]), best.steps[j:]...)
	}
	// The structure first (steps), then the choices; again while the
	// choices shortened the trace.
	for progress := true; progress && time.Now().Before(deadline); {
		ops, steps := best.f.ops, len(best.steps)
		// Heavy steps, the most operations first.
		for again := true; again; {
			again = false
			order := make([]int, len(best.steps))
			for i := range order {
				order[i] = i
			}
			slices.SortStableFunc(order, func(a, b int) int { return best.stepOps[b] - best.stepOps[a] })
			for _, i := range order {
				if best.stepOps[i] < 4 {
					break
				}
				if try(without(i, i+1)) {
					again = true
					break
				}
			}
		}
		// Halves, quarters, ... then single steps.
		for size := max(len(best.steps)/2, 1); size >= 1; size /= 2 {
			for i := 0; i+size <= len(best.steps); {
				if !try(without(i, i+size)) {
					i += size
				}
			}
		}
		// Lower each choice: to 0, else halve it while that holds.
		lower := func(i, j, w int) bool {
			c := slices.Clone(best.steps)
			c[i] = slices.Clone(c[i])
			c[i][j] = w
			return try(c)
		}
		for i := 0; i < len(best.steps); i++ {
			for j := 0; i < len(best.steps) && j < len(best.steps[i]); j++ {
				if v := best.steps[i][j]; v == 0 || lower(i, j, 0) {
					continue
				}
				for i < len(best.steps) && j < len(best.steps[i]) && best.steps[i][j] > 1 && lower(i, j, best.steps[i][j]/2) {
				}
			}
		}
		progress = best.f.ops < ops || len(best.steps) < steps
	}
	return fmt.Sprintf("%s\n\n(shrunk by the checker from %d to %d operations in %d replays)", best.f.report, f.ops, best.f.ops, replays)
}
