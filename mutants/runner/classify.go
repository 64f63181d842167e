package runner

import (
	"regexp"
	"strings"
	"time"
)

// Class names the check that killed a mutant.
type Class string

// Check classes, from the most specific to the most generic.
const (
	ClassLockstep  Class = "lockstep"  // port and model disagree on a result or on state
	ClassInvariant Class = "invariant" // a spec invariant (S*, F*, R*) failed
	ClassLockdep   Class = "lockdep"   // lockdep report (order, assertion, balance)
	ClassUAF       Class = "uaf"       // use of a freed LUO object
	ClassKASAN     Class = "kasan"     // access to unallocated physical memory
	ClassWarn      Class = "warn"      // WARN_ON
	ClassOops      Class = "oops"      // a Go panic reached a syscall boundary
	ClassDeadlock  Class = "deadlock"  // a wait that never ends
	ClassRace      Class = "race"      // the Go race detector
	ClassLinear    Class = "linearizability"
	ClassLeak      Class = "leak"    // an object outlived its owner
	ClassAssert    Class = "assert"  // a targeted test's assertion (errno, count)
	ClassPanic     Class = "panic"   // the checker itself panicked
	ClassTimeout   Class = "timeout" // the check ran past its budget (a hang)
	ClassUnknown   Class = "unknown" // failed, cause not recognised
	ClassBuild     Class = "build"   // the mutated tree does not compile
	classNone      Class = ""
)

// Classes lists the classes an "expect:" line may name.
var Classes = []Class{
	ClassLockstep, ClassInvariant, ClassLockdep, ClassUAF, ClassKASAN, ClassWarn,
	ClassOops, ClassDeadlock, ClassRace, ClassLinear, ClassLeak, ClassAssert,
	ClassPanic, ClassTimeout,
}

func validClass(c Class) bool {
	for _, k := range Classes {
		if k == c {
			return true
		}
	}
	return false
}

// marker is a piece of checker output and the class it reveals.
type marker struct {
	re    *regexp.Regexp
	class Class
}

// markers recognise every checker's output. bug.Report.String() prints
// "BUG (kind): title"; the lockstep campaign prints "port and model
// disagree" (a result), "model: ... agree" (the port's state against the
// model's), a count of refcount WARNs other than the model's, invariant
// names, "leak:" and the preserved-memory ledger's "account:"; the concurrent campaign its failure categories ("invariant
// at the quiescent point", "locks held at the quiescent point", "kexec
// after the round", "machine halted", a task that panicked, a livelock, an
// fd reserved outside any syscall); the
// race detector "WARNING: DATA RACE"; go-deadlock "POTENTIAL DEADLOCK";
// porcupine-based checks "linearizab"; testify "Error Trace:".
var markers = []marker{
	// (the lockstep campaign's lines start with rapidLine)
	{regexp.MustCompile(`WARNING: DATA RACE`), ClassRace},
	{regexp.MustCompile(`(panic: )?test timed out after`), ClassTimeout},
	{regexp.MustCompile(`BUG \(warn\): panic in syscall|(?m)^warn: panic in syscall`), ClassOops},
	{regexp.MustCompile(`BUG \(lockdep\)|(?m)^lockdep: `), ClassLockdep},
	{regexp.MustCompile(`BUG \(uaf\)|(?m)^uaf: `), ClassUAF},
	{regexp.MustCompile(`BUG \(kasan\)|(?m)^kasan: `), ClassKASAN},
	{regexp.MustCompile(`BUG \(warn\)|(?m)^warn: |the kernel filed \d+ refcount WARN\(s\), the model predicts \d+`), ClassWarn},
	{regexp.MustCompile(`BUG \(deadlock\)|(?m)^deadlock: |POTENTIAL DEADLOCK|all goroutines are asleep - deadlock|go-deadlock: |scheduling points \(livelock\?\)|livelock \(scheduling point limit\)`), ClassDeadlock},
	{regexp.MustCompile(`BUG \(race\)|(?m)^race: `), ClassRace},
	{regexp.MustCompile(`BUG \(leak\)|` + rapidLine + `(leak|account): |model: \d+ files alive after every task exited|fd table: an fd reserved outside any syscall`), ClassLeak},
	{regexp.MustCompile(`locks held at the quiescent point`), ClassLockdep},
	{regexp.MustCompile(`(?i)not linearizable|linearizability`), ClassLinear},
	{regexp.MustCompile(`port and model disagree|` + rapidLine + `model: [^\n]*agree: |kexec after the round`), ClassLockstep},
	{regexp.MustCompile(`model invariant:|invariant( at the quiescent point)?: [SFRLH][0-9]|` + rapidLine + `[SFRLH][0-9][^\n]*: `), ClassInvariant},
	{regexp.MustCompile(`machine halted`), ClassOops},
	{regexp.MustCompile(`Error Trace:`), ClassAssert},
	{regexp.MustCompile(`(?m)^panic: |\[recovered\]|goroutine \d+ \[running\]|a task panicked|a task failed: task \S+ panicked|internal: no complete linearization`), ClassPanic},
}

// rapidLine matches the start of a line of a failed property's message:
// rapid's "[rapid] failed after N tests: ", which go test prefixes with
// the reporting file and line.
const rapidLine = `(?m)^\s*(\S+\.go:\d+: )?(\[rapid\] failed[^:]*: )?`

// Excerpt is out from the line of its earliest marker, at most n lines:
// the report that killed the mutant, without the campaign's statistics.
func Excerpt(out string, n int) string {
	at := -1
	for _, m := range markers {
		if loc := m.re.FindStringIndex(out); loc != nil && (at < 0 || loc[0] < at) {
			at = loc[0]
		}
	}
	if at < 0 {
		return lastLines(out, n)
	}
	start := strings.LastIndexByte(out[:at], '\n') + 1
	lines := strings.SplitN(out[start:], "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

var foundRE = regexp.MustCompile(`found after (\S+), shrunk in`)

// FoundAfter is the campaign's own time to the first failing check
// ("found after D, shrunk in ..."), without shrinking; 0 if absent.
func FoundAfter(out string) time.Duration {
	m := foundRE.FindStringSubmatch(out)
	if m == nil {
		return 0
	}
	d, err := time.ParseDuration(m[1])
	if err != nil {
		return 0
	}
	return d
}

// Classify names the check whose output out is: the marker found earliest
// in the output wins, since the first report is the root cause and what
// follows is fallout. timedOut reports a run stopped at its budget.
func Classify(out string, timedOut bool) Class {
	best, bestAt := classNone, len(out)+1
	for _, m := range markers {
		if loc := m.re.FindStringIndex(out); loc != nil && loc[0] < bestAt {
			best, bestAt = m.class, loc[0]
		}
	}
	if best != classNone {
		return best
	}
	if timedOut {
		return ClassTimeout
	}
	return ClassUnknown
}
