package proptest

import (
	"slices"
	"strings"

	"luomodel/model"
)

// Source is where actions draw their choices: rapid in tests and in
// `luo check`, a seeded PRNG in benchmarks.
type Source interface {
	// Intn returns a uniformly distributed value in [0, n); label names
	// the choice. Smaller values are the simpler choices: shrinking moves
	// toward 0.
	Intn(n int, label string) int
}

// Ctx is one action in progress: the model's view of the world, the source
// of choices, and the executor that applies an operation to the port (and
// the model) and returns the port's result.
type Ctx struct {
	// S is the model's state; it advances after every Do.
	S    *model.State
	Src  Source
	exec func(model.Op) model.Result
}

// Do executes op and returns its result; a disagreement with the model
// does not return (the run fails).
func (c *Ctx) Do(op model.Op) model.Result { return c.exec(op) }

// Action is one kind of step of a campaign.
type Action struct {
	Name string
	// Weight is the action's relative frequency in state s; 0 means it
	// does not apply.
	Weight func(s *model.State) int
	// Run performs the action through c.Do. It returns false, before any
	// Do, when it finds nothing to do.
	Run func(c *Ctx) bool
}

// Probabilities, in percent, of the deliberately wrong choices. They are
// low so that deep states are reached, and non-zero so that every error
// path keeps being exercised.
const (
	pctDeadTask  = 2 // a task of a previous kernel or one that exited: ESRCH
	pctBadFD     = 3 // an fd that is not open: EBADF
	pctWrongKind = 5 // an open fd of the wrong kind: ENOTTY, EINVAL, ENOENT
)

// SessionNames is the pool of valid session names the campaign creates;
// the first ones are the simplest, where shrinking leads.
var SessionNames = []string{"a", "b", "vm0", "c", "d", "e"}

// edgeNames are session names at the edges of validation: the longest
// valid one (63 bytes), an unterminated 64-byte one, the empty one, and
// one with bytes after its NUL (valid: "a").
var edgeNames = []string{
	strings.Repeat("n", 63),
	strings.Repeat("x", 64),
	"",
	"a\x00junk",
}

// tokens is the pool of file tokens.
var tokens = []uint64{0, 1, 2, 7, 42, 1 << 63}

func pick[T any](src Source, label string, xs []T) T {
	return xs[src.Intn(len(xs), label)]
}

// chance is true with probability pct%. The drawn value 0 means false, so
// that shrinking leads away from the rarer branch.
func chance(src Source, label string, pct int) bool {
	return src.Intn(100, label) >= 100-pct
}

func sortedKeys[K ~int, V any](m map[K]V) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// liveCount returns how many tasks are alive (liveTasks without the
// list, for the weights every step computes).
func liveCount(s *model.State) int {
	n := 0
	for _, t := range s.Tasks {
		if t.Alive {
			n++
		}
	}
	return n
}

// liveTasks returns the ids of live tasks, ascending.
func liveTasks(s *model.State) []model.TaskID {
	var ids []model.TaskID
	for _, id := range sortedKeys(s.Tasks) {
		if s.Tasks[id].Alive {
			ids = append(ids, id)
		}
	}
	return ids
}

// fdsOf returns the fds of task whose file satisfies ok (nil: any),
// ascending.
func fdsOf(s *model.State, task model.TaskID, ok func(*model.File) bool) []int {
	if ok == nil {
		ok = func(*model.File) bool { return true }
	}
	t := s.Tasks[task]
	if t == nil {
		return nil
	}
	var fds []int
	for fd, id := range t.FDs {
		if ok(s.Files[id]) {
			fds = append(fds, fd)
		}
	}
	slices.Sort(fds)
	return fds
}

func kindIs(k model.FileKind) func(*model.File) bool {
	return func(f *model.File) bool { return f.Kind == k }
}

