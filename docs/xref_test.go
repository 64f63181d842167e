package docs

import (
	"bufio"
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// xrefFile is the generated document, relative to this package.
const xrefFile = "xref.md"

// modulePath is the Go module's path, the prefix of coverage file names.
const modulePath = "luomodel"

// maxTests bounds the tests listed per function; the rest are counted.
const maxTests = 8

// goFunc is one Go function that names a C counterpart in its doc comment.
type goFunc struct {
	file      string // slash path relative to the module root
	name      string // "Name" or "(*Recv).Name"
	startLine int
	endLine   int
}

func (g goFunc) String() string { return g.file + ":" + g.name }

// portsRE finds "file.c:func()" in a doc comment, and chainRE the "/ other()"
// or ", other()" or "and other()" that may follow, naming more functions of
// the same file.
var (
	portsRE = regexp.MustCompile(`([A-Za-z0-9_./-]+\.[ch]):([A-Za-z_][A-Za-z0-9_]*)\(\)`)
	bareRE  = regexp.MustCompile(`[Pp]orts\s+()([A-Za-z_][A-Za-z0-9_]*)\(\)`)
	chainRE = regexp.MustCompile(`^\s*(?:/|,|and|or)\s*([A-Za-z_][A-Za-z0-9_]*)\(\)`)
)

// claims returns the (C file base name, C function) pairs a doc comment
// says it ports. Only comments that use the word "ports" count. A name
// given without its file ("ports luo_open()") comes back with file "", for
// the caller to resolve through the catalogue.
func claims(doc string) [][2]string {
	doc = strings.Join(strings.Fields(doc), " ")
	if !strings.Contains(doc, "ports ") && !strings.Contains(doc, "Ports ") {
		return nil
	}
	var out [][2]string
	matches := portsRE.FindAllStringSubmatchIndex(doc, -1)
	matches = append(matches, bareRE.FindAllStringSubmatchIndex(doc, -1)...)
	for _, m := range matches {
		file := ""
		if m[3] > m[2] {
			file = path.Base(doc[m[2]:m[3]])
		}
		out = append(out, [2]string{file, doc[m[4]:m[5]]})
		rest := doc[m[1]:]
		for {
			c := chainRE.FindStringSubmatchIndex(rest)
			if c == nil {
				break
			}
			out = append(out, [2]string{file, rest[c[2]:c[3]]})
			rest = rest[c[1]:]
		}
	}
	return out
}

// moduleRoot is the directory holding go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	return root
}

// skipDir reports directories that hold no port code. The abstract model
// restates the C functions it mirrors but is not their port.
func skipDir(rel string) bool {
	switch rel {
	case "model", "proptest", "mutants", "cmd":
		return true
	}
	name := path.Base(rel)
	return name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".")
}

// scanCounterparts parses every non-test Go file of the module and maps
// "file.c:func" to the Go functions whose doc comments claim to port it.
func scanCounterparts(t *testing.T, root string) map[string][]goFunc {
	t.Helper()
	out := map[string][]goFunc{}
	// byName resolves a C function named without its file; names that two
	// catalogued files share stay unresolved.
	byName := map[string]string{}
	for _, c := range catalogue {
		if _, dup := byName[c.name]; dup {
			byName[c.name] = ""
			continue
		}
		byName[c.name] = path.Base(c.file)
	}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			if p != root && skipDir(filepath.ToSlash(rel)) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			// A file mid-edit by another engineer: skip it, the check
			// runs again on the next build.
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Doc == nil {
				continue
			}
			g := goFunc{
				file:      rel,
				name:      funcName(fd),
				startLine: fset.Position(fd.Pos()).Line,
				endLine:   fset.Position(fd.End()).Line,
			}
			for _, c := range claims(fd.Doc.Text()) {
				if c[0] == "" {
					c[0] = byName[c[1]]
					if c[0] == "" {
						continue
					}
				}
				k := c[0] + ":" + c[1]
				out[k] = append(out[k], g)
			}
		}
		return nil
	})
	require.NoError(t, err)
	for k := range out {
		sort.Slice(out[k], func(i, j int) bool { return out[k][i].String() < out[k][j].String() })
	}
	return out
}

// funcName renders a FuncDecl's name with its receiver, e.g. "(*LUO).Reboot".
func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	var recv string
	switch rt := fd.Recv.List[0].Type.(type) {
	case *ast.StarExpr:
		recv = "(*" + typeName(rt.X) + ")"
	default:
		recv = typeName(rt)
	}
	return recv + "." + fd.Name.Name
}

func typeName(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.IndexExpr:
		return typeName(x.X)
	case *ast.IndexListExpr:
		return typeName(x.X)
	}
	return "?"
}

// catalogueKey is the claims key of a catalogued function.
func catalogueKey(c cFunc) string { return path.Base(c.file) + ":" + c.name }

