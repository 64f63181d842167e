package concurrent

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"pgregory.net/rapid"

	"luomodel/model"
)

// Kind is an instruction of a task's program.
type Kind int

// Instructions. Each is one syscall (reboot: the machine's kexec).
const (
	KOpenDev    Kind = iota // open("/dev/liveupdate") -> Dst
	KCloseDev               // close(slot 0); sequential parts only
	KCreate                 // CREATE_SESSION(Name) on slot 0 -> Dst
	KRetrieve               // RETRIEVE_SESSION(Name) on slot 0 -> Dst
	KClose                  // close(Src)
	KDup                    // dup(Src) -> Dst
	KPreserve               // PRESERVE_FD(fixed file File, Token) on Src
	KRetrieveFD             // RETRIEVE_FD(Token) on Src -> Dst
	KFinish                 // FINISH on Src
	KGetName                // GET_NAME on Src
	KReboot                 // reboot(LINUX_REBOOT_CMD_KEXEC)
	// LUO's in-kernel face (churn.go): a test FLB's incoming object
	// racing the finish of the session holding the test file that
	// counts on it; the test module loaded and unloaded, its FLBs linked
	// and unlinked, and the memfd handler unregistered and registered,
	// while sessions and files are used.
	KFLBGet     // liveupdate_flb_get_incoming() + put of test FLB FLB
	KLoadMod    // init_module("liveupdate_test")
	KUnloadMod  // delete_module("liveupdate_test", O_NONBLOCK)
	KRegFLB     // liveupdate_register_flb(test handler, test FLB FLB)
	KUnregFLB   // liveupdate_unregister_flb(test handler, test FLB FLB)
	KRegister   // liveupdate_register_file_handler(memfd)
	KUnregister // liveupdate_unregister_file_handler(memfd)
	// Processes (fork.go): the thread forks, and goes on as the child,
	// a process of its own whose fd table is a copy of the parent's;
	// exec closes its close-on-exec fds; fcntl reads and sets an fd's
	// close-on-exec flag and dups it. A forked thread's process exits
	// when its program ends (KExit, never drawn).
	KFork         // fork(); the thread continues in the child
	KExec         // execve(): do_close_on_exec(); in a forked child only
	KGetFD        // fcntl(Src, F_GETFD)
	KSetFD        // fcntl(Src, F_SETFD, Arg)
	KDupFD        // fcntl(Src, F_DUPFD, Arg) -> Dst
	KDupFDCloexec // fcntl(Src, F_DUPFD_CLOEXEC, Arg) -> Dst
	KExit         // exit() of a forked child, after its program
	numKinds
)

var kindNames = [...]string{
	KOpenDev: "open-dev", KCloseDev: "close-dev", KCreate: "create", KRetrieve: "retrieve",
	KClose: "close", KDup: "dup", KPreserve: "preserve", KRetrieveFD: "retrieve-fd",
	KFinish: "finish", KGetName: "get-name", KReboot: "reboot",
	KFLBGet: "flb-get-incoming", KLoadMod: "init-module", KUnloadMod: "delete-module",
	KRegFLB: "register-flb", KUnregFLB: "unregister-flb",
	KRegister: "register-handler", KUnregister: "unregister-handler",
	KFork: "fork", KExec: "exec", KGetFD: "fcntl-getfd", KSetFD: "fcntl-setfd",
	KDupFD: "fcntl-dupfd", KDupFDCloexec: "fcntl-dupfd-cloexec", KExit: "exit",
}

func (k Kind) String() string { return kindNames[k] }

