package model

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// This file models the test driver: a built-in misc device
// (/dev/liveupdate_test) whose every open is a new test file with a small
// writable payload, and the test module (liveupdate_test) with the file
// handler that preserves such files (every callback implemented, each
// directable to fail) and the test FLBs that handler depends on. The
// module can be loaded and unloaded; LUO pins it exactly where upstream
// does, and nothing else does (vfio's device files beside vfio_pci's
// handler).

// Names and limits of the test module.
const (
	DevLiveUpdateTest = "/dev/liveupdate_test"
	TestModuleName    = "liveupdate_test"
	// TestCompatible is the test handler's compatible string.
	TestCompatible = "liveupdate-test-v1"
	// NTestFLBs is how many test FLBs the module defines.
	NTestFLBs = 2
	// TestPayloadMax is the largest test payload: a page less the
	// serialized header; a write at or past it is ENOSPC (short if it
	// starts before).
	TestPayloadMax = PageSize - 32
	// TestFLBStateMax is the largest state of a test FLB: a page less
	// its serialized header.
	TestFLBStateMax = PageSize - 24
)

// TestFLBCompatible is LIVEUPDATE_TEST_FLB_COMPATIBLE(i).
func TestFLBCompatible(i int) string { return "liveupdate-test-flb-v" + strconv.Itoa(i) }

// TestFileID names a test file across kexec: the handler keeps it in the
// preserved payload and gives it to the retrieved file.
type TestFileID int

// TestFile is the payload of an open test file (immutable slice).
type TestFile struct {
	Payload []byte
}

// Directive makes the Nth matching call (counted from when it was armed)
// of a callback fail with Errno; it is disarmed when it fires. A bool
// callback "fails" by answering false. Directives are the test module's
// controls: they outlive a reload of the module, not a kexec.
type Directive struct {
	// Callback is a Cb* name, or an Flb* name with FLBOp set.
	Callback string
	FLBOp    bool
	// File restricts a handler directive to one test file (0: any
	// file, also files that are not test files); FLB restricts an FLB
	// directive to one FLB (-1: any).
	File  TestFileID
	FLB   int
	Nth   int
	Errno syscall.Errno
	Calls int
}

// TestControls are the test module's directions: armed directives, in
// arming order (the first that matches a call counts it), and the files
// whose can_finish refuses. The directives, the list and the refusal set
// are immutable (a change installs new ones): states that Step copied
// share them.
type TestControls struct {
	Directives []*Directive
	Refuse     map[TestFileID]bool
	// FLBStates is what each FLB's next preserve saves (nil: its
	// compatible string).
	FLBStates [NTestFLBs][]byte
	// FLBConsumed: a retrieve restored (and freed) the handed-over
	// page of FLB i in this kernel; the FLB of a reloaded module finds
	// no page to retrieve (EINVAL).
	FLBConsumed [NTestFLBs]bool
}

// flbState is what FLB i's next preserve saves.
func (c *TestControls) flbState(i int) []byte {
	if c.FLBStates[i] == nil {
		return []byte(TestFLBCompatible(i))
	}
	return c.FLBStates[i]
}

func (c TestControls) clone() TestControls {
	n := TestControls{Refuse: maps.Clone(c.Refuse), FLBStates: c.FLBStates, FLBConsumed: c.FLBConsumed}
	if len(c.Directives) > 0 {
		ds := make([]Directive, len(c.Directives))
		n.Directives = make([]*Directive, len(c.Directives))
		for i, d := range c.Directives {
			ds[i] = *d
			n.Directives[i] = &ds[i]
		}
	}
	return n
}

// fire counts a call of a callback on file (or FLB flb) against the
// directives and returns the errno of the one that fires (0 if none).
// The directive that counts it is replaced, in a new list.
func (c *TestControls) fire(cb string, flbOp bool, file TestFileID, flb int) syscall.Errno {
	for i, d := range c.Directives {
		if d.Callback != cb || d.FLBOp != flbOp {
			continue
		}
		if flbOp {
			if d.FLB != -1 && d.FLB != flb {
				continue
			}
		} else if d.File != 0 && d.File != file {
			continue
		}
		if d.Calls+1 < d.Nth {
			counted := *d
			counted.Calls++
			c.Directives = slices.Clone(c.Directives)
			c.Directives[i] = &counted
			return 0
		}
		c.Directives = append(c.Directives[:i:i], c.Directives[i+1:]...)
		if d.Errno == 0 {
			return syscall.EPERM // a bool callback's "no"
		}
		return d.Errno
	}
	return 0
}

