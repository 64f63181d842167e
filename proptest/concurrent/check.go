package concurrent

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/anishathalye/porcupine"

	"luomodel/kernel"
	"luomodel/kernel/bug"
	"luomodel/kernel/liveupdate"
	"luomodel/kernel/locking"
	"luomodel/kernel/sched"
	"luomodel/kernel/vfs"
	"luomodel/machine"
	"luomodel/model"
	"luomodel/proptest"
)

// Config configures a check.
type Config struct {
	// Gen bounds each round's program (zero: DefaultGen()).
	Gen Gen
	// Rounds is the number of concurrent rounds (0: 2).
	Rounds int
	// NoLin skips the linearizability check (benchmarks).
	NoLin bool
	// OutDir receives porcupine's HTML visualization of a history that is
	// not linearizable ("": the system temp dir).
	OutDir string
	// LinTimeout bounds one porcupine check (0: 10s); a timeout is not a
	// failure, but it ends the check (Stats.Undecided).
	LinTimeout time.Duration
	// RecordTaken records in Stats.CS which LUO locks each instruction
	// takes (CSCoverage.Undeclared), for the test that the coverage goals
	// miss none; it walks the stack at every acquisition.
	RecordTaken bool
	// checkHist, if set (tests), sees each round's porcupine model and a
	// copy of its history just before the linearizability check.
	checkHist func(pm porcupine.Model, hist []porcupine.Operation)
	// crossCheck, if not nil, runs porcupine's whole search on every
	// round, also when a descent (firstDescent, lateDescent) already
	// linearized the history, fails the round unless both find it
	// linearizable and the first descent ends in porcupine's state, and
	// counts the rounds of each kind (tests).
	crossCheck *descentCounts
	// linCheck, if set (tests), stands for porcupine's search of the
	// histories no descent linearizes.
	linCheck func(pm porcupine.Model, hist []porcupine.Operation) (porcupine.CheckResult, porcupine.LinearizationInfo)
	// fault makes the harness act as a broken port would (fork.go), for
	// the tests that show the check catches it.
	fault forkFault
}

// descentCounts counts the rounds whose history porcupine's first descent
// linearized (descended), those the late descent did (late), and those
// left to the whole search.
type descentCounts struct {
	descended, late, searched atomic.Int64
}

func (c Config) withDefaults() Config {
	if c.Gen.MaxThreads == 0 {
		c.Gen = DefaultGen()
	}
	if c.Rounds == 0 {
		c.Rounds = 2
	}
	if c.LinTimeout == 0 {
		c.LinTimeout = 10 * time.Second
	}
	return c
}

// Failure is a failed check: what went wrong and the readable account.
type Failure struct {
	// Category is a stable one-line summary, e.g. "kernel report: uaf:
	// use-after-free of luo_session" or "not linearizable".
	Category string
	What     string
	// Round is the failing round (0: setup).
	Round int
	// Trace holds the setup, each thread's program and the interleaving.
	Trace string
	// Switches and Preemptions of the failing round's schedule.
	Switches, Preemptions int
	// HTML is the path of porcupine's visualization, if written.
	HTML string
	// Programs and Choices are every round's program and scheduling
	// choices up to the failing one: Replay re-runs them.
	Programs []Program
	Choices  [][]int
}

func (f *Failure) Error() string {
	s := fmt.Sprintf("%s (round %d, %d context switches, %d preemptions)\n", f.What, f.Round, f.Switches, f.Preemptions)
	// The rounds before (their trace is not kept): what they ran.
	for i, p := range f.Programs[:max(0, len(f.Programs)-1)] {
		s += fmt.Sprintf("round %d's program (passed):\n%s", i+1, p)
	}
	s += f.Trace
	if f.HTML != "" {
		s += "porcupine visualization: " + f.HTML + "\n"
	}
	return s
}

// histEvent is one line of the interleaving: a call or its return. It is
// rendered only for a trace (most rounds pass).
type histEvent struct {
	step   int // scheduling points reached before the event
	thread int
	ret    bool // the return (res), else the call
	op     model.Op
	res    model.Result
	// note, if set, is the event instead of a call or return (a module
	// phase, churn.go).
	note string
	// proc is the forked process that made the call (linInput.Proc, 0:
	// the round's), child the one a fork made (its NewInst).
	proc, child int
}

func (e histEvent) text() string {
	if e.note != "" {
		return e.note
	}
	var s string
	switch {
	case e.op.Kind == model.OpFork && !e.ret:
		s = fmt.Sprintf("t%d: fork()", e.op.Task)
	case e.op.Kind == model.OpFork && e.res.Errno == 0:
		// The port's fork returns no task id: the child is named by
		// its fork (p<NewInst>).
		s = fmt.Sprintf("t%d: fork() = p%d", e.op.Task, e.child)
	case e.ret:
		s = model.Format(e.op, e.res)
	default:
		s = strings.TrimSuffix(model.Format(e.op, model.Result{}), " = 0")
	}
	if e.proc != 0 {
		// A child's op carries the round's process's task: the check
		// gives the child its model task at the fork's linearization.
		s = fmt.Sprintf("p%d", e.proc) + strings.TrimPrefix(s, fmt.Sprintf("t%d", e.op.Task))
	}
	if e.ret {
		return "ret  " + s
	}
	return "call " + s
}

