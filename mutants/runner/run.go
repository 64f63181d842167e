package runner

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Config says what to run and where.
type Config struct {
	// Repo is the repository root (the reference tree).
	Repo string
	// PatchDir holds the *.patch files; default Repo/mutants.
	PatchDir string
	// Rev is the revision whose tree is mutated (git archive); empty means
	// the working tree's tracked and untracked, not ignored files.
	Rev string
	// Scratch is where the copies go; default a new temporary directory,
	// removed afterwards unless Keep.
	Scratch string
	Keep    bool
	// Jobs is how many mutants run at once; default 1.
	Jobs int
	// Timeout bounds one check's run (not its build); default 2 minutes.
	Timeout time.Duration
	// Only, if non-nil, selects mutants by ID.
	Only func(*Mutant) bool
	// Reference also runs every distinct check on the unpatched tree.
	Reference bool
	// Progress, if non-nil, receives one line per finished run.
	Progress io.Writer
	// MainJob, if non-nil, replaces every mutant's checks (and the
	// reference's) by this one check, the main job: see MainJobCheck.
	// Any class kills; the row says whether it is one "expect:" allows.
	MainJob *Check
}

// MainJobCheck is the main job as `luo mutants -mainjob` runs it: `luo
// check` with a fixed campaign seed and its default size (the lockstep
// minute, then the concurrent phase), so that every mutant and the
// reference run the same campaign.
func MainJobCheck(seed uint64) Check {
	return Check{Kind: KindCampaign, Args: []string{"-campaign", fmt.Sprint(seed)}}
}

// Status is the outcome of one mutant.
type Status string

const (
	StatusKilled    Status = "killed"
	StatusWrongKill Status = "wrong-kill" // killed, but not by an expected check
	StatusSurvived  Status = "SURVIVED"
	StatusStale     Status = "STALE" // the patch no longer applies
	StatusBuild     Status = "BUILD" // the mutated tree does not compile
	StatusError     Status = "ERROR" // the runner could not run it
	StatusClean     Status = "clean" // reference: every check passed
	StatusFalsePos  Status = "FALSE-POSITIVE"
)

// OK reports whether the status is a success.
func (s Status) OK() bool { return s == StatusKilled || s == StatusClean }

// Result is one row of the table.
type Result struct {
	Mutant *Mutant // nil for the reference row
	Status Status
	// By is the class of the check that killed it (or, for the reference,
	// that failed).
	By Class
	// Check is the check that killed it, and Index its position.
	Check *Check
	Index int
	// KillTime is the killing check's wall time, without its build.
	KillTime time.Duration
	// Found is the campaign's own time to the first failure, before
	// shrinking, when it prints one (0 otherwise).
	Found time.Duration
	// FoundSet says the campaign printed Found (which may round to 0).
	FoundSet bool
	// Total is the whole mutant: copy, apply, builds and checks.
	Total time.Duration
	// Output is the tail of the killing (or failing) command's output.
	Output string
	// Detail explains STALE, BUILD and ERROR rows.
	Detail string
	// MainJob marks a row of `luo mutants -mainjob`: any class kills, and
	// Matches says whether the killing class is one "expect:" allows.
	MainJob bool
	Matches bool
}

// ID names the row.
func (r *Result) ID() string {
	if r.Mutant == nil {
		return "reference"
	}
	return r.Mutant.ID
}

// Run runs the zoo and returns one result per mutant, plus the reference
// row first when cfg.Reference is set.
func Run(ctx context.Context, cfg Config) ([]*Result, error) {
	if cfg.PatchDir == "" {
		cfg.PatchDir = filepath.Join(cfg.Repo, "mutants")
	}
	if cfg.Jobs <= 0 {
		cfg.Jobs = 1
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	all, err := Load(cfg.PatchDir)
	if err != nil {
		return nil, err
	}
	var ms []*Mutant
	for _, m := range all {
		if cfg.Only == nil || cfg.Only(m) {
			ms = append(ms, m)
		}
	}
	if cfg.Scratch == "" {
		dir, err := os.MkdirTemp("", "luo-mutants-")
		if err != nil {
			return nil, err
		}
		cfg.Scratch = dir
		if !cfg.Keep {
			defer os.RemoveAll(dir)
		}
	}
	tree, err := treeArchive(cfg.Repo, cfg.Rev)
	if err != nil {
		return nil, err
	}

	type job struct {
		m   *Mutant // nil: the reference
		out **Result
	}
	results := make([]*Result, len(ms))
	var jobs []job
	var ref *Result
	if cfg.Reference {
		jobs = append(jobs, job{nil, &ref})
	}
	for i, m := range ms {
		jobs = append(jobs, job{m, &results[i]})
	}
	var wg sync.WaitGroup
	var mu sync.Mutex // serializes Progress writes
	ch := make(chan job)
	for w := 0; w < cfg.Jobs; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				ref := uniqueChecks(ms)
				if cfg.MainJob != nil {
					ref = []Check{*cfg.MainJob}
				}
				r := runOne(ctx, &cfg, tree, j.m, ref)
				*j.out = r
				if cfg.Progress != nil {
					mu.Lock()
					fmt.Fprintf(cfg.Progress, "%-14s %-14s %-16s %8s  (total %s)\n", r.ID(), r.Status, r.By,
						fmtDur(r.KillTime), r.Total.Round(100*time.Millisecond))
					mu.Unlock()
				}
			}
		}()
	}
	for _, j := range jobs {
		select {
		case ch <- j:
		case <-ctx.Done():
		}
	}
	close(ch)
	wg.Wait()
	if ref != nil {
		results = append([]*Result{ref}, results...)
	}
	for i, r := range results {
		if r == nil {
			results[i] = &Result{Status: StatusError, Detail: "interrupted"}
		}
	}
	return results, ctx.Err()
}

