package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"luomodel/proptest"
	"luomodel/proptest/summary"
)

var seedRE = regexp.MustCompile(`-rapid\.seed=(\d+)`)

// checkConfig is a `luo check` command line.
type checkConfig struct {
	duration    time.Duration
	checks      int
	steps       int
	seed        uint64
	quiet       bool
	skipList    string
	skip        map[string]bool
	cpuProfile  string
	campaign    uint64
	shrinkTime  time.Duration
	concurrentD time.Duration
	concChecks  int
	jobs        int
	shard       Shard
	sharded     bool
	jsonPath    string
	args        []string

	// prop is a worker's lockstep property (nil: proptest's; tests
	// substitute one that fails).
	prop func(*proptest.Stats, map[string]bool) func(*rapid.T)
	// stdout and stderr receive the summary and the progress line.
	stdout, stderr io.Writer
}

// runCheck is `luo check`: the lockstep campaign.
func runCheck(args []string) int { return checkMain(args, nil, os.Stdout, os.Stderr) }

// checkMain runs `luo check ARGS` writing to stdout and stderr; prop as in
// checkConfig.
func checkMain(args []string, prop func(*proptest.Stats, map[string]bool) func(*rapid.T), stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := checkConfig{args: args, prop: prop, stdout: stdout, stderr: stderr}
	fs.DurationVar(&c.duration, "duration", time.Minute, "how long to run (ignored with -seed or -checks)")
	fs.IntVar(&c.checks, "checks", 0, "run this many checks of the campaign (0: until -duration; with -seed: 1)")
	fs.IntVar(&c.steps, "steps", 50, "average number of actions per check")
	fs.Uint64Var(&c.seed, "seed", 0, "replay the check with this seed (as printed by a failure); always one worker")
	fs.BoolVar(&c.quiet, "q", false, "no progress line")
	fs.StringVar(&c.skipList, "skip", "", "comma-separated actions to leave out (e.g. kexec, fault_freeze; faults: every fault action)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the campaign to this file")
	fs.Uint64Var(&c.campaign, "campaign", 0, "seed of the campaign's sequence of checks (0: from the clock)")
	fs.DurationVar(&c.shrinkTime, "shrinktime", 30*time.Second, "how long to shrink a failing check at most")
	fs.DurationVar(&c.concurrentD, "concurrent", 15*time.Second, "then run the concurrent campaign (scheduler + linearizability) this long; 0 skips it")
	fs.IntVar(&c.concChecks, "concurrent-checks", 0, "run this many concurrent checks instead of -concurrent's time")
	fs.IntVar(&c.jobs, "j", runtime.GOMAXPROCS(0), "workers: checks run in parallel on this many goroutines")
	shard := fs.String("shard", "", "run shard I/N of the campaign (batches k with k mod N == I; see docs/summary-format.md)")
	fs.StringVar(&c.jsonPath, "json", "", "write the summary (tables, counts, failures) as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *shard != "" {
		sh, err := parseShard(*shard)
		if err != nil {
			fmt.Fprintf(stderr, "luo: %v\n", err)
			return 2
		}
		c.shard, c.sharded = sh, true
	} else {
		c.shard = Shard{0, 1}
	}
	if c.sharded && c.campaign == 0 {
		fmt.Fprintf(stderr, "luo: -shard needs -campaign: every shard must run the same campaign\n")
		return 2
	}
	c.jobs = max(c.jobs, 1)
	if c.campaign == 0 {
		c.campaign = uint64(time.Now().UnixNano())
	}
	// The campaign's property shrinks a failing check itself, within
	// -shrinktime (proptest/shrink.go), and rapid's shrinking is off; a
	// substituted property (tests) is shrunk by rapid.
	rapidShrink := c.shrinkTime
	if c.prop == nil {
		c.prop = func(stats *proptest.Stats, skip map[string]bool) func(*rapid.T) {
			return proptest.LockstepShrinking(stats, skip, c.shrinkTime)
		}
		rapidShrink = 0
	}
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "luo: %v\n", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "luo: %v\n", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	c.skip = map[string]bool{}
	for _, a := range strings.Split(c.skipList, ",") {
		if a != "" {
			c.skip[a] = true
		}
	}
	registerRapidFlags()
	proptest.CampaignGC()
	proptest.NoHeapProfile()
	_ = flag.Set("rapid.steps", strconv.Itoa(c.steps))
	_ = flag.Set("rapid.shrinktime", rapidShrink.String())
	return c.run()
}