// checker is one check in progress: a machine and the model state of the
// last quiescent point.
type checker struct {
	cfg Config
	m   *machine.Machine
	s   model.State
	// setupLog is the sequential part, for traces: setupBase, the saved
	// setup's (immutable, shared by every check that boots from it),
	// then this check's own.
	setupBase, setupLog []logLine

	// The round in progress. task and kt are the round's process.
	task model.TaskID
	kt   *kernel.Task
	sch  atomic.Pointer[sched.Scheduler]

	// slots are the fd registers every thread shares (prog.go). A slot
	// holds an fd and the id of its instance (see lin.go), packed.
	slots    [NumSlots]atomic.Int64
	clock    atomic.Int64
	rebooted atomic.Bool
	// reservedLeak is the first fd table seen holding a reserved fd while
	// no syscall used it (FDTable.Listing); nil if none this round.
	reservedLeak atomic.Pointer[string]
	// publish is, by thread, the fd-returning call in flight: its
	// destination slot and instance, packed (pack(slot, inst)), or -1.
	// At its fd_install() the fd goes to the slot at once
	// (observeInstall), and publish becomes -1: other threads may use
	// the number before the call returns, as a real program's threads
	// can. Written only by the thread's own goroutine.
	publish [maxThreads]atomic.Int64
	// published is, by thread, the slot its in-flight call filled at its
	// fd_install() (-1: none): the window until the call returns, which
	// the chooser steers another thread into once a round
	// (steeredChooser.publication).
	published [maxThreads]atomic.Int32
	// pc is, by thread, the index in its body of the instruction it runs
	// (-1 before its first); prog is the round's program, and mayReboot
	// says whether it has a reboot. For the chooser and exec; pc is
	// written by the thread's goroutine.
	pc        [maxThreads]atomic.Int32
	prog      Program
	mayReboot bool

	mu   sync.Mutex
	hist []porcupine.Operation // guarded by mu
	// inflight is each thread's call in progress, nil if none; it points
	// into inflightOps, the round's storage of one per thread. Both guarded
	// by mu. A call still here after the round never returned: its thread
	// was killed.
	inflight    []*porcupine.Operation
	inflightOps []porcupine.Operation
	// lastChoices are the choices of the last passing round.
	lastChoices []int
	// undecided is set by a round whose linearizability check timed out
	// (Config.LinTimeout): it passed, but the model's state after it is
	// unknown, so no later round of the check can be checked.
	undecided bool
	events    []histEvent   // guarded by mu
	reports   []*bug.Report // guarded by mu

	// inRound is set while a round's threads run, and gids are their
	// goroutines (guarded by mu): the module observer (churn.go) records
	// the phases they cause.
	inRound atomic.Bool
	gids    []int64

	// cur is the instruction each thread runs, or runs next (-1: done).
	cur [maxThreads]atomic.Int32
	// child is the process each thread forked and runs in (fork.go), nil
	// while it runs in the round's process; only that thread uses it.
	child [maxThreads]*proc
	// cov is the campaign's critical-section coverage (may be nil), and
	// steer this check's own, which the scheduler steers by: per check,
	// so that a seed replays the same draws.
	cov, steer *CSCoverage
	// out counts the instructions' results (may be nil).
	out *Outcomes
	// window is the thread a steered window runs (steeredChooser; -1:
	// none), windowClass the index in luoLocks of the lock it runs to,
	// and waiterMet says it has gone to take that lock, held, since.
	window, windowClass atomic.Int32
	waiterMet           atomic.Bool
	// steerMemo is steerTarget's last answer; only the chooser, on the
	// goroutine of the task at a scheduling point, uses it.
	steerMemo steerMemo
	// saved is the hand-over of the setup's kexec (see setups).
	saved *machine.Handover
}

// checkMemoryMiB is a check's machine's memory. A round uses little: at
// most 51 pages (of 512 here) were allocated or reserved at a quiescent
// point over `luo concurrent -campaign 9 -checks 20000`, whose output is
// the same here as at 8 MiB. Each boot sizes the page allocator's
// metadata by it, and a check boots twice.
const checkMemoryMiB = 2

// newChecker boots the machine and runs the setup, or, given setups,
// boots the machine from the saved setup (see setups). scheduled says the
// rounds run under the controlled scheduler: go-deadlock then stays off the
// machine's locks (its free-running parts are this goroutine alone), while
// free-running stress keeps its watchdog.
func newChecker(cfg Config, scheduled bool, su *setups) (*checker, error) {
	c := &checker{cfg: cfg.withDefaults()}
	mcfg := machine.Config{LiveUpdate: true, MemoryMiB: checkMemoryMiB, Report: c.report, NoDeadlockWatch: scheduled}
	if su != nil {
		img, err := su.get(cfg, scheduled)
		if err != nil {
			return nil, err
		}
		if img != nil {
			m, err := machine.Boot(mcfg, img.h)
			if err != nil {
				return nil, err
			}
			c.m, c.s, c.setupBase = m, img.s.CopyOnWrite(), img.setupLog
			return c, nil
		}
	}
	c.s = model.NewState(true)
	m, err := machine.New(mcfg)
	if err != nil {
		return nil, err
	}
	c.m = m
	if err := c.setup(); err != nil {
		return nil, err
	}
	return c, nil
}