// uniqueChecks is every distinct check of ms, in first-use order: what the
// reference row runs.
func uniqueChecks(ms []*Mutant) []Check {
	seen := map[string]bool{}
	var out []Check
	for _, m := range ms {
		for _, c := range m.Checks {
			if !seen[c.String()] {
				seen[c.String()] = true
				out = append(out, c)
			}
		}
	}
	return out
}

// runOne copies the tree, applies m (none for the reference), builds, and
// runs the checks.
func runOne(ctx context.Context, cfg *Config, tree []byte, m *Mutant, refChecks []Check) *Result {
	start := time.Now()
	r := &Result{Mutant: m}
	defer func() { r.Total = time.Since(start) }()
	id := "reference"
	checks := refChecks
	if m != nil {
		id, checks = m.ID, m.Checks
		if cfg.MainJob != nil {
			checks = []Check{*cfg.MainJob}
		}
	}
	r.MainJob = cfg.MainJob != nil
	dir := filepath.Join(cfg.Scratch, id)
	if err := extract(tree, dir); err != nil {
		r.Status, r.Detail = StatusError, err.Error()
		return r
	}
	env := scratchEnv(cfg.Scratch)
	if m != nil {
		patch, err := filepath.Abs(m.Path)
		if err != nil {
			r.Status, r.Detail = StatusError, err.Error()
			return r
		}
		if out, err := command(ctx, dir, env, "git", "apply", "--check", patch); err != nil {
			r.Status, r.Detail = StatusStale, lastLines(out, 6)
			return r
		}
		if out, err := command(ctx, dir, env, "git", "apply", patch); err != nil {
			r.Status, r.Detail = StatusStale, lastLines(out, 6)
			return r
		}
	}
	if out, err := command(ctx, dir, env, "go", "build", "./..."); err != nil {
		r.Status, r.By, r.Detail = StatusBuild, ClassBuild, lastLines(out, 12)
		return r
	}

	bins := map[string]string{}
	for i := range checks {
		c := &checks[i]
		argv, wd, err := prepare(ctx, dir, env, c, bins)
		if err != nil {
			r.Status, r.By, r.Detail = StatusBuild, ClassBuild, err.Error()
			return r
		}
		t0 := time.Now()
		out, timedOut, err := runCheck(ctx, wd, env, argv, cfg.Timeout)
		took := time.Since(t0)
		if ctx.Err() != nil {
			r.Status, r.Detail = StatusError, "interrupted"
			return r
		}
		if err == nil && !timedOut {
			continue
		}
		r.By = Classify(out, timedOut)
		r.Check, r.Index, r.KillTime, r.Output = c, i, took, Excerpt(out, 40)
		r.Found, r.FoundSet = FoundAfter(out), foundRE.MatchString(out)
		switch {
		case m == nil:
			r.Status = StatusFalsePos
		case r.MainJob:
			r.Status, r.Matches = StatusKilled, expected(m, r.By)
		case expected(m, r.By):
			r.Status = StatusKilled
		default:
			r.Status = StatusWrongKill
		}
		return r
	}
	if m == nil {
		r.Status = StatusClean
	} else {
		r.Status = StatusSurvived
	}
	return r
}

func expected(m *Mutant, c Class) bool {
	for _, e := range m.Expect {
		if e == c {
			return true
		}
	}
	return false
}

