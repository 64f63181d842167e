// Package summary is the shape of a campaign's results: counters and
// coverage tables, each table a name, columns and rows of counters. Every
// table is merged by summing cells, so the summaries of the workers of one
// `luo check -j N`, or of the shards of one campaign run on many machines
// (`luo check -shard I/N -json FILE`, then `luo report FILE...`), add up to
// the summary of the campaign run whole. docs/summary-format.md documents
// the JSON form; Version changes whenever its meaning does.
//
// A campaign that wants a new table counts into it (Table.Add) and adds
// it to its Summary; printing, JSON and merging need nothing more.
package summary

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
)

// Version is the summary format's version (docs/summary-format.md).
const Version = 1

// Table styles: how Write prints a table.
const (
	// StyleGrid prints a row per row and a column per column; a zero
	// cell is "." or, when Expected lists it, "!".
	StyleGrid = "grid"
	// StyleLine prints one line "title: col=n col=n ..." per row (a
	// single-row table such as the actions drawn).
	StyleLine = "line"
	// StyleSparse prints the Lead columns as a grid and then, per row,
	// the other non-zero cells as "col=n" (wide, sparse tables).
	StyleSparse = "sparse"
)

// Table is a coverage table: rows of counters under named columns. Its
// canonical order (Normalize) is the Lead columns then the others sorted,
// and the LeadRows then the other rows sorted, so that equal counts give
// equal tables whatever order they were counted in.
type Table struct {
	// Name identifies the table in merges, e.g. "outcomes".
	Name string `json:"name"`
	// Title heads the column of row names when printed.
	Title string `json:"title"`
	// Style is one of the Style constants ("": grid).
	Style string `json:"style,omitempty"`
	// Lead columns always appear, first, in this order.
	Lead []string `json:"lead,omitempty"`
	// LeadRows always appear, first, in this order.
	LeadRows []string `json:"lead_rows,omitempty"`
	// Expected lists, per row, the columns a campaign must reach; they
	// always appear, and a zero one is reported as missing.
	Expected map[string][]string `json:"expected,omitempty"`
	// Note is printed under the table.
	Note string `json:"note,omitempty"`

	Columns []string `json:"columns"`
	Rows    []Row    `json:"rows"`

	ri map[string]int // row name -> index in Rows (nil: not built)
	ci map[string]int // column name -> index in Columns
}

// Row is one row: Cells[i] counts under Columns[i] (missing trailing cells
// are zero).
type Row struct {
	Name  string  `json:"name"`
	Cells []int64 `json:"cells"`
}

// New returns an empty grid table.
func New(name, title string) *Table { return &Table{Name: name, Title: title} }

func (t *Table) index() {
	if t.ri != nil {
		return
	}
	t.ri = make(map[string]int, len(t.Rows))
	t.ci = make(map[string]int, len(t.Columns))
	for i, r := range t.Rows {
		t.ri[r.Name] = i
	}
	for i, c := range t.Columns {
		t.ci[c] = i
	}
}

// Add adds n to the cell (row, col), creating the row and column.
func (t *Table) Add(row, col string, n int64) {
	t.index()
	ri, ok := t.ri[row]
	if !ok {
		ri = len(t.Rows)
		t.Rows = append(t.Rows, Row{Name: row})
		t.ri[row] = ri
	}
	ci, ok := t.ci[col]
	if !ok {
		ci = len(t.Columns)
		t.Columns = append(t.Columns, col)
		t.ci[col] = ci
	}
	r := &t.Rows[ri]
	for len(r.Cells) <= ci {
		r.Cells = append(r.Cells, 0)
	}
	r.Cells[ci] += n
}

// Get returns the cell (row, col).
func (t *Table) Get(row, col string) int64 {
	t.index()
	ri, ok := t.ri[row]
	if !ok {
		return 0
	}
	ci, ok := t.ci[col]
	if !ok || ci >= len(t.Rows[ri].Cells) {
		return 0
	}
	return t.Rows[ri].Cells[ci]
}

