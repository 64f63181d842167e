package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"luomodel/proptest"
	"luomodel/proptest/concurrent"
	"luomodel/proptest/summary"
)

// This file is the concurrent campaign of `luo check`: programs of several
// threads under the controlled scheduler, checked for linearizability
// against the model (proptest/concurrent). runCheck calls
// concurrentCampaign with its share of the time budget; `luo concurrent`
// runs it alone. Its batches, shards and workers are campaign.go's.

// concurrentConfig is what a concurrent campaign runs.
type concurrentConfig struct {
	d        time.Duration // time budget (ignored with checks or seed)
	checks   int           // check budget of the whole campaign; 0: d
	seed     uint64        // replay the batch of this seed (one worker)
	campaign uint64
	shard    Shard
	jobs     int
	outDir   string
}

// concurrentResult is what a concurrent campaign did.
type concurrentResult struct {
	part    *summary.Part
	Failure *concurrent.Failure // minimized; nil if none
	Seed    uint64              // the rapid seed of the failing batch
}

// concurrentPart renders a worker's counters as the summary part
// "concurrent".
func concurrentPart(st *concurrent.Stats) *summary.Part {
	p := &summary.Part{Name: "concurrent"}
	p.Add("checks", st.Checks.Load())
	p.Add("schedules", st.Schedules.Load())
	p.Add("thread-syscalls", st.Ops.Load())
	p.Add("undecided", st.Undecided.Load())
	p.Tables = append(p.Tables, st.CS.Table(), st.Out.Table())
	return p
}

// concurrentCampaign runs the campaign's batches on cc.jobs workers until
// its budget is spent (or, with cc.seed != 0, the one batch of that seed)
// and returns what it found. rapid's flags must be registered
// (registerRapidFlags).
func concurrentCampaign(cc concurrentConfig) concurrentResult {
	r := newConcurrentRunner(cc)
	r.run()
	return r.result()
}

// concurrentRunner is a concurrent campaign that runs in slices (`luo
// check` interleaves it with the lockstep campaign): each run takes the
// next batches of the same sequence until the dispenser's budget or
// deadline, so that the batches run are those of one uninterrupted run.
type concurrentRunner struct {
	cc    concurrentConfig
	cfg   concurrent.Config
	jobs  int
	stats []*concurrent.Stats
	last  []*concurrent.Failure
	seeds []uint64
	gate  rapidGate
	rc    *race
	dp    *dispenser
	// failedAt is when the winning worker failed: written by it alone,
	// read after its run returned.
	failedAt time.Time
}

func newConcurrentRunner(cc concurrentConfig) *concurrentRunner {
	jobs := max(cc.jobs, 1)
	if cc.seed != 0 {
		jobs = 1
	}
	if cc.shard.N == 0 {
		cc.shard = Shard{0, 1}
	}
	r := &concurrentRunner{cc: cc, cfg: concurrent.Config{OutDir: cc.outDir}, jobs: jobs,
		stats: make([]*concurrent.Stats, jobs), last: make([]*concurrent.Failure, jobs),
		seeds: make([]uint64, jobs), rc: newRace(),
		dp: newDispenser(cc.campaign, 0x636f6e63, cc.shard, cc.checks, cc.d)}
	for w := range r.stats {
		r.stats[w] = &concurrent.Stats{}
	}
	return r
}

// failed says whether a worker failed.
func (r *concurrentRunner) failed() bool { return r.rc.winner.Load() >= 0 }

// run runs batches on the workers until the dispenser has none (or, with
// a seed, the one batch) or a worker fails.
func (r *concurrentRunner) run() {
	cc := r.cc
	runWorkers(r.jobs, func(w int) {
		prop := r.rc.guard(w, concurrent.Property(r.cfg, r.stats[w], func(f *concurrent.Failure) { r.last[w] = f }))
		for {
			b := batchSpec{Seed: cc.seed, N: batchChecks}
			if cc.seed == 0 {
				var ok bool
				if b, ok = r.dp.take(); !ok {
					return
				}
			}
			tb := &campaignTB{name: "luo-check-concurrent"}
			r.gate.check(tb, b.Seed, b.N, prop)
			if tb.Failed() && r.last[w] != nil && !r.rc.lost(w) {
				r.rc.claim(w)
				r.seeds[w], r.failedAt = b.Seed, time.Now()
				r.dp.stop()
				return
			}
			if cc.seed != 0 {
				return
			}
		}
	})
}

