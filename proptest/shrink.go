package proptest

import (
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"luomodel/model"
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
// records every step's choices (the values its Source returned) and its
// named ones (its action, a hostile hand-over's kind); a candidate is
// replayed from them on a fresh machine: a named choice takes the
// recorded name where it may (removing a step before it changes the
// weights and lists that a drawn choice indexes), a missing choice reads
// as 0 and one out of range wraps. A candidate is kept if it fails
// at the same place of the checker, the same way (failurePlace, as rapid
// compares tracebacks), and is smaller: fewer operations, then fewer
// steps, then smaller choices. Replays stop at the failure, so the steps
// after it are gone at once. The passes, repeated while one shortens the
// trace and the budget lasts: remove each heavy step (the most operations
// first: a limit action, a kexec with its flow), then whole kernels (the
// steps from a kexec to a later one, the longest first), then halves,
// quarters, ... of the steps (a session's whole flow), then single steps (each
// removal also tried with the later steps running what their choices now
// stand for: a flow's step that preserved a file may kexec once the file
// is gone), then split each step of several operations into its
// operations, run as they are, if the check still fails the same way (a
// fill of the session table whose one create matters: the next round of
// removals drops the others), then lower each choice (to 0, else halve
// it: the simpler action, the first fd, the first free name). Identical candidates are
// replayed once. It is deterministic, so the replay command that the
// report prints shrinks the same way to the same trace (unless the budget
// cut it).

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

// stepRec is one step of a check as the shrinker replays it: the named
// choices it made (its action first) and every choice it drew; or, for a
// step the shrinker split out of a compound one (expand), the one
// operation it runs as it is.
type stepRec struct {
	names []string
	draws []draw
	op    *model.Op
}

// draw is one drawn choice and its label.
type draw struct {
	label string
	v     int
}

// namedChoices is a Source that records or replays choices among named
// alternatives by name (run.step's action, a hostile hand-over's kind).
type namedChoices interface {
	// choose returns which of names to take, given the one drawn (i);
	// ok says which may be taken.
	choose(names []string, i int, ok func(j int) bool) int
}

// choose is src's choice among names, given the one drawn (i).
func choose(src Source, names []string, i int, ok func(j int) bool) int {
	if n, is := src.(namedChoices); is {
		return n.choose(names, i, ok)
	}
	return i
}

// recordingSource records the named and the drawn choices of each step
// of a check.
type recordingSource struct {
	src   Source
	steps []stepRec
}

// startStep begins the record of a step; a nil source records nothing.
func (s *recordingSource) startStep() {
	if s != nil {
		s.steps = append(s.steps, stepRec{})
	}
}

func (s *recordingSource) Intn(n int, label string) int {
	v := s.src.Intn(n, label)
	if k := len(s.steps); k > 0 {
		s.steps[k-1].draws = append(s.steps[k-1].draws, draw{label, v})
	}
	return v
}

func (s *recordingSource) choose(names []string, i int, _ func(int) bool) int {
	if k := len(s.steps); k > 0 {
		s.steps[k-1].names = append(s.steps[k-1].names, names[i])
	}
	return i
}

// replaySource replays a step's recorded choices: a named choice takes
// the recorded name where it may (removing a step before it changes the
// weights and the lists that a drawn choice indexes); a drawn choice takes
// the next recorded one with its label (a choice drawn only in some
// states does not shift the others), 0 if there is none, wrapped if out
// of range; used is what it returned.
type replaySource struct {
	rec  stepRec
	next int // the recorded draws before it are used or skipped
	used stepRec
}

func (s *replaySource) choose(names []string, i int, ok func(int) bool) int {
	if k := len(s.used.names); k < len(s.rec.names) {
		for j, n := range names {
			if n == s.rec.names[k] && ok(j) {
				i = j
				break
			}
		}
	}
	s.used.names = append(s.used.names, names[i])
	return i
}

func (s *replaySource) Intn(n int, label string) int {
	v := 0
	for j := s.next; j < len(s.rec.draws); j++ {
		if s.rec.draws[j].label == label {
			v, s.next = s.rec.draws[j].v, j+1
			break
		}
	}
	if n <= 1 {
		v = 0
	} else if v >= n {
		v %= n
	}
	s.used.draws = append(s.used.draws, draw{label, v})
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
	steps   []stepRec
	stepOps []int
	ops     [][]model.Op // each step's operations
	kexecs  []int        // the steps that ran a kexec, in order
	f       *failure
}

// heaviestFirst returns the indexes of c's steps, the most operations
// first (stable).
func (c *candidate) heaviestFirst() []int {
	order := make([]int, len(c.steps))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return c.stepOps[b] - c.stepOps[a] })
	return order
}

