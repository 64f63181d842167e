package proptest

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"syscall"

	"luomodel/kernel"
	"luomodel/kernel/bug"
	"luomodel/kernel/lib/liveupdatetest"
	"luomodel/model"
)

// This file runs the operations of LUO's in-kernel face on the port (the
// test module's syscalls and controls) and compares the callbacks the
// port's test module received with the model's prediction after every
// operation: a callback too many, too few, out of order, on another file
// or with another result is a disagreement, shown as both C-like traces.

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

// modelCalls converts the model's calls of the test module's handler and
// FLBs to the test module's records (the memfd handler records none).
func (e *Env) modelCalls(calls []model.Call) (liveupdatetest.Trace, error) {
	var out liveupdatetest.Trace
	for _, c := range calls {
		var pc liveupdatetest.Call
		var ok bool
		switch {
		case c.FLB != "":
			pc.Op, ok = testOp(c.Name, true)
			if _, err := fmt.Sscanf(c.FLB, "liveupdate-test-flb-v%d", &pc.FLB); err != nil {
				return nil, fmt.Errorf("model call on FLB %q", c.FLB)
			}
		case c.Handler == model.TestCompatible:
			pc.Op, ok = testOp(c.Name, false)
			pc.FLB = -1
			pc.File = e.ids.port(c.File.Test)
		default:
			continue
		}
		if !ok {
			return nil, fmt.Errorf("model call %s has no test-module counterpart", c)
		}
		switch pc.Op.Kind() {
		case liveupdatetest.KindErrno:
			pc.Result = -int64(c.Result)
		case liveupdatetest.KindBool:
			if c.Result == 0 {
				pc.Result = 1
			}
		}
		out = append(out, pc)
	}
	return out, nil
}

// CallMismatch is a disagreement between the callbacks the port's test
// module received during an operation and those the model predicts.
type CallMismatch struct {
	Op    model.Op
	Res   model.Result
	Port  liveupdatetest.Trace
	Model liveupdatetest.Trace
}

func (m *CallMismatch) Error() string {
	return fmt.Sprintf("port and model disagree on the callbacks of\n  %s\nport's test module received:\n%smodel predicts:\n%s",
		model.Format(m.Op, m.Res), indentTrace(m.Port), indentTrace(m.Model))
}

func indentTrace(t liveupdatetest.Trace) string {
	if len(t) == 0 {
		return "    (none)\n"
	}
	var b strings.Builder
	for _, c := range t {
		b.WriteString("    ")
		b.WriteString(c.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// checkCalls compares the port's callbacks of op (received by the test
// modules of before, the kernel op started in, and of the kernel running
// now) with the model's, and records them in the trace. New bindings of
// test files are learnt from the port's records of files the model knows
// (a retrieved file keeps its id).
func (e *Env) checkCalls(before *kernel.Kernel, op model.Op, pr model.Result) error {
	port := takeCalls(before)
	if now := e.M.Kernel(); now != before {
		port = append(port, takeCalls(now)...)
	}
	// The value get_id returns is the handler's business (the model
	// checks that each file keeps one key in the map).
	for i := range port {
		if port[i].Op.Kind() == liveupdatetest.KindID {
			port[i].Result = 0
		}
	}
	if !e.lockstep {
		return nil
	}
	if err := e.learnTestFile(op, pr); err != nil {
		return err
	}
	want, err := e.modelCalls(e.S.Calls)
	if err != nil {
		return err
	}
	if len(e.S.Calls) > 0 {
		e.trace[len(e.trace)-1].calls = slices.Clone(e.S.Calls)
	}
	if port.String() != want.String() {
		return &CallMismatch{Op: op, Res: pr, Port: port, Model: want}
	}
	return nil
}

// expectedReport says whether a report is one the model predicts
// (model.State.Warns): a refcount WARN of an FLB's incoming count, an
// FLB whose last put could not retrieve it, or KHO's restore check on a
// memfd folio entry that names no preserved block (a hostile hand-over).
func expectedReport(r *bug.Report) bool {
	t := r.Title + r.Detail
	return r.Kind == bug.KindWarn && (strings.Contains(t, "refcount_t") || strings.Contains(t, "retrieve for finish failed") ||
		strings.Contains(t, "which is not a preserved block"))
}

// checkReports fails on any report the kernel filed but the refcount
// WARNs the model predicts, which must be exactly as many as predicted.
func (e *Env) checkReports() error {
	reps := e.Reports()
	warns := 0
	for _, r := range reps {
		if e.lockstep && expectedReport(r) {
			warns++
			continue
		}
		return fmt.Errorf("the kernel filed %d report(s); first unexpected:\n%s", len(reps), r)
	}
	if e.lockstep && warns != e.S.Warns {
		return fmt.Errorf("the kernel filed %d refcount WARN(s), the model predicts %d", warns, e.S.Warns)
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