// sessionFile selects session files: outgoing, or incoming and retrieved.
func sessionFile(s *model.State, incoming bool) func(*model.File) bool {
	return func(f *model.File) bool {
		return f.Kind == model.KindSession && s.Sessions[f.Session].Incoming == incoming
	}
}

// task picks a live task, preferring those holding an fd that satisfies
// want (nil: any); rarely a dead one (ESRCH).
func (c *Ctx) task(want func(*model.File) bool) (model.TaskID, bool) {
	live := liveTasks(c.S)
	if len(c.S.Tasks) > len(live) && chance(c.Src, "dead task", pctDeadTask) {
		var dead []model.TaskID
		for _, id := range sortedKeys(c.S.Tasks) {
			if !c.S.Tasks[id].Alive {
				dead = append(dead, id)
			}
		}
		return pick(c.Src, "task", dead), true
	}
	if len(live) == 0 {
		return 0, false
	}
	if want != nil {
		var with []model.TaskID
		for _, id := range live {
			if len(fdsOf(c.S, id, want)) > 0 {
				with = append(with, id)
			}
		}
		if len(with) > 0 && !chance(c.Src, "any task", pctWrongKind) {
			return pick(c.Src, "task", with), true
		}
	}
	return pick(c.Src, "task", live), true
}

// badFDs are fd values that are never open in the campaign's tasks (1023
// is open only while an fd table is full).
var badFDs = []int{-1, 42, 1023, 1024}

// fd picks an fd of task whose file satisfies want (nil: any); sometimes an fd of
// another kind, rarely one that is not open.
func (c *Ctx) fd(task model.TaskID, want func(*model.File) bool) int {
	class := c.Src.Intn(100, "fd class") // one draw: 0 is the common case
	if class >= 100-pctBadFD {
		return pick(c.Src, "bad fd value", badFDs)
	}
	good := fdsOf(c.S, task, want)
	if len(good) == 0 || class >= 100-pctBadFD-pctWrongKind {
		good = fdsOf(c.S, task, nil)
	}
	if len(good) == 0 {
		return pick(c.Src, "bad fd value", badFDs)
	}
	return pick(c.Src, "fd", good)
}

// fileOp builds a syscall on an fd of a task that holds a file satisfying
// want.
func (c *Ctx) fileOp(kind model.OpKind, want func(*model.File) bool) (model.Op, bool) {
	task, ok := c.task(want)
	if !ok {
		return model.Op{}, false
	}
	op := model.Op{Kind: kind, Task: task}
	if c.S.Tasks[task].Alive {
		op.FD = c.fd(task, want)
	}
	return op, true
}

// ioFile selects the files read, write, lseek and ftruncate go to: mostly
// memfds, sometimes /dev/null.
func ioFile(f *model.File) bool { return f.Kind == model.KindMemfd || f.Kind == model.KindNull }

// createName draws a CREATE_SESSION name: mostly a valid name not yet in
// the outgoing list, sometimes a duplicate or an edge of validation.
func (c *Ctx) createName() string {
	switch n := c.Src.Intn(100, "name class"); {
	case n < 80:
		for _, name := range SessionNames {
			if c.S.FindOutgoing(name) == nil {
				// The first free name: simple and shrinkable.
				if !chance(c.Src, "skip name", 30) {
					return name
				}
			}
		}
		return pick(c.Src, "name", SessionNames)
	case n < 88 && len(c.S.Outgoing) > 0:
		return c.S.Sessions[pick(c.Src, "dup name", c.S.Outgoing)].Name
	default:
		return pick(c.Src, "edge name", edgeNames)
	}
}

// retrieveName draws a RETRIEVE_SESSION name: mostly an incoming session
// not yet retrieved, sometimes one already retrieved, an unknown name or
// an edge of validation.
func (c *Ctx) retrieveName() string {
	var fresh, taken []string
	for _, id := range c.S.Incoming {
		se := c.S.Sessions[id]
		if se.Retrieved {
			taken = append(taken, se.Name)
		} else {
			fresh = append(fresh, se.Name)
		}
	}
	n := c.Src.Intn(100, "name class")
	switch {
	case n < 80 && len(fresh) > 0:
		return pick(c.Src, "incoming name", fresh)
	case n < 90 && len(taken) > 0:
		return pick(c.Src, "retrieved name", taken)
	case n < 95:
		return pick(c.Src, "name", SessionNames)
	default:
		return pick(c.Src, "edge name", edgeNames)
	}
}