// lockstepResult is what the lockstep campaign did.
type lockstepResult struct {
	part     *summary.Part
	failure  *campaignTB // the first failing batch's TB; nil if none
	failedAt time.Time
}

// sliceLen is the shortest slice of a timed `luo check`: the campaigns
// alternate, a lockstep slice then a concurrent one, so that a bug only
// the concurrent campaign finds is found within seconds, not after the
// whole lockstep budget. Each campaign's slices add up to its budget (the
// default: 15 slices of 4 s lockstep and 1 s concurrent).
const sliceLen = time.Second

// slices is how many slices the campaigns run in: 1 (lockstep, then
// concurrent) unless both run for a time budget.
func (c *checkConfig) slices(conc bool) int {
	if !conc || c.checks > 0 || c.concChecks > 0 || c.seed != 0 {
		return 1
	}
	return max(1, min(int(c.duration/sliceLen), int(c.concurrentD/sliceLen)))
}

func (c *checkConfig) run() int {
	start := time.Now()
	conc := c.seed == 0 && (c.concurrentD > 0 || c.concChecks > 0)
	ls := c.newLockstep()
	var cr *concurrentRunner
	if conc {
		cr = newConcurrentRunner(concurrentConfig{d: c.concurrentD, checks: c.concChecks, campaign: c.campaign,
			shard: c.shard, jobs: c.jobs})
	}
	// The campaigns alternate, each slice's deadline set so that each
	// campaign's slices so far add up to its share of its budget.
	n := c.slices(conc)
	stopProgress := c.progress(ls.stats, start)
	var lockD, concD time.Duration
	for i := range n {
		t := time.Now()
		if n > 1 {
			ls.dp.extend(c.duration*time.Duration(i+1)/time.Duration(n) - lockD)
		}
		ls.run()
		lockD += time.Since(t)
		if ls.failed() || !conc {
			break
		}
		t = time.Now()
		if n > 1 {
			cr.dp.extend(c.concurrentD*time.Duration(i+1)/time.Duration(n) - concD)
		}
		cr.run()
		concD += time.Since(t)
		if cr.failed() {
			break
		}
	}
	stopProgress()
	res := ls.result()
	p := res.part
	head := fmt.Sprintf("%s campaign=%d", summaryLine(p, lockD), c.campaign)
	if c.seed == 0 {
		head += fmt.Sprintf(" workers=%d", c.jobs)
	}
	if c.sharded {
		head += " shard=" + c.shard.String()
	}
	if n > 1 {
		head += fmt.Sprintf(" slices=%d", n)
	}
	fmt.Fprintf(c.stdout, "luo check: %s\n\n", head)
	p.WriteTables(c.stdout)

	sum := &summary.Summary{Version: summary.Version, Command: "luo check " + strings.Join(c.args, " "),
		Campaign: c.campaign, Checks: int64(c.checks), Parts: []*summary.Part{p}}
	if c.sharded {
		sum.Shards = []string{c.shard.String()}
	}
	code := 0
	if res.failure != nil {
		found := res.failedAt.Sub(start)
		fmt.Fprintf(c.stdout, "found after %s, shrunk in %s\n", found.Round(time.Millisecond), (time.Since(start) - found).Round(time.Millisecond))
		var b strings.Builder
		seed, replay := report(&b, res.failure, c.steps, c.skipList)
		io.WriteString(c.stdout, b.String())
		sum.Failures = append(sum.Failures, summary.Failure{Campaign: "lockstep", Seed: seed, Replay: replay,
			Shard: shardName(c), Message: b.String()})
		code = 1
	} else if conc {
		r := cr.result()
		var b strings.Builder
		reportConcurrent(&b, r, concD)
		io.WriteString(c.stdout, b.String())
		sum.Parts = append(sum.Parts, r.part)
		if r.Failure != nil {
			found := cr.failedAt.Sub(start)
			fmt.Fprintf(c.stdout, "found after %s, shrunk in %s\n", found.Round(time.Millisecond), (time.Since(start) - found).Round(time.Millisecond))
			sum.Failures = append(sum.Failures, summary.Failure{Campaign: "concurrent", Seed: r.Seed,
				Replay: concurrentReplay(r.Seed), Shard: shardName(c), Message: b.String()})
			code = 1
		}
	}
	sum.ElapsedSeconds = time.Since(start).Seconds()
	if c.jsonPath != "" {
		if err := sum.WriteJSON(c.jsonPath); err != nil {
			fmt.Fprintf(c.stderr, "luo: %v\n", err)
			return 2
		}
	}
	if code == 0 {
		fmt.Fprintf(c.stdout, "PASS\n")
	}
	return code
}