// Slots name fds, and every thread of the round's process sees every slot,
// as threads share an fd table: 0-4 are set up before the threads start
// (the device, two memfds and two test files, never closed by programs);
// 5-9 receive the fds the programs obtain (sessions, retrieved files, dups), which any
// thread may then use or close. So two threads meet on one session or one
// file through the same fd or through two (a dup, a second retrieve), and a
// close races the users of its fd. A call that names a slot uses the fd
// number the slot holds when the call starts; if a concurrent close freed
// that number and another call was handed it, the call acts on that
// other file, as in Linux (fdget() looks the number up once): the
// linearizability check follows numbers too (lin.go).
//
// The fixed files are the files programs preserve (Instr.File): two memfds
// and two test files (/dev/liveupdate_test, whose handler is the test
// module's and counts on its FLBs), so that two sessions' preserves and
// releases meet on an FLB's outgoing lock, and a release's last put of the
// handler's module can meet its unload (M16).
const (
	SlotDev    = 0 // /dev/liveupdate
	SlotFile0  = 1 // the fixed files: memfds in 1-2, test files in 3-4
	NumFiles   = 4
	SlotResult = SlotFile0 + NumFiles // first slot for fds the programs obtain
	NumSlots   = SlotResult + 5
	maxThreads = 4
	// firstTestFile is the first test file's index (Instr.File).
	firstTestFile = 2
)

// fileName names fixed file i (Instr.File).
func fileName(i int) string {
	if i >= firstTestFile {
		return "test" + strconv.Itoa(i-firstTestFile)
	}
	return "memfd" + strconv.Itoa(i)
}

// names are the session names programs use: "a" and "b" were handed over
// by the setup, "c" never exists at first.
var names = []string{"a", "b", "c"}

// Instr is one instruction.
type Instr struct {
	Kind  Kind
	Name  string // create, retrieve
	Src   int    // slot of the fd operated on
	Dst   int    // slot receiving a returned fd
	File  int    // preserve: the fixed file (0-1 memfds, 2-3 test files)
	Token uint64 // preserve, retrieve-fd
	// Pre marks an instruction of the round's prologue: the leading Pre
	// instructions of every thread run sequentially, in lockstep with the
	// model, before the threads start (thread 0's first, then thread
	// 1's), so that the threads start on sessions already retrieved,
	// created or holding files, where they meet at once.
	Pre bool
	// Post marks an instruction of the round's epilogue (only
	// init-module): the trailing Post instructions of every thread are
	// not run by the threads but by the checker's probe, a fresh
	// process of the kernel the round's kexec boots, before it opens
	// /dev/liveupdate (whose first open deserializes what crossed), as
	// user space loads the modules it needs at boot. Without it the
	// probe opens the device with no test module, and a test file that
	// crossed fails the deserialization (ENOENT, cached); the model
	// predicts both (lin.go).
	Post bool
	FLB  int // flb-get-incoming, register-flb, unregister-flb: 0 or 1
	// Arg is fcntl's argument: F_SETFD's flags (0 or FD_CLOEXEC), the
	// lowest fd F_DUPFD and F_DUPFD_CLOEXEC may return.
	Arg int
}

func (in Instr) String() string {
	if in.Pre {
		in.Pre = false
		return "pre " + in.String()
	}
	if in.Post {
		in.Post = false
		return "post " + in.String()
	}
	switch in.Kind {
	case KOpenDev:
		return fmt.Sprintf("s%d = open-dev", in.Dst)
	case KCloseDev:
		return "close-dev"
	case KCreate, KRetrieve:
		return fmt.Sprintf("s%d = %s %q", in.Dst, in.Kind, in.Name)
	case KClose:
		return fmt.Sprintf("close s%d", in.Src)
	case KDup:
		return fmt.Sprintf("s%d = dup s%d", in.Dst, in.Src)
	case KPreserve:
		return fmt.Sprintf("preserve s%d %s token %d", in.Src, fileName(in.File), in.Token)
	case KRetrieveFD:
		return fmt.Sprintf("s%d = retrieve-fd s%d token %d", in.Dst, in.Src, in.Token)
	case KFinish, KGetName:
		return fmt.Sprintf("%s s%d", in.Kind, in.Src)
	case KReboot, KLoadMod, KUnloadMod, KRegister, KUnregister, KFork, KExec, KExit:
		return in.Kind.String()
	case KGetFD:
		return fmt.Sprintf("%s s%d", in.Kind, in.Src)
	case KSetFD:
		return fmt.Sprintf("%s s%d %d", in.Kind, in.Src, in.Arg)
	case KDupFD, KDupFDCloexec:
		return fmt.Sprintf("s%d = %s s%d %d", in.Dst, in.Kind, in.Src, in.Arg)
	case KFLBGet, KRegFLB, KUnregFLB:
		return fmt.Sprintf("%s flb%d", in.Kind, in.FLB)
	}
	return "?"
}