// FLBState is one test FLB: its link to the test handler and its private
// outgoing and incoming state (struct luo_flb_private).
type FLBState struct {
	// OutCount is the number of preserved files depending on it;
	// OutObj its object's state while HasOut (OutCount > 0).
	OutCount int
	HasOut   bool
	OutObj   []byte
	// InCount is the incoming reference count, loaded from the handed
	// over entry on retrieve; InStatus is retrieve_status (0 not tried,
	// 1 retrieved, -errno failed); InObj the retrieved object;
	// Finished once finish ran. HasIn while there is an object.
	InCount  int
	InStatus int
	HasIn    bool
	InObj    []byte
	Finished bool
}

// FLBSer is one entry of the FLB block a kernel hands over (struct
// luo_flb_ser).
type FLBSer struct {
	Name string
	// State is what the FLB's preserve saved (its data points at it).
	State []byte
	Count int
}

// TestModule is the state of the test module and of what it registered.
type TestModule struct {
	Loaded bool
	// Links are the test FLBs linked to the test handler, in link order
	// (indices into FLBs).
	Links []int
	FLBs  [NTestFLBs]FLBState
	// LostPins counts module_put()s of the module beyond the pins LUO
	// took: an FLB finished a second time. Upstream's last
	// liveupdate_flb_put_incoming() of an FLB whose retrieve failed
	// retrieves it, which reloads the incoming count from the handed-over
	// entry, so a further put (a file preserved while the FLB was
	// unlinked) finishes it again and drops its owner's pin again.
	LostPins int
}

func (m TestModule) clone() TestModule {
	c := m
	c.Links = append([]int(nil), m.Links...)
	return c
}

// linked says whether FLB i is linked to the test handler.
func (m *TestModule) linked(i int) bool {
	for _, l := range m.Links {
		if l == i {
			return true
		}
	}
	return false
}

// Test-module control commands (OpTestCtl).
const (
	// TestCmdFail arms a directive: the Nth next call of Callback on
	// TestFile (0: any) fails with Errno; with FLB >= -1 and an Flb*
	// Callback (op.Name "flb"), of FLB's callback (-1: any FLB).
	TestCmdFail = iota + 1
	// TestCmdRefuse makes can_finish refuse (Nth != 0) or accept
	// (Nth == 0) TestFile.
	TestCmdRefuse
	// TestCmdRegisterFLB and TestCmdUnregisterFLB link and unlink FLB
	// to/from the test handler (liveupdate_register_flb/_unregister_flb).
	TestCmdRegisterFLB
	TestCmdUnregisterFLB
	// TestCmdFLBIncoming and TestCmdFLBOutgoing query FLB's object:
	// liveupdate_flb_get_incoming/_get_outgoing then the put; Ret is
	// the object.
	TestCmdFLBIncoming
	TestCmdFLBOutgoing
	// TestCmdSetFLBState sets what FLB's next preserve saves (Buf).
	TestCmdSetFLBState
	// TestCmdProbeRegister has the module register a file handler (Nth
	// 0) or an FLB (Nth 1) named Name, with its own ops but Callback's
	// (none if ""), and unregister it at once if that succeeded: the
	// registration API's checks of what a module passes (liveupdate_
	// register_file_handler(), liveupdate_register_flb()), with no
	// lasting effect. An FLB goes to the module's handler, or with FLB 1
	// to a handler never registered.
	TestCmdProbeRegister
)

// FLBMax is LUO_FLB_MAX, the FLBs one FLB block lists: (4096 - 16) / 64.
const FLBMax = 63

// TestCmdName names a test-module command.
func TestCmdName(cmd int) string {
	switch cmd {
	case TestCmdFail:
		return "fail"
	case TestCmdRefuse:
		return "refuse_finish"
	case TestCmdRegisterFLB:
		return "register_flb"
	case TestCmdUnregisterFLB:
		return "unregister_flb"
	case TestCmdFLBIncoming:
		return "flb_get_incoming"
	case TestCmdFLBOutgoing:
		return "flb_get_outgoing"
	case TestCmdSetFLBState:
		return "set_flb_state"
	case TestCmdProbeRegister:
		return "probe_register"
	}
	return fmt.Sprintf("cmd%d", cmd)
}