func shardName(c *checkConfig) string {
	if !c.sharded {
		return ""
	}
	return c.shard.String()
}

// lockstepRunner is the lockstep campaign: with -seed one batch on one
// worker, else the shard's batches on c.jobs workers, each with its own
// Stats, merged at the end. It runs in slices (run), each taking the next
// batches of the same sequence.
type lockstepRunner struct {
	c     *checkConfig
	jobs  int
	stats []*proptest.Stats
	tbs   []*campaignTB
	gate  rapidGate
	rc    *race
	dp    *dispenser // nil with -seed
}

func (c *checkConfig) newLockstep() *lockstepRunner {
	jobs := c.jobs
	if c.seed != 0 {
		jobs = 1
	}
	ls := &lockstepRunner{c: c, jobs: jobs, stats: make([]*proptest.Stats, jobs), tbs: make([]*campaignTB, jobs), rc: newRace()}
	for i := range ls.stats {
		ls.stats[i] = proptest.NewStats()
	}
	if c.seed == 0 {
		ls.dp = newDispenser(c.campaign, 0x6c756f, c.shard, c.checks, c.duration)
	}
	return ls
}

// failed says whether a worker failed.
func (ls *lockstepRunner) failed() bool { return ls.rc.winner.Load() >= 0 }

// run runs batches until the dispenser has none (with -seed: the one
// batch) or a worker fails.
func (ls *lockstepRunner) run() {
	c := ls.c
	if c.seed != 0 {
		n := max(c.checks, 1)
		tb := &campaignTB{name: "luo-check"}
		ls.gate.check(tb, c.seed, n, c.prop(ls.stats[0], c.skip))
		if tb.Failed() {
			ls.tbs[0] = tb
			ls.rc.claim(0)
		}
		return
	}
	runWorkers(ls.jobs, func(w int) {
		prop := ls.rc.guard(w, c.prop(ls.stats[w], c.skip))
		for {
			b, ok := ls.dp.take()
			if !ok {
				return
			}
			tb := &campaignTB{name: "luo-check"}
			ls.gate.check(tb, b.Seed, b.N, prop)
			if tb.Failed() && !ls.rc.lost(w) {
				ls.rc.claim(w)
				ls.tbs[w] = tb
				ls.dp.stop()
				return
			}
		}
	})
}

// result merges the workers' tables and returns the first failure.
func (ls *lockstepRunner) result() lockstepResult {
	res := lockstepResult{part: &summary.Part{Name: "lockstep"}}
	for _, s := range ls.stats {
		res.part.Merge(s.Part())
	}
	if w := ls.rc.winner.Load(); w >= 0 && ls.tbs[w] != nil {
		res.failure, res.failedAt = ls.tbs[w], ls.stats[w].FailedAt()
		if res.failedAt.IsZero() {
			res.failedAt = time.Now()
		}
	}
	return res
}