// setups saves the machine and the model after the setup once, for every
// check of a property, a replay or a minimization to start from. The setup
// is sequential and deterministic: each check would repeat the same boot,
// the same operations in lockstep with the same agreements, and the same
// kexec; instead the first does them and saves the hand-over its kexec
// left in RAM, and each check boots a fresh machine from it (the new
// kernel finds exactly what the kexec would have left it). If the setup
// filed a kernel report, nothing is saved and every check repeats it.
// Safe for concurrent use.
type setups struct {
	once sync.Once
	img  *setupImage // nil: every check runs the setup
	err  error
}

// setupImage is the saved setup: the hand-over, the model state after the
// kexec and the setup's trace. Immutable.
type setupImage struct {
	h        *machine.Handover
	s        model.State
	setupLog []logLine
}

// logLine is a line of the setup log: text, or else a call and its result,
// rendered only for a trace (most checks pass).
type logLine struct {
	text string
	op   model.Op
	res  model.Result
}

func (l logLine) String() string {
	if l.text != "" {
		return l.text
	}
	return model.Format(l.op, l.res)
}

func (su *setups) get(cfg Config, scheduled bool) (*setupImage, error) {
	su.once.Do(func() {
		c, err := newChecker(cfg, scheduled, nil)
		if err != nil {
			su.err = err
			return
		}
		if c.saved == nil || c.firstReport() != nil {
			return
		}
		su.img = &setupImage{h: c.saved, s: c.s, setupLog: c.setupLog}
	})
	return su.img, su.err
}

// report collects kernel reports, except those filed by a thread that a
// reboot killed while its deferred calls unwind in the dead kernel.
func (c *checker) report(r *bug.Report) {
	if s := c.sch.Load(); s != nil && s.Unwinding(locking.CurrentTask()) {
		return
	}
	c.mu.Lock()
	c.reports = append(c.reports, r)
	c.mu.Unlock()
}

func (c *checker) firstReport() *bug.Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.reports) == 0 {
		return nil
	}
	return c.reports[0]
}

// unexpectedReport returns the first report filed that the model does not
// predict (proptest.ExpectedReport: a refcount WARN of an FLB's count, as
// an FLB linked or unlinked while files count on it leaves), and how many
// predicted ones were filed: the observation compares that count with the
// model's (model.State.Warns).
func (c *checker) unexpectedReport() (*bug.Report, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.reports {
		if !proptest.ExpectedReport(r) {
			return r, n
		}
		n++
	}
	return nil, n
}

// seq runs op sequentially on port and model; they must agree.
func (c *checker) seq(op model.Op) (model.Result, error) {
	var pr model.Result
	var raw error
	if op.Kind == model.OpNewTask {
		c.kt = c.m.Kernel().NewTask()
	} else {
		pr, raw = execPort(c.kt, op)
	}
	mr := c.s.Apply(op)
	if op.Kind == model.OpNewTask {
		pr = mr
	}
	c.setupLog = append(c.setupLog, logLine{op: op, res: pr})
	if !pr.Equal(mr) {
		return pr, fmt.Errorf("setup: port and model disagree:\n  port:  %s\n  model: %s (%v)", model.Format(op, pr), model.Format(op, mr), raw)
	}
	return pr, nil
}

// setup hands sessions "a" (with memfd token 1 and a test file token 2)
// and "b" (a test file token 2) to a second kernel. The test files, whose
// handler counts on the test FLBs, are in both sessions: two sessions'
// finishes or releases then meet on an FLB's incoming lock and on the
// registry's rwsem.
func (c *checker) setup() error {
	if err := c.newProcess(true); err != nil {
		return err
	}
	for _, in := range []Instr{
		{Kind: KCreate, Name: "a", Dst: SlotResult},
		{Kind: KPreserve, Src: SlotResult, File: 0, Token: 1},
		{Kind: KPreserve, Src: SlotResult, File: firstTestFile, Token: 2},
		{Kind: KCreate, Name: "b", Dst: SlotResult + 1},
		{Kind: KPreserve, Src: SlotResult + 1, File: firstTestFile + 1, Token: 2},
	} {
		op := opFor(in, c.task, c.slotOf(0))
		r, err := c.seq(op)
		if err != nil {
			return err
		}
		if fd, ok := fdResult(op, r); ok {
			c.slots[in.Dst].Store(pack(fd, -1))
		}
	}
	return c.kexec()
}