// failableHandler and failableFLB are the callbacks a directive can fail.
var (
	failableHandler = map[string]bool{CbCanPreserve: true, CbPreserve: true, CbFreeze: true, CbRetrieve: true, CbCanFinish: true}
	failableFLB     = map[string]bool{FlbPreserve: true, FlbRetrieve: true}
)

// FailableHandlerCallbacks and FailableFLBCallbacks list them in order.
var (
	FailableHandlerCallbacks = []string{CbCanPreserve, CbPreserve, CbFreeze, CbRetrieve, CbCanFinish}
	FailableFLBCallbacks     = []string{FlbPreserve, FlbRetrieve}
)

// testRegistered says whether the test handler is in LUO's handler list.
func (s *State) testRegistered() bool { return s.Test.Loaded && s.Enabled }

// ModuleRefs is the test module's reference count as LUO holds it: one
// per preserved or deserialized test file (handler owner), one per FLB
// with outgoing files and one per retrieved, not yet finished incoming FLB
// (FLB owner), less the lost pins; -1 is refcnt 0 (MODULE_REF_BASE put),
// its floor. The device /dev/liveupdate_test is built in (vfio's device
// files beside vfio_pci's handler): its open files pin nothing.
func (s *State) ModuleRefs() int {
	if !s.Test.Loaded {
		return 0
	}
	n := s.handlerUsers(KindTest, TestCompatible)
	for _, st := range s.Test.FLBs {
		if st.OutCount > 0 {
			n++
		}
		if st.InStatus > 0 && !st.Finished {
			n++
		}
	}
	return n - s.Test.LostPins
}

// testModuleGet says whether try_module_get() of the test module
// succeeds: not once lost pins left refcnt at 0.
func (s *State) testModuleGet() bool { return s.ModuleRefs() > -1 }

// settleTestModulePins applies module_put()'s floor after an operation:
// a put of refcnt 0 is a WARN (atomic_dec_if_positive()) and changes
// nothing, so refcnt never goes below 0 (ModuleRefs -1).
func (s *State) settleTestModulePins() {
	if r := s.ModuleRefs(); s.Test.Loaded && r < -1 {
		s.Warns += -1 - r
		s.Test.LostPins -= -1 - r
	}
}

// loadModule ports init_module(2) of the test module and its init: the
// handler registered after those already registered (LUO disabled:
// EOPNOTSUPP, ignored as memfd_luo_init() does), the test FLBs linked in
// index order, the misc device registered. Its FLB state starts fresh.
func (s *State) loadModule(name string) Result {
	if name != TestModuleName {
		return errResult(syscall.ENOENT)
	}
	if s.Test.Loaded {
		return errResult(syscall.EEXIST)
	}
	s.Test = TestModule{Loaded: true}
	if s.Enabled {
		for i := range NTestFLBs {
			s.Test.Links = append(s.Test.Links, i)
		}
		// As upstream's test module, load the incoming FLB state at
		// registration (get_incoming, then put), so the incoming
		// counts are loaded before any file finishes.
		for i := range NTestFLBs {
			if _, e := s.flbGetIncoming(i); e == 0 {
				s.flbPutIncoming(i)
			}
		}
	}
	return okResult(0)
}

// deleteModule ports delete_module(2): refused with EAGAIN
// (EWOULDBLOCK) while any reference is held; else the module's exit
// unregisters the device, the FLBs and the handler.
func (s *State) deleteModule(name string) Result {
	if name != TestModuleName || !s.Test.Loaded {
		return errResult(syscall.ENOENT)
	}
	// try_release_module_ref(): refcnt 0 (lost pins) is its BUG_ON,
	// which the port files as a WARN before refusing.
	if r := s.ModuleRefs(); r != 0 {
		if r < 0 {
			s.Warns++
		}
		return errResult(syscall.EAGAIN)
	}
	s.Test = TestModule{}
	return okResult(0)
}