// render builds xref.md. tests maps a catalogue key to its "Exercised by"
// cell.
func render(counterparts map[string][]goFunc, tests map[string]string) string {
	var b strings.Builder
	b.WriteString("# C → Go cross-reference\n\n")
	b.WriteString("Generated by `make xref` (docs/xref_test.go); `go test ./docs` fails when\n")
	b.WriteString("this file is stale. For every function of the ported C files: its Go\n")
	b.WriteString("counterpart, found through doc comments of the form\n")
	b.WriteString("`// name ports kernel/liveupdate/luo_session.c:luo_session_retrieve().`,\n")
	b.WriteString("and the tests that execute it. \"Exercised by\" is measured, not guessed:\n")
	b.WriteString("the generator runs every test of the module on its own with coverage of\n")
	b.WriteString("the counterparts' packages and lists the tests under which at least one\n")
	b.WriteString("statement of the Go function ran. The staleness check recomputes the\n")
	b.WriteString("counterparts and checks that every listed test still exists; coverage is\n")
	b.WriteString("recomputed only when the file is regenerated.\n")

	known := map[string]bool{}
	lastFile := ""
	missing := 0
	for _, c := range catalogue {
		k := catalogueKey(c)
		known[k] = true
		if c.file != lastFile {
			lastFile = c.file
			fmt.Fprintf(&b, "\n## `%s`\n\n", c.file)
			b.WriteString("| C function | Go counterpart | Exercised by |\n|---|---|---|\n")
		}
		gos := counterparts[k]
		var goCell string
		switch {
		case len(gos) > 0:
			var parts []string
			for _, g := range gos {
				parts = append(parts, "`"+g.String()+"`")
			}
			goCell = strings.Join(parts, "<br>")
		case c.note != "":
			goCell = "— " + c.note
		default:
			goCell = "— **missing**"
			missing++
		}
		cell := tests[k]
		if len(gos) == 0 {
			cell = ""
		}
		if cell == "" && len(gos) > 0 {
			cell = "—"
		}
		fmt.Fprintf(&b, "| `%s()` | %s | %s |\n", c.name, goCell, cell)
	}

	// Claims of functions of the catalogued files that the catalogue
	// lacks: a typo in a doc comment, or a function to add.
	files := map[string]bool{}
	for _, c := range catalogue {
		files[path.Base(c.file)] = true
	}
	var extra []string
	for k, gos := range counterparts {
		file, _, _ := strings.Cut(k, ":")
		if !files[file] || known[k] {
			continue
		}
		for _, g := range gos {
			extra = append(extra, fmt.Sprintf("| `%s()` | `%s` |", k, g))
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		b.WriteString("\n## Claims outside the catalogue\n\n")
		b.WriteString("Go doc comments that name a function of a ported file that the\n")
		b.WriteString("catalogue (docs/catalogue_test.go) does not list.\n\n")
		b.WriteString("| C function | Go |\n|---|---|\n")
		for _, e := range extra {
			b.WriteString(e + "\n")
		}
	}
	fmt.Fprintf(&b, "\n%d catalogued functions, %d without a counterpart or a reason.\n", len(catalogue), missing)
	return b.String()
}

// rowRE matches one catalogue row of xref.md.
var rowRE = regexp.MustCompile("^\\| `([A-Za-z0-9_]+)\\(\\)` \\| .* \\| (.*) \\|$")

// parseTests reads the "Exercised by" cells of an existing xref.md, keyed
// like the catalogue.
func parseTests(doc string) map[string]string {
	out := map[string]string{}
	file := ""
	sc := bufio.NewScanner(strings.NewReader(doc))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## `") {
			file = path.Base(strings.Trim(strings.TrimPrefix(line, "## "), "`"))
			continue
		}
		if m := rowRE.FindStringSubmatch(line); m != nil && file != "" && m[2] != "" {
			out[file+":"+m[1]] = m[2]
		}
	}
	return out
}

// testRefRE finds "dir: TestA, TestB" groups in an "Exercised by" cell.
var testRefRE = regexp.MustCompile("`([A-Za-z0-9_./-]+)`: ([A-Za-z0-9_, ]+)")

// TestXref regenerates xref.md when XREF_UPDATE is set and otherwise
// fails if it is stale.
func TestXref(t *testing.T) {
	root := moduleRoot(t)
	counterparts := scanCounterparts(t, root)

	if os.Getenv("XREF_UPDATE") != "" {
		tests := measureTests(t, root, counterparts)
		require.NoError(t, os.WriteFile(xrefFile, []byte(render(counterparts, tests)), 0o644))
		return
	}

	old, err := os.ReadFile(xrefFile)
	require.NoError(t, err, "run `make xref`")
	want := render(counterparts, parseTests(string(old)))
	require.Equal(t, want, string(old), "docs/xref.md is stale: run `make xref`")

	// Every test the document names must still exist.
	for _, cell := range parseTests(string(old)) {
		for _, m := range testRefRE.FindAllStringSubmatch(cell, -1) {
			dir := filepath.Join(root, filepath.FromSlash(m[1]))
			defined := testFuncs(t, dir)
			for _, name := range strings.Split(m[2], ",") {
				name = strings.TrimSpace(name)
				if name == "" || strings.HasPrefix(name, "+") {
					continue
				}
				require.True(t, defined[name], "docs/xref.md names %s in %s, which no longer exists: run `make xref`", name, m[1])
			}
		}
	}
}

