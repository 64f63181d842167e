package proptest

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"syscall"

	"luomodel/kernel"
	"luomodel/kernel/bug"
	"luomodel/kernel/lib/liveupdatetest"
	"luomodel/kernel/liveupdate"
	"luomodel/model"
)

// This file runs the operations of LUO's in-kernel face on the port (the
// test module's syscalls and controls) and compares the calls LUO made
// into every handler and FLB (memfd's and the test module's, recorded by
// LUO's callback seam, liveupdate.CallRecorder) with the model's
// prediction after every operation: a callback too many, too few, out of
// order, on another file or with another result is a disagreement, shown
// as both C-like traces. The test module's own trace (what its handler
// and FLBs received) is kept beside it and must be exactly LUO's calls of
// them: it catches a call that bypasses the seam, and names a file of the
// new kernel LUO calls about before it is retrieved (the handler reads
// the id from its serialized page).

// oNonblock is O_NONBLOCK, delete_module's flag.
const oNonblock = 0x800

// testIDs maps the model's test-file ids to the port's (the port numbers
// a kernel's files by its live-update number and a sequence number) and
// back; both directions are bijections for the life of the machine.
type testIDs struct {
	toPort   map[model.TestFileID]uint64
	fromPort map[uint64]model.TestFileID
}

func (m *testIDs) bind(s *model.State, mid model.TestFileID, pid uint64) error {
	if m.toPort == nil {
		m.toPort = map[model.TestFileID]uint64{}
		m.fromPort = map[uint64]model.TestFileID{}
	}
	if p, ok := m.toPort[mid]; ok && p != pid {
		return fmt.Errorf("test file test#%d is port file %#x and %#x", mid, p, pid)
	}
	// A kernel whose live-update number restarted at 0 (after one
	// without LUO) numbers its files as an earlier kernel did: the id
	// may be reused once the earlier file is gone for good.
	if q, ok := m.fromPort[pid]; ok && q != mid && testFileAlive(s, q) {
		return fmt.Errorf("port test file %#x is test#%d and test#%d", pid, q, mid)
	}
	m.toPort[mid], m.fromPort[pid] = pid, mid
	return nil
}

// port returns the port's id of a model id; an id the port never saw
// maps to one no port file has (a directive for it never fires).
func (m *testIDs) port(mid model.TestFileID) uint64 {
	if mid == 0 {
		return 0
	}
	if p, ok := m.toPort[mid]; ok {
		return p
	}
	return 1<<63 | uint64(mid)
}

// model returns the model's name of the port's test file pid; a file the
// model never saw gets a name no model file has.
func (m *testIDs) model(pid uint64) model.ObjRef {
	if id, ok := m.fromPort[pid]; ok {
		return model.ObjRef{Test: id}
	}
	return model.ObjRef{Session: fmt.Sprintf("<port test file %#x>", pid)}
}

// testDriver returns the running kernel's test module driver.
func (e *Env) testDriver() (*kernel.Kernel, *liveupdatetest.Driver, error) {
	k := e.M.Kernel()
	if k == nil {
		return nil, nil, fmt.Errorf("machine halted: %v", e.M.Halted())
	}
	return k, k.LiveupdateTest(), nil
}

