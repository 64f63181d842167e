package main

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"luomodel/proptest"
)

// batchChecks is how many checks one rapid.Check call runs; the campaign
// loops over batches until its time or check budget is spent.
const batchChecks = 10

var seedRE = regexp.MustCompile(`-rapid\.seed=(\d+)`)

// runCheck is `luo check`: the lockstep campaign.
func runCheck(args []string) int {
	fs := flag.NewFlagSet("check", flag.ExitOnError)
	duration := fs.Duration("duration", time.Minute, "how long to run (ignored with -seed)")
	checks := fs.Int("checks", 0, "stop after this many checks (0: until -duration; with -seed: 1)")
	steps := fs.Int("steps", 50, "average number of actions per check")
	seed := fs.Uint64("seed", 0, "replay the check with this seed (as printed by a failure)")
	quiet := fs.Bool("q", false, "no progress line")
	skipList := fs.String("skip", "", "comma-separated actions to leave out (e.g. kexec, fault_freeze; faults: every fault action)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the campaign to this file")
	campaign := fs.Uint64("campaign", 0, "seed of the campaign's sequence of checks (0: from the clock)")
	shrinkTime := fs.Duration("shrinktime", 30*time.Second, "how long to shrink a failing check at most")
	concurrentD := fs.Duration("concurrent", 15*time.Second, "then run the concurrent campaign (scheduler + linearizability) this long; 0 skips it")
	_ = fs.Parse(args)
	if *campaign == 0 {
		*campaign = uint64(time.Now().UnixNano())
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "luo: %v\n", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(os.Stderr, "luo: %v\n", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	skip := map[string]bool{}
	for _, a := range strings.Split(*skipList, ",") {
		if a != "" {
			skip[a] = true
		}
	}

	// rapid reads its settings from the standard flag set (registered by
	// its init) and calls testing.Short().
	testing.Init()
	_ = flag.CommandLine.Parse(nil)
	set := func(name, value string) {
		if err := flag.Set(name, value); err != nil {
			fmt.Fprintf(os.Stderr, "luo: %v\n", err)
			os.Exit(2)
		}
	}
	set("rapid.steps", strconv.Itoa(*steps))
	set("rapid.nofailfile", "true")
	set("rapid.shrinktime", shrinkTime.String())

	stats := proptest.NewStats()
	start := time.Now()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if *quiet {
			<-stop
			return
		}
		// On a terminal one line is redrawn every second; into a file or
		// a pipe a line is appended every five seconds.
		tty := isTerminal(os.Stderr)
		every, end := 5*time.Second, "\n"
		if tty {
			every, end = time.Second, ""
		}
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				if tty {
					printProgress(os.Stderr, stats, start, "\n")
				}
				return
			case <-tick.C:
				printProgress(os.Stderr, stats, start, end)
			}
		}
	}()

	var failure *campaignTB
	if *seed != 0 {
		n := *checks
		if n == 0 {
			n = 1
		}
		failure = batch(*seed, n, stats, skip)
	} else {
		master := rand.New(rand.NewPCG(*campaign, 0x6c756f))
		for failure == nil {
			if *checks > 0 && stats.Progress().Checks >= *checks {
				break
			}
			if *checks == 0 && time.Since(start) >= *duration {
				break
			}
			n := batchChecks
			if *checks > 0 {
				n = min(n, *checks-stats.Progress().Checks)
			}
			failure = batch(master.Uint64()|1, n, stats, skip)
		}
	}
	close(stop)
	<-done

	fmt.Printf("luo check: %s campaign=%d\n\n", summaryLine(stats, start), *campaign)
	stats.WriteSummary(os.Stdout)
	if failure == nil && *seed == 0 && *concurrentD > 0 {
		cstart := time.Now()
		cr := concurrentCampaign(*concurrentD, 0, *campaign, "")
		fmt.Println()
		reportConcurrent(os.Stdout, cr, time.Since(cstart))
		if cr.Failure != nil {
			return 1
		}
	}
	if failure == nil {
		fmt.Printf("\nPASS\n")
		return 0
	}
	found := stats.FailedAt().Sub(start)
	fmt.Printf("\nfound after %s, shrunk in %s\n", found.Round(time.Millisecond), (time.Since(start) - found).Round(time.Millisecond))
	report(os.Stdout, failure, *steps, *skipList)
	return 1
}

// batch runs n checks starting at seed and returns the TB if one failed.
func batch(seed uint64, n int, stats *proptest.Stats, skip map[string]bool) (failed *campaignTB) {
	flag.Set("rapid.seed", strconv.FormatUint(seed, 10))
	flag.Set("rapid.checks", strconv.Itoa(n))
	tb := &campaignTB{name: "luo-check"}
	func() {
		defer func() {
			if p := recover(); p != nil {
				if _, ok := p.(failNow); !ok {
					tb.Errorf("panic: %v", p)
				}
			}
		}()
		rapid.Check(tb, proptest.LockstepSkipping(stats, skip))
	}()
	if tb.Failed() {
		return tb
	}
	return nil
}

func summaryLine(stats *proptest.Stats, start time.Time) string {
	p := stats.Progress()
	return fmt.Sprintf("checks=%d steps=%d kexecs=%d distinct-errnos=%d elapsed=%s",
		p.Checks, p.Steps, p.Kexecs, p.Errnos, time.Since(start).Round(time.Second))
}

// printProgress redraws the progress line (end "") or appends one (end
// "\n").
func printProgress(w io.Writer, stats *proptest.Stats, start time.Time, end string) {
	if end == "" {
		fmt.Fprintf(w, "\r%s ", summaryLine(stats, start))
		return
	}
	fmt.Fprintf(w, "luo check: %s%s", summaryLine(stats, start), end)
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// report prints the shrunk failure, its seed and the replay command.
func report(w io.Writer, tb *campaignTB, steps int, skipList string) {
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
	if m := seedRE.FindStringSubmatch(msg); m != nil {
		extra := ""
		if skipList != "" {
			extra = " -skip " + skipList
		}
		fmt.Fprintf(w, "\nseed: %s\nreplay: go run ./cmd/luo check -seed %s -steps %d%s\n", m[1], m[1], steps, extra)
	}
}
