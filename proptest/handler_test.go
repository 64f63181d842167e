package proptest

import (
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/liveupdate"
	"luomodel/model"
)

// handlerSkip leaves out every action of the in-kernel face
// (gen_handler.go) and its fault actions.
func handlerSkip() map[string]bool {
	skip := map[string]bool{}
	for _, a := range HandlerActions() {
		skip[a.Name] = true
	}
	for _, n := range []string{"fault_freeze_nth", "fault_can_finish_nth", "fault_kho_finalize_test", "fault_flb_preserve", "fault_flb_retrieve"} {
		skip[n] = true
	}
	return skip
}

// runSkipping is randomRun with the actions in skip left out; it returns
// the number of operations.
func runSkipping(tb testing.TB, src Source, steps int, stats *Stats, skip map[string]bool) int {
	tb.Helper()
	r, err := newRun(tb, true, stats, skip)
	if err != nil {
		tb.Fatal(err)
	}
	for range steps {
		if r.step(src) {
			r.checkInvariants()
		}
	}
	r.teardown()
	return r.e.TraceLen()
}

// TestCampaignReachesCallbacks runs a few checks from a fixed seed and
// requires the callback cells a live update of test files reaches: every
// handler callback succeeding, a can_finish refusal and FLB finish.
func TestCampaignReachesCallbacks(t *testing.T) {
	stats := NewStats()
	src := prngSource{rand.New(rand.NewPCG(12, 12))}
	for range 30 {
		runSkipping(t, src, benchSteps, stats, nil)
	}
	miss := stats.MissingCalls()
	for _, cell := range []string{
		"test.can_preserve/true", "test.preserve/OK", "test.freeze/OK", "test.retrieve/OK",
		"test.can_finish/true", "test.finish/OK", "flb.preserve/OK", "flb.retrieve/OK", "flb.finish/OK",
		"memfd.can_preserve/true", "memfd.preserve/OK", "memfd.freeze/OK", "memfd.retrieve/OK", "memfd.finish/OK",
	} {
		require.NotContains(t, miss, cell)
	}
}

// TestMemfdCallsCompared: LUO's calls into the memfd handler are compared
// with the model's after every operation. A kexec of three preserved
// memfds shows their freezes, in preservation order, under the reboot;
// one memfd callback too many (an unpreserve LUO's recorder saw during
// the kexec) is a CallMismatch naming it.
func TestMemfdCallsCompared(t *testing.T) {
	e, do := hostileEnv(t)
	do(model.Op{Kind: model.OpKexec})
	got := e.trace[len(e.trace)-1].calls
	require.Equal(t, []model.Call{
		{Handler: model.MemfdCompatible, Name: model.CbFreeze, File: model.ObjRef{Session: "a", Token: 1}},
		{Handler: model.MemfdCompatible, Name: model.CbFreeze, File: model.ObjRef{Session: "a", Token: 2}},
		{Handler: model.MemfdCompatible, Name: model.CbFreeze, File: model.ObjRef{Session: "b", Token: 3}},
	}, got)

	e, _ = hostileEnv(t)
	fh := e.M.Kernel().MemfdHandler()
	e.calls.RecordCallback(liveupdate.Callback{Op: liveupdate.CallUnpreserve, Handler: fh, Session: "a", Token: 2})
	_, err := e.Exec(model.Op{Kind: model.OpKexec})
	var mm *CallMismatch
	require.ErrorAs(t, err, &mm)
	require.Contains(t, err.Error(), `memfd-v1.unpreserve("a"/2) = 0`)
	require.Len(t, mm.Port, 4)
	require.Len(t, mm.Model, 3)
}

// TestTestModuleReceivesLUOsCalls: a call LUO records into a test FLB
// that the test module never received (as a call bypassing the seam would
// look from the other side) fails the step.
func TestTestModuleReceivesLUOsCalls(t *testing.T) {
	e, _ := hostileEnv(t)
	flb := &liveupdate.FLB{Compatible: "liveupdate-test-flb-v0"}
	e.calls.RecordCallback(liveupdate.Callback{Op: liveupdate.CallFLBRetrieve, FLB: flb})
	_, err := e.Exec(model.Op{Kind: model.OpNewTask})
	require.ErrorContains(t, err, "LUO called flb liveupdate-test-flb-v0.retrieve() = 0, the test module received no such callback")
}

// BenchmarkLockstepHandlerSteps measures steps/s of the lockstep machine
// with the whole action set, test-handler actions included (every
// operation's callback trace compared).
func BenchmarkLockstepHandlerSteps(b *testing.B) { benchSkipping(b, nil) }

// BenchmarkLockstepNoHandlerSteps is the same without the test-handler
// actions (the campaign as it was before them; traces are still
// compared, and empty).
func BenchmarkLockstepNoHandlerSteps(b *testing.B) { benchSkipping(b, handlerSkip()) }

func benchSkipping(b *testing.B, skip map[string]bool) {
	steps, i := 0, 0
	start := time.Now()
	for b.Loop() {
		steps += runSkipping(b, benchSource(i), benchSteps, nil, skip)
		i++
	}
	b.ReportMetric(float64(steps)/time.Since(start).Seconds(), "steps/s")
}

// TestProbeRegisterOps runs the registration probe in lockstep on what a
// module may pass: every op left out in turn, an FLB of a handler never
// registered, with good and bad compatibles. The port must answer as the
// model predicts (EINVAL for a required op, a WARN for an FLB's), and
// file exactly the WARNs the model counts.
func TestProbeRegisterOps(t *testing.T) {
	r, err := newRun(t, true, nil, nil)
	require.NoError(t, err)
	task := liveTasks(&r.e.S)[0]
	require.Zero(t, r.exec(model.Op{Kind: model.OpInitModule, Task: task, Name: model.TestModuleName}).Errno)
	seen := map[syscall.Errno]bool{}
	for _, flb := range []int{0, 1} {
		for _, missing := range append(model.ProbeOps(flb != 0), "") {
			for _, compat := range []string{"probe-v1", strings.Repeat("p", model.HandlerCompatLength)} {
				for _, unregistered := range []int{0, flb} {
					op := model.Op{Kind: model.OpTestCtl, TestCmd: model.TestCmdProbeRegister, Name: compat, Nth: flb, Callback: missing, FLB: unregistered}
					seen[r.exec(op).Errno] = true
					r.checkInvariants()
				}
			}
		}
	}
	require.Equal(t, map[syscall.Errno]bool{0: true, syscall.EINVAL: true}, seen)
	require.Positive(t, r.e.S.Warns, "the FLB probes without a required op WARN")
	r.teardown()
}
