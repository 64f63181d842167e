package concurrent

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/anishathalye/porcupine"

	"luomodel/kernel/liveupdate"
	"luomodel/model"
)

// linInput is one operation of a history: a syscall of a thread, or the
// observation that ends a round.
type linInput struct {
	// ID is the operation's index in the history checked (numberOps).
	ID     int
	Thread int
	Op     model.Op
	// FDInst and BufInst are the fd instances (see linState) behind Op.FD
	// and behind the fd inside a PRESERVE_FD buffer, -1 if none; NewInst
	// is the instance a returned fd becomes. FDNum and BufNum are the
	// port's fd numbers the call used (Op.FD and the buffer's fd).
	FDInst, BufInst, NewInst int
	FDNum, BufNum            int
	// Observe marks the round's last operation: Before (the session lists
	// at the quiescent point, when the round did not reboot) and After
	// (what crossed the kexec that ends the round) are checked.
	Observe  bool
	Rebooted bool
	// Post is the round's epilogue, which the observation's probe ran
	// before its first open of the device in the new kernel (probeModel).
	Post []Instr
	// Pin marks a close that concurrent calls may outlive (see pins);
	// Unpin is the release that follows it, PinID naming the close
	// (its NewInst).
	Pin, Unpin bool
	// UnpinFinish is the first half of the release: the session's
	// finish, or its files' unpreserve (luo_session_release() finishes
	// a retrieved session or unpreserves an outgoing one's files, then
	// removes it; another call may see the half done).
	UnpinFinish bool
	PinID       int
	// FLBHold marks a successful FLB query (liveupdate_flb_get_incoming()
	// then the put) that other calls overlap: its get keeps the
	// reference, and FLBPut, a pseudo-operation over the same span, drops
	// it (PinID naming the query); between the two, other calls see the
	// reference held (the last file's finish does not finish the FLB).
	FLBHold, FLBPut bool
	// Finishing, of an FLB query that found no data, are the session
	// FINISH calls that overlap it (see flbQueryMidFinish); of a handler
	// unregistration that succeeded, the overlapping FINISH calls that
	// succeeded (see unregisterMidFinish).
	Finishing []finishingCall
	// Call is the call's clock; PinRet, of a pinned close, its return's.
	Call, PinRet int64
	// Phase is a phase of the test module's life (churn.go), recorded
	// when it happened; Phased marks the init_module() or
	// delete_module() that made one, and MayBusy an unload or handler
	// unregistration that calls able to hold a transient reference
	// overlap.
	Phase   string
	Phased  bool
	MayBusy bool
	// Proc is the process that made the call (fork.go): 0 the round's,
	// else the NewInst of the fork that made it; Op.Task is then the
	// model task the fork's linearization gave it (linState.procs).
	// Fork is what a fork, exec or exit and their release steps add.
	Proc int
	Fork *forkInput
	// SplitFLB marks a call that may finish or unpreserve a session's
	// test files while an FLB's registration overlaps it; FLBTail is the
	// pseudo-operation that does the FLB half its step left undone, and
	// TailOf names that call (its ID). See flbsplit.go.
	SplitFLB, FLBTail bool
	TailOf            int
	// RacesClose marks an F_GETFD that a close in its process overlaps,
	// whose answer may be either flag (markGetFDRaces).
	RacesClose bool
	// PreservePeer marks a PRESERVE_FD that answered EBUSY while another
	// PRESERVE_FD of the same file overlapped it (markPreservePeers).
	PreservePeer bool
}

// linOutput is what the port returned. Pending: the thread was killed by
// a reboot before the call returned; any outcome is accepted, and the
// model's effect may or may not have happened.
type linOutput struct {
	Res     model.Result
	Pending bool
	// Ret is the call's return clock.
	Ret    int64
	Before string
	After  string
}

// linState is a model state, the model fd and the port's fd number of every
// live fd instance, and their canonical form, computed once.
//
// Fds are compared by identity, not number. An fd instance is one result
// of an fd-returning call (or a setup fd); a later call names the instance
// its slot holds, and the step translates it to the model's fd for that
// instance. The numbers returned are not compared: a call that looked an
// fd up may be handed, as its new fd, the number a concurrent close freed,
// and a close whose release is still running has already freed its
// number; neither has a sequential explanation in terms of numbers, while
// each is linearizable in terms of files. The sequential lockstep checks
// the numbers (lowest free fd).
//
// A call whose instance is closed at its linearization point looked its
// number up after the close: the number may since name another live
// instance (a concurrent call was handed it), whose file the port then
// used, as Linux does; with none, it is EBADF.
//
// A close drops the fd at once, but the file is released only when its
// last reference goes, and a concurrent call that looked the fd up before
// holds one until it returns (fdget()/fdput()): a close may return before
// the release, and another call may see the file still there (a session
// still retrieved, the device still busy); and even alone, close() drops
// the fd before it releases the file. So a close that overlaps other calls
// is checked in steps: the close, which keeps the file pinned by a hidden
// model fd (a dup), then the release in two halves, as
// luo_session_release() does it (a retrieved session is finished, then
// removed: another call may see it finished and still listed): an
// UnpinFinish operation, a FINISH on the pin, and an Unpin operation, which
// closes the pin. Both are linearized anywhere from the close's call to the
// last return of the calls that overlap the close. An outgoing session's
// release is split the same way: its files unpreserved (the module's last
// pin may go there), then the session unlisted.
type linState struct {
	s    model.State
	inst map[int]instFD // instance id -> its fds
	pins map[int]pinFD  // pinning close (PinID) -> its pin
	mod  modPhase       // the test module's open transient state
	// old is, once a reboot of the round is linearized, the kernel it
	// left (nil: none), and oldMod its module's transient state: a call
	// that acts on the kernel as a whole (kernelWide) and returned after
	// the reboot started may have run in it after the serialization,
	// which it cannot change, and before the jump (liveupdate_reboot()
	// serializes, then the other CPUs run on until they are stopped; a
	// session call waits on the serialize rwsem, unless it fails before
	// taking it (oldInst); an FLB's registration does not). Such a call
	// is linearized there, and its answer is the old kernel's.
	old    *model.State
	oldMod modPhase
	// oldInst is the old kernel's fd instances: those at the reboot's
	// linearization, then as the calls that run there without any LUO
	// lock change them; such a call (one that fails before the serialize
	// rwsem, model.FailsUnlocked, or changes only its fd table,
	// model.FDTableOnly) may answer in the old kernel too (unlockedInOld).
	oldInst map[int]instFD
	// procs maps the forked processes (linInput.Proc) to their model
	// tasks (fork.go); nil in a round that has not forked.
	procs map[int]model.TaskID
	// flbTails are the FLB halves left undone by the split calls stepped
	// so far (SplitFLB), by the call's ID, until their FLBTail steps
	// (model.NoFLBWork: the call deferred nothing, its tail is a no-op).
	flbTails map[int]model.FLBWork
	// canon is the state's canonical form (see key), rendered on first
	// use: states are told apart by fingerprint and compared by key only
	// when their fingerprints meet (linStates.intern), and the states of
	// a descent are never compared.
	canon string
	// fp is the fingerprint, once interned is set.
	fp uint64
	// interned marks the one state of its key in a search (linStates):
	// porcupine compares interned states by identity.
	interned bool
	// succ are the steps taken from this state, by the history index of
	// the operation (linInput.ID), failed ones with next nil: a step is a
	// function of the state's key and the operation, so the search takes
	// each at most once per interned state, and finalState replays
	// porcupine's linearization along them. Written by porcupine's
	// goroutine, then by finalState's after the search.
	succ []linSucc
}