// Merge adds every cell of o to t; o's Lead, LeadRows and Expected are
// united with t's.
func (t *Table) Merge(o *Table) {
	if t.Title == "" {
		t.Title = o.Title
	}
	if t.Style == "" {
		t.Style = o.Style
	}
	if t.Note == "" {
		t.Note = o.Note
	}
	t.Lead = union(t.Lead, o.Lead)
	t.LeadRows = union(t.LeadRows, o.LeadRows)
	for r, cs := range o.Expected {
		if t.Expected == nil {
			t.Expected = map[string][]string{}
		}
		t.Expected[r] = union(t.Expected[r], cs)
	}
	for _, r := range o.Rows {
		for i, n := range r.Cells {
			if n != 0 {
				t.Add(r.Name, o.Columns[i], n)
			}
		}
	}
}

func union(a, b []string) []string {
	for _, s := range b {
		if !slices.Contains(a, s) {
			a = append(a, s)
		}
	}
	return a
}

// Clone returns a deep copy.
func (t *Table) Clone() *Table {
	c := &Table{Name: t.Name, Title: t.Title, Style: t.Style, Note: t.Note,
		Lead: slices.Clone(t.Lead), LeadRows: slices.Clone(t.LeadRows)}
	if t.Expected != nil {
		c.Expected = map[string][]string{}
		for r, cs := range t.Expected {
			c.Expected[r] = slices.Clone(cs)
		}
	}
	c.Merge(t)
	c.Normalize()
	return c
}

// Normalize puts t in its canonical order: the Lead columns, the Expected
// columns and rows and the LeadRows present, every row as long as the
// columns, both sorted after their leads, all-zero columns and rows not
// led or expected dropped.
func (t *Table) Normalize() {
	cells := map[string]map[string]int64{}
	for _, r := range t.Rows {
		for i, n := range r.Cells {
			if n != 0 {
				if cells[r.Name] == nil {
					cells[r.Name] = map[string]int64{}
				}
				cells[r.Name][t.Columns[i]] += n
			}
		}
	}
	colSet := map[string]bool{}
	rowSet := map[string]bool{}
	for r, m := range cells {
		rowSet[r] = true
		for c := range m {
			colSet[c] = true
		}
	}
	for r, cs := range t.Expected {
		rowSet[r] = true
		for _, c := range cs {
			colSet[c] = true
		}
	}
	for _, r := range t.LeadRows {
		rowSet[r] = true
	}
	for _, c := range t.Lead {
		colSet[c] = true
	}
	t.Columns = ordered(t.Lead, colSet)
	rows := ordered(t.LeadRows, rowSet)
	t.Rows = make([]Row, len(rows))
	for i, r := range rows {
		t.Rows[i] = Row{Name: r, Cells: make([]int64, len(t.Columns))}
		for j, c := range t.Columns {
			t.Rows[i].Cells[j] = cells[r][c]
		}
	}
	t.ri, t.ci = nil, nil
}