// sessionOf returns the model session behind fd of task, or nil.
func (c *Ctx) sessionOf(task model.TaskID, fd int) *model.Session {
	t := c.S.Tasks[task]
	if t == nil {
		return nil
	}
	id, ok := t.FDs[fd]
	if !ok {
		return nil
	}
	if f := c.S.Files[id]; f.Kind == model.KindSession {
		return c.S.Sessions[f.Session]
	}
	return nil
}

// freshToken draws a token not used in se (when one is left).
func (c *Ctx) freshToken(se *model.Session) uint64 {
	used := map[uint64]bool{}
	if se != nil {
		for _, f := range se.Out {
			used[f.Token] = true
		}
	}
	var free []uint64
	for _, t := range tokens {
		if !used[t] {
			free = append(free, t)
		}
	}
	if len(free) == 0 {
		return uint64(100 + len(used))
	}
	return free[0]
}

// preserveToken draws a PRESERVE_FD token: mostly fresh, sometimes one the
// session already holds (EEXIST).
func (c *Ctx) preserveToken(se *model.Session) uint64 {
	if se != nil && len(se.Out) > 0 && chance(c.Src, "dup token", 10) {
		return pick(c.Src, "used token", se.Out).Token
	}
	if chance(c.Src, "any token", 10) {
		return pick(c.Src, "token", tokens)
	}
	return c.freshToken(se)
}

// retrieveToken draws a RETRIEVE_FD token: mostly one the session was
// handed, sometimes an unknown one (ENOENT).
func (c *Ctx) retrieveToken(se *model.Session) uint64 {
	if se != nil && len(se.In) > 0 && !chance(c.Src, "unknown token", 10) {
		return pick(c.Src, "incoming token", se.In).Token
	}
	return pick(c.Src, "token", tokens)
}

// preserveTarget picks the fd to preserve: mostly a memfd that no session
// preserves yet, sometimes one preserved already (EBUSY), another kind of
// file (ENOENT: no handler) or a bad fd (EBADF).
func (c *Ctx) preserveTarget(task model.TaskID) int {
	if !c.S.Tasks[task].Alive {
		return 0
	}
	free := fdsOf(c.S, task, func(f *model.File) bool {
		return f.Kind == model.KindMemfd && !c.S.Preserved[f.Inode]
	})
	switch n := c.Src.Intn(100, "preserve target"); {
	case n < 80 && len(free) > 0:
		return pick(c.Src, "memfd", free)
	case n < 90:
		return c.fd(task, kindIs(model.KindMemfd))
	default:
		return c.fd(task, nil)
	}
}

// reserved draws a reserved field: mostly 0, sometimes 1 (EINVAL).
func (c *Ctx) reserved() uint32 {
	if chance(c.Src, "reserved", 8) {
		return 1
	}
	return 0
}

// data draws memfd contents: a length and a fill pattern.
func (c *Ctx) data() []byte {
	n := pick(c.Src, "len", []int{3, 1, 16, 0, 4096, 5000})
	fill := byte('a' + c.Src.Intn(26, "byte"))
	b := make([]byte, n)
	for i := range b {
		b[i] = fill + byte(i%7)
	}
	return b
}

// Weights are in tenths: always(1) is ten times as frequent as rare(1).

func always(n int) func(*model.State) int { return func(*model.State) int { return 10 * n } }

// rare is for the limit actions: each runs hundreds of operations.
func rare(n int) func(*model.State) int { return func(*model.State) int { return n } }