// linSucc is a step taken: the operation's history index and the state it
// led to (nil: the step failed).
type linSucc struct {
	id   int
	next *linState
}

// linStates interns the states of one round's search: one state per key,
// so that porcupine's cache compares states by identity and a state the
// search reaches again along another path has its steps memoized
// (linState.succ), instead of stepping the model and rendering a key per
// visit. A search that revisits states (ops whose steps commute, an exec's
// release chain beside other calls) makes most visits repeats.
type linStates map[uint64][]*linState

// intern returns the state of st's key, st itself if it is the first.
// Keys are rendered only for states whose fingerprints meet.
func (t linStates) intern(st *linState) *linState {
	if st.interned {
		return st
	}
	fp := st.fingerprint()
	for _, o := range t[fp] {
		if o.key() == st.key() {
			return o
		}
	}
	st.fp, st.interned = fp, true
	t[fp] = append(t[fp], st)
	return st
}

// step is linStep memoized in st.succ, for hist's operation id; the
// state it leads to is interned in states.
func (st *linState) step(hist []porcupine.Operation, id int, states linStates) (bool, *linState) {
	for _, s := range st.succ {
		if s.id == id {
			return s.next != nil, s.next
		}
	}
	ok, next := linStep(st, hist[id].Input.(linInput), hist[id].Output.(linOutput))
	if ok {
		next = states.intern(next)
	} else {
		next = nil
	}
	st.succ = append(st.succ, linSucc{id: id, next: next})
	return ok, next
}

// pinFD is a pin: the hidden model fd (-1: none), the instance the close
// closed, and the close's return clock. A call on that instance that
// started before the close returned may have looked the fd up before the
// close took it out (fdget() holds the file): linearized after the close,
// it may still act on the file, through the pin.
type pinFD struct {
	fd, inst int
	task     model.TaskID // the closing task, whose table holds fd
	ret      int64
	finished bool // the release's first half (UnpinFinish) is done
	// flb marks the reference of an FLB query's get (FLBHold), held
	// until its FLBPut; fd and inst are then -1. noRef: the get, of a
	// query a reboot killed, failed, and its put drops nothing.
	flb, noRef bool
	// chain, of an exec or exit (fork.go), are the release steps of the
	// hidden fds that keep the files it closed, in order, each fd<<2 |
	// relFinish, relClose or relDrop (empty, not nil: the steps are
	// no-ops, the task or its kernel gone), and next the step reached;
	// exit says the task dies after the last.
	chain []int
	next  int
	exit  bool
	// held, of a close's pin, is the closed instance as it was live (nil:
	// not live, or not a close's pin): a call that looked its number up
	// before the close reached the file, whichever older instance of that
	// number the call's slot named.
	held *instFD
}

// reachedBy reports whether call in may have looked up the file that pin
// p keeps: the call names p's instance, or a stale number that instance
// took over (installed before the call started, made by a call after the
// one that made the call's own instance: instCall, which also orders a
// forked child's copies), and it started before the close returned.
func (p pinFD) reachedBy(in linInput) bool {
	if p.fd < 0 || in.Call >= p.ret {
		return false
	}
	if p.inst == in.FDInst {
		return true
	}
	return p.held != nil && in.FDNum >= 0 && p.held.port == in.FDNum && p.held.proc == in.Proc &&
		p.held.ret < in.Call && instCall(p.inst) > instCall(in.FDInst)
}

// instFD is a live fd instance: the model's fd and the port's number (-1:
// unknown, the call that made it never returned), and the return clock of
// the call that made it (0: made before the round).
type instFD struct {
	model, port int
	ret         int64
	proc        int // the process whose table holds it (linInput.Proc)
}

// forkInOld is forkStep in the old kernel after the serialization:
// dup_fd() takes no LUO lock, so a fork runs there until the jump, and
// its child's calls that take none either (unlockedInOld).
func forkInOld(st *linState, in linInput, out linOutput) (bool, *linState) {
	dead := &linState{s: *st.old, inst: st.oldInst, pins: st.pins, mod: st.oldMod, procs: st.procs}
	ok, n := forkStep(dead, in, out)
	if !ok {
		return false, st
	}
	return true, &linState{s: st.s, inst: st.inst, pins: st.pins, mod: st.mod, old: &n.s, oldMod: st.oldMod, oldInst: n.inst, procs: n.procs}
}

// instOf returns the live instance of process proc whose model fd is fd,
// else def.
func instOf(st *linState, proc, fd, def int) int {
	for id, v := range st.inst {
		if v.model == fd && v.proc == proc {
			return id
		}
	}
	return def
}

// withPin returns a copy of pins with p as pin id.
func withPin(pins map[int]pinFD, id int, p pinFD) map[int]pinFD {
	pins = maps.Clone(pins)
	if pins == nil {
		pins = map[int]pinFD{}
	}
	pins[id] = p
	return pins
}

func newLinState(s model.State, inst map[int]instFD, pins map[int]pinFD, mod modPhase) *linState {
	return &linState{s: s, inst: inst, pins: pins, mod: mod}
}

// key returns the canonical form of st: the model state's, then every
// live instance and pin, in id order. Not safe for concurrent use on one
// state (porcupine steps each state on one goroutine).
func (st *linState) key() string {
	if st.canon != "" {
		return st.canon
	}
	b := []byte(st.s.Canon())
	b = append(b, "|mod"...)
	b = strconv.AppendInt(b, int64(st.mod), 10)
	if st.old != nil {
		b = append(b, "|old"...)
		b = strconv.AppendInt(b, int64(st.oldMod), 10)
		b = append(b, st.old.Canon()...)
		for _, k := range slices.Sorted(maps.Keys(st.oldInst)) {
			b = append(b, "|o"...)
			b = strconv.AppendInt(b, int64(k), 10)
			b = append(b, ':')
			b = strconv.AppendInt(b, int64(st.oldInst[k].model), 10)
			b = append(b, ':')
			b = strconv.AppendInt(b, int64(st.oldInst[k].port), 10)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(st.inst)) {
		v := st.inst[k]
		b = append(b, '|')
		b = strconv.AppendInt(b, int64(k), 10)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(v.model), 10)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(v.port), 10)
	}
	for _, k := range slices.Sorted(maps.Keys(st.pins)) {
		p := st.pins[k]
		b = append(b, "|p"...)
		b = strconv.AppendInt(b, int64(k), 10)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(p.fd), 10)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(p.inst), 10)
		b = append(b, ':')
		b = strconv.AppendInt(b, p.ret, 10)
		b = append(b, ':')
		if p.held != nil {
			b = strconv.AppendInt(b, int64(p.held.port), 10)
		}
		b = append(b, ':')
		b = strconv.AppendBool(b, p.finished)
		b = append(b, ':')
		b = strconv.AppendBool(b, p.flb)
		if p.noRef {
			b = append(b, "!ref"...)
		}
		for _, fd := range p.chain {
			b = append(b, ',')
			b = strconv.AppendInt(b, int64(fd), 10)
		}
		if p.chain != nil {
			b = append(b, '@')
			b = strconv.AppendInt(b, int64(p.next), 10)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(st.flbTails)) {
		b = append(b, "|f"...)
		b = strconv.AppendInt(b, int64(k), 10)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(st.flbTails[k]), 10)
	}
	for _, k := range slices.Sorted(maps.Keys(st.procs)) {
		b = append(b, "|t"...)
		b = strconv.AppendInt(b, int64(k), 10)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(st.procs[k]), 10)
	}
	st.canon = string(b)
	return st.canon
}