// newProcess starts the round's process: the test module loaded (if
// load) or unloaded (if not, and nothing pins it), the device, two memfds
// and two test files.
func (c *checker) newProcess(load bool) error {
	r, err := c.seq(model.Op{Kind: model.OpNewTask})
	if err != nil {
		return err
	}
	c.task = model.TaskID(r.Ret)
	for i := range c.slots {
		c.slots[i].Store(pack(-1, -1))
	}
	// The test module, before /dev/liveupdate: handed-over test files
	// need its handler at the first open (EEXIST if the probe of the
	// last round's kexec loaded it). A round that starts with the load
	// starts without the module if nothing pins it (EWOULDBLOCK if
	// something does; the model says which).
	switch {
	case load:
		_, err = c.seq(model.Op{Kind: model.OpInitModule, Task: c.task, Name: model.TestModuleName})
	case c.s.Test.Loaded:
		_, err = c.seq(model.Op{Kind: model.OpDeleteModule, Task: c.task, Name: model.TestModuleName})
	}
	if err != nil {
		return err
	}
	c.m.Kernel().Modules().SetObserver(c.observeModule)
	c.m.Kernel().VFS().SetInstallObserver(c.observeInstall)
	r, err = c.seq(model.Op{Kind: model.OpOpen, Task: c.task, Path: model.DevLiveUpdate, Flags: model.ORdwr})
	if err != nil {
		return err
	}
	c.slots[SlotDev].Store(pack(int(r.Ret), SlotDev))
	for i := range 2 {
		r, err = c.seq(model.Op{Kind: model.OpMemfdCreate, Task: c.task, Name: "m" + strconv.Itoa(i)})
		if err != nil {
			return err
		}
		c.slots[SlotFile0+i].Store(pack(int(r.Ret), SlotFile0+i))
		if _, err := c.seq(model.Op{Kind: model.OpWrite, Task: c.task, FD: int(r.Ret), Buf: []byte("memfd " + strconv.Itoa(i))}); err != nil {
			return err
		}
	}
	for i := firstTestFile; i < NumFiles; i++ {
		r, err = c.seq(model.Op{Kind: model.OpOpen, Task: c.task, Path: model.DevLiveUpdateTest, Flags: model.ORdwr})
		if err != nil {
			return err
		}
		c.slots[SlotFile0+i].Store(pack(int(r.Ret), SlotFile0+i))
		if _, err := c.seq(model.Op{Kind: model.OpWrite, Task: c.task, FD: int(r.Ret), Buf: []byte(fileName(i))}); err != nil {
			return err
		}
	}
	return nil
}

// preLen returns the length of the prologue that starts th (Instr.Pre).
func preLen(th []Instr) int {
	n := 0
	for n < len(th) && th[n].Pre {
		n++
	}
	return n
}

// prologue runs the round's prologue (Instr.Pre) sequentially, in lockstep
// with the model, and returns the result slots it filled with their fds
// (the model's numbers, as the setup's are): the slots' instances at the
// round's start.
func (c *checker) prologue(prog Program) (filled map[int]int, err error) {
	filled = map[int]int{}
	for _, th := range prog {
		for _, in := range th[:preLen(th)] {
			op := opFor(in, c.task, c.slotOf(0))
			r, err := c.seq(op)
			if err != nil {
				return nil, err
			}
			if fd, ok := fdResult(op, r); ok && in.Dst >= SlotResult {
				c.slots[in.Dst].Store(pack(fd, in.Dst))
				filled[in.Dst] = fd
			}
		}
	}
	return filled, nil
}

// kexec live-updates sequentially (setup) and saves the hand-over.
func (c *checker) kexec() error {
	h, err := c.m.KexecSave()
	c.saved = h
	c.setupLog = append(c.setupLog, logLine{text: fmt.Sprintf("reboot(LINUX_REBOOT_CMD_KEXEC) = %v", err)})
	if err != nil {
		return fmt.Errorf("setup kexec: %w", err)
	}
	c.s.Apply(model.Op{Kind: model.OpKexec})
	return nil
}

func (c *checker) slot0(i int) int { fd, _ := c.slotInst(0, i); return fd }

// slotOf returns thread th's view of the slots (every thread sees the
// same).
func (c *checker) slotOf(th int) func(int) int {
	return func(i int) int {
		fd, _ := c.slotInst(th, i)
		return fd
	}
}

// slotInst returns the fd in thread th's slot i and its instance id (-1:
// none).
func (c *checker) slotInst(th, i int) (fd, inst int) {
	if i < 0 {
		return -1, -1
	}
	return unpack(c.slotsOf(th)[i].Load())
}

// slotsOf returns the slots of thread th's process.
func (c *checker) slotsOf(th int) *[NumSlots]atomic.Int64 {
	if th < maxThreads && c.child[th] != nil {
		return &c.child[th].slots
	}
	return &c.slots
}

func pack(fd, inst int) int64 { return int64(inst)<<32 | int64(uint32(int32(fd))) }

func unpack(v int64) (fd, inst int) { return int(int32(uint32(v))), int(v >> 32) }

func (c *checker) event(e histEvent) {
	if s := c.sch.Load(); s != nil {
		e.step = s.Steps()
	}
	c.mu.Lock()
	c.events = append(c.events, e)
	c.mu.Unlock()
}