// testCtl applies a test-module command.
func (s *State) testCtl(op Op) Result {
	m := &s.Test
	flbOK := op.FLB >= 0 && op.FLB < NTestFLBs
	// The controls are the kernel's test driver's; the FLB commands
	// need the loaded module's FLBs.
	switch op.TestCmd {
	case TestCmdRegisterFLB, TestCmdUnregisterFLB, TestCmdFLBIncoming, TestCmdFLBOutgoing, TestCmdProbeRegister:
		if !m.Loaded {
			return errResult(syscall.ENODEV)
		}
	}
	switch op.TestCmd {
	case TestCmdSetFLBState:
		if !flbOK || len(op.Buf) > TestFLBStateMax {
			return errResult(syscall.EINVAL)
		}
		s.TestCtl.FLBStates[op.FLB] = append([]byte{}, op.Buf...)
		return okResult(0)
	case TestCmdFail:
		d := &Directive{Callback: op.Callback, FLBOp: op.Name == "flb", File: op.TestFile, FLB: op.FLB, Nth: op.Nth, Errno: op.Errno}
		if op.Nth < 1 {
			return errResult(syscall.EINVAL)
		}
		if d.FLBOp {
			if !failableFLB[d.Callback] || op.FLB < -1 || op.FLB >= NTestFLBs || op.Errno == 0 {
				return errResult(syscall.EINVAL)
			}
		} else {
			if !failableHandler[d.Callback] || (!isBoolCallback(d.Callback) && op.Errno == 0) {
				return errResult(syscall.EINVAL)
			}
			d.FLB = -1
		}
		s.TestCtl.Directives = append(slices.Clip(s.TestCtl.Directives), d)
		return okResult(0)
	case TestCmdRefuse:
		refuse := maps.Clone(s.TestCtl.Refuse)
		if refuse == nil {
			refuse = map[TestFileID]bool{}
		}
		if op.Nth != 0 {
			refuse[op.TestFile] = true
		} else {
			delete(refuse, op.TestFile)
		}
		s.TestCtl.Refuse = refuse
		return okResult(0)
	case TestCmdProbeRegister:
		return errResult(s.probeRegister(op.Name, op.Nth != 0, op.Callback, op.FLB != 0))
	case TestCmdRegisterFLB:
		if !flbOK {
			return errResult(syscall.EINVAL)
		}
		if !s.Enabled {
			return errResult(syscall.EOPNOTSUPP)
		}
		if m.linked(op.FLB) {
			return errResult(syscall.EEXIST)
		}
		m.Links = append(slices.Clip(m.Links), op.FLB) // states share the old list
		return okResult(0)
	case TestCmdUnregisterFLB:
		// liveupdate_unregister_flb() is void: not linked is a logged
		// warning; the FLB's counts stay as they are.
		if !flbOK {
			return errResult(syscall.EINVAL)
		}
		if s.Enabled {
			var links []int
			for _, l := range m.Links {
				if l != op.FLB {
					links = append(links, l)
				}
			}
			m.Links = links
		}
		return okResult(0)
	case TestCmdFLBIncoming:
		if !flbOK {
			return errResult(syscall.EINVAL)
		}
		obj, e := s.flbGetIncoming(op.FLB)
		if e != 0 {
			return errResult(e)
		}
		s.flbPutIncoming(op.FLB)
		return Result{Ret: 1, Data: cloneBytes(obj)}
	case TestCmdFLBOutgoing:
		if !flbOK {
			return errResult(syscall.EINVAL)
		}
		if !s.Enabled {
			return errResult(syscall.EOPNOTSUPP)
		}
		// The object (Ret 1, Data its state), or none (Ret 0) while
		// no file uses the FLB.
		if st := m.FLBs[op.FLB]; st.HasOut {
			return Result{Ret: 1, Data: cloneBytes(st.OutObj)}
		}
		return okResult(0)
	}
	return errResult(syscall.EINVAL)
}

// openTestFile ports the test device's open: a new test file with an
// empty payload. The device is built in: the file pins no module.
func (s *State) openTestFile(f File) FileID {
	id := s.NextTestFile
	s.NextTestFile++
	s.testFilesW()[id] = &TestFile{Payload: []byte{}}
	f.Kind = KindTest
	f.Test = id
	return s.newFile(f)
}

// testRead and testWrite are the test file's read and write: a payload
// of at most TestPayloadMax bytes at the file position.
func (s *State) testRead(id FileID, f *File, n int) Result {
	data := s.TestFiles[f.Test].Payload
	if f.Pos >= int64(len(data)) || n == 0 {
		return Result{Data: []byte{}}
	}
	end := min(f.Pos+int64(n), int64(len(data)))
	out := cloneBytes(data[f.Pos:end])
	s.wFile(id).Pos = end
	return Result{Ret: int64(len(out)), Data: out}
}