// fingerprint hashes part of key (model.State.Fingerprint): equal keys
// have equal fingerprints.
func (st *linState) fingerprint() uint64 {
	h := mix64(st.s.Fingerprint() ^ uint64(st.mod))
	// Map entries in no order: a sum of each one's hash.
	var inst, pins uint64
	for k, v := range st.inst {
		inst += mix64(uint64(k)<<40 ^ uint64(v.model)<<20 ^ uint64(v.port))
	}
	for k, p := range st.pins {
		e := mix64(uint64(k)<<40 ^ uint64(p.fd)<<20 ^ uint64(p.inst))
		e = mix64(e ^ uint64(p.ret))
		if p.finished {
			e = mix64(e ^ 1)
		}
		if p.flb {
			e = mix64(e ^ 2)
		}
		if p.noRef {
			e = mix64(e ^ 4)
		}
		if p.chain != nil {
			e = mix64(e ^ uint64(p.next)<<8 ^ uint64(len(p.chain))<<16)
		}
		pins += e
	}
	for k, w := range st.flbTails {
		pins += mix64(uint64(k)<<8 ^ uint64(w) ^ 1<<62)
	}
	return mix64(h ^ mix64(inst) + pins)
}

// mix64 is splitmix64's finalizer.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// describeBefore renders what the quiescent check compares: the outgoing
// list, the incoming list with retrieved flags, and the device's state.
func describeBefore(out, in []string, inRetrieved []bool, devInUse bool) string {
	var b strings.Builder
	b.WriteString("outgoing=" + listString(out) + " incoming=[")
	for i, n := range in {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(n)
		if inRetrieved[i] {
			b.WriteString("(retrieved)")
		}
	}
	b.WriteString("] device-open=" + strconv.FormatBool(devInUse))
	return b.String()
}

func modelBefore(s *model.State) string {
	var in []string
	var ret []bool
	for _, id := range s.Incoming {
		se := s.Sessions[id]
		in = append(in, se.Name)
		ret = append(ret, se.Retrieved)
	}
	return describeBefore(s.OutgoingNames(), in, ret, s.DevInUse)
}

func portBefore(d *liveupdate.DebugState) string {
	var out, in []string
	var ret []bool
	for _, se := range d.Outgoing.Sessions {
		out = append(out, se.Name)
	}
	for _, se := range d.Incoming.Sessions {
		in = append(in, se.Name)
		ret = append(ret, se.Retrieved)
	}
	return describeBefore(out, in, ret, d.InUse)
}

// probeModel is probePort on the model state s of the kernel a round's
// kexec booted: a new process runs the epilogue post, then opens and closes
// the device (the deserialization, or its failure: a test file whose
// module the epilogue did not load is ENOENT, cached) and exits.
func probeModel(s *model.State, post []Instr) string {
	task := model.TaskID(s.Apply(model.Op{Kind: model.OpNewTask}).Ret)
	var res []model.Result
	for _, in := range post {
		res = append(res, s.Apply(opFor(in, task, func(int) int { return -1 })))
	}
	open := s.Apply(model.Op{Kind: model.OpOpen, Task: task, Path: model.DevLiveUpdate, Flags: model.ORdwr})
	if open.Errno == 0 {
		s.Apply(model.Op{Kind: model.OpClose, Task: task, FD: int(open.Ret)})
	}
	s.Apply(model.Op{Kind: model.OpExit, Task: task})
	return describeProbe(post, res, open)
}

// describeWarns renders the count of WARNs the kernel filed that the
// model predicts (model.State.Warns).
func describeWarns(n int) string { return " warns=" + strconv.Itoa(n) }

// describeFLBsIn renders the FLB block a kernel was handed (names and
// counts, sorted): which FLBs crossed is hidden state until a load of the
// test module retrieves them, and a registration racing the reboot
// decides it (linState.old).
func describeFLBsIn(names []string, counts []int) string {
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "/" + strconv.Itoa(counts[i])
	}
	slices.Sort(parts)
	return " flbs-in=[" + strings.Join(parts, " ") + "]"
}

// modelCrossed renders the incoming sessions of a freshly kexec'ed and
// deserialized state: names in list order, each with its file tokens in
// order; then the FLBs handed over.
func modelCrossed(s *model.State) string {
	var names []string
	var counts []int
	for _, f := range s.FLBIn {
		names, counts = append(names, f.Name), append(counts, f.Count)
	}
	return modelSessionsCrossed(s) + describeFLBsIn(names, counts)
}

func modelSessionsCrossed(s *model.State) string {
	var parts []string
	for _, id := range s.Incoming {
		se := s.Sessions[id]
		var toks []string
		for _, f := range se.In {
			toks = append(toks, strconv.FormatUint(f.Token, 10))
		}
		parts = append(parts, se.Name+"["+strings.Join(toks, ",")+"]")
	}
	return strings.Join(parts, " ")
}

func portCrossed(d *liveupdate.DebugState) string {
	var names []string
	var counts []int
	for _, f := range d.FLBInEntries {
		n, _, _ := strings.Cut(string(f.Name[:]), "\x00")
		names, counts = append(names, n), append(counts, int(f.Count))
	}
	return portSessionsCrossed(d) + describeFLBsIn(names, counts)
}

func portSessionsCrossed(d *liveupdate.DebugState) string {
	var parts []string
	for _, se := range d.Incoming.Sessions {
		var toks []string
		for _, f := range se.Files {
			toks = append(toks, strconv.FormatUint(f.Token, 10))
		}
		parts = append(parts, se.Name+"["+strings.Join(toks, ",")+"]")
	}
	return strings.Join(parts, " ")
}

// kernelWide reports whether in acts on the kernel as a whole (churn.go's
// instructions, their halves and module phases), not through a task.
func kernelWide(in linInput) bool {
	if in.Observe {
		return false
	}
	if in.Phase != "" {
		return true
	}
	switch in.Op.Kind {
	case model.OpTestCtl, model.OpInitModule, model.OpDeleteModule, model.OpRegisterHandler, model.OpUnregisterHandler:
		return true
	}
	return false
}

// linStep is the model's step for porcupine, on fd instances: a forked
// process's call steps the model task its fork's linearization gave it
// (linState.procs, fork.go).
func linStep(st *linState, in linInput, out linOutput) (bool, *linState) {
	if in.FLBTail || in.SplitFLB || len(st.flbTails) > 0 {
		return splitFLBStep(st, in, out)
	}
	return linStepProcs(st, in, out)
}

// linStepProcs is linStep without the split FLB halves (flbsplit.go).
func linStepProcs(st *linState, in linInput, out linOutput) (bool, *linState) {
	if st.procs == nil {
		return linStepKernel(st, in, out)
	}
	if in.Proc != 0 {
		task, ok := st.procs[in.Proc]
		if !ok {
			return false, st // the fork comes first
		}
		in.Op.Task = task
	}
	ok, next := linStepKernel(st, in, out)
	if ok && next != st && next.procs == nil {
		next.procs = st.procs
	}
	return ok, next
}

