package proptest

import (
	"flag"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"pgregory.net/rapid"

	"luomodel/model"
)

// rapidChecksSet is whether the command line or the environment sets the
// number of checks; tests leave it alone then. Written once by TestMain.
var rapidChecksSet bool

// TestMain keeps the default run short (30 checks of about 50 steps)
// unless -rapid.checks / -rapid.steps say otherwise, and checks that no
// goroutine outlives the tests.
func TestMain(m *testing.M) {
	flag.Parse()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	rapidChecksSet = set["rapid.checks"] || os.Getenv("RAPID_CHECKS") != ""
	if !rapidChecksSet {
		_ = flag.Set("rapid.checks", "30")
	}
	if !set["rapid.steps"] && os.Getenv("RAPID_STEPS") == "" {
		_ = flag.Set("rapid.steps", "50")
	}
	goleak.VerifyTestMain(m)
}

func TestLockstep(t *testing.T) {
	stats := NewStats()
	rapid.Check(t, Lockstep(stats))
	p := stats.Progress()
	t.Logf("checks=%d steps=%d kexecs=%d distinct errnos=%d", p.Checks, p.Steps, p.Kexecs, len(p.Errnos))
}

// lockstepFuzzMaxInput bounds a FuzzLockstep input. Every 8 bytes feed
// one of rapid's draws and nothing else bounds a check's length (rapid's
// Repeat stops only when its input runs out), so a grown input of a few
// hundred KiB ran thousands of steps and took seconds per execution. 4 KiB
// is 512 draws: a check of up to about a hundred steps, like a campaign's.
const lockstepFuzzMaxInput = 4 << 10