func (s *State) testWrite(id FileID, f *File, p []byte) Result {
	if len(p) == 0 {
		return okResult(0)
	}
	room := int64(TestPayloadMax) - f.Pos
	if room <= 0 {
		return errResult(syscall.ENOSPC)
	}
	// A write past the end zero-fills the gap.
	n := min(int64(len(p)), room)
	// A new TestFile: other states share the old one.
	s.testFilesW()[f.Test] = &TestFile{Payload: writeAt(s.TestFiles[f.Test].Payload, f.Pos, p[:n])}
	s.wFile(id).Pos += n
	return okResult(n)
}

// testLseek is the test file's llseek: SEEK_SET, SEEK_CUR, SEEK_END
// within [0, TestPayloadMax], else EINVAL.
func (s *State) testLseek(id FileID, f *File, off int64, whence int) Result {
	var np int64
	switch whence {
	case SeekSet:
		np = off
	case SeekCur:
		np = f.Pos + off
	case SeekEnd:
		np = int64(len(s.TestFiles[f.Test].Payload)) + off
	default:
		return errResult(syscall.EINVAL)
	}
	if np < 0 || np > TestPayloadMax {
		return errResult(syscall.EINVAL)
	}
	s.wFile(id).Pos = np
	return okResult(np)
}

// testObj is the ObjRef of a file as handler callbacks name it.
func (s *State) testObj(f *File, se *Session, token uint64) ObjRef {
	if f != nil && f.Kind == KindTest {
		return ObjRef{Test: f.Test}
	}
	return ObjRef{Session: se.Name, Token: token}
}

// handlerCanPreserve runs the registered handlers' can_preserve on f in
// registration order (memfd, then the test handler if loaded) and returns
// the compatible of the first that accepts it ("" if none).
func (s *State) handlerCanPreserve(f *File, obj ObjRef) string {
	if s.Enabled && !s.MemfdUnregistered {
		ok := f.Kind == KindMemfd
		s.recordHandler(MemfdCompatible, CbCanPreserve, obj, boolErr(ok))
		if ok {
			return MemfdCompatible
		}
	}
	if !s.testRegistered() {
		return ""
	}
	ok := f.Kind == KindTest && s.TestCtl.fire(CbCanPreserve, false, f.Test, -1) == 0
	s.recordHandler(TestCompatible, CbCanPreserve, obj, boolErr(ok))
	// A failed try_module_get() (lost pins) leaves no handler.
	if ok && s.testModuleGet() {
		return TestCompatible
	}
	return ""
}

func boolErr(ok bool) syscall.Errno {
	if ok {
		return 0
	}
	return syscall.EBUSY
}

// testCallback runs an int (or bool) test-handler callback on file id:
// the directive decides its result.
func (s *State) testCallback(id TestFileID, cb string) syscall.Errno {
	var e syscall.Errno
	switch {
	case cb == CbCanFinish && s.TestCtl.Refuse[id]:
		e = syscall.EBUSY // refused: the directives are not asked
	case cb == CbCanFinish:
		if s.TestCtl.fire(cb, false, id, -1) != 0 {
			e = syscall.EBUSY
		}
	default:
		e = s.TestCtl.fire(cb, false, id, -1)
	}
	s.recordHandler(TestCompatible, cb, ObjRef{Test: id}, e)
	return e
}

// flbPreserveOne ports luo_flb_file_preserve_one(): the first file
// preserves the FLB (module pinned, preserve called), later ones count.
func (s *State) flbPreserveOne(i int) syscall.Errno {
	st := &s.Test.FLBs[i]
	if st.OutCount == 0 {
		if !s.testModuleGet() {
			return syscall.ENODEV
		}
		if s.failAt(FaultFLBPreserve) {
			return syscall.ENOMEM // the FLB is not called
		}
		// Its directive, then the preserved page of its state.
		e := s.TestCtl.fire(FlbPreserve, true, 0, i)
		if e == 0 {
			e = s.khoAllocPreserve()
		}
		s.recordFLB(TestFLBCompatible(i), FlbPreserve, e)
		if e != 0 {
			return e
		}
		st.HasOut, st.OutObj = true, s.TestCtl.flbState(i)
	}
	st.OutCount++
	return 0
}

// flbPutOutgoing ports liveupdate_flb_put_outgoing(): the last file
// unpreserves the FLB. A put of a zero count (an FLB linked after the
// file was preserved) is refcount_t's underflow WARN and changes nothing.
func (s *State) flbPutOutgoing(i int) {
	st := &s.Test.FLBs[i]
	if st.OutCount <= 0 {
		s.Warns++
		return
	}
	st.OutCount--
	if st.OutCount == 0 {
		s.recordFLB(TestFLBCompatible(i), FlbUnpreserve, 0)
		st.HasOut, st.OutObj = false, nil
	}
}