// testFuncs returns the names of the top-level Test functions in dir.
func testFuncs(t *testing.T, dir string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	require.NoError(t, err)
	fset := token.NewFileSet()
	for _, p := range files {
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			continue
		}
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && strings.HasPrefix(fd.Name.Name, "Test") {
				out[fd.Name.Name] = true
			}
		}
	}
	return out
}

// testPkg is a package of the module that has tests.
type testPkg struct {
	importPath string
	dir        string
}

// measureTests runs every test of the module on its own with coverage of
// the counterparts' packages and returns, per catalogue key, the tests that
// executed at least one statement of a counterpart.
func measureTests(t *testing.T, root string, counterparts map[string][]goFunc) map[string]string {
	t.Helper()
	// Packages to cover: those holding counterparts.
	pkgSet := map[string]bool{}
	for _, gos := range counterparts {
		for _, g := range gos {
			pkgSet[modulePath+"/"+path.Dir(g.file)] = true
		}
	}
	if len(pkgSet) == 0 {
		return nil
	}
	var coverPkgs []string
	for p := range pkgSet {
		coverPkgs = append(coverPkgs, p)
	}
	sort.Strings(coverPkgs)

	out, err := runIn(root, "go", "list", "-f", "{{.ImportPath}}|{{.Dir}}|{{len .TestGoFiles}}|{{len .XTestGoFiles}}", "./...")
	require.NoError(t, err, "%s", out)
	var pkgs []testPkg
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 4 || f[0] == modulePath+"/docs" || (f[2] == "0" && f[3] == "0") {
			continue
		}
		pkgs = append(pkgs, testPkg{importPath: f[0], dir: f[1]})
	}

	tmp := t.TempDir()
	type run struct {
		pkg  testPkg
		bin  string
		test string
	}
	var runs []run
	for i, p := range pkgs {
		bin := filepath.Join(tmp, fmt.Sprintf("pkg%d.test", i))
		if out, err := runIn(root, "go", "test", "-c", "-o", bin, "-covermode=set",
			"-coverpkg="+strings.Join(coverPkgs, ","), p.importPath); err != nil {
			t.Logf("skipping %s: it does not build:\n%s", p.importPath, out)
			continue
		}
		if _, err := os.Stat(bin); err != nil {
			continue
		}
		list, err := runIn(p.dir, bin, "-test.list", "^Test")
		if err != nil {
			t.Logf("skipping %s: -test.list: %v", p.importPath, err)
			continue
		}
		for _, name := range strings.Fields(list) {
			if strings.HasPrefix(name, "Test") {
				runs = append(runs, run{pkg: p, bin: bin, test: name})
			}
		}
	}

	// Index the counterparts by file for the profile lookup.
	byFile := map[string][]goFunc{}
	keysOf := map[goFunc][]string{}
	for k, gos := range counterparts {
		for _, g := range gos {
			if len(keysOf[g]) == 0 {
				byFile[g.file] = append(byFile[g.file], g)
			}
			keysOf[g] = append(keysOf[g], k)
		}
	}

	var mu sync.Mutex // guards hits; only this generator's goroutines use it
	hits := map[string]map[string][]string{}
	sem := make(chan struct{}, runtime.NumCPU())
	var wg sync.WaitGroup
	for i, r := range runs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			prof := filepath.Join(tmp, fmt.Sprintf("run%d.cov", i))
			if out, err := runIn(r.pkg.dir, r.bin, "-test.run", "^"+r.test+"$", "-test.count", "1",
				"-test.timeout", "10m", "-test.coverprofile", prof); err != nil {
				t.Logf("%s %s failed (its coverage still counts):\n%s", r.pkg.importPath, r.test, lastLines(out, 20))
			}
			covered := coveredFuncs(prof, byFile)
			rel := strings.TrimPrefix(strings.TrimPrefix(r.pkg.importPath, modulePath), "/")
			mu.Lock()
			defer mu.Unlock()
			seen := map[string]bool{} // a test counts once per C function
			for g := range covered {
				for _, k := range keysOf[g] {
					if seen[k] {
						continue
					}
					seen[k] = true
					if hits[k] == nil {
						hits[k] = map[string][]string{}
					}
					hits[k][rel] = append(hits[k][rel], r.test)
				}
			}
		}()
	}
	wg.Wait()

	cells := map[string]string{}
	for k, byPkg := range hits {
		home := map[string]bool{}
		for _, g := range counterparts[k] {
			home[path.Dir(g.file)] = true
		}
		cells[k] = testsCell(byPkg, home)
	}
	return cells
}

