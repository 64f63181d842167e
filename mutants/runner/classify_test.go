package runner

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/bug"
	"luomodel/kernel/kho"
	"luomodel/model"
	"luomodel/proptest"
	"luomodel/proptest/account"
	"luomodel/proptest/concurrent"
)

// rapidFail is how rapid prints a failed property (the lockstep
// campaign's t.Fatalf message).
func rapidFail(msg string) string {
	return "--- FAIL: TestLockstep (0.52s)\n    lockstep_test.go:20: [rapid] failed after 7 tests: " + msg + "\n"
}

// TestClassifyEveryChecker feeds the classifier one output of every
// checker, built by the checkers' own code where it can be (reports,
// the lockstep mismatch, every port check's name, the ledger, the
// concurrent checker's failure account): none may be "unknown", and each
// must name the checker that printed it.
func TestClassifyEveryChecker(t *testing.T) {
	kindClass := map[bug.Kind]Class{
		bug.KindWarn: ClassWarn, bug.KindLockdep: ClassLockdep, bug.KindDeadlock: ClassDeadlock,
		bug.KindKASAN: ClassKASAN, bug.KindUAF: ClassUAF, bug.KindLeak: ClassLeak, bug.KindRace: ClassRace,
	}
	type sample struct {
		what string
		out  string
		want Class
	}
	var samples []sample
	for k, c := range kindClass {
		r := &bug.Report{Kind: k, Title: "something", Detail: "detail"}
		samples = append(samples, sample{"report " + string(k), rapidFail(fmt.Sprintf("the kernel filed 1 report(s); first:\n%s", r)), c})
	}
	oops := &bug.Report{Kind: bug.KindWarn, Title: "panic in syscall ioctl: runtime error"}
	samples = append(samples, sample{"oops", rapidFail(fmt.Sprintf("the kernel filed 1 report(s); first:\n%s", oops)), ClassOops})

	op := model.Op{Kind: model.OpClose, Task: 1, FD: 3}
	mm := &proptest.Mismatch{Op: op, Port: model.Result{Errno: syscall.EBADF}, Model: model.Result{}}
	samples = append(samples, sample{"lockstep result", rapidFail(mm.Error()), ClassLockstep})

	for _, name := range proptest.PortCheckNames() {
		want := ClassInvariant
		if strings.HasPrefix(name, "model:") {
			want = ClassLockstep // the port's state against the model's
		}
		samples = append(samples, sample{"port check " + name, rapidFail(name + ": port 1, model 2"), want})
	}
	samples = append(samples,
		sample{"model invariant", rapidFail("model invariant: S2: name twice"), ClassInvariant},
		sample{"model files", rapidFail("model: 2 files alive after every task exited"), ClassLeak},
		sample{"warn count", rapidFail("the kernel filed 2 refcount WARN(s), the model predicts 1"), ClassWarn},
		sample{"port files", rapidFail("leak: 1 file(s) alive after every task exited; first: memfd"), ClassLeak},
	)

	led := &account.Ledger{Outgoing: []account.Entry{{Block: kho.Block{PA: 0x5000}, State: account.Leaked}}}
	samples = append(samples, sample{"ledger", rapidFail(fmt.Sprintf("%v\n\nledger:\n%s", led.Err(), led)), ClassLeak})
	led = &account.Ledger{LiveFiles: []string{"memfd:m0"}}
	samples = append(samples, sample{"ledger files", rapidFail(led.Err().Error()), ClassLeak})

	// The concurrent campaign prints "FAIL: " and the failure's account
	// (luo check), or rapid's fatal message, its category (go test).
	for _, c := range []struct {
		cat, what string
		want      Class
	}{
		{"not linearizable", "history is not linearizable against the model", ClassLinear},
		{"invariant: S1: count 1, list 2", "invariant at the quiescent point: S1: count 1, list 2", ClassInvariant},
		{"locks held at the quiescent point", "locks held at the quiescent point: [{Task:7}]", ClassLockdep},
		{"fd table: an fd reserved outside any syscall", "fd table: an fd reserved outside any syscall: the child of a fork, right after it: fds [5] reserved but not installed (installed: [0 1 2 3 4])", ClassLeak},
		{"kexec after the round failed", "kexec after the round: device or resource busy", ClassLockstep},
		{"machine halted", "machine halted: kernel panic", ClassOops},
		{"a task panicked", "a task failed: task T1 panicked: boom\ngoroutine 9 [running]:", ClassPanic},
		{"livelock (scheduling point limit)", "a task failed: sched: more than 100000 scheduling points (livelock?)", ClassDeadlock},
		{"internal: no complete linearization", "internal: no complete linearization of a linearizable history", ClassPanic},
		{"kernel report: uaf: use-after-free", "the kernel filed a report:\n" + (&bug.Report{Kind: bug.KindUAF, Title: "use-after-free"}).String(), ClassUAF},
	} {
		f := &concurrent.Failure{Category: c.cat, What: c.what, Round: 1, Trace: "setup (sequential):\n"}
		samples = append(samples,
			sample{"concurrent " + c.cat, "luo check (concurrent): checks=1\n\nFAIL: " + f.Error(), c.want},
			sample{"concurrent test " + c.cat, rapidFail(f.Category) + "Failed test output:\n" + f.Error(), c.want})
	}
	samples = append(samples,
		sample{"race detector", "==================\nWARNING: DATA RACE\nRead at 0x00c0 by goroutine 7:", ClassRace},
		sample{"go-deadlock", "go-deadlock: POTENTIAL DEADLOCK:\nPrevious place where the lock was grabbed", ClassDeadlock},
		sample{"testify", "    Error Trace:\tx_test.go:12\n    Error:      \tNot equal", ClassAssert},
		sample{"go test timeout", "panic: test timed out after 10s", ClassTimeout},
	)
	for _, s := range samples {
		got := Classify(s.out, false)
		require.NotEqual(t, ClassUnknown, got, "%s:\n%s", s.what, s.out)
		require.Equal(t, s.want, got, "%s:\n%s", s.what, s.out)
	}
}