// draws is the sum of the choices: the last measure of size.
func (c *candidate) draws() int {
	n := 0
	for _, s := range c.steps {
		for _, d := range s.draws {
			n += d.v
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

// key encodes a check's steps.
func key(steps []stepRec) string {
	var b strings.Builder
	for _, s := range steps {
		if s.op != nil {
			b.WriteString(model.Format(*s.op, model.Result{}))
			b.WriteByte(';')
			continue
		}
		b.WriteString(strings.Join(s.names, "/"))
		for _, d := range s.draws {
			b.WriteByte(',')
			b.WriteString(strconv.Itoa(d.v))
		}
		b.WriteByte(';')
	}
	return b.String()
}

// replay runs a check from its steps' choices on a fresh machine, in
// lockstep, up to its failure.
func (sh *shrinker) replay(steps []stepRec) *candidate {
	tb := &replayTB{}
	c := &candidate{}
	var r *run
	var cur *replaySource
	before := 0
	// ran records what step i did.
	ran := func(i int) {
		c.steps = append(c.steps, cur.used)
		c.stepOps = append(c.stepOps, r.e.TraceLen()-before)
		ops := make([]model.Op, 0, r.e.TraceLen()-before)
		kexec := false
		for _, e := range r.e.trace[before:] {
			ops = append(ops, e.op)
			kexec = kexec || e.op.Kind == model.OpKexec
		}
		c.ops = append(c.ops, ops)
		if kexec {
			c.kexecs = append(c.kexecs, i)
		}
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				if _, ok := p.(replayStop); !ok {
					tb.failure = &failure{where: fmt.Sprintf("panic: %v", p), report: fmt.Sprint(p)}
				}
			}
			if cur != nil { // failed inside the step
				ran(len(c.steps))
			}
		}()
		var err error
		if r, err = newRun(tb, true, nil, sh.skip); err != nil {
			tb.failure = &failure{where: "boot: " + err.Error()}
			return
		}
		r.plant = sh.plant
		r.checkInvariants()
		for i, d := range steps {
			cur, before = &replaySource{rec: d, used: stepRec{op: d.op}}, r.e.TraceLen()
			ok := r.step(cur)
			ran(i)
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
func (sh *shrinker) shrunk(steps []stepRec, f failure) string {
	k := key(steps) + "\n" + f.where
	if rep, ok := sh.done[k]; ok {
		return rep
	}
	rep := sh.shrink(steps, f)
	sh.done[k] = rep
	return rep
}

func (sh *shrinker) shrink(steps []stepRec, f failure) string {
	deadline := time.Now().Add(sh.budget)
	best := sh.replay(steps)
	replays := 1
	if best.f == nil || best.f.where != f.where {
		return f.report + "\n\n(not shrunk: its replay did not fail the same way)"
	}
	tried := map[string]bool{key(best.steps): true}
	// replayIf replays steps unless tried before, and keeps them if they
	// fail the same way and better says they improve on best.
	replayIf := func(steps []stepRec, better func(c *candidate) bool) bool {
		k := key(steps)
		if tried[k] || time.Now().After(deadline) {
			return false
		}
		tried[k] = true
		replays++
		c := sh.replay(steps)
		if c.f == nil || c.f.where != f.where || !better(c) {
			return false
		}
		best = c
		return true
	}
	// try keeps steps if they are smaller; trySame if they run no more
	// operations (a split has more steps, and drops none yet).
	try := func(steps []stepRec) bool { return replayIf(steps, func(c *candidate) bool { return c.smaller(best) }) }
	trySame := func(steps []stepRec) bool {
		return replayIf(steps, func(c *candidate) bool { return c.f.ops <= best.f.ops })
	}
	// remove tries best without steps [i, j): its later steps run their
	// recorded actions, or failing that what their choices now stand for
	// (a step of a flow that did one thing in the failing check may do
	// another, e.g. a kexec once the files before it are gone).
	remove := func(i, j int) bool {
		c := append(slices.Clone(best.steps[:i]), best.steps[j:]...)
		if try(c) {
			return true
		}
		for k := i; k < len(c); k++ {
			c[k].names = nil
		}
		return try(c)
	}
	// The structure first (steps), then the choices; again while the
	// choices shortened the trace.
	for progress := true; progress && time.Now().Before(deadline); {
		ops, steps := best.f.ops, len(best.steps)
		// Heavy steps, the most operations first.
		for again := true; again; {
			again = false
			order := best.heaviestFirst()
			for _, i := range order {
				if best.stepOps[i] < 4 {
					break
				}
				if remove(i, i+1) {
					again = true
					break
				}
			}
		}
		// Whole kernels: the steps from a kexec up to a later one (or
		// from the start), the longest first.
		for again := true; again; {
			again = false
			bounds := append(append([]int{0}, best.kexecs...), len(best.steps))
			type span struct{ i, j int }
			var spans []span
			for a := range bounds {
				for b := a + 1; b < len(bounds); b++ {
					if bounds[a] < bounds[b] && bounds[b]-bounds[a] > 1 {
						spans = append(spans, span{bounds[a], bounds[b]})
					}
				}
			}
			slices.SortStableFunc(spans, func(x, y span) int { return (y.j - y.i) - (x.j - x.i) })
			for _, sp := range spans {
				if remove(sp.i, sp.j) {
					again = true
					break
				}
			}
		}
		// Halves, quarters, ... then single steps.
		for size := max(len(best.steps)/2, 1); size >= 1; size /= 2 {
			for i := 0; i+size <= len(best.steps); {
				if !remove(i, i+size) {
					i += size
				}
			}
		}
		// Split each compound step (a fill, a limit action, a flow) into
		// its operations, run as they are, the heaviest first, if the
		// check still fails the same way: the passes above can then
		// drop the operations that do not matter one by one. A split
		// is not smaller by itself; the operations it removes are.
		split := false
		for again := true; again && time.Now().Before(deadline); {
			again = false
			order := best.heaviestFirst()
			for _, i := range order {
				if best.stepOps[i] < 2 || best.steps[i].op != nil {
					continue
				}
				c := slices.Clone(best.steps[:i])
				for _, op := range best.ops[i] {
					c = append(c, stepRec{op: &op})
				}
				c = append(c, best.steps[i+1:]...)
				if trySame(c) {
					again, split = true, true
					break
				}
			}
		}
		// Lower each choice: to 0, else halve it while that holds.
		lower := func(i, j, w int) bool {
			c := slices.Clone(best.steps)
			c[i].draws = slices.Clone(c[i].draws)
			c[i].draws[j].v = w
			if j == 0 {
				c[i].names = nil // the lowered choice picks the action
			}
			return try(c)
		}
		at := func(i, j int) int {
			if i < len(best.steps) && j < len(best.steps[i].draws) {
				return best.steps[i].draws[j].v
			}
			return 0
		}
		// The first choice of a step is its action (the simplest
		// first): lowered, it is no longer taken by name.
		for i := 0; i < len(best.steps); i++ {
			for j := 0; i < len(best.steps) && j < len(best.steps[i].draws); j++ {
				v := at(i, j)
				if j == 0 && best.steps[i].names != nil && lower(i, 0, v) {
					continue // the action its choice now stands for
				}
				if v == 0 || lower(i, j, 0) {
					continue
				}
				for at(i, j) > 1 && lower(i, j, at(i, j)/2) {
				}
			}
		}
		progress = best.f.ops < ops || len(best.steps) < steps || split
	}
	return fmt.Sprintf("%s\n\n(shrunk by the checker from %d to %d operations in %d replays)", best.f.report, f.ops, best.f.ops, replays)
}