// when gives weight n in states where cond holds, else a tenth of it
// (still tried, for the error paths).
func when(n int, cond func(*model.State) bool) func(*model.State) int {
	return func(s *model.State) int {
		if cond(s) {
			return 10 * n
		}
		return n
	}
}

// single adapts a one-operation builder to Run.
func single(build func(c *Ctx) (model.Op, bool)) func(c *Ctx) bool {
	return func(c *Ctx) bool {
		op, ok := build(c)
		if ok {
			c.Do(op)
		}
		return ok
	}
}

// State conditions of the actions' weights. Every step asks them of every
// action, so the file conditions read the model's counts of open files
// instead of walking them.

func devInUse(s *model.State) bool           { return s.DevInUse }
func haveOutgoingFile(s *model.State) bool   { return s.OpenSessionFiles(false) > 0 }
func haveIncomingFile(s *model.State) bool   { return s.OpenSessionFiles(true) > 0 }
func haveSessionFile(s *model.State) bool    { return s.OpenFiles(model.KindSession) > 0 }
func haveMemfd(s *model.State) bool          { return s.OpenFiles(model.KindMemfd) > 0 }
func canRetrieveSession(s *model.State) bool { return s.DevInUse && len(s.Incoming) > 0 }

// The builders of the LUO ioctls, shared by the plain actions and the
// fault actions (proptest/faults.go).

func buildCreateSession(c *Ctx) (model.Op, bool) {
	op, ok := c.fileOp(model.OpIoctl, kindIs(model.KindDevice))
	op.Cmd = model.IoctlCreateSession
	op.Buf = model.SessionArgBuf(c.createName())
	return op, ok
}

func buildRetrieveSession(c *Ctx) (model.Op, bool) {
	op, ok := c.fileOp(model.OpIoctl, kindIs(model.KindDevice))
	op.Cmd = model.IoctlRetrieveSession
	op.Buf = model.SessionArgBuf(c.retrieveName())
	return op, ok
}

func buildPreserveFD(c *Ctx) (model.Op, bool) {
	want := sessionFile(c.S, false)
	if chance(c.Src, "incoming session", pctWrongKind) {
		want = kindIs(model.KindSession)
	}
	op, ok := c.fileOp(model.OpIoctl, want)
	if !ok {
		return op, false
	}
	op.Cmd = model.IoctlSessionPreserveFD
	se := c.sessionOf(op.Task, op.FD)
	op.Buf = model.FDArgBuf(int32(c.preserveTarget(op.Task)), c.preserveToken(se))
	return op, true
}

func buildRetrieveFD(c *Ctx) (model.Op, bool) {
	want := sessionFile(c.S, true)
	if chance(c.Src, "outgoing session", pctWrongKind) {
		want = kindIs(model.KindSession)
	}
	op, ok := c.fileOp(model.OpIoctl, want)
	if !ok {
		return op, false
	}
	op.Cmd = model.IoctlSessionRetrieveFD
	op.Buf = model.FDArgBuf(int32(c.Src.Intn(3, "junk fd")), c.retrieveToken(c.sessionOf(op.Task, op.FD)))
	return op, true
}

func buildFinish(c *Ctx) (model.Op, bool) {
	want := sessionFile(c.S, true)
	if chance(c.Src, "outgoing session", pctWrongKind) {
		want = kindIs(model.KindSession)
	}
	op, ok := c.fileOp(model.OpIoctl, want)
	op.Cmd = model.IoctlSessionFinish
	op.Buf = model.FinishArgBuf(c.reserved())
	return op, ok
}

func buildGetName(c *Ctx) (model.Op, bool) {
	op, ok := c.fileOp(model.OpIoctl, kindIs(model.KindSession))
	op.Cmd = model.IoctlSessionGetName
	op.Buf = model.GetNameArgBuf(c.reserved())
	if chance(c.Src, "junk name field", 30) {
		for i := 8; i < len(op.Buf); i++ {
			op.Buf[i] = 0xAA
		}
	}
	return op, ok
}