// Program is one round: a list of instructions per thread.
type Program [][]Instr

// String renders one line per thread.
func (p Program) String() string {
	var b strings.Builder
	for i, th := range p {
		parts := make([]string, len(th))
		for j, in := range th {
			parts[j] = in.String()
		}
		fmt.Fprintf(&b, "  T%d: %s\n", i, strings.Join(parts, "; "))
	}
	return b.String()
}

// startsUnloaded reports whether the round starts with the test module
// not loaded: when a thread's first module instruction is init-module,
// so that the load races the other threads' calls instead of failing
// with EEXIST. Not round 1: its handed-over test file needs the module
// loaded before the device's first open.
func (p Program) startsUnloaded() bool {
	for _, th := range p {
		for _, in := range body(th) {
			if in.Kind == KUnloadMod {
				break
			}
			if in.Kind == KLoadMod {
				return true
			}
		}
	}
	return false
}

// Gen bounds generated programs.
type Gen struct {
	MaxThreads int  // 2..MaxThreads threads
	MaxOps     int  // 1..MaxOps instructions each
	Reboot     bool // allow one reboot instruction per round
}

// DefaultGen is three threads of up to four instructions.
func DefaultGen() Gen { return Gen{MaxThreads: 3, MaxOps: 4, Reboot: true} }

// weights of the instruction kinds; retrieve and close dominate because
// the races live there.
var weights = [numKinds]int{
	KOpenDev: 1, KCloseDev: 0, KCreate: 3, KRetrieve: 5, KClose: 4, KDup: 2,
	KPreserve: 2, KRetrieveFD: 2, KFinish: 2, KGetName: 1, KReboot: 1,
	KFLBGet: 2, KLoadMod: 2, KUnloadMod: 2, KRegFLB: 1, KUnregFLB: 1,
	KRegister: 1, KUnregister: 1,
	KFork: 1, KExec: 2, KGetFD: 1, KSetFD: 1, KDupFD: 1, KDupFDCloexec: 1,
}

// Draw generates one round's program.
func (g Gen) Draw(t *rapid.T) Program { return g.draw(drawer{t, newGenerators()}, nil) }

// draw is Draw steered by the critical-section coverage steer, if not nil:
// in three rounds in four, a pair of instructions on a lock that steer has
// not seen contended is planted (plant, drawGoal), and instruction kinds
// of such pairs weigh more. (A planted pair is only two instructions of
// the round, the rest is drawn as ever; the fourth round keeps a drawn
// prologue.)
func (g Gen) draw(d drawer, steer *CSCoverage) Program {
	n := d.intn(2, min(maxThreads, max(2, g.MaxThreads)), "program-threads")
	p := make(Program, n)
	rebooted := !g.Reboot
	var boost func(Kind) int
	var planted *csKey
	if steer != nil {
		// The weights, once: steer's hits do not change while a program
		// is drawn (the rounds add them).
		boosts := steer.boosts()
		boost = func(k Kind) int { return boosts[k] }
		if plan := steer.plan(g.Reboot); len(plan.classes) > 0 && d.intn(0, 3, "program-plant") != 0 {
			k := drawGoal(d, plan)
			planted = &k
		}
	}
	var a, b Instr
	var pre []Instr
	if planted != nil {
		a, b = plant(*planted, d.intn(0, 1, "program-plant-flb"))
		pre = plantPrologue(planted.Class, a, b)
	} else {
		pre = drawPrologue(d)
	}
	var written []int // result slots the program's threads fill
	for _, in := range pre {
		if in.Dst >= SlotResult {
			written = append(written, in.Dst)
		}
		p[0] = append(p[0], in)
	}
	if planted != nil {
		i := d.intn(0, n-1, "program-plant-a")
		j := (i + 1 + d.intn(0, n-2, "program-plant-b")) % n
		p[i] = append(p[i], a)
		p[j] = append(p[j], b)
		if a.Kind == KReboot || b.Kind == KReboot {
			rebooted = true
		}
	}
	for i := range p {
		m := d.intn(1, max(1, g.MaxOps), "program-ops")
		forked := false
		for range m {
			in := drawInstr(d, rebooted, forked, written, boost)
			forked = forked || in.Kind == KFork
			if in.Dst >= SlotResult {
				written = append(written, in.Dst)
			}
			if in.Kind == KReboot {
				rebooted = true
			}
			p[i] = append(p[i], in)
		}
		p[i] = drawExec(d, p[i], written)
	}
	memfdsIfLoading(p)
	// The epilogue: mostly, the next kernel's user space loads the test
	// module before it opens /dev/liveupdate.
	if d.intn(0, 3, "program-post-load") != 0 {
		p[0] = append(p[0], Instr{Kind: KLoadMod, Post: true})
	}
	return p
}