// exec runs one instruction of thread th; st is its scheduler task (nil
// when free-running).
func (c *checker) exec(th int, st *sched.Task, in Instr) {
	op := opFor(in, c.task, c.slotOf(th))
	if in.Kind == KReboot && st == nil {
		return
	}
	if churnKind(in.Kind) && c.rebooted.Load() {
		return // see churnKind
	}
	if (in.Kind == KLoadMod || in.Kind == KUnloadMod) && st == nil {
		// Free-running, a phase's instant is not atomic with the state
		// change it records (churn.go).
		return
	}
	ch := c.child[th]
	if in.Kind == KFork && ch != nil || in.Kind == KExec && ch == nil {
		return // a child does not fork; only a child execs (fork.go)
	}
	kt, procID := c.kt, 0
	if ch != nil {
		kt, procID = ch.kt, ch.id
	}
	// The op's fds and their instances are read from the slots once, here
	// (opFor read the same slots: a thread's own calls never change a
	// slot between the two reads, and no other thread runs in between
	// under the scheduler; free-running, a slot changed in between only
	// makes the check look the number up, as below).
	fdSlot, bufSlot := in.refs()
	fdNum, fdInst := c.slotInst(th, fdSlot)
	bufNum, bufInst := c.slotInst(th, bufSlot)
	if fdSlot >= 0 {
		op.FD = fdNum
	}
	if bufSlot >= 0 && len(op.Buf) >= 8 {
		putLE32(op.Buf[4:], uint32(int32(bufNum)))
	}
	call := c.clock.Add(1)
	li := linInput{Thread: th, Op: op, FDInst: fdInst, BufInst: bufInst, FDNum: fdNum, BufNum: bufNum, NewInst: int(call) + NumSlots, Call: call, Proc: procID}
	if in.Kind == KExec || in.Kind == KExit {
		li.Fork = &forkInput{Chain: portChain(kt, in.Kind == KExit)}
	}
	c.mu.Lock()
	c.inflightOps[th] = porcupine.Operation{ClientId: th, Input: li, Call: call, Output: linOutput{Pending: true}}
	c.inflight[th] = &c.inflightOps[th]
	c.mu.Unlock()
	// A round that reboots kills the calls in flight, whose fds the
	// history would then not know: there a call's fd is the threads'
	// only once it returns.
	if in.Dst >= SlotResult && !c.mayReboot { // its Dst receives the fd it returns
		c.publish[th].Store(pack(in.Dst, li.NewInst))
	}
	c.event(histEvent{thread: th, op: op, proc: procID})
	var r model.Result
	if in.Kind == KReboot {
		err := c.m.Kexec()
		if err != nil {
			r.Errno = errnoUnknown
			if en, ok := asErrno(err); ok {
				r.Errno = en
			}
		} else {
			c.rebooted.Store(true)
			st.KillOthers()
		}
	} else if op.Kind == model.OpTestCtl {
		// No task: the running kernel's test module.
		r, _ = execTestCtl(c.m.Kernel(), op)
	} else if op.Kind == model.OpRegisterHandler || op.Kind == model.OpUnregisterHandler {
		r, _ = execRegistration(c.m.Kernel(), op)
	} else if in.Kind == KFork {
		li.Fork = &forkInput{}
		r, li.Fork.ChildFDs = c.fork(th, kt, li.NewInst)
	} else if in.Kind == KExec && c.cfg.fault == faultExecKeepsFDs {
		r = model.Result{}
	} else {
		r, _ = execPort(kt, op)
	}
	ret := c.clock.Add(1)
	slots := c.slotsOf(th)
	// Unless its install put the fd in the slot already (where another
	// thread may have closed it since).
	if fd, ok := fdResult(op, r); ok && in.Dst >= SlotResult && c.publish[th].Swap(-1) != -1 {
		slots[in.Dst].Store(pack(fd, li.NewInst))
	}
	c.publish[th].Store(-1)
	c.published[th].Store(-1)
	if in.Kind == KClose && r.Errno == 0 {
		// The number may be reused by anyone now; later uses of the slot
		// must fail with EBADF, as in the model, unless another thread
		// has put a new fd there meanwhile.
		slots[in.Src].CompareAndSwap(pack(fdNum, fdInst), pack(-1, -1))
	}
	c.event(histEvent{thread: th, ret: true, op: op, res: r, proc: procID, child: li.NewInst})
	if c.out != nil {
		c.out.add(in.Kind, r)
	}
	c.mu.Lock()
	if p := c.inflight[th]; p != nil {
		li.Phased = p.Input.(linInput).Phased
	}
	c.inflight[th] = nil
	c.hist = append(c.hist, porcupine.Operation{
		ClientId: th, Input: li, Call: call, Output: linOutput{Res: r, Ret: ret}, Return: ret,
	})
	c.mu.Unlock()
}

func asErrno(err error) (syscall.Errno, bool) {
	var en syscall.Errno
	if errors.As(err, &en) {
		return en, true
	}
	return 0, false
}