// testsCell renders "`pkg`: TestA, TestB; `pkg2`: TestC (+3 more)". The
// tests of the counterparts' own packages come first, then the upstream
// selftest ports, then the rest.
func testsCell(byPkg map[string][]string, home map[string]bool) string {
	var pkgs []string
	total := 0
	for p, names := range byPkg {
		pkgs = append(pkgs, p)
		sort.Strings(names)
		total += len(names)
	}
	rank := func(p string) int {
		switch {
		case home[p]:
			return 0
		case strings.HasPrefix(p, "selftests/"):
			return 1
		}
		return 2
	}
	sort.Slice(pkgs, func(i, j int) bool {
		if ri, rj := rank(pkgs[i]), rank(pkgs[j]); ri != rj {
			return ri < rj
		}
		return pkgs[i] < pkgs[j]
	})
	var parts []string
	shown := 0
	for _, p := range pkgs {
		var names []string
		for _, n := range byPkg[p] {
			if shown == maxTests {
				break
			}
			names = append(names, n)
			shown++
		}
		if len(names) > 0 {
			parts = append(parts, "`"+p+"`: "+strings.Join(names, ", "))
		}
	}
	s := strings.Join(parts, "; ")
	if total > shown {
		s += fmt.Sprintf(" (+%d more)", total-shown)
	}
	return s
}

// coveredFuncs returns the functions of byFile with at least one executed
// block in the coverage profile at prof.
func coveredFuncs(prof string, byFile map[string][]goFunc) map[goFunc]bool {
	out := map[goFunc]bool{}
	data, err := os.ReadFile(prof)
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(data), "\n") {
		// name.go:startLine.startCol,endLine.endCol numStmts count
		colon := strings.LastIndex(line, ":")
		if colon < 0 || strings.HasPrefix(line, "mode:") {
			continue
		}
		fields := strings.Fields(line[colon+1:])
		if len(fields) != 3 || fields[2] == "0" {
			continue
		}
		file := strings.TrimPrefix(line[:colon], modulePath+"/")
		start, err := strconv.Atoi(strings.SplitN(fields[0], ".", 2)[0])
		if err != nil {
			continue
		}
		for _, g := range byFile[file] {
			if start >= g.startLine && start <= g.endLine {
				out[g] = true
			}
		}
	}
	return out
}

// runIn runs a command in dir and returns its combined output.
func runIn(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var buf bytes.Buffer
	cmd.Stdout = &buf
	cmd.Stderr = &buf
	err := cmd.Run()
	return buf.String(), err
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func TestClaims(t *testing.T) {
	require.Equal(t, [][2]string{{"luo_session.c", "luo_session_retrieve"}},
		claims("sessionRetrieve ports kernel/liveupdate/luo_session.c:luo_session_retrieve()."))
	require.Equal(t, [][2]string{{"luo_core.c", "liveupdate_early_init"}, {"luo_core.c", "luo_early_startup"}},
		claims("EarlyInit ports luo_core.c:liveupdate_early_init() / luo_early_startup(): it parses"))
	require.Nil(t, claims("see luo_core.c:luo_open() for why"))
	require.Equal(t, [][2]string{{"", "luo_late_startup"}, {"", "liveupdate_ioctl_init"}},
		claims("LateInit ports luo_late_startup() and liveupdate_ioctl_init(): build"))
	require.Equal(t, [][2]string{{"memfd_luo.c", "memfd_luo_init"}},
		claims("memfdLUOInit ports\nmm/memfd_luo.c:memfd_luo_init(), a late_initcall."))
}

func TestParseTestsRoundTrip(t *testing.T) {
	counterparts := map[string][]goFunc{
		"luo_core.c:luo_open": {{file: "kernel/liveupdate/luo_core.go", name: "(*device).open"}},
	}
	tests := map[string]string{"luo_core.c:luo_open": "`kernel/liveupdate`: TestOpen (+2 more)"}
	doc := render(counterparts, tests)
	require.Equal(t, tests, parseTests(doc))
	require.Contains(t, doc, "| `luo_open()` | `kernel/liveupdate/luo_core.go:(*device).open` | `kernel/liveupdate`: TestOpen (+2 more) |")
	require.Contains(t, doc, "| `luo_release()` | — **missing** |  |")
	require.Contains(t, doc, "| `luo_flb_serialize()` | — **missing** |  |")
	require.Contains(t, doc, "| `luo_restore_fail()` | — "+noteFail+" |  |")
}
