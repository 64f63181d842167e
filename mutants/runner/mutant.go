// Package runner applies each mutant patch of mutants/ to a scratch copy of
// the tree, runs the checkers its header names, and records which check
// killed it and how long that took. `luo mutants` and `make mutants` drive
// it; see mutants/README.md for the patch header format.
package runner

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Mutant is one patch file and its header.
type Mutant struct {
	// ID is the file name without ".patch", e.g. "M5" or "V6-init".
	ID string
	// Path is the patch file.
	Path string
	// Title is the first header line.
	Title string
	// Expect lists the check classes allowed to kill this mutant (the
	// header's "expect:" line, alternatives separated by '|').
	Expect []Class
	// Checks are the header's "check:" lines, run in order until one
	// fails.
	Checks []Check
	// CI marks the mutant for the fixed CI subset ("ci: yes").
	CI bool
}

// CheckKind is how a check runs.
type CheckKind string

const (
	// KindCampaign runs `luo check ARGS` from the mutated tree.
	KindCampaign CheckKind = "campaign"
	// KindTest compiles a package's tests (go test -c BUILDFLAGS PKG) and
	// runs the binary with the remaining flags, in the package directory.
	KindTest CheckKind = "test"
)

// Check is one "check:" line.
type Check struct {
	Kind CheckKind
	// Args are the campaign's arguments; for a test, the build flags, the
	// package and the run flags, in that order.
	Args []string
}

// String renders the check as it appears in a header.
func (c Check) String() string {
	return string(c.Kind) + " " + strings.Join(quoteAll(c.Args), " ")
}

// testParts splits a test check's arguments into build flags, the package
// and the run flags.
func (c Check) testParts() (build []string, pkg string, run []string, err error) {
	for i, a := range c.Args {
		if !strings.HasPrefix(a, "-") {
			return c.Args[:i], a, c.Args[i+1:], nil
		}
	}
	return nil, "", nil, fmt.Errorf("test check %q names no package", c.String())
}

// Load reads every *.patch file of dir, sorted by ID (M1, M2, ..., M10,
// then the V6 forms).
func Load(dir string) ([]*Mutant, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.patch"))
	if err != nil {
		return nil, err
	}
	var ms []*Mutant
	for _, p := range paths {
		m, err := ParseFile(p)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return idLess(ms[i].ID, ms[j].ID) })
	return ms, nil
}

// idLess orders "M2" before "M10" and every M before the other forms.
func idLess(a, b string) bool {
	na, oka := mNumber(a)
	nb, okb := mNumber(b)
	switch {
	case oka && okb && na != nb:
		return na < nb
	case oka != okb:
		return oka
	}
	return a < b
}

func mNumber(id string) (int, bool) {
	if !strings.HasPrefix(id, "M") {
		return 0, false
	}
	n := 0
	i := 1
	for ; i < len(id) && id[i] >= '0' && id[i] <= '9'; i++ {
		n = n*10 + int(id[i]-'0')
	}
	return n, i > 1
}

// ParseFile reads one patch and its header: the text before the first
// "diff --git" line, which git apply ignores.
func ParseFile(path string) (*Mutant, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := &Mutant{ID: strings.TrimSuffix(filepath.Base(path), ".patch"), Path: path}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	sawDiff := false
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.HasPrefix(text, "diff --git ") {
			sawDiff = true
			break
		}
		key, val, ok := strings.Cut(text, ":")
		key = strings.ToLower(strings.TrimSpace(key))
		val = strings.TrimSpace(val)
		switch {
		case m.Title == "" && strings.TrimSpace(text) != "":
			m.Title = strings.TrimSpace(text)
		case ok && key == "expect":
			for _, c := range strings.Split(val, "|") {
				c = strings.TrimSpace(c)
				if !validClass(Class(c)) {
					return nil, fmt.Errorf("%s:%d: unknown check class %q (want one of %v)", path, line, c, Classes)
				}
				m.Expect = append(m.Expect, Class(c))
			}
		case ok && key == "check":
			args, err := splitArgs(val)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %v", path, line, err)
			}
			if len(args) == 0 {
				return nil, fmt.Errorf("%s:%d: empty check", path, line)
			}
			c := Check{Kind: CheckKind(args[0]), Args: args[1:]}
			switch c.Kind {
			case KindCampaign:
			case KindTest:
				if _, _, _, err := c.testParts(); err != nil {
					return nil, fmt.Errorf("%s:%d: %v", path, line, err)
				}
			default:
				return nil, fmt.Errorf("%s:%d: unknown check kind %q (campaign or test)", path, line, args[0])
			}
			m.Checks = append(m.Checks, c)
		case ok && key == "ci":
			m.CI = val == "yes"
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !sawDiff {
		return nil, fmt.Errorf("%s: no \"diff --git\" line", path)
	}
	if len(m.Expect) == 0 {
		return nil, fmt.Errorf("%s: no \"expect:\" line", path)
	}
	if len(m.Checks) == 0 {
		return nil, fmt.Errorf("%s: no \"check:\" line", path)
	}
	return m, nil
}

// splitArgs splits a line into words; single or double quotes group.
func splitArgs(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote = r
			inWord = true
		case r == ' ' || r == '\t':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}

func quoteAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t$^*|()[]{}?\\\"") {
			a = "'" + a + "'"
		}
		out[i] = a
	}
	return out
}