// FuzzLockstep feeds rapid's choices from the fuzzer: the lockstep
// property (which ends every check with the leak and preserved-memory
// accounting) must hold for every input, and no goroutine may outlive
// one. The seeds are fixed pseudo-random inputs of the largest size (a
// shorter input tends to run out before the check ends, which rapid
// skips).
func FuzzLockstep(f *testing.F) {
	r := rand.New(rand.NewPCG(8, 8))
	for range 4 {
		in := make([]byte, lockstepFuzzMaxInput)
		for i := range in {
			in[i] = byte(r.Uint32())
		}
		f.Add(in)
	}
	fuzz := rapid.MakeFuzz(Lockstep(nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		before := runtime.NumGoroutine()
		fuzz(t, in[:min(len(in), lockstepFuzzMaxInput)])
		for i := 0; runtime.NumGoroutine() > before; i++ {
			if i == 100 {
				buf := make([]byte, 1<<20)
				t.Fatalf("%d goroutines, %d before the input:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// prngSource draws from a seeded PRNG (benchmarks).
type prngSource struct{ r *rand.Rand }

func (p prngSource) Intn(n int, _ string) int {
	if n <= 1 {
		return 0
	}
	return p.r.IntN(n)
}

// randomRun runs one check of steps random actions on a fresh machine in
// lockstep with the model, checking the invariants after every action
// unless invariants is false, and returns the operations it executed
// (the two tasks every check starts with included) with the fault armed
// for each.
func randomRun(tb testing.TB, src Source, steps int, invariants bool, stats *Stats) []recordedOp {
	ops := []recordedOp{{Op: model.Op{Kind: model.OpNewTask}}, {Op: model.Op{Kind: model.OpNewTask}}}
	runChecked(tb, src, steps, invariants, stats, &ops)
	return ops
}

// runChecked is randomRun recording the operations in ops unless it is
// nil (as a campaign runs); it returns how many operations it executed.
func runChecked(tb testing.TB, src Source, steps int, invariants bool, stats *Stats, ops *[]recordedOp) int {
	tb.Helper()
	r, err := newRun(tb, true, stats, nil)
	if err != nil {
		tb.Fatal(err)
	}
	r.ops = ops
	for range steps {
		if r.step(src) && invariants {
			r.checkInvariants()
		}
	}
	r.teardown()
	return r.e.TraceLen()
}

// TestCampaignReachesDeepStates runs a few unchecked-by-rapid checks from
// a fixed seed and requires the deep cells a lockstep campaign exists for:
// successful retrieves, retrieves of files, finishes, and the limits.
func TestCampaignReachesDeepStates(t *testing.T) {
	stats := NewStats()
	src := prngSource{rand.New(rand.NewPCG(7, 7))}
	for range 40 {
		randomRun(t, src, benchSteps, true, stats)
	}
	for _, cell := range []string{
		"RETRIEVE_SESSION/OK", "SESSION_RETRIEVE_FD/OK", "SESSION_FINISH/OK",
		"SESSION_PRESERVE_FD/OK", "RETRIEVE_SESSION/EINVAL", "CREATE_SESSION/EEXIST",
	} {
		require.NotContains(t, stats.Missing(), cell)
	}
}

// TestRapidSourceIsUniform checks that a 3% choice is drawn about 3% of the
// time (rapid's own integers would give about 25%).
func TestRapidSourceIsUniform(t *testing.T) {
	hits, draws := 0, 0
	rapid.Check(t, func(t *rapid.T) {
		src := newRapidSource(t)
		for range 100 {
			draws++
			if chance(src, "p", 3) {
				hits++
			}
		}
	})
	require.Less(t, float64(hits)/float64(draws), 0.08, "%d of %d", hits, draws)
}

const benchSteps = 50

// benchSeqs is how many distinct checks the benchmarks cycle through; the
// i-th iteration of every benchmark runs check i%benchSeqs, from its own
// seed, so that the lockstep and the port-alone figures cover the very
// same operations.
const benchSeqs = 16

func benchSource(i int) Source {
	return prngSource{rand.New(rand.NewPCG(uint64(i%benchSeqs), 2))}
}

// BenchmarkLockstepSteps measures steps/s (operations per second) of the
// lockstep machine as the campaign runs it: port, model, comparison, and
// the invariants after every action. Like a campaign it records no
// operations for a replay.
func BenchmarkLockstepSteps(b *testing.B) { benchLockstep(b, true) }

// BenchmarkLockstepNoInvariantsSteps is BenchmarkLockstepSteps without the
// invariant checks (port, model and comparison only): the difference is
// the cost of the invariants.
func BenchmarkLockstepNoInvariantsSteps(b *testing.B) { benchLockstep(b, false) }

func benchLockstep(b *testing.B, invariants bool) {
	steps, i := 0, 0
	start := time.Now()
	for b.Loop() {
		steps += runChecked(b, benchSource(i), benchSteps, invariants, nil, nil)
		i++
	}
	b.ReportMetric(float64(steps)/time.Since(start).Seconds(), "steps/s")
}

// BenchmarkPortAloneSteps replays the operation sequences of the lockstep
// benchmarks on the port alone, each faulted operation with its fault
// armed and each hostile hand-over with its corruption: the same work
// for the port, no model, no checks.
func BenchmarkPortAloneSteps(b *testing.B) {
	var seqs []portSeq
	for i := range benchSeqs {
		seqs = append(seqs, recordPortSeq(b, benchSource(i)))
	}
	steps, i := 0, 0
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		e, err := NewEnv(false)
		if err != nil {
			b.Fatal(err)
		}
		replayPortAlone(e, seqs[i%len(seqs)])
		steps += len(seqs[i%len(seqs)].ops)
		i++
	}
	b.ReportMetric(float64(steps)/time.Since(start).Seconds(), "steps/s")
}

// portSeq is a lockstep run's operations and its binding of the model's
// test files to the port's, which a replay on the port alone (no model to
// learn it from) needs to direct a callback of one test file.
type portSeq struct {
	ops []recordedOp
	ids testIDs
}

// recordPortSeq runs benchSteps lockstep steps from src, recording them.
func recordPortSeq(tb testing.TB, src Source) portSeq {
	tb.Helper()
	ops := []recordedOp{{Op: model.Op{Kind: model.OpNewTask}}, {Op: model.Op{Kind: model.OpNewTask}}}
	r, err := newRun(tb, true, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	r.ops = &ops
	for range benchSteps {
		r.step(src)
	}
	r.teardown()
	return portSeq{ops: ops, ids: r.e.ids}
}

// replayPortAlone runs seq on e (the port alone) as the lockstep run that
// recorded it ran it on its port (the port numbers its test files the
// same way, so the recorded binding holds).
func replayPortAlone(e *Env, seq portSeq) {
	e.ids = seq.ids
	for _, op := range seq.ops {
		switch {
		case op.Hostile != nil:
			_, _ = e.ExecHostile(*op.Hostile)
		case op.Site != "":
			_, _, _ = e.ExecFaultNth(op.Site, op.Nth, op.Op)
		default:
			_, _ = e.Exec(op.Op)
		}
	}
}

// TestPortAloneReplaysLockstep checks that BenchmarkPortAloneSteps does
// the port work of BenchmarkLockstepSteps: replayed on the port alone,
// each benchmark sequence gives the port's every result of the lockstep
// run.
func TestPortAloneReplaysLockstep(t *testing.T) {
	for i := range benchSeqs {
		ops := []recordedOp{{Op: model.Op{Kind: model.OpNewTask}}, {Op: model.Op{Kind: model.OpNewTask}}}
		r, err := newRun(t, true, nil, nil)
		require.NoError(t, err)
		r.ops = &ops
		src := benchSource(i)
		for range benchSteps {
			r.step(src)
		}
		r.teardown()
		e, err := NewEnv(false)
		require.NoError(t, err)
		replayPortAlone(e, portSeq{ops: ops, ids: r.e.ids})
		require.Len(t, e.trace, len(r.e.trace), "sequence %d", i)
		for j, want := range r.e.trace {
			got := e.trace[j]
			require.True(t, got.op.Kind == want.op.Kind && got.res.Equal(want.res),
				"sequence %d, operation %d: lockstep %s, port alone %s", i, j+1,
				model.Format(want.op, want.res), model.Format(got.op, got.res))
		}
	}
}
