package proptest

import (
	"flag"
	"math/rand/v2"
	"os"
	"sort"
	"testing"
	"time"

	"go.uber.org/goleak"
	"pgregory.net/rapid"

	"luomodel/model"
)

// TestMain keeps the default run short (30 checks of about 50 steps)
// unless -rapid.checks / -rapid.steps say otherwise, and checks that no
// goroutine outlives the tests.
func TestMain(m *testing.M) {
	flag.Parse()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["rapid.checks"] && os.Getenv("RAPID_CHECKS") == "" {
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
	t.Logf("checks=%d steps=%d kexecs=%d distinct errnos=%d", p.Checks, p.Steps, p.Kexecs, p.Errnos)
}

func FuzzLockstep(f *testing.F) {
	f.Fuzz(rapid.MakeFuzz(Lockstep(nil)))
}

// prngSource draws from a seeded PRNG (benchmarks).
type prngSource struct{ r *rand.Rand }

func (p prngSource) Intn(n int, _ string) int {
	if n <= 1 {
		return 0
	}
	return p.r.IntN(n)
}

// randomRun drives env with steps random actions and returns the
// operations it executed; it stops at the first mismatch.
func randomRun(tb testing.TB, e *Env, src Source, steps int) []model.Op {
	acts := Actions()
	names := make([]string, 0, len(acts))
	for n := range acts {
		names = append(names, n)
	}
	sort.Strings(names)
	var done []model.Op
	exec := func(op model.Op) {
		if _, err := e.Exec(op); err != nil {
			tb.Fatalf("%v\n%s", err, e.TraceString())
		}
		done = append(done, op)
	}
	exec(model.Op{Kind: model.OpNewTask})
	exec(model.Op{Kind: model.OpNewTask})
	for i := 0; i < steps; i++ {
		ops := acts[names[src.Intn(len(names), "action")]](&e.S, src)
		for _, op := range ops {
			exec(op)
		}
	}
	return done
}

const benchSteps = 50

// BenchmarkLockstepSteps measures steps/s of port + model + comparison.
func BenchmarkLockstepSteps(b *testing.B) {
	src := prngSource{rand.New(rand.NewPCG(1, 2))}
	steps := 0
	start := time.Now()
	for b.Loop() {
		e, err := NewEnv(true)
		if err != nil {
			b.Fatal(err)
		}
		steps += len(randomRun(b, e, src, benchSteps))
	}
	b.ReportMetric(float64(steps)/time.Since(start).Seconds(), "steps/s")
}

// BenchmarkPortAloneSteps replays the same kind of operation sequences on
// the port without the model.
func BenchmarkPortAloneSteps(b *testing.B) {
	src := prngSource{rand.New(rand.NewPCG(1, 2))}
	var seqs [][]model.Op
	for i := 0; i < 16; i++ {
		e, err := NewEnv(true)
		if err != nil {
			b.Fatal(err)
		}
		seqs = append(seqs, randomRun(b, e, src, benchSteps))
	}
	steps := 0
	b.ResetTimer()
	start := time.Now()
	i := 0
	for b.Loop() {
		e, err := NewEnv(false)
		if err != nil {
			b.Fatal(err)
		}
		for _, op := range seqs[i%len(seqs)] {
			_, _ = e.Exec(op)
		}
		steps += len(seqs[i%len(seqs)])
		i++
	}
	b.ReportMetric(float64(steps)/time.Since(start).Seconds(), "steps/s")
}