// memfdsIfLoading makes the threads' preserves of test files preserves of
// memfds in a program whose threads load the test module. The module's
// init registers its handler, then links its FLBs one by one, and a
// preserve in between counts on the FLBs linked so far (a WARN at its
// unpreserve or finish, as for an FLB linked later); the model's load is
// one step (the coming phase, churn.go), which cannot say how many were
// linked. So rounds that load the module leave test files to the
// prologue, which runs before the threads.
func memfdsIfLoading(p Program) {
	loads := false
	for _, th := range p {
		for _, in := range body(th) {
			loads = loads || in.Kind == KLoadMod
		}
	}
	if !loads {
		return
	}
	for _, th := range p {
		pre := preLen(th)
		for i := pre; i < len(th); i++ {
			if th[i].Kind == KPreserve && th[i].File >= firstTestFile {
				th[i].File -= firstTestFile
			}
		}
	}
}

// postLen returns the length of the epilogue that ends th (Instr.Post).
func postLen(th []Instr) int {
	n := 0
	for n < len(th) && th[len(th)-1-n].Post {
		n++
	}
	return n
}

// body returns the instructions of th that its thread runs: those between
// the prologue and the epilogue.
func body(th []Instr) []Instr {
	pre := preLen(th)
	return th[pre:max(pre, len(th)-postLen(th))]
}

// hasReboot says whether a thread of the round reboots.
func (p Program) hasReboot() bool {
	for _, th := range p {
		for _, in := range body(th) {
			if in.Kind == KReboot {
				return true
			}
		}
	}
	return false
}

// epilogue returns the round's epilogue, thread by thread.
func (p Program) epilogue() []Instr {
	var out []Instr
	for _, th := range p {
		out = append(out, th[len(th)-postLen(th):]...)
	}
	return out
}

// drawExec may insert an exec after a thread's fork (the child's), at a
// drawn place: its instructions after the exec use what it closed. An
// exec drawn last is followed by an F_GETFD of a slot some thread fills
// (written), so that what it should have closed is looked at.
func drawExec(d drawer, th []Instr, written []int) []Instr {
	at := slices.IndexFunc(th, func(in Instr) bool { return in.Kind == KFork })
	if at < 0 || slices.ContainsFunc(th, func(in Instr) bool { return in.Kind == KExec }) ||
		d.intn(0, 1, "fork-exec") == 0 {
		return th
	}
	at = d.intn(at+1, len(th), "exec-at")
	th = slices.Insert(th, at, Instr{Kind: KExec})
	if at == len(th)-1 && len(written) > 0 {
		th = append(th, Instr{Kind: KGetFD, Src: written[d.intn(0, len(written)-1, "exec-getfd")]})
	}
	return th
}

