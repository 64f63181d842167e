package proptest

import (
	"errors"
	"flag"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"luomodel/model"
)

// failTB is a rapid.TB that keeps what rapid reports instead of failing
// the test.
type failTB struct {
	mu     sync.Mutex
	failed bool
	out    []string
}

type failTBStop struct{}

func (f *failTB) Helper()      {}
func (f *failTB) Name() string { return "shrink" }
func (f *failTB) Log(args ...any) {
	f.mu.Lock()
	f.out = append(f.out, fmt.Sprint(args...))
	f.mu.Unlock()
}
func (f *failTB) Logf(format string, args ...any)   { f.Log(fmt.Sprintf(format, args...)) }
func (f *failTB) Error(args ...any)                 { f.Log(args...); f.Fail() }
func (f *failTB) Errorf(format string, args ...any) { f.Error(fmt.Sprintf(format, args...)) }
func (f *failTB) Fatal(args ...any)                 { f.Error(args...); f.FailNow() }
func (f *failTB) Fatalf(format string, args ...any) { f.Errorf(format, args...); f.FailNow() }
func (f *failTB) Skip(args ...any)                  { f.Log(args...); f.SkipNow() }
func (f *failTB) Skipf(format string, args ...any)  { f.Skip(fmt.Sprintf(format, args...)) }
func (f *failTB) SkipNow()                          { panic(failTBStop{}) }
func (f *failTB) FailNow()                          { f.Fail(); panic(failTBStop{}) }
func (f *failTB) Fail() {
	f.mu.Lock()
	f.failed = true
	f.mu.Unlock()
}
func (f *failTB) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

// checkPlanted runs rapid checks from seed with rapid's shrinking off and
// the shrinker's planted invariant, and returns what rapid reported.
func checkPlanted(t *testing.T, seed uint64, plant func(*run) error) string {
	for name, v := range map[string]string{"rapid.seed": strconv.FormatUint(seed, 10), "rapid.checks": "100", "rapid.shrinktime": "0s", "rapid.nofailfile": "true"} {
		old := flag.Lookup(name).Value.String()
		require.NoError(t, flag.Set(name, v))
		t.Cleanup(func() { _ = flag.Set(name, old) })
	}
	sh := newShrinker(nil, time.Minute)
	sh.plant = plant
	tb := &failTB{}
	func() {
		defer func() {
			if p := recover(); p != nil {
				if _, ok := p.(failTBStop); !ok {
					panic(p)
				}
			}
		}()
		// Without hostile hand-overs: each is one action of many syscalls
		// (the state it needs built, the kexec, the corrupt file
		// retrieved), which the shrinker keeps or drops whole.
		rapid.Check(tb, lockstep(nil, map[string]bool{"hostile_kexec": true}, sh))
	}()
	require.True(t, tb.Failed(), "the planted invariant never failed")
	out := strings.Join(tb.out, "\n")
	// The report, without rapid's lines after it.
	end := strings.Index(out, "replays)")
	require.Positive(t, end, out)
	return out[:end]
}

var shrunkRE = regexp.MustCompile(`shrunk by the checker from (\d+) to (\d+) operations`)

// TestShrinkerFindsTheShortTrace plants an invariant that fails once a
// session handed over by a kexec was retrieved: the shortest trace is
// nine operations (two tasks, a session, the kexec, two tasks, open,
// retrieve). The shrunk report must be that short, fail the planted
// invariant, and be the same when the same checks run again (the replay
// command reproduces it).
func TestShrinkerFindsTheShortTrace(t *testing.T) {
	plant := func(r *run) error {
		for _, se := range r.e.S.Sessions {
			if se.Incoming && se.Retrieved {
				return errors.New("an incoming session was retrieved")
			}
		}
		return nil
	}
	out := checkPlanted(t, 3, plant)
	require.Contains(t, out, "planted: an incoming session was retrieved")
	m := shrunkRE.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	from, _ := strconv.Atoi(m[1])
	to, _ := strconv.Atoi(m[2])
	// The shortest such trace is 9 operations (two tasks, open, create,
	// kexec, two tasks, open, retrieve); the shrinker removes whole
	// actions, so a step or two that other steps lean on may stay.
	require.LessOrEqual(t, to, 12, out)
	require.LessOrEqual(t, to, from)
	require.Contains(t, out, fmt.Sprintf("trace (%d operations)", to))
	require.Contains(t, out, "LIVEUPDATE_IOCTL_RETRIEVE_SESSION")
	require.Equal(t, out, checkPlanted(t, 3, plant), "shrinking is deterministic")
}