// ordered returns lead (those in set) then the rest of set sorted.
func ordered(lead []string, set map[string]bool) []string {
	var out []string
	for _, s := range lead {
		if set[s] && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	rest := slices.Sorted(maps.Keys(set))
	for _, s := range rest {
		if !slices.Contains(lead, s) {
			out = append(out, s)
		}
	}
	return out
}

// Missing returns the Expected cells ("row/col") still zero, sorted.
func (t *Table) Missing() []string {
	var miss []string
	for r, cs := range t.Expected {
		for _, c := range cs {
			if t.Get(r, c) == 0 {
				miss = append(miss, r+"/"+c)
			}
		}
	}
	sort.Strings(miss)
	return miss
}

// Write prints t in its style. t is normalized first.
func (t *Table) Write(w io.Writer) {
	t.Normalize()
	switch t.Style {
	case StyleLine:
		for _, r := range t.Rows {
			var kv []string
			for i, n := range r.Cells {
				if n != 0 {
					kv = append(kv, fmt.Sprintf("%s=%d", t.Columns[i], n))
				}
			}
			title := t.Title
			if r.Name != "" {
				title += " " + r.Name
			}
			fmt.Fprintf(w, "%s: %s\n", title, strings.Join(kv, " "))
		}
	case StyleSparse:
		t.writeGrid(w, len(t.Lead), true)
	default:
		t.writeGrid(w, len(t.Columns), false)
	}
	if miss := t.Missing(); len(miss) > 0 {
		fmt.Fprintf(w, "\nWARNING: %d expected %s cell(s) never reached (\"!\" above): %s\n", len(miss), t.Name, strings.Join(miss, ", "))
	} else if len(t.Expected) > 0 {
		fmt.Fprintf(w, "\nevery expected %s cell was reached (\".\": not expected)\n", t.Name)
	}
	if t.Note != "" {
		fmt.Fprintf(w, "%s\n", t.Note)
	}
}

// writeGrid prints the first ncol columns aligned and, if rest, the other
// non-zero cells of each row as "col=n" after them.
func (t *Table) writeGrid(w io.Writer, ncol int, rest bool) {
	lw := len(t.Title)
	for _, r := range t.Rows {
		lw = max(lw, len(r.Name))
	}
	cw := make([]int, ncol)
	for i := range ncol {
		cw[i] = max(7, len(t.Columns[i]))
		for _, r := range t.Rows {
			cw[i] = max(cw[i], len(fmt.Sprint(r.Cells[i])))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-*s", lw, t.Title)
	for i := range ncol {
		fmt.Fprintf(&b, " %*s", cw[i], t.Columns[i])
	}
	if rest && len(t.Columns) > ncol {
		b.WriteString("  (other cells)")
	}
	fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	for _, r := range t.Rows {
		b.Reset()
		fmt.Fprintf(&b, "%-*s", lw, r.Name)
		for i := range ncol {
			switch n := r.Cells[i]; {
			case n != 0:
				fmt.Fprintf(&b, " %*d", cw[i], n)
			case slices.Contains(t.Expected[r.Name], t.Columns[i]):
				fmt.Fprintf(&b, " %*s", cw[i], "!")
			default:
				fmt.Fprintf(&b, " %*s", cw[i], ".")
			}
		}
		if rest {
			var kv []string
			for i := ncol; i < len(t.Columns); i++ {
				if n := r.Cells[i]; n != 0 {
					kv = append(kv, fmt.Sprintf("%s=%d", t.Columns[i], n))
				}
			}
			if len(kv) > 0 {
				b.WriteString("  " + strings.Join(kv, " "))
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// Failure is a failed check of a campaign.
type Failure struct {
	// Campaign is the campaign that failed: "lockstep" or "concurrent".
	Campaign string `json:"campaign"`
	// Seed is the failing check's seed.
	Seed uint64 `json:"seed"`
	// Replay is the command that reproduces it (with -j 1).
	Replay string `json:"replay"`
	// Shard is the shard that found it ("" if not sharded).
	Shard string `json:"shard,omitempty"`
	// Message is the shrunk failure as printed.
	Message string `json:"message"`
}

// Part is one named section of a summary: a campaign's counters and
// tables (luo check has "lockstep" and "concurrent").
type Part struct {
	Name string `json:"name"`
	// Counts are totals such as checks, steps, kexecs.
	Counts map[string]int64 `json:"counts"`
	// CountOrder is the order Counts print in (keys not in it follow,
	// sorted).
	CountOrder []string `json:"count_order,omitempty"`
	Tables     []*Table `json:"tables"`
}

// Add adds n to counter name.
func (p *Part) Add(name string, n int64) {
	if p.Counts == nil {
		p.Counts = map[string]int64{}
	}
	if _, ok := p.Counts[name]; !ok && !slices.Contains(p.CountOrder, name) {
		p.CountOrder = append(p.CountOrder, name)
	}
	p.Counts[name] += n
}

// Table returns the part's table name, nil if none.
func (p *Part) Table(name string) *Table {
	for _, t := range p.Tables {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Merge adds o's counters and tables to p.
func (p *Part) Merge(o *Part) {
	for _, k := range o.countKeys() {
		p.Add(k, o.Counts[k])
	}
	for _, t := range o.Tables {
		if mine := p.Table(t.Name); mine != nil {
			mine.Merge(t)
		} else {
			p.Tables = append(p.Tables, t.Clone())
		}
	}
	for _, t := range p.Tables {
		t.Normalize()
	}
}

func (p *Part) countKeys() []string {
	keys := slices.Clone(p.CountOrder)
	keys = slices.DeleteFunc(keys, func(k string) bool { _, ok := p.Counts[k]; return !ok })
	for _, k := range slices.Sorted(maps.Keys(p.Counts)) {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// CountsLine renders the counters as "k=v k=v".
func (p *Part) CountsLine() string {
	var kv []string
	for _, k := range p.countKeys() {
		kv = append(kv, fmt.Sprintf("%s=%d", k, p.Counts[k]))
	}
	return strings.Join(kv, " ")
}

// WriteTables prints every table, a blank line after each.
func (p *Part) WriteTables(w io.Writer) {
	for _, t := range p.Tables {
		t.Write(w)
		fmt.Fprintln(w)
	}
}

// Summary is what a campaign (or a shard of one, or several merged) did.
type Summary struct {
	Version int `json:"version"`
	// Command is the command line that ran the campaign (of the first
	// shard, for a merged summary).
	Command string `json:"command"`
	// Campaign is the campaign seed.
	Campaign uint64 `json:"campaign"`
	// Shards lists the shards merged ("I/N"); empty for a whole campaign.
	Shards []string `json:"shards,omitempty"`
	// Checks is the campaign's budget of lockstep checks (-checks), 0 if
	// it ran for a time budget.
	Checks int64 `json:"checks_budget"`
	// ElapsedSeconds is wall time (the longest shard's, when merged).
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	// Parts are the campaigns' counters and tables, in print order.
	Parts []*Part `json:"parts"`
	// Failures are the failed checks, each with its replay command.
	Failures []Failure `json:"failures"`
}

// Part returns the summary's part name, creating it.
func (s *Summary) Part(name string) *Part {
	for _, p := range s.Parts {
		if p.Name == name {
			return p
		}
	}
	p := &Part{Name: name, Counts: map[string]int64{}}
	s.Parts = append(s.Parts, p)
	return p
}

// Merge adds o to s: counters and tables summed, failures and shards
// listed.
func (s *Summary) Merge(o *Summary) error {
	if o.Version != Version {
		return fmt.Errorf("summary format version %d, want %d", o.Version, Version)
	}
	if s.Version == 0 {
		s.Version, s.Command, s.Campaign, s.Checks = o.Version, o.Command, o.Campaign, o.Checks
	} else if s.Campaign != o.Campaign {
		return fmt.Errorf("summaries of different campaigns (%d and %d)", s.Campaign, o.Campaign)
	}
	for _, sh := range o.Shards {
		if slices.Contains(s.Shards, sh) {
			return fmt.Errorf("shard %s merged twice", sh)
		}
		s.Shards = append(s.Shards, sh)
	}
	s.ElapsedSeconds = max(s.ElapsedSeconds, o.ElapsedSeconds)
	for _, p := range o.Parts {
		s.Part(p.Name).Merge(p)
	}
	s.Failures = append(s.Failures, o.Failures...)
	return nil
}

// WriteJSON writes s to path, indented.
func (s *Summary) WriteJSON(path string) error {
	for _, p := range s.Parts {
		for _, t := range p.Tables {
			t.Normalize()
		}
		if p.Tables == nil {
			p.Tables = []*Table{}
		}
	}
	if s.Failures == nil {
		s.Failures = []Failure{}
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadJSON reads a summary written by WriteJSON.
func ReadJSON(path string) (*Summary, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if s.Version != Version {
		return nil, fmt.Errorf("%s: summary format version %d, this luo reads %d", path, s.Version, Version)
	}
	for _, p := range s.Parts {
		for _, t := range p.Tables {
			for _, r := range t.Rows {
				if len(r.Cells) > len(t.Columns) {
					return nil, fmt.Errorf("%s: table %s row %s has %d cells for %d columns", path, t.Name, r.Name, len(r.Cells), len(t.Columns))
				}
			}
		}
	}
	return &s, nil
}
