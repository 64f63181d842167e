package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"runtime"
	"strings"
	"time"

	"luomodel/mutants/runner"
)

// runMutants is `luo mutants`: apply every patch of mutants/ to a scratch
// copy of the tree, run its checks, print the kill table. It exits 1 if a
// mutant survives, is killed by an unexpected check, no longer applies or
// does not build, or if the unpatched tree fails a check.
func runMutants(args []string) int {
	fs := flag.NewFlagSet("mutants", flag.ExitOnError)
	dir := fs.String("dir", "", "directory of the *.patch files (default REPO/mutants)")
	rev := fs.String("rev", "HEAD", "revision to mutate (git archive); \"\" mutates the working tree as it is")
	jobs := fs.Int("j", runtime.GOMAXPROCS(0), "mutants run at once")
	timeout := fs.Duration("timeout", 2*time.Minute, "budget of one check run (a hang is killed then)")
	run := fs.String("run", "", "only mutants whose ID matches this regexp")
	ci := fs.Bool("ci", false, "only the CI subset (\"ci: yes\" in the header)")
	noRef := fs.Bool("noref", false, "skip the reference (no-false-positive) row")
	keep := fs.Bool("keep", false, "keep the scratch copies (printed)")
	verbose := fs.Bool("v", false, "print the killing output of every mutant")
	list := fs.Bool("list", false, "list the mutants and their checks, run nothing")
	mainJob := fs.Bool("mainjob", false, "run every patch against the main job alone (luo check -campaign SEED, default size), ignoring its check: lines; any class kills")
	mainSeed := fs.Uint64("mainseed", 7, "campaign seed of -mainjob")
	_ = fs.Parse(args)

	repo, err := repoRoot()
	if err != nil {
		fmt.Fprintf(os.Stderr, "luo mutants: %v\n", err)
		return 2
	}
	var re *regexp.Regexp
	if *run != "" {
		if re, err = regexp.Compile(*run); err != nil {
			fmt.Fprintf(os.Stderr, "luo mutants: -run: %v\n", err)
			return 2
		}
	}
	only := func(m *runner.Mutant) bool {
		return (re == nil || re.MatchString(m.ID)) && (!*ci || m.CI)
	}
	cfg := runner.Config{
		Repo: repo, PatchDir: *dir, Rev: *rev, Keep: *keep, Jobs: *jobs,
		Timeout: *timeout, Only: only, Reference: !*noRef, Progress: os.Stderr,
	}
	if *mainJob {
		c := runner.MainJobCheck(*mainSeed)
		cfg.MainJob = &c
	}
	if *list {
		pd := cfg.PatchDir
		if pd == "" {
			pd = repo + "/mutants"
		}
		ms, err := runner.Load(pd)
		if err != nil {
			fmt.Fprintf(os.Stderr, "luo mutants: %v\n", err)
			return 2
		}
		for _, m := range ms {
			if !only(m) {
				continue
			}
			fmt.Printf("%s: %s\n", m.ID, m.Title)
			checks := m.Checks
			if cfg.MainJob != nil {
				checks = []runner.Check{*cfg.MainJob}
			}
			for _, c := range checks {
				fmt.Printf("    check: %s\n", c.String())
			}
		}
		return 0
	}
	if *keep {
		d, err := os.MkdirTemp("", "luo-mutants-")
		if err != nil {
			fmt.Fprintf(os.Stderr, "luo mutants: %v\n", err)
			return 2
		}
		cfg.Scratch = d
		fmt.Fprintf(os.Stderr, "scratch copies in %s\n", d)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	rs, err := runner.Run(ctx, cfg)
	if err != nil && rs == nil {
		fmt.Fprintf(os.Stderr, "luo mutants: %v\n", err)
		return 2
	}
	fmt.Println()
	runner.PrintTable(os.Stdout, rs)
	fmt.Printf("wall time %s with -j %d\n", time.Since(start).Round(time.Second), cfg.Jobs)
	runner.PrintFailures(os.Stdout, rs, *verbose)
	if err != nil || !runner.AllOK(rs) {
		fmt.Println("\nFAIL")
		return 1
	}
	fmt.Println("\nPASS")
	return 0
}

// repoRoot is the top of the git work tree holding the current directory.
func repoRoot() (string, error) {
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return "", fmt.Errorf("not in a git work tree: %v", err)
	}
	return strings.TrimSpace(string(out)), nil
}