// TestShrinkerKeepsTheFailure: a candidate that fails elsewhere is not
// taken. The planted invariant fails on a preserved memfd of more than
// one page: shrinking must keep the write that made it two pages (the
// other failures it may meet on the way are other checks).
func TestShrinkerKeepsTheFailure(t *testing.T) {
	plant := func(r *run) error {
		for _, se := range r.e.S.Sessions {
			for _, f := range se.Out {
				file := r.e.S.Files[f.File]
				if file.Kind == model.KindMemfd && len(r.e.S.Inodes[file.Inode].Data) > model.PageSize {
					return errors.New("a preserved memfd of two pages")
				}
			}
		}
		return nil
	}
	out := checkPlanted(t, 5, plant)
	require.Contains(t, out, "planted: a preserved memfd of two pages")
	require.Contains(t, out, "SESSION_PRESERVE_FD")
	require.Regexp(t, `write\(|ftruncate\(`, out)
}

// TestReplaySourceFollowsLabels: a replayed step takes the next recorded
// choice with the label asked for (skipping those no longer drawn),
// wraps one out of range and reads a missing one as 0.
func TestReplaySourceFollowsLabels(t *testing.T) {
	s := &replaySource{rec: stepRec{draws: []draw{{"task", 5}, {"odd", 1}, {"fd", 7}, {"fd", 2}}}}
	require.Equal(t, 2, s.Intn(3, "task"))
	require.Equal(t, 3, s.Intn(4, "fd"), "the odd choice is not drawn now")
	require.Equal(t, 0, s.Intn(4, "odd"), "nothing recorded after the fd")
	require.Equal(t, 2, s.Intn(4, "fd"))
	require.Equal(t, 0, s.Intn(1, "fd"))
	require.Equal(t, []draw{{"task", 2}, {"fd", 3}, {"odd", 0}, {"fd", 2}, {"fd", 0}}, s.used.draws)
}

// TestReplaySourceTakesTheRecordedName: a replayed named choice takes
// the recorded name where it may, else the drawn one.
func TestReplaySourceTakesTheRecordedName(t *testing.T) {
	names := []string{"open", "close", "kexec"}
	s := &replaySource{rec: stepRec{names: []string{"close", "close"}}}
	require.Equal(t, 1, choose(s, names, 2, func(int) bool { return true }))
	require.Equal(t, 2, choose(s, names, 2, func(j int) bool { return j != 1 }), "close may not be taken")
	require.Equal(t, 0, choose(s, names, 0, func(int) bool { return true }), "no third name recorded")
	require.Equal(t, []string{"close", "kexec", "open"}, s.used.names)
}

// TestShrinkerSplitsCompoundSteps: a step of many operations (a fill of
// the session table) is split into its operations, run as they are, so
// that those the failure does not need go one by one. The planted
// invariant fails while a session named "s2" is outgoing, which in a
// drawn check only a fill that keeps its sessions makes: the shrunk
// trace is the device's open and that one create.
func TestShrinkerSplitsCompoundSteps(t *testing.T) {
	plant := func(r *run) error {
		if r.e.S.FindOutgoing("s2") != nil {
			return errors.New(`session "s2" is outgoing`)
		}
		return nil
	}
	out := checkPlanted(t, 2, plant)
	require.Contains(t, out, `planted: session "s2" is outgoing`)
	m := shrunkRE.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	to, _ := strconv.Atoi(m[2])
	require.LessOrEqual(t, to, 5, out)
	require.Contains(t, out, `name="s2"`)
}
