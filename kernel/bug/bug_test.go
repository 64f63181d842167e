package bug_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/bug"
)

func TestReporterDeliversAndCounts(t *testing.T) {
	var got []*bug.Report
	r := bug.NewReporter(func(rep *bug.Report) { got = append(got, rep) })

	r.File(&bug.Report{Kind: bug.KindLockdep, Title: "possible recursive locking"})
	r.Filef(bug.KindKASAN, "use-after-free", "at %#x", 0x1000)

	require.Len(t, got, 2)
	require.Equal(t, 1, r.Count(bug.KindLockdep))
	require.Equal(t, 1, r.Count(bug.KindKASAN))
	require.Equal(t, 0, r.Count(bug.KindWarn))
	require.Equal(t, 2, r.Total())
	require.Same(t, got[0], r.First())
	require.Equal(t, "at 0x1000", got[1].Detail)
	require.NotEmpty(t, got[0].Stack, "the filing stack is captured")
	require.Equal(t, "kasan: use-after-free", got[1].Error())
}

func TestWarnOnReportsOnlyWhenTrue(t *testing.T) {
	var titles []string
	r := bug.NewReporter(func(rep *bug.Report) { titles = append(titles, rep.Title) })

	require.False(t, r.WarnOn(false, "never"))
	require.True(t, r.WarnOn(true, "count %d != 0", 3))
	require.Equal(t, []string{"count 3 != 0"}, titles)
	require.Equal(t, 1, r.Count(bug.KindWarn))
}

func TestNilHandlerPanicsWithTheReport(t *testing.T) {
	r := bug.NewReporter(nil)
	require.PanicsWithValue(t, (&bug.Report{Kind: bug.KindWarn, Title: "boom", Stack: "s\n"}).String(), func() {
		r.File(&bug.Report{Kind: bug.KindWarn, Title: "boom", Stack: "s\n"})
	})
	// The report was counted before the panic.
	require.Equal(t, 1, r.Total())

	r.SetHandler(func(*bug.Report) {})
	require.NotPanics(t, func() { r.WarnOn(true, "quiet") })
}

func TestReportString(t *testing.T) {
	s := (&bug.Report{Kind: bug.KindUAF, Title: "luo_session", Detail: "freed at:\n  x\n", Stack: "y\n"}).String()
	require.True(t, strings.Contains(s, "BUG (uaf): luo_session\nfreed at:\n  x\nfiled at:\ny\n"), s)
}

// Printing a report with %s or %v shows all of it, not just the summary
// Error returns (fmt would otherwise prefer Error to String).
func TestReportFormatsWhole(t *testing.T) {
	r := &bug.Report{Kind: bug.KindUAF, Title: "luo_session", Detail: "freed by:\n  x\n"}
	require.Equal(t, "uaf: luo_session", r.Error())
	require.Equal(t, r.String(), fmt.Sprintf("%s", r))
	require.Equal(t, r.String(), fmt.Sprintf("%v", r))
	require.Equal(t, fmt.Sprintf("%q", r.String()), fmt.Sprintf("%q", r))
	var err error = r
	require.Contains(t, fmt.Sprintf("%v", err), "freed by:")
}

func TestReporterConcurrentUse(t *testing.T) {
	r := bug.NewReporter(func(*bug.Report) {})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				r.WarnOn(true, "w")
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 800, r.Count(bug.KindWarn))
}

func captureHere() bug.Stack { return bug.CaptureStack(0, 8) }

func TestCaptureStackStartsAtTheCaller(t *testing.T) {
	s := captureHere().String()
	first, _, _ := strings.Cut(s, "\n")
	require.Equal(t, " luomodel/kernel/bug_test.captureHere", first)
	require.Contains(t, s, "TestCaptureStackStartsAtTheCaller")
	require.Empty(t, bug.Stack(nil).String())
}

func TestCollectorSortsExpectedWarns(t *testing.T) {
	var c bug.Collector
	r := bug.NewReporter(c.File)
	r.Filef(bug.KindWarn, "kho: restore of 0x1000", "detail")
	r.Filef(bug.KindWarn, "refcount_t: underflow", "detail")
	r.Filef(bug.KindUAF, "kho: restore of 0x2000", "a UAF is never expected")
	require.Len(t, c.Reports(), 3)
	bad := c.Unexpected("kho: restore of ")
	require.Len(t, bad, 2)
	require.Equal(t, "refcount_t: underflow", bad[0].Title)
	require.Equal(t, bug.KindUAF, bad[1].Kind)
	c.Reset()
	require.Empty(t, c.Reports())
}