// linStepKernel is linStep with in's task resolved; once a reboot is
// linearized, a kernel-wide call steps the kernel it left (linState.old).
func linStepKernel(st *linState, in linInput, out linOutput) (bool, *linState) {
	if st.old == nil || in.Observe {
		return linStepLive(st, in, out)
	}
	if kernelWide(in) {
		dead := &linState{s: *st.old, inst: st.inst, pins: st.pins, mod: st.oldMod}
		ok, n := linStepLive(dead, in, out)
		if !ok {
			return false, st
		}
		// A WARN it files counts with the machine's (the copy shares
		// the state's maps, which no step writes).
		s := st.s
		s.Warns += n.s.Warns - st.old.Warns
		return true, &linState{s: s, inst: st.inst, pins: n.pins, mod: st.mod, old: &n.s, oldMod: n.mod, oldInst: st.oldInst}
	}
	ok, next := linStepLive(st, in, out)
	if ok && next != st {
		next.old, next.oldMod, next.oldInst = st.old, st.oldMod, st.oldInst
	}
	if !ok {
		return unlockedInOld(st, in, out)
	}
	return ok, next
}

// unlockedInOld steps in, a call of a task, in the old kernel after the
// serialization: it fails there before any LUO lock (model.FailsUnlocked:
// a bad fd, a FINISH on an outgoing session), and changes nothing, or it
// takes no LUO lock and changes only the task's fd table
// (model.FDTableOnly: a dup, an fcntl, a close that does not release into
// LUO or whose release its pin takes over, a child's exit or exec whose
// closes are all such; or a fork, forkInOld),
// which only the calls that follow it in the old kernel see
// (linState.oldInst); so the serialize rwsem the reboot holds from the
// serialization to the jump does not stop it. Real time may put it there:
// after a kernel-wide call that ran in the old kernel (linState.old). A
// pinning close's release halves are then no-ops in the new kernel.
func unlockedInOld(st *linState, in linInput, out linOutput) (bool, *linState) {
	if in.Op.Kind == model.OpFork && in.Fork != nil && !out.Pending {
		return forkInOld(st, in, out)
	}
	// A forked child's exit or exec may run there too (FDTableOnly: its
	// releases, split or not, reach no LUO lock); release steps may not.
	drops := in.Fork != nil && (in.Op.Kind == model.OpExit || in.Op.Kind == model.OpExec) && !in.Fork.Rel
	if out.Pending || kernelWide(in) || in.Fork != nil && !drops || in.Unpin || in.UnpinFinish || in.FLBHold || in.FLBPut {
		return false, st
	}
	if in.Pin && in.Op.Kind != model.OpClose {
		return false, st
	}
	op := in.Op
	if in.FDInst >= 0 {
		op.FD = modelFD(&linState{inst: st.oldInst}, in.Proc, in.FDInst, in.FDNum)
	}
	failed := out.Res.Errno != 0
	old := *st.old
	if in.Pin && !failed {
		// The pin holds the file (a hidden dup, as linStepFD's): the
		// close drops the fd alone, and the release it leaves (its
		// UnpinFinish and Unpin) is a no-op here, the serialization done.
		_, old = model.Step(old, model.Op{Kind: model.OpDup, Task: op.Task, FD: op.FD})
	}
	if failed && !model.FailsUnlocked(&old, op) || !failed && !model.FDTableOnly(&old, op) {
		return false, st
	}
	res, next := model.Step(old, op)
	if !sameIgnoringFDs(op, res, out.Res) {
		return false, st
	}
	pins := st.pins
	switch {
	case in.Pin:
		pins = withPin(pins, in.NewInst, pinFD{fd: -1, inst: in.FDInst, task: op.Task, ret: in.PinRet})
	case drops && in.Fork.Chained && !failed:
		// Its release steps are no-ops (an empty chain).
		pins = withPin(pins, in.NewInst, pinFD{fd: -1, inst: -1, task: op.Task, chain: []int{}})
	case failed:
		return true, st
	}
	inst := st.oldInst
	if drops && !failed {
		inst = closedInsts(st.oldInst, &next, op.Task, in.Proc)
	}
	if !failed && op.Kind == model.OpClose {
		inst = map[int]instFD{}
		for k, v := range st.oldInst {
			if v.model != op.FD || v.proc != in.Proc {
				inst[k] = v
			}
		}
	}
	if mfd, ok := fdResult(op, res); ok {
		port, _ := fdResult(op, out.Res)
		if op.Kind == model.OpFcntl && port < op.Arg {
			return false, st // F_DUPFD's fd is the lowest free one >= arg
		}
		inst = maps.Clone(inst)
		if inst == nil {
			inst = map[int]instFD{}
		}
		inst[in.NewInst] = instFD{model: mfd, port: port, ret: out.Ret, proc: in.Proc}
	}
	if failed {
		next = *st.old
	}
	return true, &linState{s: st.s, inst: st.inst, pins: pins, mod: st.mod, old: &next, oldMod: st.oldMod, oldInst: inst, procs: st.procs}
}