// drawGoal draws the pair to plant among goals: first a lock, uniformly
// among the locks with goals left (each lock of the lock order is as
// likely to be the one the planted pair meets on, however many
// instructions take it: the register rwsem, which every churn instruction
// takes, has half the goals), then a pair on it, weighted by plantWeight.
// The random part of the generator draws pairs of heavy instructions (two
// retrieves) often on its own, pairs of light ones (a preserve and the
// round's one reboot, a query of an FLB and a finish) seldom, so planting
// favours the latter. Shrinking moves toward the first lock and its first
// goal.
func drawGoal(d drawer, plan *goalPlan) csKey {
	c := d.intn(0, len(plan.classes)-1, "program-plant-lock")
	v := d.intn(0, plan.totals[c]-1, "program-plant-pair")
	for _, k := range plan.goals[c] {
		if v < plantWeight(k) {
			return k
		}
		v -= plantWeight(k)
	}
	panic("unreachable")
}

// goalPlan is what drawGoal draws from: the goals by lock class, classes
// in their first goal's order, and each class's total plantWeight.
// Immutable once built.
type goalPlan struct {
	classes []string
	goals   [][]csKey
	totals  []int
}

// newGoalPlan groups goals by class for drawGoal.
func newGoalPlan(goals []csKey) *goalPlan {
	p := &goalPlan{}
	for _, k := range goals {
		c := slices.Index(p.classes, k.Class)
		if c < 0 {
			c = len(p.classes)
			p.classes = append(p.classes, k.Class)
			p.goals = append(p.goals, nil)
			p.totals = append(p.totals, 0)
		}
		p.goals[c] = append(p.goals[c], k)
		p.totals[c] += plantWeight(k)
	}
	return p
}

// plantWeight is the weight of goal k among the pairs of its lock to
// plant: inversely proportional to the chance that the generator draws
// k's two instructions by itself (the product of their weights), from 1
// for a pair of the heaviest kind (two retrieves: 25) up to 25 (a get-name
// and a reboot: 1).
func plantWeight(k csKey) int {
	heaviest := heaviestWeight()
	return max(1, heaviest*heaviest/max(1, weights[k.A]*weights[k.B]))
}

// heaviestWeight is the largest of weights.
var heaviestWeight = sync.OnceValue(func() int { return slices.Max(weights[:]) })

// drawPrologue draws the round's prologue (Instr.Pre): whether to
// retrieve each session the setup hands over ("a" to slot 5, "b" to slot
// 6) and whether to create a session (slot 7) and preserve a file in it,
// so that the threads' first instructions already meet on them (two
// finishes or closes of retrieved sessions whose files count on one FLB; a
// preserve and a close on one new session). Shrinking moves toward no
// prologue.
func drawPrologue(d drawer) []Instr {
	var out []Instr
	for i, name := range names[:2] {
		if d.intn(0, 1, "program-pre-retrieve") == 1 {
			out = append(out, Instr{Kind: KRetrieve, Name: name, Dst: SlotResult + i, Pre: true})
		}
	}
	if d.intn(0, 1, "program-pre-create") == 1 {
		dst := SlotResult + 2
		out = append(out, Instr{Kind: KCreate, Name: d.name("pre-name"), Dst: dst, Pre: true})
		if d.intn(0, 1, "program-pre-preserve") == 1 {
			out = append(out, Instr{Kind: KPreserve, Src: dst, File: d.intn(0, NumFiles-1, "pre-file"),
				Token: uint64(d.intn(1, 2, "pre-token")), Pre: true})
		}
	}
	return out
}

// plantSessions are the instructions that make the sessions planted
// instructions act on, by slot: the sessions the setup hands over,
// retrieved ("a", with a memfd, in slot 5, "b" in slot 6, each with a test
// file whose handler counts on the test FLB), and two new sessions ("c" in
// slot 7, "a" in slot 8).
var plantSessions = map[int]Instr{
	SlotResult:     {Kind: KRetrieve, Name: "a", Dst: SlotResult, Pre: true},
	SlotResult + 1: {Kind: KRetrieve, Name: "b", Dst: SlotResult + 1, Pre: true},
	SlotResult + 2: {Kind: KCreate, Name: "c", Dst: SlotResult + 2, Pre: true},
	SlotResult + 3: {Kind: KCreate, Name: "a", Dst: SlotResult + 3, Pre: true},
}