// runTestCtl performs a test-module command on the port.
func (e *Env) runTestCtl(op model.Op) (model.Result, error) {
	k, d, err := e.testDriver()
	if err != nil {
		return model.Result{Errno: errnoUnknown}, err
	}
	res := func(err error) (model.Result, error) {
		en, raw := toErrno(err)
		return model.Result{Errno: en}, raw
	}
	switch op.TestCmd {
	case model.TestCmdFail:
		dir := liveupdatetest.Directive{File: e.ids.port(op.TestFile), FLB: op.FLB, Nth: uint64(max(op.Nth, 0)), Errno: op.Errno}
		var ok bool
		if dir.Op, ok = testOp(op.Callback, op.Name == "flb"); !ok {
			return model.Result{Errno: syscall.EINVAL}, nil
		}
		if op.Name != "flb" {
			dir.FLB = -1
		}
		return res(d.FailNth(dir))
	case model.TestCmdRefuse:
		d.RefuseCanFinish(e.ids.port(op.TestFile), op.Nth != 0)
		return model.Result{}, nil
	case model.TestCmdSetFLBState:
		return res(d.SetFLBState(op.FLB, op.Buf))
	case model.TestCmdProbeRegister:
		return probeRegister(k.LUO(), d, op)
	}
	if op.FLB < 0 || op.FLB >= model.NTestFLBs {
		return model.Result{Errno: syscall.EINVAL}, nil
	}
	fh, flb := d.FileHandler(), d.FLB(op.FLB)
	if fh == nil || flb == nil {
		return model.Result{Errno: syscall.ENODEV}, nil // not loaded
	}
	luo := k.LUO()
	switch op.TestCmd {
	case model.TestCmdRegisterFLB:
		return res(luo.RegisterFLB(fh, flb))
	case model.TestCmdUnregisterFLB:
		luo.UnregisterFLB(fh, flb)
		return model.Result{}, nil
	case model.TestCmdFLBIncoming:
		obj, err := luo.FLBGetIncoming(flb)
		if err != nil {
			return res(err)
		}
		luo.FLBPutIncoming(flb)
		return flbObjResult(obj)
	case model.TestCmdFLBOutgoing:
		obj, err := luo.FLBGetOutgoing(flb)
		if err != nil {
			return res(err)
		}
		if obj == nil {
			return model.Result{}, nil
		}
		return flbObjResult(obj)
	}
	return model.Result{Errno: syscall.EINVAL}, nil
}

// probeRegister runs TestCmdProbeRegister: the module registers a file
// handler (or an FLB, of its handler or of one never registered) named
// op.Name with its own ops but op.Callback's, and unregisters it at once
// if that worked.
func probeRegister(luo *liveupdate.LUO, d *liveupdatetest.Driver, op model.Op) (model.Result, error) {
	fh := d.FileHandler()
	if fh == nil {
		return model.Result{Errno: syscall.ENODEV}, nil // not loaded
	}
	if op.Nth == 0 {
		probe := &liveupdate.FileHandler{Ops: withoutOp(*fh.Ops, op.Callback), Compatible: op.Name}
		err := luo.RegisterFileHandler(probe)
		if err == nil {
			if err := luo.UnregisterFileHandler(probe); err != nil {
				return model.Result{Errno: errnoUnknown}, fmt.Errorf("unregistering the probe handler %q: %v", op.Name, err)
			}
		}
		en, raw := toErrno(err)
		return model.Result{Errno: en}, raw
	}
	owner := fh
	if op.FLB != 0 {
		owner = &liveupdate.FileHandler{Ops: fh.Ops, Compatible: "probe-unregistered-v1"}
	}
	probe := &liveupdate.FLB{Ops: withoutOp(*d.FLB(0).Ops, op.Callback), Compatible: op.Name}
	err := luo.RegisterFLB(owner, probe)
	if err == nil {
		luo.UnregisterFLB(owner, probe)
	}
	en, raw := toErrno(err)
	return model.Result{Errno: en}, raw
}