// flbFilePreserve ports luo_flb_file_preserve(): every linked FLB in link
// order; a failure puts back those before it, in reverse.
func (s *State) flbFilePreserve() syscall.Errno {
	links := s.Test.Links
	for k, i := range links {
		if e := s.flbPreserveOne(i); e != 0 {
			for j := k - 1; j >= 0; j-- {
				s.flbPutOutgoing(links[j])
			}
			return e
		}
	}
	return 0
}

// flbFileUnpreserve ports luo_flb_file_unpreserve(): reverse link order.
func (s *State) flbFileUnpreserve() {
	links := s.Test.Links
	for j := len(links) - 1; j >= 0; j-- {
		s.flbPutOutgoing(links[j])
	}
}

// flbRetrieveOne ports luo_flb_retrieve_one(): load the handed-over
// entry (data and count) and call retrieve, once it succeeds; a failure
// leaves the FLB to be retried.
func (s *State) flbRetrieveOne(i int) syscall.Errno {
	st := &s.Test.FLBs[i]
	switch {
	case st.Finished:
		return syscall.ENODATA
	case st.InStatus > 0:
		return 0
	case !s.FLBInActive:
		return syscall.ENODATA
	}
	var ser *FLBSer
	for k := range s.FLBIn {
		if s.FLBIn[k].Name == TestFLBCompatible(i) {
			ser = &s.FLBIn[k]
			break
		}
	}
	if ser == nil {
		return syscall.ENOENT
	}
	st.InCount = ser.Count
	if !s.testModuleGet() {
		return syscall.ENODEV
	}
	if s.failAt(FaultFLBRetrieve) {
		return syscall.ENOMEM // the FLB is not called; retried later
	}
	// The test FLB checks its page, then its directive, then restores
	// the page.
	var e syscall.Errno
	switch {
	case s.TestCtl.FLBConsumed[i]:
		e = syscall.EINVAL
	default:
		if e = s.TestCtl.fire(FlbRetrieve, true, 0, i); e == 0 {
			s.TestCtl.FLBConsumed[i] = true
		}
	}
	s.recordFLB(TestFLBCompatible(i), FlbRetrieve, e)
	if e != 0 {
		return e
	}
	st.HasIn, st.InObj = true, ser.State
	st.InStatus = 1
	return 0
}

// flbGetIncoming ports liveupdate_flb_get_incoming(): retrieve on first
// use, then one more reference (refcount_inc(): from 0 it is a WARN and
// no reference).
func (s *State) flbGetIncoming(i int) ([]byte, syscall.Errno) {
	if !s.Enabled {
		return nil, syscall.EOPNOTSUPP
	}
	st := &s.Test.FLBs[i]
	if !st.HasIn {
		if e := s.flbRetrieveOne(i); e != 0 {
			return nil, e
		}
	}
	if st.InCount <= 0 {
		s.Warns++
	} else {
		st.InCount++
	}
	return st.InObj, 0
}

// FLBGetIncomingHeld is TestCmdFLBIncoming of test FLB i without the put:
// the caller keeps the reference until FLBPutIncomingHeld. A concurrent
// checker splits a query that other calls overlap into these two halves,
// as liveupdate_flb_get_incoming() and _put_incoming() are two calls
// between which others see the reference held.
func FLBGetIncomingHeld(s State, i int) (Result, State) {
	n := s.stepCopy()
	if !n.Test.Loaded {
		return errResult(syscall.ENODEV), n
	}
	if i < 0 || i >= NTestFLBs {
		return errResult(syscall.EINVAL), n
	}
	obj, e := n.flbGetIncoming(i)
	if e != 0 {
		return errResult(e), n
	}
	return Result{Ret: 1, Data: cloneBytes(obj)}, n
}

// FLBPutIncomingHeld drops the reference FLBGetIncomingHeld kept.
func FLBPutIncomingHeld(s State, i int) State {
	n := s.stepCopy()
	n.flbPutIncoming(i)
	return n
}