// round runs one program. chooser nil means free-running goroutines.
func (c *checker) round(r int, prog Program, chooser sched.Chooser) *Failure {
	ops := 0
	for _, th := range prog {
		ops += len(th)
	}
	c.mu.Lock()
	// A call and a return for each instruction, and a few more (a module
	// phase, the observation, pins): sized once instead of grown.
	c.hist, c.events, c.reports = make([]porcupine.Operation, 0, ops+8), make([]histEvent, 0, 2*ops+8), nil
	c.mu.Unlock()
	c.rebooted.Store(false)
	c.reservedLeak.Store(nil)
	for i := range c.publish {
		c.publish[i].Store(-1)
		c.published[i].Store(-1)
		c.pc[i].Store(-1)
	}
	c.prog, c.mayReboot = prog, prog.hasReboot()
	c.steerMemo = steerMemo{}
	// The WARNs the model predicted before the round; those the kernel
	// files from here on (the prologue's too) are counted against the
	// model's at the observation.
	warns0 := c.s.Warns
	c.child = [maxThreads]*proc{}
	if err := c.newProcess(r == 1 || !prog.startsUnloaded()); err != nil {
		return &Failure{Category: "process setup failed", What: err.Error(), Round: r, Trace: c.trace(prog, nil)}
	}
	pre, err := c.prologue(prog)
	if err != nil {
		return &Failure{Category: "round prologue: port and model disagree", What: err.Error(), Round: r, Trace: c.trace(prog, nil)}
	}
	start := c.s
	k := c.m.Kernel()
	var res sched.Result
	c.mu.Lock()
	c.inflight, c.inflightOps = make([]*porcupine.Operation, len(prog)), make([]porcupine.Operation, len(prog))
	c.gids = make([]int64, len(prog))
	for i := range c.gids {
		c.gids[i] = -1
	}
	c.mu.Unlock()
	for th := range c.cur {
		c.cur[th].Store(-1)
		if th < len(prog) {
			if b := body(prog[th]); len(b) > 0 {
				c.cur[th].Store(int32(b[0].Kind))
			}
		}
	}
	run := func(th int, st *sched.Task) {
		c.mu.Lock()
		c.gids[th] = locking.CurrentTask()
		c.mu.Unlock()
		for i, in := range body(prog[th]) {
			c.pc[th].Store(int32(i))
			c.cur[th].Store(int32(in.Kind))
			c.exec(th, st, in)
		}
		if c.child[th] != nil && !c.rebooted.Load() {
			// A forked child's program ends with its exit.
			c.cur[th].Store(int32(KExit))
			c.exec(th, st, Instr{Kind: KExit})
		}
		c.cur[th].Store(-1)
	}
	if chooser != nil {
		opts := sched.Options{Chooser: chooser, Trace: true, OnContend: c.contend, PreemptInside: isLUOLock}
		if c.cfg.RecordTaken {
			opts.OnAcquire = c.acquired
		}
		s := sched.New(k.Domain(), opts)
		for th := range prog {
			s.Go("T"+strconv.Itoa(th), func(t *sched.Task) { run(th, t) })
		}
		c.sch.Store(s)
		c.inRound.Store(true)
		res = s.Run()
		c.inRound.Store(false)
		// Keep s installed for the report filter until the next round:
		// unwinding is over, but reports filed so far are already sorted.
	} else {
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for th := range prog {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				run(th, nil)
			}()
		}
		c.inRound.Store(true)
		close(gate)
		wg.Wait()
		c.inRound.Store(false)
	}
	c.lastChoices = res.Choices
	fail := func(cat, what string) *Failure {
		return &Failure{Category: cat, What: what, Round: r, Trace: c.trace(prog, &res), Switches: res.Switches, Preemptions: res.Preemptions, Choices: [][]int{res.Choices}}
	}
	if res.Failure != nil {
		cat := "a task panicked"
		if strings.Contains(res.Failure.Error(), "(livelock?)") {
			cat = "livelock (scheduling point limit)"
		}
		return fail(cat, "a task failed: "+res.Failure.Error())
	}
	if rep, _ := c.unexpectedReport(); rep != nil {
		return fail("kernel report: "+rep.Error(), "the kernel filed a report:\n"+rep.String())
	}
	if !c.rebooted.Load() {
		// The threads are done: the process's table is used by no
		// syscall, so every reservation has ended in an install or a put.
		if _, reserved, err := c.kt.FDListing(); err == nil && len(reserved) > 0 {
			c.noteReservedLeak(fmt.Sprintf("the round's process, at the quiescent point: fds %v reserved but not installed", reserved))
		}
	}
	if leak := c.reservedLeak.Load(); leak != nil {
		return fail("fd table: an fd reserved outside any syscall", "fd table: an fd reserved outside any syscall: "+*leak+" (get_unused_fd_flags() without fd_install() or put_unused_fd(): the next open skips the number)")
	}
	// Pending calls of killed threads.
	end := c.clock.Load() + 10
	for _, op := range c.inflight {
		if op != nil {
			op.Return = end
			c.hist = append(c.hist, *op)
		}
	}

	c.hist = addFLBTails(addFinishing(addFLBHolds(addChains(addPins(c.hist)))), start.MaxSessionTestFiles())
	markMayBusy(c.hist)
	markGetFDRaces(c.hist)
	markPreservePeers(c.hist)

	obs := linOutput{}
	rebooted := c.rebooted.Load()
	if !rebooted {
		if held := k.Domain().HeldLocks(); len(held) > 0 {
			return fail("locks held at the quiescent point", fmt.Sprintf("locks held at the quiescent point: %+v", held))
		}
		d := k.LUO().Snapshot()
		if err := invariants(&d); err != nil {
			return fail("invariant: "+err.Error(), "invariant at the quiescent point: "+err.Error())
		}
		obs.Before = portBefore(&d) + portRegistry(k, &d)
		if err := c.m.Kexec(); err != nil {
			return fail("kexec after the round failed", "kexec after the round: "+err.Error())
		}
	}
	nk := c.m.Kernel()
	if nk == nil {
		return fail("machine halted", "machine halted: "+fmt.Sprint(c.m.Halted()))
	}
	// LUO deserializes the hand-over at the first open of the device: a
	// probe process runs the round's epilogue (the test module's load),
	// then opens and closes the device; the model does the same in the
	// observation's step (probeModel).
	post := prog.epilogue()
	obs.After = probePort(nk, post)
	rep, warns := c.unexpectedReport()
	if rep != nil {
		return fail("kernel report: "+rep.Error(), "the kernel filed a report (kexec or probe):\n"+rep.String())
	}
	d := nk.LUO().Snapshot()
	// The new kernel's registrations too: a churn instruction (churn.go)
	// acted on the kernel it ran in, and the model must have applied it
	// before the kexec, not after.
	obs.After += portCrossed(&d) + portRegistry(nk, &d) + describeWarns(warns0+warns)
	call := c.clock.Load() + 20
	c.hist = append(c.hist, porcupine.Operation{
		ClientId: len(prog), Input: linInput{Observe: true, Rebooted: rebooted, Post: post}, Call: call, Output: obs, Return: call + 1,
	})
	if c.cfg.NoLin {
		return nil
	}
	// The setup's fds: the model's numbers are the port's (sequential).
	setupFD := func(i int) instFD { return instFD{model: c.slot0(i), port: c.slot0(i)} }
	inst := map[int]instFD{SlotDev: setupFD(SlotDev)}
	for i := range NumFiles {
		inst[SlotFile0+i] = setupFD(SlotFile0 + i)
	}
	for i, fd := range pre {
		inst[i] = instFD{model: fd, port: fd}
	}
	// pm's steps are memoized by history index: numberOps numbers the
	// operations before anything searches (the descents step the model
	// directly and need no numbers, and most rounds end with them).
	pm := porcupineModel(start, inst, c.hist)
	if c.cfg.checkHist != nil {
		numberOps(c.hist)
		c.cfg.checkHist(pm, slices.Clone(c.hist))
	}
	// Most histories linearize on porcupine's first descent, most others
	// on the late descent (returned first, releases last): the search
	// then costs only their steps.
	root := pm.Init().(*linState)
	desc, descended := firstDescent(root, c.hist)
	late := false
	if !descended {
		desc, late = lateDescent(root, c.hist)
	}
	if cc := c.cfg.crossCheck; cc == nil {
		if descended || late {
			c.s = desc.s
			return nil
		}
	} else if descended {
		cc.descended.Add(1)
	} else if late {
		cc.late.Add(1)
	} else {
		cc.searched.Add(1)
	}
	numberOps(c.hist)
	var verdict porcupine.CheckResult
	var info porcupine.LinearizationInfo
	if c.cfg.linCheck != nil && !descended && !late {
		verdict, info = c.cfg.linCheck(pm, c.hist)
	} else {
		verdict, info = porcupine.CheckOperationsVerbose(pm, c.hist, c.cfg.LinTimeout)
	}
	if (descended || late) && verdict != porcupine.Ok {
		return fail("internal: first descent", fmt.Sprintf("a descent (late %v) linearized the history, porcupine says %v", late, verdict))
	}
	switch verdict {
	case porcupine.Illegal:
		f := fail("not linearizable", "history is not linearizable against the model")
		f.Trace += fmt.Sprintf("observed after the round:\n  quiescent: %s\n  crossed the kexec: %s\nmodel at the round's start: %s\n",
			obs.Before, obs.After, modelBefore(&start)+modelRegistry(&start))
		f.HTML = c.visualize(pm, info)
		return f
	case porcupine.Unknown:
		// Timed out: no verdict, and no model state for the next round
		// to start from; the check ends here (undecided).
		c.undecided = true
		return nil
	}
	next, ok := finalState(pm, c.hist, info)
	if !ok {
		return fail("internal: no complete linearization", "internal: no complete linearization of a linearizable history")
	}
	if late {
		// Another linearization than porcupine's, as good an explanation:
		// the next round starts from the descent's state, as it would
		// without the cross-check.
		next = desc.s
	}
	if descended && !model.Equal(next, desc.s) {
		return fail("internal: first descent", "the first descent and porcupine end in different states:\n"+desc.s.Canon()+"\n"+next.Canon())
	}
	c.s = next
	return nil
}