// result sums the workers' tables and minimizes the first failure.
func (r *concurrentRunner) result() concurrentResult {
	res := concurrentResult{part: &summary.Part{Name: "concurrent"}}
	for _, st := range r.stats {
		res.part.Merge(concurrentPart(st))
	}
	if w := r.rc.winner.Load(); w >= 0 && r.last[w] != nil {
		res.Failure, res.Seed = concurrent.Minimize(r.cfg, r.last[w]), r.seeds[w]
	}
	return res
}

func concurrentReplay(seed uint64) string {
	return fmt.Sprintf("go run ./cmd/luo concurrent -seed %d", seed)
}

// reportConcurrent prints the campaign's summary and, on failure, the
// account and the replay command.
func reportConcurrent(w io.Writer, r concurrentResult, elapsed time.Duration) {
	fmt.Fprintf(w, "luo check (concurrent): %s elapsed=%s\n\n", r.part.CountsLine(), elapsed.Round(time.Millisecond))
	r.part.WriteTables(w)
	if r.Failure == nil {
		return
	}
	fmt.Fprintf(w, "FAIL: %v\n", r.Failure)
	fmt.Fprintf(w, "replay: %s\n", concurrentReplay(r.Seed))
}

// runConcurrent is `luo concurrent`: the concurrent campaign alone.
func runConcurrent(args []string) int {
	fs := flag.NewFlagSet("concurrent", flag.ExitOnError)
	duration := fs.Duration("duration", time.Minute, "how long to run (ignored with -seed or -checks)")
	checks := fs.Int("checks", 0, "run this many checks of the campaign (0: until -duration)")
	seed := fs.Uint64("seed", 0, "replay the batch with this seed (as printed by a failure); always one worker")
	campaign := fs.Uint64("campaign", uint64(time.Now().UnixNano()), "seed of the campaign's batch seeds")
	jobs := fs.Int("j", runtime.GOMAXPROCS(0), "workers: checks run in parallel on this many goroutines")
	shardFlag := fs.String("shard", "", "run shard I/N of the campaign")
	jsonPath := fs.String("json", "", "write the summary as JSON to this file")
	out := fs.String("out", "", "directory for porcupine's HTML visualization (default: the temp dir)")
	_ = fs.Parse(args)
	shard, sharded := Shard{0, 1}, false
	if *shardFlag != "" {
		var err error
		if shard, err = parseShard(*shardFlag); err != nil {
			fmt.Fprintf(os.Stderr, "luo: %v\n", err)
			return 2
		}
		sharded = true
	}
	registerRapidFlags()
	proptest.CampaignGC()
	proptest.NoHeapProfile()
	start := time.Now()
	r := concurrentCampaign(concurrentConfig{d: *duration, checks: *checks, seed: *seed, campaign: *campaign,
		shard: shard, jobs: *jobs, outDir: *out})
	var b strings.Builder
	reportConcurrent(&b, r, time.Since(start))
	fmt.Print(b.String())
	if *jsonPath != "" {
		sum := &summary.Summary{Version: summary.Version, Command: "luo concurrent " + strings.Join(args, " "),
			Campaign: *campaign, Checks: int64(*checks), Parts: []*summary.Part{r.part}, ElapsedSeconds: time.Since(start).Seconds()}
		if sharded {
			sum.Shards = []string{shard.String()}
		}
		if r.Failure != nil {
			sum.Failures = append(sum.Failures, summary.Failure{Campaign: "concurrent", Seed: r.Seed,
				Replay: concurrentReplay(r.Seed), Shard: strings.Join(sum.Shards, ""), Message: b.String()})
		}
		if err := sum.WriteJSON(*jsonPath); err != nil {
			fmt.Fprintf(os.Stderr, "luo: %v\n", err)
			return 2
		}
	}
	if r.Failure != nil {
		return 1
	}
	fmt.Println("PASS")
	return 0
}