// flbPutIncoming ports liveupdate_flb_put_incoming(): drop a reference
// (refcount_dec_and_test(): from 0 it is an underflow WARN); the last one
// retrieves the FLB if no one did (a failure is a WARN and leaves it) and
// finishes it.
func (s *State) flbPutIncoming(i int) {
	st := &s.Test.FLBs[i]
	if st.InCount <= 0 {
		s.Warns++
		return
	}
	st.InCount--
	if st.InCount != 0 {
		return
	}
	if st.InStatus <= 0 {
		if e := s.flbRetrieveOne(i); e != 0 {
			s.Warns++
			return
		}
	}
	s.recordFLB(TestFLBCompatible(i), FlbFinish, 0)
	if st.Finished {
		s.Test.LostPins++ // its pin was dropped by the first finish
	}
	st.HasIn, st.InObj = false, nil
	st.Finished = true
}

// flbFileFinish ports luo_flb_file_finish(): reverse link order.
func (s *State) flbFileFinish() {
	links := s.Test.Links
	for j := len(links) - 1; j >= 0; j-- {
		s.flbPutIncoming(links[j])
	}
}

// flbSerialize ports luo_flb_serialize(): every FLB with outgoing files,
// in link order, with its data and count.
func (s *State) flbSerialize() []FLBSer {
	var out []FLBSer
	for _, i := range s.Test.Links {
		if st := s.Test.FLBs[i]; st.OutCount > 0 {
			out = append(out, FLBSer{Name: TestFLBCompatible(i), State: st.OutObj, Count: st.OutCount})
		}
	}
	return out
}

// canonTest renders the test module's state for Canon.
func (s *State) canonTest(c *canon) {
	m := s.Test
	c.str("testmod loaded=").bool(m.Loaded).str(" links=[")
	for i, l := range m.Links {
		if i > 0 {
			c.byte(' ')
		}
		c.int(int64(l))
	}
	c.str("] refs=").int(int64(s.ModuleRefs())).str(" warns=").int(int64(s.Warns))
	for i, st := range m.FLBs {
		c.str(" flb").int(int64(i)).str("{out=").int(int64(st.OutCount)).byte('/').bool(st.HasOut).byte('/').quote(string(st.OutObj))
		c.str(" in=").int(int64(st.InCount)).byte('/').int(int64(st.InStatus)).byte('/').bool(st.HasIn).byte('/').quote(string(st.InObj))
		c.str(" fin=").bool(st.Finished).byte('}')
	}
	c.str(" directives=[")
	for i, d := range s.TestCtl.Directives {
		if i > 0 {
			c.byte(' ')
		}
		c.str(d.Callback).byte('/').bool(d.FLBOp).byte('/').int(int64(d.File)).byte('/').int(int64(d.FLB))
		c.byte(':').int(int64(d.Calls)).byte('/').int(int64(d.Nth)).byte('/').str(ErrnoName(d.Errno))
	}
	refuse := make([]int, 0, len(s.TestCtl.Refuse))
	for id := range s.TestCtl.Refuse {
		refuse = append(refuse, int(id))
	}
	// Sorted as strings, as the rendering always was.
	slices.SortFunc(refuse, func(a, b int) int { return strings.Compare(strconv.Itoa(a), strconv.Itoa(b)) })
	for i, id := range refuse {
		if i > 0 || len(s.TestCtl.Directives) > 0 {
			c.byte(' ')
		}
		c.str("refuse ").int(int64(id))
	}
	c.byte(']')
	// The FLB directions change what later preserves save and retrieves
	// find, so two states that differ only there are different states.
	for i := range NTestFLBs {
		c.str(" flbstate").int(int64(i)).byte('=')
		if st := s.TestCtl.FLBStates[i]; st != nil {
			c.quote(string(st))
		} else {
			c.str("default")
		}
		c.str(" consumed=").bool(s.TestCtl.FLBConsumed[i])
	}
	c.str(" flbin=").bool(s.FLBInActive).str("/[")
	for i, f := range s.FLBIn {
		if i > 0 {
			c.byte(' ')
		}
		c.byte('{').str(f.Name).str(" [")
		for j, v := range f.State {
			if j > 0 {
				c.byte(' ')
			}
			c.int(int64(v))
		}
		c.str("] ").int(int64(f.Count)).byte('}')
	}
	c.str("]\n")
}