// invariants checks the spec's list invariants on a quiescent snapshot:
// S1 (count == list length), S2 (unique names), S3 (no freed session
// listed), S4 (no retrieved outgoing session), F1 (file count).
func invariants(d *liveupdate.DebugState) error {
	for _, l := range []liveupdate.SessionListState{d.Incoming, d.Outgoing} {
		if l.Count != len(l.Sessions) {
			return fmt.Errorf("S1: count %d, list %d", l.Count, len(l.Sessions))
		}
		seen := map[string]bool{}
		for _, se := range l.Sessions {
			if seen[se.Name] {
				return fmt.Errorf("S2: name %q listed twice", se.Name)
			}
			seen[se.Name] = true
			if se.Freed {
				return fmt.Errorf("S3: freed session %q listed", se.Name)
			}
			if se.FileCount != len(se.Files) {
				return fmt.Errorf("F1: session %q count %d, list %d", se.Name, se.FileCount, len(se.Files))
			}
		}
	}
	for _, se := range d.Outgoing.Sessions {
		if se.Retrieved {
			return fmt.Errorf("S4: outgoing %q retrieved", se.Name)
		}
	}
	return nil
}

func (c *checker) visualize(pm porcupine.Model, info porcupine.LinearizationInfo) string {
	dir := c.cfg.OutDir
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, "luo-linearizability-*.html")
	if err != nil {
		return ""
	}
	defer f.Close()
	if err := porcupine.Visualize(pm, info, f); err != nil {
		return ""
	}
	p, _ := filepath.Abs(f.Name())
	return p
}