// Actions returns the action set. The first actions are the simplest:
// shrinking a drawn action moves toward the top of the list.
func Actions() []Action {
	return append([]Action{
		{"close", always(6), single(func(c *Ctx) (model.Op, bool) {
			return c.fileOp(model.OpClose, func(*model.File) bool { return true })
		})},
		{"open_device", func(s *model.State) int {
			if testModuleNeeded(s) {
				return 2 // a VMM loads its modules first
			}
			if s.DevInUse {
				return 20
			}
			return 80
		}, single(func(c *Ctx) (model.Op, bool) {
			task, ok := c.task(nil)
			op := model.Op{Kind: model.OpOpen, Task: task, Path: model.DevLiveUpdate}
			op.Flags = pick(c.Src, "flags", []int{model.ORdwr, model.ORdwr | model.OCloexec, model.ORdonly})
			return op, ok
		})},
		{"create_session", when(12, devInUse), single(buildCreateSession)},
		{"memfd_create", always(5), single(func(c *Ctx) (model.Op, bool) {
			task, ok := c.task(nil)
			op := model.Op{Kind: model.OpMemfdCreate, Task: task}
			op.Name = "guest"
			if chance(c.Src, "odd name", 10) {
				op.Name = pick(c.Src, "memfd name", []string{"", strings.Repeat("m", 249), strings.Repeat("m", 250)})
			}
			op.Flags = 0
			if chance(c.Src, "odd flags", 30) {
				op.Flags = pick(c.Src, "memfd flags", []int{model.MfdCloexec, model.MfdAllowSealing, model.MfdAllowSealing | model.MfdCloexec,
					model.MfdNoexecSeal, model.MfdExec | model.MfdAllowSealing, model.MfdExec | model.MfdNoexecSeal, 0x100})
			}
			return op, ok
		})},
		{"write", when(5, haveMemfd), single(func(c *Ctx) (model.Op, bool) {
			op, ok := c.fileOp(model.OpWrite, ioFile)
			op.Buf = c.data()
			return op, ok
		})},
		{"preserve_fd", when(12, haveOutgoingFile), single(buildPreserveFD)},
		{"kexec", when(4, func(s *model.State) bool { return len(s.Outgoing) > 0 }), func(c *Ctx) bool {
			// The whole machine live-updates; two tasks of the new kernel
			// take over.
			c.Do(model.Op{Kind: model.OpKexec})
			c.Do(model.Op{Kind: model.OpNewTask})
			c.Do(model.Op{Kind: model.OpNewTask})
			return true
		}},
		{"retrieve_session", when(12, canRetrieveSession), single(buildRetrieveSession)},
		{"retrieve_fd", when(12, haveIncomingFile), single(buildRetrieveFD)},
		{"read", when(5, haveMemfd), single(func(c *Ctx) (model.Op, bool) {
			op, ok := c.fileOp(model.OpRead, ioFile)
			op.N = pick(c.Src, "read len", []int{64, 0, 1, 8, 6000})
			return op, ok
		})},
		{"lseek", when(3, haveMemfd), single(func(c *Ctx) (model.Op, bool) {
			op, ok := c.fileOp(model.OpLseek, ioFile)
			op.Off = pick(c.Src, "offset", []int64{0, 1, 3, -1, -5, 4090, 4100, 9000})
			op.Whence = pick(c.Src, "whence", []int{model.SeekSet, model.SeekCur, model.SeekEnd, model.SeekData, model.SeekHole, 9})
			return op, ok
		})},
		{"ftruncate", when(3, haveMemfd), single(func(c *Ctx) (model.Op, bool) {
			op, ok := c.fileOp(model.OpFtruncate, ioFile)
			op.Off = pick(c.Src, "length", []int64{0, 3, 16, 4096, 5000, -1})
			return op, ok
		})},
		// Preserved memory keeps changing until the kexec (a VM's guest
		// memory): write into a page of a preserved memfd, a hole the
		// preserve filled included, without growing it.
		{"write_preserved", func(s *model.State) int {
			if len(preservedMemfds(s)) > 0 {
				return 4
			}
			return 0
		}, writePreserved},
		// Memory pressure: drop_caches drops clean page-cache folios, as
		// reclaim may; a folio that holds data must be dirty to stay.
		{"drop_caches", when(3, haveMemfd), single(func(c *Ctx) (model.Op, bool) {
			task, ok := c.task(nil)
			mode := pick(c.Src, "mode", []int{1, 3, 1, 2, 4, 0, 5})
			return model.Op{Kind: model.OpDropCaches, Task: task, Arg: mode}, ok
		})},
		{"finish", when(6, haveIncomingFile), single(buildFinish)},
		{"get_name", when(3, haveSessionFile), single(buildGetName)},
		{"dup", always(3), single(func(c *Ctx) (model.Op, bool) {
			return c.fileOp(model.OpDup, func(*model.File) bool { return true })
		})},
		{"open_other", always(2), single(func(c *Ctx) (model.Op, bool) {
			task, ok := c.task(nil)
			op := model.Op{Kind: model.OpOpen, Task: task}
			op.Path = pick(c.Src, "path", []string{model.DevNull, "/dev/nonexistent"})
			op.Flags = pick(c.Src, "flags", []int{model.ORdwr, model.ORdonly, model.OWronly})
			return op, ok
		})},
		{"malformed_ioctl", always(3), malformedIoctl},
		{"live_update", always(30), liveUpdateStep},
		{"new_task", func(s *model.State) int {
			if liveCount(s) >= 4 {
				return 0
			}
			return 10
		}, func(c *Ctx) bool {
			c.Do(model.Op{Kind: model.OpNewTask})
			return true
		}},
		{"exit", func(s *model.State) int {
			if liveCount(s) < 2 {
				return 0
			}
			return 10
		}, func(c *Ctx) bool {
			c.Do(model.Op{Kind: model.OpExit, Task: pick(c.Src, "task", liveTasks(c.S))})
			return true
		}},
		{"fill_sessions", rare(1), fillSessions},
		{"fill_files", func(s *model.State) int {
			if haveOutgoingFile(s) {
				return 2
			}
			return 0
		}, fillFiles},
		{"fill_fds", rare(1), fillFDs},
		// gen_process.go: fork, exec, fcntl, setrlimit.
	}, processActions()...)
}