// linStepLive is linStep in the running kernel.
func linStepLive(st *linState, in linInput, out linOutput) (bool, *linState) {
	if in.Op.Kind == model.OpFork && !in.Observe {
		return forkStep(st, in, out)
	}
	if in.Fork != nil && in.Fork.Rel {
		return chainStep(st, in)
	}
	if in.Observe {
		s := st.s
		if !in.Rebooted {
			if st.mod != modStable || modelBefore(&s)+modelRegistry(&s) != out.Before {
				return false, st
			}
			s = model.Kexec(s)
		} else {
			s = s.CopyOnWrite()
		}
		if probeModel(&s, in.Post)+modelCrossed(&s)+modelRegistry(&s)+describeWarns(s.Warns) != out.After {
			return false, st
		}
		return true, newLinState(s, nil, nil, modStable)
	}
	if in.Phase != "" {
		return phaseStep(st, in)
	}
	if ok, next := unregisterMidFinish(st, in, out); ok {
		return true, next
	}
	if handled, ok := churnStep(st, in, out); handled {
		return ok, st
	}
	if in.UnpinFinish {
		pin, ok := st.pins[in.PinID]
		if !ok || pin.finished {
			return false, st // the close comes first
		}
		next := st.s
		if pin.fd >= 0 && lastRef(&st.s, pin.task, pin.fd) {
			// The pin is an fd of the closing task (pin.task), not of the
			// half's Op.Task: a forked child's close is made in the
			// round's process's name (its Proc resolves it), and the same
			// number there may hold another session.
			_, next = model.Step(st.s, model.Op{Kind: model.OpIoctl, Task: pin.task, FD: pin.fd,
				Cmd: model.IoctlSessionFinish, Buf: model.FinishArgBuf(0)})
			next = model.UnpreserveSessionFiles(next, pin.task, pin.fd)
		}
		pins := maps.Clone(st.pins)
		pin.finished = true
		pins[in.PinID] = pin
		return true, newLinState(next, st.inst, pins, st.mod)
	}
	if in.FLBHold {
		res, next := model.FLBGetIncomingHeld(st.s, in.Op.FLB)
		if !out.Pending && !sameIgnoringFDs(in.Op, res, out.Res) {
			return false, st
		}
		pins := withPin(st.pins, in.NewInst, pinFD{fd: -1, inst: -1, flb: true, noRef: res.Errno != 0})
		return true, newLinState(next, st.inst, pins, st.mod)
	}
	if in.FLBPut {
		pin, ok := st.pins[in.PinID]
		if !ok || !pin.flb {
			return false, st // the get comes first
		}
		pins := maps.Clone(st.pins)
		delete(pins, in.PinID)
		if pin.noRef {
			return true, newLinState(st.s, st.inst, pins, st.mod)
		}
		return true, newLinState(model.FLBPutIncomingHeld(st.s, in.Op.FLB), st.inst, pins, st.mod)
	}
	if in.Unpin {
		pin, ok := st.pins[in.PinID]
		if !ok || !pin.finished {
			return false, st // the close and the finish come first
		}
		fd := pin.fd
		next := st.s
		if fd >= 0 {
			_, next = model.Step(st.s, model.Op{Kind: model.OpClose, Task: pin.task, FD: fd})
		}
		pins := maps.Clone(st.pins)
		delete(pins, in.PinID)
		return true, newLinState(next, st.inst, pins, st.mod)
	}
	if flbQueryMidFinish(st, in, out) {
		return true, st
	}
	if in.FDInst < 0 {
		return linStepFD(st, in, out, in.Op.FD)
	}
	if fd, ok := st.inst[in.FDInst]; ok {
		return linStepFD(st, in, out, fd.model)
	}
	// The instance is closed: the call looked its number up after the
	// close, or before it (then the file is pinned; not for a close, which
	// acts on the table entry, not on the file). If the number had a new
	// holder before the call started, the lookup found that one (or, that
	// one closed since, the file its close's pin keeps: pinFD.reachedBy).
	if fd, ok := installedBefore(st, in.Proc, in.FDNum, in.Call); ok {
		return linStepFD(st, in, out, fd)
	}
	// A live instance holding the number, its call linearized (its fd
	// installed by now, though the call may not have returned), is
	// tried before the closed file a pin keeps: a step has one outcome,
	// and the pinned file stays reachable by linearizing that call later
	// (for an ioctl, only a holder made before its call: holderFD).
	mfd := holderFD(st, in)
	if mfd >= 0 {
		if ok, next := linStepFD(st, in, out, mfd); ok {
			return ok, next
		}
	}
	for _, id := range slices.Sorted(maps.Keys(st.pins)) {
		if in.Op.Kind == model.OpClose {
			break
		}
		if p := st.pins[id]; p.reachedBy(in) {
			if ok, next := linStepFD(st, in, out, p.fd); ok {
				return ok, next
			}
		}
	}
	if mfd < 0 {
		if ok, next := linStepFD(st, in, out, mfd); ok {
			return ok, next
		}
		// A call the reboot killed may have installed its fd before it
		// died, at a number nobody saw: the lookup may have found it,
		// and the number is then that instance's.
		for _, id := range killedInsts(st, in.Proc) {
			if ok, next := linStepFD(st, in, out, st.inst[id].model); ok {
				return true, bindPort(next, id, in.FDNum)
			}
		}
	}
	// The number's new holder may not be installed yet when the call
	// looks it up: the call that returns it reserves the number first
	// and installs the file last, so a lookup in between finds nothing.
	if installedLate(st, in.Proc, in.FDNum, in.Call) {
		return linStepFD(st, in, out, -1)
	}
	return false, st
}