// withoutOp returns a copy of ops with the callback named op (as
// model.ProbeOps names them: "can_preserve" is CanPreserve) left nil; op
// "" leaves them all.
func withoutOp[T liveupdate.FileOps | liveupdate.FLBOps](ops T, op string) *T {
	var field strings.Builder
	for _, w := range strings.Split(op, "_") {
		if w != "" {
			field.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	if f := reflect.ValueOf(&ops).Elem().FieldByName(field.String()); f.IsValid() {
		f.SetZero()
	}
	return &ops
}

// flbObjResult renders a test FLB's object as the model does: Ret 1 and
// its state.
func flbObjResult(obj any) (model.Result, error) {
	o, ok := obj.(*liveupdatetest.FLBObject)
	if !ok || o == nil {
		return model.Result{Errno: errnoUnknown}, fmt.Errorf("FLB object %T is not a test FLB's", obj)
	}
	return model.Result{Ret: 1, Data: append([]byte{}, o.State...)}, nil
}

// testOp maps a model callback name to the test module's.
func testOp(cb string, flb bool) (liveupdatetest.Op, bool) {
	name := cb
	if flb {
		name = "flb_" + cb
	}
	for _, o := range liveupdatetest.Ops() {
		if o.String() == name {
			return o, true
		}
	}
	return 0, false
}

// learnTestFile binds the model's id of the test file op opened (or a
// RETRIEVE_FD returned) to the port's, read with the device's get-id
// ioctl.
func (e *Env) learnTestFile(op model.Op, pr model.Result) error {
	if pr.Errno != 0 || op.Kind != model.OpOpen || op.Path != model.DevLiveUpdateTest {
		return nil
	}
	t := e.tasks[op.Task]
	mt := e.S.Tasks[op.Task]
	if t == nil || mt == nil {
		return nil
	}
	fd := int(pr.Ret)
	f := e.S.Files[mt.FDs[fd]]
	if f == nil || f.Kind != model.KindTest {
		return nil
	}
	var b [8]byte
	if err := t.Ioctl(fd, liveupdatetest.IoctlGetID, b[:]); err != nil {
		return fmt.Errorf("get-id ioctl of test file fd %d: %v", fd, err)
	}
	return e.ids.bind(&e.S, f.Test, binary.LittleEndian.Uint64(b[:]))
}

// takeCalls returns the callbacks k's test module received since the
// last call.
func takeCalls(k *kernel.Kernel) liveupdatetest.Trace {
	if k == nil {
		return nil
	}
	return k.LiveupdateTest().TakeTrace()
}

// isTestFLB says whether compat is one of the test module's FLBs.
func isTestFLB(compat string) bool { return strings.HasPrefix(compat, "liveupdate-test-flb-v") }

// portCalls turns the calls LUO made (seam, recorded by LUO for every
// handler) into the model's form, and checks them against the callbacks
// the test module received (mod): every call LUO made into the test
// handler or a test FLB must be one the module received, in the same
// order, with the same result, and the module must have received no
// other. The model's name of a test file is its id (from the file, or
// for one not retrieved from the module's record: the handler reads it
// from its serialized page); any other file is named by its session and
// token.
func (e *Env) portCalls(seam []liveupdate.Callback, mod liveupdatetest.Trace) ([]model.Call, error) {
	if len(seam) == 0 && len(mod) == 0 {
		return nil, nil
	}
	out := e.portBuf[:0]
	defer func() { e.portBuf = out[:0] }()
	j := 0
	for i := range seam {
		c := &seam[i]
		var got *liveupdatetest.Call
		test := false
		if c.Op.IsFLB() {
			test = isTestFLB(c.FLB.Compatible)
		} else {
			test = c.Handler.Compatible == model.TestCompatible
		}
		if test {
			if j == len(mod) {
				return nil, fmt.Errorf("LUO called %s, the test module received no such callback\n%s", c, seamVsModule(seam, mod))
			}
			got = &mod[j]
			j++
			if !sameCallback(c, got) {
				return nil, fmt.Errorf("LUO called %s, the test module received %s\n%s", c, got, seamVsModule(seam, mod))
			}
		}
		mc := model.Call{Name: c.Op.String(), Result: c.Errno(), Bool: c.Op.IsBool()}
		if c.Op.IsFLB() {
			mc.FLB = c.FLB.Compatible
			out = append(out, mc)
			continue
		}
		mc.Handler = c.Handler.Compatible
		if id, ok := liveupdatetest.FileID(c.File); ok {
			mc.File = e.ids.model(id)
		} else if c.File == nil && got != nil && got.File != 0 {
			mc.File = e.ids.model(got.File)
		} else {
			mc.File = model.ObjRef{Session: c.Session, Token: c.Token}
		}
		out = append(out, mc)
	}
	if j < len(mod) {
		return nil, fmt.Errorf("the test module received %s, which LUO did not call\n%s", mod[j], seamVsModule(seam, mod))
	}
	return out, nil
}

// sameCallback says whether LUO's call c is the callback the test module
// received as m: the same callback, FLB and result (get_id's value is the
// handler's business; the module records the id it keys).
func sameCallback(c *liveupdate.Callback, m *liveupdatetest.Call) bool {
	name := c.Op.String()
	if c.Op.IsFLB() {
		name = "flb_" + name
		if liveupdatetest.FLBCompatible(m.FLB) != c.FLB.Compatible {
			return false
		}
	}
	if m.Op.String() != name {
		return false
	}
	if id, ok := liveupdatetest.FileID(c.File); ok && m.File != 0 && id != m.File {
		return false
	}
	return c.Op == liveupdate.CallGetID || c.Ret == m.Result
}

// seamVsModule renders both sides of a disagreement between LUO's calls
// and the test module's.
func seamVsModule(seam []liveupdate.Callback, mod liveupdatetest.Trace) string {
	var b strings.Builder
	b.WriteString("LUO called:\n")
	for _, c := range seam {
		fmt.Fprintf(&b, "    %s\n", c)
	}
	b.WriteString("the test module received:\n")
	b.WriteString(indentLines(mod))
	return b.String()
}

// CallMismatch is a disagreement between the calls LUO made into the
// handlers and FLBs during an operation (every handler's, memfd's too)
// and those the model predicts.
type CallMismatch struct {
	Op    model.Op
	Res   model.Result
	Port  []model.Call
	Model []model.Call
}

func (m *CallMismatch) Error() string {
	return fmt.Sprintf("port and model disagree on the callbacks of\n  %s\nLUO called:\n%smodel predicts:\n%s",
		model.Format(m.Op, m.Res), indentLines(m.Port), indentLines(m.Model))
}

// indentLines renders xs one per line, indented under a report's heading.
func indentLines[T fmt.Stringer](xs []T) string {
	if len(xs) == 0 {
		return "    (none)\n"
	}
	var b strings.Builder
	for _, x := range xs {
		b.WriteString("    ")
		b.WriteString(x.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// checkCalls compares the calls LUO made into every handler and FLB
// during op (in the kernel op started in, and in the kernel running now)
// with the model's prediction, after checking the test module received
// exactly LUO's calls of its handler and FLBs; and records the model's in
// the trace. New bindings of test files are learnt first (a retrieved
// file keeps its id).
func (e *Env) checkCalls(before *kernel.Kernel, op model.Op, pr model.Result) error {
	mod := takeCalls(before)
	if now := e.M.Kernel(); now != before {
		mod = append(mod, takeCalls(now)...)
	}
	if !e.lockstep {
		return nil
	}
	seam := e.calls.Take()
	if err := e.learnTestFile(op, pr); err != nil {
		return err
	}
	port, err := e.portCalls(seam, mod)
	if err != nil {
		// Classed with the lockstep disagreements (mutants/runner): a
		// trace comparison failed.
		return fmt.Errorf("port and model disagree on the callbacks of\n  %s\nbefore the model is asked: LUO's calls are not what the test module received: %w", model.Format(op, pr), err)
	}
	if len(e.S.Calls) > 0 {
		e.trace[len(e.trace)-1].calls = slices.Clone(e.S.Calls)
	}
	if !slices.Equal(port, e.S.Calls) {
		return &CallMismatch{Op: op, Res: pr, Port: slices.Clone(port), Model: slices.Clone(e.S.Calls)}
	}
	return nil
}

// ExpectedReport says whether a report is one the model predicts
// (model.State.Warns): a refcount WARN of an FLB's incoming count, an
// FLB whose last put could not retrieve it, or KHO's restore check on a
// memfd folio entry that names no preserved block (a hostile hand-over),
// or a module refcount below its base after an FLB's second finish, or a
// registration probe's FLB without a required op or of an unregistered
// handler.
func ExpectedReport(r *bug.Report) bool {
	t := r.Title + r.Detail
	return r.Kind == bug.KindWarn && (strings.Contains(t, "refcount_t") || strings.Contains(t, "retrieve for finish failed") ||
		strings.Contains(t, "which is not a preserved block") || strings.Contains(t, "refcount below its base") ||
		strings.Contains(t, "refcount underflow") || strings.Contains(t, "lacks a required op") ||
		strings.Contains(t, "with an unregistered handler"))
}

// checkReports fails on any report the kernel filed but the refcount
// WARNs the model predicts, which must be exactly as many as predicted.
func (e *Env) checkReports() error {
	reps := e.Reports()
	var warns []string
	for _, r := range reps {
		if e.lockstep && ExpectedReport(r) {
			warns = append(warns, r.Title)
			continue
		}
		return fmt.Errorf("the kernel filed %d report(s); first unexpected:\n%s", len(reps), r)
	}
	if e.lockstep && len(warns) != e.S.Warns {
		return fmt.Errorf("the kernel filed %d refcount WARN(s), the model predicts %d; filed: %q", len(warns), e.S.Warns, warns)
	}
	return nil
}

// testFileAlive says whether a test file is open or handed over.
func testFileAlive(s *model.State, id model.TestFileID) bool {
	if s.TestFiles[id] != nil {
		return true
	}
	for _, f := range incomingTests(s) {
		if f.Test == id {
			return true
		}
	}
	return false
}