// preservedMemfds lists the live tasks' fds of non-empty memfds that LUO
// holds (preserved in an outgoing session, or retrieved), as task, fd.
func preservedMemfds(s *model.State) [][2]int {
	var out [][2]int
	for _, t := range liveTasks(s) {
		for _, fd := range fdsOf(s, t, func(f *model.File) bool {
			return f.Kind == model.KindMemfd && s.Preserved[f.Inode] && len(s.Inodes[f.Inode].Data) > 0
		}) {
			out = append(out, [2]int{int(t), fd})
		}
	}
	return out
}

// writePreserved writes a few bytes at the start of a drawn page of a
// preserved memfd, never past its end.
func writePreserved(c *Ctx) bool {
	all := preservedMemfds(c.S)
	if len(all) == 0 {
		return false
	}
	tf := pick(c.Src, "preserved memfd", all)
	task, fd := model.TaskID(tf[0]), tf[1]
	size := int64(len(c.S.Inodes[c.S.Files[c.S.Tasks[task].FDs[fd]].Inode].Data))
	off := int64(c.Src.Intn(int((size+model.PageSize-1)/model.PageSize), "page")) * model.PageSize
	c.Do(model.Op{Kind: model.OpLseek, Task: task, FD: fd, Off: off, Whence: model.SeekSet})
	c.Do(model.Op{Kind: model.OpWrite, Task: task, FD: fd, Buf: []byte("late")[:min(4, size-off)]})
	return true
}