// trace renders the setup, the program and the interleaving.
func (c *checker) trace(prog Program, res *sched.Result) string {
	var b strings.Builder
	b.WriteString("setup (sequential):\n")
	for _, l := range slices.Concat(c.setupBase, c.setupLog) {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	b.WriteString("program (threads of one process; sN are shared fd slots: s0 device, s1-s2 memfds, s3-s4 test files):\n")
	b.WriteString(prog.String())
	c.mu.Lock()
	evs := slices.Clone(c.events)
	c.mu.Unlock()
	type line struct {
		step, order int
		text        string
	}
	var lines []line
	for i, e := range evs {
		lines = append(lines, line{e.step, 2*i + 1, fmt.Sprintf("T%d %s", e.thread, e.text())})
	}
	if res != nil {
		for _, e := range res.Events {
			if e.Next >= 0 && e.Next != e.Task {
				at := e.Point.String()
				if e.Point == 0 {
					at = "blocked on " + e.Wait
				}
				lines = append(lines, line{e.Step, 0, fmt.Sprintf("-- switch T%d -> T%d at %s", e.Task, e.Next, at)})
			}
		}
		for _, k := range res.Killed {
			lines = append(lines, line{1 << 30, k, fmt.Sprintf("-- T%d killed by the reboot", k)})
		}
		if res.Deadlock != "" {
			lines = append(lines, line{1 << 31, 0, "-- deadlock:\n" + res.Deadlock})
		}
	}
	slices.SortStableFunc(lines, func(a, b line) int {
		if a.step != b.step {
			return cmp.Compare(a.step, b.step)
		}
		return cmp.Compare(a.order, b.order)
	})
	b.WriteString("interleaving ([scheduling points so far]; pN: the child process forked by the call whose instance id is N):\n")
	for _, l := range lines {
		fmt.Fprintf(&b, "  [%4d] %s\n", l.step, l.text)
	}
	return b.String()
}

// probePort is the probe of the kernel a round's kexec booted: a fresh
// process runs the round's epilogue (Instr.Post), then opens and closes
// /dev/liveupdate, whose first open deserializes what crossed. It returns
// what the probe saw (describeProbe).
func probePort(k *kernel.Kernel, post []Instr) string {
	probe := k.NewTask()
	defer probe.Exit()
	var res []model.Result
	for _, in := range post {
		r, _ := execPort(probe, opFor(in, 0, func(int) int { return -1 }))
		res = append(res, r)
	}
	fd, err := probe.Open(model.DevLiveUpdate, model.ORdwr)
	open := model.Result{Ret: int64(fd)}
	if err != nil {
		open = model.Result{Errno: errnoUnknown}
		if en, ok := asErrno(err); ok {
			open.Errno = en
		}
	} else {
		_ = probe.Close(fd)
	}
	return describeProbe(post, res, open)
}

// describeProbe renders the probe's calls and results: the epilogue's,
// then the open's errno.
func describeProbe(post []Instr, res []model.Result, open model.Result) string {
	var b strings.Builder
	b.WriteString("probe:")
	for i, in := range post {
		b.WriteString(" " + in.Kind.String() + "=" + strconv.Itoa(int(res[i].Errno)))
	}
	b.WriteString(" open=" + strconv.Itoa(int(open.Errno)) + " ")
	return b.String()
}

// observeInstall is the kernel's install observer during a round: the fd
// a thread's call installs goes to the call's destination slot at once,
// so that another thread's next instruction on that slot acts on it while
// the call is still inside the kernel (between fd_install() and the
// return, where a reference taken too late is a use-after-free).
func (c *checker) observeInstall(fd int, _ *vfs.File) {
	if !c.inRound.Load() {
		return
	}
	id := locking.CurrentTask()
	c.mu.Lock()
	th := slices.Index(c.gids, id)
	c.mu.Unlock()
	if th < 0 {
		return
	}
	p := c.publish[th].Swap(-1)
	if p == -1 {
		return
	}
	slot, inst := unpack(p)
	c.slotsOf(th)[slot].Store(pack(fd, inst))
	c.published[th].Store(int32(slot))
}

// nextUses says whether thread o's next slot reads (its first
// instruction not yet started, or the one after its current) name slot
// in the round's process.
func (c *checker) nextUses(o, slot int) bool {
	if o >= len(c.prog) || c.child[o] != nil {
		return false
	}
	b := body(c.prog[o])
	next := int(c.pc[o].Load()) + 1
	if next >= len(b) {
		return false
	}
	fdSlot, bufSlot := b[next].refs()
	return fdSlot == slot || bufSlot == slot
}

// noteReservedLeak records what as the round's reserved-fd leak, if it is
// the first.
func (c *checker) noteReservedLeak(what string) { c.reservedLeak.CompareAndSwap(nil, &what) }

// fork forks thread th's process kt (fork.go): the thread goes on in the
// child, whose slots are the parent's, each naming its copy of the
// parent's instance. It returns the result and the fds the child holds.
func (c *checker) fork(th int, kt *kernel.Task, forkInst int) (model.Result, []int) {
	child, err := kt.Fork()
	if err != nil {
		r := model.Result{Errno: errnoUnknown}
		if en, ok := asErrno(err); ok {
			r.Errno = en
		}
		return r, nil
	}
	ch := &proc{id: forkInst, kt: child}
	for i := range ch.slots {
		fd, inst := unpack(c.slots[i].Load())
		if inst >= 0 {
			inst = childInst(forkInst, inst)
		}
		ch.slots[i].Store(pack(fd, inst))
	}
	// The child's table is new and used by no syscall yet: a sibling's
	// reservation (an open partway) must not come with it (dup_fd()).
	fds, reserved, _ := child.FDListing()
	if len(reserved) > 0 {
		c.noteReservedLeak(fmt.Sprintf("the child of a fork, right after it: fds %v reserved but not installed (installed: %v)", reserved, fds))
	}
	if c.cfg.fault == faultForkDropsCloexec {
		for _, fd := range fds {
			_ = child.FcntlSetFD(fd, 0)
		}
	}
	c.child[th] = ch
	return model.Result{}, fds
}