// prepare builds what check c runs (once per tree) and returns its
// command line and working directory.
func prepare(ctx context.Context, dir string, env []string, c *Check, bins map[string]string) ([]string, string, error) {
	switch c.Kind {
	case KindCampaign:
		key := "campaign"
		bin, ok := bins[key]
		if !ok {
			bin = filepath.Join(dir, ".zoo", "luo")
			if out, err := command(ctx, dir, env, "go", "build", "-o", bin, "./cmd/luo"); err != nil {
				return nil, "", fmt.Errorf("build cmd/luo: %v\n%s", err, lastLines(out, 12))
			}
			bins[key] = bin
		}
		return append([]string{bin, "check", "-q"}, c.Args...), dir, nil
	case KindTest:
		build, pkg, run, err := c.testParts()
		if err != nil {
			return nil, "", err
		}
		key := "test " + strings.Join(build, " ") + " " + pkg
		bin, ok := bins[key]
		if !ok {
			bin = filepath.Join(dir, ".zoo", fmt.Sprintf("t%d.test", len(bins)))
			args := append(append([]string{"test", "-c", "-o", bin}, build...), pkg)
			if out, err := command(ctx, dir, env, "go", args...); err != nil {
				return nil, "", fmt.Errorf("go test -c %s: %v\n%s", pkg, err, lastLines(out, 12))
			}
			bins[key] = bin
		}
		argv := []string{bin, "-test.v", "-test.count=1"}
		for _, a := range run {
			argv = append(argv, testFlag(a))
		}
		return argv, filepath.Join(dir, filepath.FromSlash(pkg)), nil
	}
	return nil, "", fmt.Errorf("unknown check kind %q", c.Kind)
}

// goTestFlags are the `go test` flags a test binary knows as -test.NAME.
var goTestFlags = map[string]bool{
	"run": true, "skip": true, "count": true, "timeout": true, "short": true,
	"cpu": true, "parallel": true, "failfast": true, "fuzz": true, "fuzztime": true,
	"bench": true, "benchtime": true, "v": true, "shuffle": true,
}

// testFlag turns "-run=X" or "-run" into "-test.run=X" / "-test.run";
// other words (values, -rapid.* flags) pass through.
func testFlag(a string) string {
	if !strings.HasPrefix(a, "-") || strings.HasPrefix(a, "-test.") {
		return a
	}
	name := strings.TrimLeft(a, "-")
	base, _, _ := strings.Cut(name, "=")
	if goTestFlags[base] {
		return "-test." + name
	}
	return a
}

// runCheck runs argv with a budget; a run past it is killed.
func runCheck(ctx context.Context, wd string, env []string, argv []string, budget time.Duration) (string, bool, error) {
	cctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = wd, env
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	timedOut := errors.Is(cctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
	return buf.String(), timedOut, err
}

// command runs a build step and returns its combined output.
func command(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// scratchEnv is the environment of every command: -trimpath so that the
// build cache is shared between the copies, -pgo=off (a profile-guided
// build of cmd/luo recompiles a mutated package and everything above it a
// second time, with the profile: longer than the checks it serves), and
// no git repository found above the scratch directory (git apply works as
// plain patch there).
func scratchEnv(scratch string) []string {
	env := os.Environ()
	flags := os.Getenv("GOFLAGS")
	if !strings.Contains(flags, "-trimpath") {
		flags = strings.TrimSpace(flags + " -trimpath")
	}
	if !strings.Contains(flags, "-pgo") {
		flags += " -pgo=off"
	}
	return append(env, "GOFLAGS="+flags, "GIT_CEILING_DIRECTORIES="+filepath.Dir(scratch), "GOWORK=off")
}

// treeArchive returns the reference tree as a tar: git archive of rev, or
// the working tree's files.
func treeArchive(repo, rev string) ([]byte, error) {
	if rev != "" {
		cmd := exec.Command("git", "archive", "--format=tar", rev)
		cmd.Dir = repo
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("git archive %s: %v: %s", rev, err, stderr.String())
		}
		return out, nil
	}
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = repo
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git ls-files: %v", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range strings.Split(string(out), "\x00") {
		if name == "" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(repo, name))
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the working tree
		}
		if err != nil {
			return nil, err
		}
		st, err := os.Stat(filepath.Join(repo, name))
		if err != nil {
			return nil, err
		}
		if !st.Mode().IsRegular() {
			continue
		}
		hdr := &tar.Header{Name: name, Mode: int64(st.Mode().Perm()), Size: int64(len(data)), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// extract unpacks tree into dir (which must not exist yet).
func extract(tree []byte, dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	tr := tar.NewReader(bytes.NewReader(tree))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(name, dir+string(filepath.Separator)) {
			return fmt.Errorf("archive entry %q escapes the tree", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(name, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode).Perm()|0o200)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func fmtDur(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.Round(10 * time.Millisecond).String()
}