// deserializeFiles is the handler half of luo_file_deserialize() at the
// first open of /dev/liveupdate: every handed-over file is bound to the
// registered handler of its compatible. A file whose handler is not
// registered (a test file while the test module is not loaded, a memfd
// while the memfd handler is unregistered) fails it with ENOENT: the
// sessions before keep their files, that session is restored without any
// (its set is unwound, M26), the later ones are not restored, and the
// error is cached (EIO on every open).
func (s *State) deserializeFiles() {
	for i, sid := range s.Incoming {
		se := s.Sessions[sid]
		for _, f := range se.In {
			if !s.handlerRegistered(f.Handler) {
				s.wSession(sid).In = nil
				for _, id := range s.Incoming[i+1:] {
					delete(s.sessionsW(), id)
				}
				s.Incoming = s.Incoming[: i+1 : i+1]
				s.DeserializeErr = syscall.ENOENT
				return
			}
		}
	}
}

// checkTest verifies the test module's invariants: payloads within the
// limit, one open file per
// test id, FLB objects present exactly while counted (outgoing) or
// retrieved and not finished (incoming).
func (s *State) checkTest() error {
	byID := map[TestFileID]int{}
	for _, f := range s.Files {
		if f.Kind == KindTest {
			byID[f.Test]++
		}
	}
	for id, n := range byID {
		if n != 1 {
			return fmt.Errorf("test id %d on %d open files", id, n)
		}
	}
	if len(byID) != len(s.TestFiles) {
		return fmt.Errorf("%d test payloads for %d open test files", len(s.TestFiles), len(byID))
	}
	for id, tf := range s.TestFiles {
		if len(tf.Payload) > TestPayloadMax {
			return fmt.Errorf("test file %d payload of %d bytes", id, len(tf.Payload))
		}
	}
	for i, st := range s.Test.FLBs {
		if st.OutCount < 0 {
			return fmt.Errorf("flb%d outgoing count %d", i, st.OutCount)
		}
		if st.HasOut != (st.OutCount > 0) {
			return fmt.Errorf("flb%d outgoing object %v with count %d", i, st.HasOut, st.OutCount)
		}
		if st.HasIn != (st.InStatus > 0 && !st.Finished) {
			return fmt.Errorf("flb%d incoming object %v status %d finished %v", i, st.HasIn, st.InStatus, st.Finished)
		}
	}
	return nil
}

// probeRegister predicts a registration by the loaded test module of a
// file handler (or, if flb, an FLB: of its handler, or of one never
// registered if unregistered) named compat and lacking the op missing
// ("" none), undone at once if it succeeds. In the checks' order:
// EOPNOTSUPP with LUO disabled; EINVAL for a handler without one of its
// five required ops (freeze, unfreeze and can_finish are optional), and
// with a WARN for an FLB without one of its four; EINVAL for a compatible
// that does not fit its 48-byte field or holds a NUL; then, for an FLB, a
// WARN and EINVAL if its handler is not registered. EEXIST for a handler
// compatible registered already (the memfd handler's, the test module's),
// and for an FLB compatible another listed FLB has (after ENOSPC with
// LUO_FLB_MAX listed). Nothing else changes.
func (s *State) probeRegister(compat string, flb bool, missing string, unregistered bool) syscall.Errno {
	if !s.Enabled {
		return syscall.EOPNOTSUPP
	}
	if slices.Contains(probeRequiredOps(flb), missing) {
		if flb {
			s.Warns++
		}
		return syscall.EINVAL
	}
	if len(compat) > HandlerCompatLength-1 || strings.IndexByte(compat, 0) >= 0 {
		return syscall.EINVAL // HandlerCompatLength is also the FLB field's
	}
	if !flb {
		if compat == MemfdCompatible && !s.MemfdUnregistered || compat == TestCompatible {
			return syscall.EEXIST
		}
		return 0
	}
	if unregistered {
		s.Warns++
		return syscall.EINVAL
	}
	if len(s.Test.Links) >= FLBMax {
		return syscall.ENOSPC
	}
	for _, i := range s.Test.Links {
		if TestFLBCompatible(i) == compat {
			return syscall.EEXIST
		}
	}
	return 0
}

// probeRequiredOps are the ops registration requires: a file handler's
// five, an FLB's four.
func probeRequiredOps(flb bool) []string {
	if flb {
		return []string{"preserve", "unpreserve", "retrieve", "finish"}
	}
	return []string{"preserve", "unpreserve", "retrieve", "finish", "can_preserve"}
}

// ProbeOps are the ops a registration probe may leave out: every op of a
// file handler (or, if flb, of an FLB), required or not.
func ProbeOps(flb bool) []string {
	if flb {
		return probeRequiredOps(true)
	}
	return append(probeRequiredOps(false), "freeze", "unfreeze", "can_finish")
}