// plantPrologue is the prologue of a round with planted instructions a and
// b: the sessions they act on (plantSessions), in slot order; on an FLB's
// outgoing lock and on the module's last put, a new session that a
// planted close releases holds a test file (the n-th new session the n-th
// test file, so that two planted instructions act on two files of the
// FLB); a finish planted against delete-module finds the only test file
// left, retrieved. On an FLB's incoming lock the section that matters is
// the last put's (it runs Finish and clears the object under the lock): a
// finish or close planted against a query of the FLB acts on session "a",
// and the prologue retrieves and finishes "b" first, so that "a"'s file
// holds the FLB's last reference.
func plantPrologue(class string, a, b Instr) []Instr {
	var out []Instr
	for slot := SlotResult; slot < SlotResult+len(plantSessions); slot++ {
		if a.Src == slot || b.Src == slot {
			out = append(out, plantSessions[slot])
			if n := slot - plantOutgoing[0]; (class == flbOutgoingLock || class == moduleLastPut) && n >= 0 &&
				(a.Kind == KClose && a.Src == slot || b.Kind == KClose && b.Src == slot) {
				out = append(out, Instr{Kind: KPreserve, Src: slot, File: firstTestFile + n, Token: 1, Pre: true})
			}
			if class == moduleLastPut && slot == plantIncoming[0] && (a.Kind == KFinish || b.Kind == KFinish) {
				// The finish drops the module's last reference: its
				// test file retrieved (finish then calls get_id), "b"'s
				// finished first.
				other := plantSessions[plantIncoming[1]]
				out = append(out, Instr{Kind: KRetrieveFD, Src: slot, Dst: NumSlots - 1, Token: 2, Pre: true},
					other, Instr{Kind: KFinish, Src: other.Dst, Pre: true})
			}
		}
	}
	ends := func(in Instr) bool { return (in.Kind == KFinish || in.Kind == KClose) && in.Src == SlotResult }
	if class == "luo_flb_private.incoming.lock" && (a.Kind == KFLBGet && ends(b) || b.Kind == KFLBGet && ends(a)) {
		other := SlotResult + 1
		out = append(out, plantSessions[other], Instr{Kind: KFinish, Src: other, Pre: true})
	}
	return out
}

// plantIncoming and plantOutgoing are the slots of plantSessions' handed
// over (retrieved) and new sessions.
var (
	plantIncoming = []int{SlotResult, SlotResult + 1}
	plantOutgoing = []int{SlotResult + 2, SlotResult + 3}
)

// plant returns the two instructions of goal k, acting on plantSessions: on a session's mutex both on one session (of the kind their
// instructions take: incoming for retrieve-fd, finish and close,
// outgoing for preserve), on any other lock each on its own (a close on
// incoming sessions, whose release finishes files with FLBs, except on
// the outgoing list's rwsem and on an FLB's outgoing lock, where it
// releases a new session holding a test file; a preserve there preserves
// a test file, the n-th instruction the n-th). A retrieve names the session the other
// instruction acts on; results go to slot 7. An instruction on a test FLB
// acts on FLB flb (both on the same: they meet on its locks; drawn, as
// the handler's two FLBs are finished one after the other, and a query
// of either meets a different part of a finish).
func plant(k csKey, flb int) (a, b Instr) {
	const out = NumSlots - 1
	side := func(kind Kind) []int {
		if kind == KPreserve || (kind == KClose && (k.Class == "luo_session_global.outgoing.rwsem" || k.Class == flbOutgoingLock || k.Class == moduleLastPut)) {
			return plantOutgoing
		}
		return plantIncoming
	}
	one := func(kind Kind, nth int) Instr {
		in := Instr{Kind: kind}
		slots := side(kind)
		if k.Class == "luo_session.mutex" {
			nth = 0
		}
		src := slots[nth%len(slots)]
		switch kind {
		case KCreate:
			in.Name, in.Dst = names[nth%len(names)], out
		case KRetrieve:
			in.Name, in.Dst = names[nth%2], out
		case KOpenDev:
			in.Dst = out
		case KDup, KRetrieveFD:
			in.Src, in.Dst = src, out
		case KPreserve:
			in.Src, in.File, in.Token = src, 1, 2
			if k.Class == flbOutgoingLock {
				in.File = firstTestFile + nth%2
			}
		case KClose, KFinish, KGetName:
			in.Src = src
		}
		if kind == KRetrieveFD {
			in.Token = 2
		}
		if kind == KFLBGet || kind == KRegFLB || kind == KUnregFLB {
			in.FLB = flb
		}
		return in
	}
	return one(k.A, 0), one(k.B, 1)
}