// progress starts the progress line and returns its stop function. On a
// terminal a bar with checks/s and the time left is redrawn every second;
// into a file or a pipe (CI) a line is appended every five seconds.
func (c *checkConfig) progress(stats []*proptest.Stats, start time.Time) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	snap := func() proptest.Progress {
		var p proptest.Progress
		for _, s := range stats {
			p.Add(s.Progress())
		}
		return p
	}
	go func() {
		defer close(done)
		if c.quiet {
			<-stop
			return
		}
		tty := isTerminal(c.stderr)
		every := 5 * time.Second
		if tty {
			every = time.Second
		}
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				if tty {
					fmt.Fprintf(c.stderr, "\r%s\n", c.bar(snap(), time.Since(start)))
				}
				return
			case <-tick.C:
				p, el := snap(), time.Since(start)
				if tty {
					fmt.Fprintf(c.stderr, "\r%s\x1b[K", c.bar(p, el))
				} else {
					fmt.Fprintf(c.stderr, "luo check: %s\n", progressLine(p, el))
				}
			}
		}
	}()
	return func() {
		close(stop)
		<-done
	}
}

// bar renders the terminal's progress line: a bar of the budget spent
// (checks of -checks, or time of -duration), checks/s and the time left.
func (c *checkConfig) bar(p proptest.Progress, el time.Duration) string {
	rate := float64(p.Checks) / max(el.Seconds(), 1e-3)
	var frac float64
	var left time.Duration
	switch {
	case c.seed != 0:
		frac = 0
	case c.checks > 0:
		share := float64(c.checks) / float64(c.shard.N)
		frac = float64(p.Checks) / share
		if rate > 0 {
			left = time.Duration((share - float64(p.Checks)) / rate * float64(time.Second))
		}
	default:
		frac = el.Seconds() / c.duration.Seconds()
		left = c.duration - el
	}
	frac = min(max(frac, 0), 1)
	const width = 24
	n := int(frac * width)
	return fmt.Sprintf("[%s%s] %3.0f%% %s checks/s=%.0f left=%s",
		strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100, progressLine(p, el), rate, max(left, 0).Round(time.Second))
}

func progressLine(p proptest.Progress, el time.Duration) string {
	return fmt.Sprintf("checks=%d steps=%d kexecs=%d distinct-errnos=%d elapsed=%s",
		p.Checks, p.Steps, p.Kexecs, len(p.Errnos), el.Round(time.Second))
}

// summaryLine renders a lockstep part's counters as the progress line
// does.
func summaryLine(p *summary.Part, el time.Duration) string {
	return progressLine(proptest.Progress{Checks: int(p.Counts["checks"]), Steps: int(p.Counts["steps"]),
		Kexecs: int(p.Counts["kexecs"]), Errnos: proptest.Errnos(p.Table(proptest.TableOutcomes))}, el)
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// report prints the shrunk failure, its seed and the replay command, and
// returns them.
func report(w io.Writer, tb *campaignTB, steps int, skipList string) (uint64, string) {
	fmt.Fprintf(w, "\nFAIL\n\n")
	msg := strings.Join(tb.errors, "\n")
	var keep []string
	for _, l := range strings.Split(msg, "\n") {
		if strings.HasPrefix(l, "To reproduce, specify") || l == "Failed test output:" {
			continue
		}
		keep = append(keep, l)
	}
	fmt.Fprintln(w, strings.Join(keep, "\n"))
	m := seedRE.FindStringSubmatch(msg)
	if m == nil {
		return 0, ""
	}
	extra := ""
	if skipList != "" {
		extra = " -skip " + skipList
	}
	replay := fmt.Sprintf("go run ./cmd/luo check -seed %s -steps %d%s", m[1], steps, extra)
	fmt.Fprintf(w, "\nseed: %s\nreplay: %s\n", m[1], replay)
	seed, _ := strconv.ParseUint(m[1], 10, 64)
	return seed, replay
}

// registerRapidFlags makes rapid's flags settable outside a test binary:
// rapid registers them on the standard flag set and calls testing.Short().
func registerRapidFlags() {
	if flag.Lookup("test.short") == nil {
		testing.Init()
	}
	if !flag.Parsed() {
		_ = flag.CommandLine.Parse(nil)
	}
	_ = flag.Set("rapid.nofailfile", "true")
}