// killedInsts returns, in id order, the live instances of process proc
// whose port number is unknown: fds of calls a reboot killed.
func killedInsts(st *linState, proc int) []int {
	var ids []int
	for id, fd := range st.inst {
		if fd.port < 0 && fd.proc == proc {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// bindPort records num as instance id's port number in st, a state of its
// own (a step's), if the instance is still live there.
func bindPort(st *linState, id, num int) *linState {
	fd, ok := st.inst[id]
	if !ok || num < 0 {
		return st
	}
	st.inst = maps.Clone(st.inst)
	fd.port = num
	st.inst[id] = fd
	return st
}

// installedBefore returns the model fd of the live instance of process
// proc with port number num that a call of this round returned before
// clock call (the newest, if several).
func installedBefore(st *linState, proc, num int, call int64) (int, bool) {
	best, mfd := -1, -1
	for id, fd := range st.inst {
		if num >= 0 && fd.port == num && fd.proc == proc && fd.ret > 0 && fd.ret < call && id > best {
			best, mfd = id, fd.model
		}
	}
	return mfd, best >= 0
}

// installedLate reports whether a live instance of process proc with port
// number num was returned by a call that had not returned by clock call.
func installedLate(st *linState, proc, num int, call int64) bool {
	for _, fd := range st.inst {
		if num >= 0 && fd.port == num && fd.proc == proc && fd.ret > call {
			return true
		}
	}
	return false
}

// linStepFD is linStep for a call on model fd fd.
func linStepFD(st *linState, in linInput, out linOutput, fd int) (bool, *linState) {
	op := in.Op
	if in.FDInst >= 0 {
		op.FD = fd
	}
	if in.BufInst >= 0 && len(op.Buf) >= 8 {
		op.Buf = append([]byte{}, op.Buf...)
		putLE32(op.Buf[4:], uint32(int32(modelFD(st, in.Proc, in.BufInst, in.BufNum))))
	}
	if in.Fork != nil && in.Fork.Chained {
		return chainStart(st, in, out, op)
	}
	pins := st.pins
	pinned := -1
	if in.Pin && op.Kind == model.OpClose {
		// The pin: a hidden dup of the fd, so that the close does not
		// release the file.
		if r, s2 := model.Step(st.s, model.Op{Kind: model.OpDup, Task: op.Task, FD: op.FD}); r.Errno == 0 {
			st = &linState{s: s2, inst: st.inst, pins: st.pins, mod: st.mod, procs: st.procs}
			pinned = int(r.Ret)
		}
	}
	res, next := model.Step(st.s, op)
	if in.PreservePeer && !out.Pending && out.Res.Errno == syscall.EBUSY && res.Errno == 0 {
		return true, st // the peer held the file in LUO's map (markPreservePeers)
	}
	if !out.Pending && !sameIgnoringFDs(op, res, out.Res) && !(in.RacesClose && eitherFlag(res, out.Res)) {
		return false, st
	}
	if in.Pin {
		// pinned < 0: nothing to pin (the fd was not open); the release,
		// if any, happened with the close, and the Unpin is a no-op. The
		// pin keeps the instance the close closed: its slot's, or the
		// number's new holder's, which calls that looked it up before
		// the close still reach.
		closed := instOf(st, in.Proc, op.FD, in.FDInst)
		var held *instFD
		if fd, ok := st.inst[closed]; ok {
			held = &fd
		}
		pins = withPin(pins, in.NewInst, pinFD{fd: pinned, inst: closed, task: op.Task, ret: in.PinRet, held: held})
	}
	inst := st.inst
	mod := st.mod
	switch {
	case res.Errno != 0:
	case op.Kind == model.OpKexec:
		inst = nil      // every task, and so every fd, is gone
		mod = modStable // and every module
		// A release still pending ran in the old kernel, too late to
		// matter: its Unpin is a no-op, and so are the steps left of an
		// exec's or exit's release chain (emptied).
		if len(pins) > 0 {
			dead := map[int]pinFD{}
			for k, p := range pins {
				d := pinFD{fd: -1, inst: p.inst, ret: p.ret, finished: p.finished, flb: p.flb, noRef: p.noRef}
				if p.chain != nil {
					d.chain, d.next = []int{}, p.next
				}
				dead[k] = d
			}
			pins = dead
		}
	case op.Kind == model.OpClose:
		inst = map[int]instFD{}
		for k, v := range st.inst {
			if v.model != op.FD || v.proc != in.Proc {
				inst[k] = v
			}
		}
	case op.Kind == model.OpExec || op.Kind == model.OpExit:
		inst = closedInsts(st.inst, &next, op.Task, in.Proc)
	}
	if mfd, ok := fdResult(op, res); ok {
		inst = maps.Clone(inst)
		if inst == nil {
			inst = map[int]instFD{}
		}
		port := -1
		if pfd, ok := fdResult(op, out.Res); ok && !out.Pending {
			port = pfd
		}
		inst[in.NewInst] = instFD{model: mfd, port: port, ret: out.Ret, proc: in.Proc}
		if op.Kind == model.OpFcntl && port >= 0 && port < op.Arg {
			return false, st // F_DUPFD's fd is the lowest free one >= arg
		}
	}
	ns := newLinState(next, inst, pins, mod)
	if op.Kind == model.OpKexec && res.Errno == 0 {
		ns.old, ns.oldMod, ns.oldInst = &st.s, st.mod, st.inst
	}
	return true, ns
}

// lastRef reports whether fd of task is the last reference to its file:
// only then does closing it release the file (a dup made from the closed
// fd by a call that looked it up before the close keeps it open).
func lastRef(s *model.State, task model.TaskID, fd int) bool {
	_, f := s.FDFile(task, fd)
	return f != nil && f.Refs == 1
}

// modelFD is the model's fd for an instance; once the instance is closed,
// that of the live instance holding the port's number num, else -1
// (EBADF).
func modelFD(st *linState, proc, inst, num int) int {
	if fd, ok := st.inst[inst]; ok {
		return fd.model
	}
	return numberHolder(st, proc, num, math.MaxInt64)
}

// numberHolder is the model fd of the live instance of process proc
// holding port number num, made by a call that started before clock
// before; -1 if none. Two live instances share a number while the close
// of the older is linearized after the call that reused its number: the
// newer one is the number's holder once the older is closed.
func numberHolder(st *linState, proc, num int, before int64) int {
	if num < 0 {
		return -1
	}
	best, mfd := -1, -1
	for id, fd := range st.inst {
		if fd.port == num && fd.proc == proc && id > best && instCall(id) < before {
			best, mfd = id, fd.model
		}
	}
	return mfd
}

// holderFD is modelFD for call in, whose instance is closed. An ioctl
// looks its fd up before anything else (fdget() in
// SYSCALL_DEFINE3(ioctl), kernel.Task.Ioctl; no scheduling point before
// it), so at its call: an instance made by a call
// that started after it was not installed yet. Other calls may look up
// later (close and F_SETFD under the table's lock).
func holderFD(st *linState, in linInput) int {
	if in.Op.Kind != model.OpIoctl {
		return modelFD(st, in.Proc, in.FDInst, in.FDNum)
	}
	return numberHolder(st, in.Proc, in.FDNum, in.Call)
}

// instCall is the clock of the call that made instance id, 0 for the
// round's setup fds: an id is its call's clock plus NumSlots, and a
// forked child's copy carries its fork's (childInst).
func instCall(id int) int64 {
	if id >= 1<<childInstShift {
		id >>= childInstShift
	}
	return max(int64(id-NumSlots), 0)
}

// sameIgnoringFDs compares results with every returned fd number (and the
// fd fields of ioctl buffers) blanked.
func sameIgnoringFDs(op model.Op, a, b model.Result) bool {
	blank := func(r model.Result) model.Result {
		if _, ok := fdResult(op, r); ok {
			r = withFD(op, r, 0)
		}
		if op.Kind == model.OpIoctl && len(r.Data) >= 8 {
			switch op.Cmd {
			case model.IoctlCreateSession, model.IoctlRetrieveSession, model.IoctlSessionPreserveFD, model.IoctlSessionRetrieveFD:
				r.Data = append([]byte{}, r.Data...)
				putLE32(r.Data[4:], 0)
			}
		}
		return r
	}
	return blank(a).Equal(blank(b))
}

// porcupineModel is the model for one round starting at init, for hist
// alone (numbered by numberOps): it memoizes steps by history index
// (linState.succ), so another history, even one derived from hist, needs
// a model of its own. Init always returns the same state, the root of the
// memoized steps; every state it returns is interned (linStates).
func porcupineModel(init model.State, inst map[int]instFD, hist []porcupine.Operation) porcupine.Model {
	states := linStates{}
	root := states.intern(newLinState(init, inst, nil, modStable))
	return porcupine.Model{
		Init: func() any { return root },
		Step: func(state, input, _ any) (bool, any) {
			st := state.(*linState)
			if ok, next := st.step(hist, input.(linInput).ID, states); ok {
				return true, next
			}
			return false, st
		},
		Equal: func(a, b any) bool { return a == b },
		// Any hash consistent with Equal: porcupine only prunes states it
		// has seen, so the verdict and the linearization do not depend
		// on the hash.
		Hash:              func(state any) uint64 { return state.(*linState).fp },
		DescribeOperation: describeOp,
		DescribeState: func(state any) string {
			return modelBefore(&state.(*linState).s) + modelRegistry(&state.(*linState).s)
		},
	}
}

func describeOp(input, output any) string {
	in, out := input.(linInput), output.(linOutput)
	if in.Observe {
		return fmt.Sprintf("quiescent: %s; crossed: %s", out.Before, out.After)
	}
	if in.UnpinFinish {
		return fmt.Sprintf("T%d release, first half (a retrieved session's finish, an outgoing one's unpreserve), of the file closed by its close (call %d)", in.Thread, in.PinID)
	}
	if in.Phase != "" {
		return fmt.Sprintf("T%d module %s %s", in.Thread, model.TestModuleName, in.Phase)
	}
	if in.FLBPut {
		return fmt.Sprintf("T%d put of the FLB reference its query (call %d) got", in.Thread, in.PinID)
	}
	if in.Unpin {
		return fmt.Sprintf("T%d release of the file closed by its close (call %d)", in.Thread, in.PinID)
	}
	if in.FLBTail {
		return fmt.Sprintf("T%d FLB half of the last test file finished or unpreserved by operation %d", in.Thread, in.TailOf)
	}
	if out.Pending {
		return "T" + fmt.Sprint(in.Thread) + " " + strings.TrimSuffix(model.Format(in.Op, model.Result{}), " = 0") + " (killed by the reboot)"
	}
	return fmt.Sprintf("T%d %s", in.Thread, model.Format(in.Op, out.Res))
}

// finalState replays the longest linearization porcupine found and
// returns the model state after it.
func finalState(pm porcupine.Model, hist []porcupine.Operation, info porcupine.LinearizationInfo) (model.State, bool) {
	init := pm.Init().(*linState)
	var best []int
	for _, part := range info.PartialLinearizations() {
		for _, l := range part {
			if len(l) > len(best) {
				best = l
			}
		}
	}
	if len(best) != len(hist) {
		return init.s, false
	}
	// porcupine took each of these steps, so they come from memo; a table
	// of their own stands for porcupine's, which pm does not expose.
	st, states := init, linStates{}
	for _, i := range best {
		ok, next := st.step(hist, i, states)
		if !ok {
			return init.s, false
		}
		st = next
	}
	return st.s, true
}

// numberOps sets every operation's linInput.ID to its index in hist.
func numberOps(hist []porcupine.Operation) {
	for i := range hist {
		in := hist[i].Input.(linInput)
		in.ID = i
		hist[i].Input = in
	}
}

// addPins marks every successful close of hist that overlaps other calls
// (and every close a reboot interrupted: it may have dropped the fd and
// not released the file),
// and adds its Unpin (see linState): from the close's call to the last
// return among the close and the calls on fds that overlap it. (close()
// takes the fd out of the table, then drops the file: a release inside
// the close is not atomic with it either.)
func addPins(hist []porcupine.Operation) []porcupine.Operation {
	n := len(hist)
	client := maxClientID(hist)
	for i := range n {
		c := &hist[i]
		in := c.Input.(linInput)
		out := c.Output.(linOutput)
		if in.Observe || in.Unpin || in.Op.Kind != model.OpClose || (!out.Pending && out.Res.Errno != 0) {
			continue
		}
		last, overlap := c.Return, false
		for j := range n {
			o := hist[j]
			oin := o.Input.(linInput)
			if j == i || oin.Observe || o.Call > c.Return || o.Return < c.Call {
				continue
			}
			overlap = true
			if (oin.FDInst >= 0 || oin.BufInst >= 0) && o.Return > last {
				last = o.Return
			}
		}
		if !overlap {
			continue // nobody can tell the release from the close
		}
		in.Pin, in.PinRet = true, c.Return
		c.Input = in
		for _, half := range []linInput{
			{Thread: in.Thread, Op: model.Op{Task: in.Op.Task}, UnpinFinish: true, PinID: in.NewInst, FDInst: -1, BufInst: -1},
			{Thread: in.Thread, Op: model.Op{Task: in.Op.Task}, Unpin: true, PinID: in.NewInst, FDInst: -1, BufInst: -1},
		} {
			client++
			hist = append(hist, porcupine.Operation{
				ClientId: client,
				Input:    half,
				Call:     c.Call,
				Output:   linOutput{},
				Return:   last,
			})
		}
	}
	return hist
}

// addFLBHolds splits every successful FLB query of hist that overlaps
// other calls into its get, which keeps the reference (FLBHold), and the
// put (FLBPut), a pseudo-operation over the query's span. A query a
// reboot killed is split too: killed between its get and its put, it
// holds the reference until the jump (its put then runs in the old
// kernel, linState.old, where it changes nothing that crosses), and its
// get may also have failed (pinFD.noRef).
func addFLBHolds(hist []porcupine.Operation) []porcupine.Operation {
	n := len(hist)
	client := maxClientID(hist)
	for i := range n {
		c := &hist[i]
		in := c.Input.(linInput)
		out := c.Output.(linOutput)
		if in.Observe || in.Unpin || in.UnpinFinish || !out.Pending && out.Res.Errno != 0 ||
			in.Op.Kind != model.OpTestCtl || in.Op.TestCmd != model.TestCmdFLBIncoming {
			continue
		}
		overlap := false
		for j := range n {
			o := hist[j]
			if j != i && !o.Input.(linInput).Observe && o.Call <= c.Return && o.Return >= c.Call {
				overlap = true
				break
			}
		}
		if !overlap {
			continue
		}
		in.FLBHold = true
		c.Input = in
		client++
		hist = append(hist, porcupine.Operation{
			ClientId: client,
			Input:    linInput{Thread: in.Thread, Op: in.Op, FLBPut: true, PinID: in.NewInst, FDInst: -1, BufInst: -1},
			Call:     c.Call,
			Output:   linOutput{},
			Return:   c.Return,
		})
	}
	return hist
}

// finishingCall is a session FINISH call: its task and fd instance.
type finishingCall struct {
	task model.TaskID
	inst int
	proc int // the process that made it (linInput.Proc): task is then its model task's
}

// flbQueryMidFinish accepts an FLB query's ENODATA, with no effect, when a
// finish in flight ends that FLB: the release of a pinned close (before
// its UnpinFinish) or a FINISH call that overlaps the query.
// luo_flb_file_finish() walks the handler's FLBs one at a time, each
// under its own incoming lock, so a concurrent query may find one FLB
// finished and the next not yet, while the model's finish is one step.
// A query that finds no data changes nothing; the finish itself is still
// linearized whole, where its own step puts it.
func flbQueryMidFinish(st *linState, in linInput, out linOutput) bool {
	if in.Op.Kind != model.OpTestCtl || in.Op.TestCmd != model.TestCmdFLBIncoming ||
		out.Pending || out.Res.Errno != syscall.ENODATA {
		return false
	}
	endsFLB := func(task model.TaskID, fd int) bool {
		_, after := model.Step(st.s, model.Op{Kind: model.OpIoctl, Task: task, FD: fd,
			Cmd: model.IoctlSessionFinish, Buf: model.FinishArgBuf(0)})
		res, _ := model.Step(after, in.Op)
		return res.Errno == syscall.ENODATA
	}
	return slices.ContainsFunc(finishesInFlight(st, in), func(f taskFD) bool { return endsFLB(f.task, f.fd) })
}

// taskFD is a task's fd in the model.
type taskFD struct {
	task model.TaskID
	fd   int
}

// finishesInFlight returns the session fds whose finish may be under way
// at in's step: those of the FINISH calls that overlap it (in.Finishing),
// of the pinned closes whose release has not finished yet (its
// UnpinFinish to come), and of the release chains' finish steps to come;
// a close's or a chain's only where its fd holds the last reference.
func finishesInFlight(st *linState, in linInput) []taskFD {
	var out []taskFD
	for _, f := range in.Finishing {
		task := f.task
		if f.proc != 0 {
			task = st.procs[f.proc]
		}
		if fd, ok := st.inst[f.inst]; ok {
			out = append(out, taskFD{task, fd.model})
		}
	}
	for _, pin := range st.pins {
		if !pin.flb && !pin.finished && pin.fd >= 0 && lastRef(&st.s, pin.task, pin.fd) {
			out = append(out, taskFD{pin.task, pin.fd})
		}
		for k, e := range pin.chain {
			if fd := e >> 2; e&3 == relFinish && pin.next <= k && lastRef(&st.s, pin.task, fd) {
				out = append(out, taskFD{pin.task, fd})
			}
		}
	}
	return out
}

// markPreservePeers marks every PRESERVE_FD of hist that answered EBUSY
// while another PRESERVE_FD of the same file overlapped it
// (PreservePeer). luo_preserve_file() enters the file in LUO's map of
// preserved files (EBUSY for any other preserve of it) before the FLBs
// count it and the handler preserves it, each a critical section of its
// own: another call (an FLB's unlink) can run between, so the peer's
// preserve may be linearized after that call and this EBUSY before the
// peer, where the file is not yet preserved. The entry is there only
// while the peer runs, and the EBUSY changes nothing.
func markPreservePeers(hist []porcupine.Operation) {
	isPreserve := func(in linInput) bool {
		return !in.Observe && in.Op.Kind == model.OpIoctl && in.Op.Cmd == model.IoctlSessionPreserveFD && in.BufInst >= 0
	}
	for i := range hist {
		in := hist[i].Input.(linInput)
		out := hist[i].Output.(linOutput)
		if !isPreserve(in) || out.Pending || out.Res.Errno != syscall.EBUSY {
			continue
		}
		for j, o := range hist {
			oin := o.Input.(linInput)
			if j != i && isPreserve(oin) && oin.BufInst&(1<<20-1) == in.BufInst&(1<<20-1) &&
				o.Call <= hist[i].Return && o.Return >= hist[i].Call {
				in.PreservePeer = true
				hist[i].Input = in
				break
			}
		}
	}
}

// addFinishing lists, on every FLB query of hist that found no data, the
// session FINISH calls that overlap it, and on every handler
// unregistration that succeeded, those that overlap it and succeeded.
func addFinishing(hist []porcupine.Operation) []porcupine.Operation {
	for i := range hist {
		c := &hist[i]
		in := c.Input.(linInput)
		out := c.Output.(linOutput)
		emptyQuery := out.Res.Errno == syscall.ENODATA && in.Op.Kind == model.OpTestCtl && in.Op.TestCmd == model.TestCmdFLBIncoming
		unregistered := out.Res.Errno == 0 && in.Op.Kind == model.OpUnregisterHandler
		if out.Pending || !emptyQuery && !unregistered {
			continue
		}
		for j, o := range hist {
			oin := o.Input.(linInput)
			oout := o.Output.(linOutput)
			if j != i && oin.Op.Kind == model.OpIoctl && oin.Op.Cmd == model.IoctlSessionFinish && oin.FDInst >= 0 &&
				o.Call <= c.Return && o.Return >= c.Call && (emptyQuery || !oout.Pending && oout.Res.Errno == 0) {
				in.Finishing = append(in.Finishing, finishingCall{task: oin.Op.Task, inst: oin.FDInst, proc: oin.Proc})
			}
		}
		c.Input = in
	}
	return hist
}

// unregisterMidFinish steps a memfd handler's unregistration that
// succeeded where the model says EBUSY, when every memfd file that still
// pins the handler is an incoming one of a session that a FINISH
// overlapping the call finishes (Finishing), or a release in flight (a
// pinned close's before its UnpinFinish, a release chain's finish step to
// come), and that session holds a file older than all its memfd files.
// luo_file_finish() finishes and frees a session's files newest first,
// each dropping its pin on its handler, under the session's mutex, not
// the registry's rwsem: the unregistration can run once the memfd files
// are gone and before the older ones are (whose FLBs a query then finds
// unfinished), while the model's finish is one step. The unregistration
// is linearized there; the finish comes after it, whole.
func unregisterMidFinish(st *linState, in linInput, out linOutput) (bool, *linState) {
	if in.Op.Kind != model.OpUnregisterHandler || out.Pending || out.Res.Errno != 0 {
		return false, st
	}
	if r, _ := model.Step(st.s, in.Op); r.Errno != syscall.EBUSY {
		return false, st
	}
	finishing := map[model.SessionID]bool{}
	for _, f := range finishesInFlight(st, in) {
		if _, file := st.s.FDFile(f.task, f.fd); file != nil && file.Kind == model.KindSession {
			finishing[file.Session] = true
		}
	}
	for _, id := range st.s.Outgoing {
		for _, of := range st.s.Sessions[id].Out {
			if st.s.Files[of.File].Kind == model.KindMemfd {
				return false, st
			}
		}
	}
	for _, id := range st.s.Incoming {
		in := st.s.Sessions[id].In
		if slices.ContainsFunc(in, func(f model.InFile) bool { return f.Handler == model.MemfdCompatible }) &&
			(!finishing[id] || in[0].Handler == model.MemfdCompatible) {
			return false, st
		}
	}
	next := st.s.CopyOnWrite()
	next.MemfdUnregistered = true
	return true, newLinState(next, st.inst, st.pins, st.mod)
}

// firstDescent is porcupine's search (v1.3.1, checkSingle) up to its first
// backtrack: the call and return events in porcupine's order, then, from
// the first event each time, the first call whose step succeeds is
// linearized, until every operation is (the search's first descent) or a
// return comes first (it would backtrack). Along one descent the set of
// linearized operations only grows, so porcupine's cache of visited
// states never prunes it: when the descent completes, porcupine finds the
// same linearization and the same final state, at the cost of the steps
// alone. Otherwise (ok false) the caller tries lateDescent, then runs
// porcupine.
func firstDescent(init *linState, hist []porcupine.Operation) (*linState, bool) {
	return descend(init, hist, false)
}

// lateDescent is a descent in another order: of the calls that may come
// next (those that started before the first return not yet linearized),
// it tries first those that returned first, and the deferrable
// pseudo-operations last (a release after its close, an FLB reference's
// put, an exec's release chain, a module phase). porcupine's order takes
// the call that started first: a call that started early and returned
// late (a create whose session is listed after a quicker one's, a FINISH
// that overlaps a RETRIEVE_FD that saw the session unfinished), or a
// release taken at the start of its window, which hides from the calls
// that overlap it what they saw (a session still retrieved, a module
// still busy). Such histories are most of those firstDescent leaves
// (with it about 1% reach porcupine's search, 12.5% without, at rapid
// seeds 1 and 3). Every step is the model's, in an order real time
// allows, so a descent that completes is a linearization; not
// necessarily porcupine's, whose final state the model may tell apart
// (the next round starts from this one's, an explanation as good).
func lateDescent(init *linState, hist []porcupine.Operation) (*linState, bool) {
	return descend(init, hist, true)
}

// deferrable reports whether lateDescent tries in last.
func deferrable(in linInput) bool {
	return in.Unpin || in.UnpinFinish || in.FLBPut || in.Fork != nil && in.Fork.Rel || in.Phase != ""
}

// descend is firstDescent, and lateDescent if late.
func descend(init *linState, hist []porcupine.Operation, late bool) (*linState, bool) {
	evs := make(descentEvents, 0, 2*len(hist))
	for i, op := range hist {
		evs = append(evs, descentEvent{id: i, time: op.Call}, descentEvent{id: i, time: op.Return, ret: true})
	}
	// porcupine's makeEntries order: sort.Sort (not stable) with the
	// same comparison on the same sequence permutes it the same way.
	sort.Sort(evs)
	done := make([]bool, len(hist))
	st := init
	// next are the calls that may come next (started before the first
	// return not yet linearized), in the order they are tried.
	next := make([]int, 0, len(hist))
	lateOrder := func(a, b int) int {
		if da, db := deferrable(hist[a].Input.(linInput)), deferrable(hist[b].Input.(linInput)); da != db {
			if da {
				return 1
			}
			return -1
		}
		return cmp.Compare(hist[a].Return, hist[b].Return)
	}
	for left := len(hist); left > 0; left-- {
		next = next[:0]
		for _, e := range evs {
			if done[e.id] {
				continue
			}
			if e.ret {
				break
			}
			next = append(next, e.id)
		}
		if late {
			slices.SortStableFunc(next, lateOrder)
		}
		stepped := false
		for _, id := range next {
			if ok, ns := linStep(st, hist[id].Input.(linInput), hist[id].Output.(linOutput)); ok {
				st, done[id], stepped = ns, true, true
				break
			}
		}
		if !stepped {
			return nil, false
		}
	}
	return st, true
}

// descentEvent is a call (or return) of operation id of a history, at time.
type descentEvent struct {
	id   int
	time int64
	ret  bool
}

// descentEvents sorts as porcupine's byTime does.
type descentEvents []descentEvent

func (a descentEvents) Len() int      { return len(a) }
func (a descentEvents) Swap(i, j int) { a[i], a[j] = a[j], a[i] }
func (a descentEvents) Less(i, j int) bool {
	if a[i].time != a[j].time {
		return a[i].time < a[j].time
	}
	return !a[i].ret && a[j].ret
}

// maxClientID returns the highest ClientId of hist: the pseudo-operations
// each split (addPins, addChains, addFLBHolds) adds get rows of their own
// above it, whatever ran before.
func maxClientID(hist []porcupine.Operation) int {
	client := 0
	for _, o := range hist {
		client = max(client, o.ClientId)
	}
	return client
}