// drawInstr draws an instruction, its kind by weight (index 0, retrieve,
// is what shrinking moves toward); written lists the result slots the
// program's threads filled so far (any thread may use them), and forked
// says the thread has forked: it may exec, and not fork again (a child
// does not fork, see fork.go).
func drawInstr(d drawer, noReboot, forked bool, written []int, boost func(Kind) int) Instr {
	order := []Kind{KRetrieve, KClose, KCreate, KDup, KPreserve, KRetrieveFD, KFinish, KGetName, KOpenDev, KReboot, KFLBGet,
		KLoadMod, KUnloadMod, KRegFLB, KUnregFLB, KRegister, KUnregister,
		KGetFD, KSetFD, KDupFD, KDupFDCloexec, KFork, KExec} // last: what rapid's bias to the range's end draws most

	weight := func(k Kind) int {
		if k == KFork && forked || k == KExec && !forked {
			return 0
		}
		if boost == nil {
			return weights[k]
		}
		return weights[k] + boost(k)
	}
	total := 0
	for _, k := range order {
		if k == KReboot && noReboot {
			continue
		}
		total += weight(k)
	}
	v := d.intn(0, total-1, "kind")
	var k Kind
	for _, k = range order {
		if k == KReboot && noReboot {
			continue
		}
		if v < weight(k) {
			break
		}
		v -= weight(k)
	}
	in := Instr{Kind: k}
	result := func(label string) int { return d.intn(SlotResult, NumSlots-1, label) }
	// An operand is mostly a slot some thread fills (a session or a
	// file), so that close, preserve and finish act on something, and
	// threads meet on it.
	operand := func() int {
		if len(written) > 0 && d.intn(0, 3, "src-fresh") != 3 {
			return written[d.intn(0, len(written)-1, "src-which")]
		}
		return result("src")
	}
	switch k {
	case KOpenDev, KDup, KRetrieveFD, KCreate, KRetrieve, KDupFD, KDupFDCloexec:
		in.Dst = result("dst")
	}
	switch k {
	case KCreate, KRetrieve:
		in.Name = d.name("name")
	case KClose:
		in.Src = operand()
	case KDup:
		in.Src = d.intn(0, NumSlots-1, "src")
	case KPreserve, KRetrieveFD, KFinish, KGetName, KGetFD, KSetFD, KDupFD, KDupFDCloexec:
		in.Src = operand()
	}
	switch k {
	case KPreserve:
		in.File = d.intn(0, NumFiles-1, "file")
		in.Token = uint64(d.intn(1, 2, "token"))
	case KRetrieveFD:
		in.Token = uint64(d.intn(1, 2, "token"))
	case KFLBGet, KRegFLB, KUnregFLB:
		in.FLB = d.intn(0, 1, "flb")
	case KSetFD:
		in.Arg = d.intn(0, model.FdCloexec, "fdflags")
	case KDupFD, KDupFDCloexec:
		in.Arg = dupFDMins[d.gens.dupFDMin.Draw(d.t, "dupfd-min")]
	}
	return in
}

// refs returns the slots of the fd the instruction operates on and of the
// fd inside its ioctl buffer (-1: none).
func (in Instr) refs() (fdSlot, bufSlot int) {
	switch in.Kind {
	case KCloseDev, KCreate, KRetrieve:
		return SlotDev, -1
	case KPreserve:
		return in.Src, SlotFile0 + in.File
	case KClose, KDup, KRetrieveFD, KFinish, KGetName, KGetFD, KSetFD, KDupFD, KDupFDCloexec:
		return in.Src, -1
	}
	return -1, -1
}
