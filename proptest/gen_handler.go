package proptest

import (
	"strings"
	"syscall"

	"luomodel/model"
)

// The actions of LUO's in-kernel face: the test module (init_module,
// delete_module), its files (/dev/liveupdate_test: open, write, read,
// lseek, preserve), its directions (the nth call of a callback fails,
// can_finish refuses), its FLBs (register, unregister, the incoming and
// outgoing objects and the state the next preserve saves), and a live
// update that carries test files. Their weights follow the state, so that
// every callback x outcome cell (callbackRows) is reached in a default
// campaign.

// directErrnos are the errnos a directive injects.
var directErrnos = []syscall.Errno{syscall.ENOMEM, syscall.EIO, syscall.ENOSPC}

// State conditions of the handler actions.

func testLoaded(s *model.State) bool { return s.Test.Loaded }

func haveTestFile(s *model.State) bool { return s.OpenFiles(model.KindTest) > 0 }

// outgoingTests counts the test files preserved in outgoing sessions.
func outgoingTests(s *model.State) int {
	n := 0
	for _, id := range s.Outgoing {
		for _, f := range s.Sessions[id].Out {
			if s.Files[f.File].Kind == model.KindTest {
				n++
			}
		}
	}
	return n
}

// incomingTests returns the handed-over test files not finished yet.
func incomingTests(s *model.State) []model.InFile {
	var in []model.InFile
	for _, id := range s.Incoming {
		for _, f := range s.Sessions[id].In {
			if f.Handler == model.TestCompatible {
				in = append(in, f)
			}
		}
	}
	return in
}

// testModuleNeeded: test files were handed over, /dev/liveupdate was not
// opened yet in this kernel, and the test module is not loaded: opening
// the device now would fail the deserialization (ENOENT, EIO ever after).
// A VMM loads its modules first.
func testModuleNeeded(s *model.State) bool {
	return s.Enabled && !s.Deserialized && !s.Test.Loaded && len(incomingTests(s)) > 0
}

// testFileIDs returns the ids of the test files a directive can address:
// open ones and handed-over ones.
func testFileIDs(s *model.State) []model.TestFileID {
	var ids []model.TestFileID
	for _, fid := range sortedKeys(s.Files) {
		if f := s.Files[fid]; f.Kind == model.KindTest {
			ids = append(ids, f.Test)
		}
	}
	for _, f := range incomingTests(s) {
		if !f.Retrieved {
			ids = append(ids, f.Test)
		}
	}
	return ids
}

// loadTestModule loads the test module in task.
func (c *Ctx) loadTestModule(task model.TaskID) bool {
	c.Do(model.Op{Kind: model.OpInitModule, Task: task, Name: model.TestModuleName})
	return true
}

// direct arms a directive for a callback that can run in the current
// state: mostly one of a test file's (freeze and preserve before a
// kexec, retrieve and can_finish after), or an FLB's; the file is mostly
// a named one, sometimes any.
func direct(c *Ctx) bool {
	s := c.S
	ids := testFileIDs(s)
	var cbs []string
	if outgoingTests(s) > 0 {
		cbs = append(cbs, model.CbFreeze)
	}
	if haveTestFile(s) {
		cbs = append(cbs, model.CbPreserve, model.CbCanPreserve)
	}
	if len(incomingTests(s)) > 0 {
		cbs = append(cbs, model.CbRetrieve, model.CbCanFinish)
	}
	flb := len(s.FLBIn) > 0 || haveTestFile(s)
	if len(cbs) == 0 && !flb {
		return false
	}
	op := model.Op{Kind: model.OpTestCtl, TestCmd: model.TestCmdFail, FLB: -1}
	op.Nth = 1 + c.Src.Intn(3, "nth")
	op.Errno = pick(c.Src, "errno", directErrnos)
	if len(cbs) == 0 || (flb && chance(c.Src, "flb directive", 30)) {
		op.Name = "flb"
		op.Callback = pick(c.Src, "flb callback", model.FailableFLBCallbacks)
		if !chance(c.Src, "any flb", 30) {
			op.FLB = c.Src.Intn(model.NTestFLBs, "flb")
		}
	} else {
		op.Callback = pick(c.Src, "callback", cbs)
		if len(ids) > 0 && !chance(c.Src, "any file", 25) {
			op.TestFile = pick(c.Src, "test file", ids)
		}
		if op.Callback == model.CbCanPreserve || op.Callback == model.CbCanFinish {
			op.Errno = 0 // a bool callback answers false
		}
	}
	if chance(c.Src, "bad directive", 3) {
		op.Nth = 0 // EINVAL
	}
	c.Do(op)
	return true
}

// testLiveUpdateStep is liveUpdateStep with test files: in the old
// kernel load the module, open test files, write and preserve them next
// to a memfd, sometimes arm a freeze failure, kexec; in the new kernel
// load the module before /dev/liveupdate, retrieve, read back, query the
// FLBs, finish (sometimes refused first), close the files and unload.
func testLiveUpdateStep(c *Ctx) bool {
	s := c.S
	live := liveTasks(s)
	if len(live) == 0 || !s.Enabled {
		return false
	}
	if !s.Test.Loaded && (testModuleNeeded(s) || len(s.Incoming) == 0) {
		// The module's init retrieves the handed-over FLBs: sometimes
		// one is directed to fail first.
		if len(s.FLBIn) > 0 && chance(c.Src, "direct flb retrieve", 25) && !directed(s, model.FlbRetrieve) {
			return c.directFLB(model.FlbRetrieve)
		}
		return c.loadTestModule(live[0])
	}
	// The new kernel: retrieve and finish what was handed over.
	for _, task := range live {
		for _, sfd := range fdsOf(s, task, sessionFile(s, true)) {
			se := c.sessionOf(task, sfd)
			for _, f := range se.In {
				if f.Retrieved || f.RetrieveErr != 0 {
					continue
				}
				if f.Handler == model.TestCompatible && chance(c.Src, "direct retrieve", 15) {
					c.Do(model.Op{Kind: model.OpTestCtl, TestCmd: model.TestCmdFail, TestFile: f.Test, FLB: -1,
						Callback: model.CbRetrieve, Nth: 1, Errno: pick(c.Src, "errno", directErrnos)})
					return true
				}
				r := c.Do(model.Op{Kind: model.OpIoctl, Task: task, FD: sfd, Cmd: model.IoctlSessionRetrieveFD, Buf: model.FDArgBuf(0, f.Token)})
				if r.Errno == 0 {
					fd := newFD(r)
					c.Do(model.Op{Kind: model.OpLseek, Task: task, FD: fd, Off: 0, Whence: model.SeekSet})
					c.Do(model.Op{Kind: model.OpRead, Task: task, FD: fd, N: 6000})
				}
				return true
			}
			if len(se.In) == 0 {
				c.Do(model.Op{Kind: model.OpClose, Task: task, FD: sfd})
				return true
			}
			if chance(c.Src, "query flb", 20) {
				c.Do(model.Op{Kind: model.OpTestCtl, TestCmd: model.TestCmdFLBIncoming, FLB: c.Src.Intn(model.NTestFLBs, "flb")})
				return true
			}
			if chance(c.Src, "refuse", 20) {
				var tests []model.InFile
				for _, f := range se.In {
					if f.Handler == model.TestCompatible {
						tests = append(tests, f)
					}
				}
				if len(tests) > 0 {
					c.Do(model.Op{Kind: model.OpTestCtl, TestCmd: model.TestCmdRefuse, TestFile: pick(c.Src, "file", tests).Test, Nth: 1})
					return true
				}
			}
			op := model.Op{Kind: model.OpIoctl, Task: task, FD: sfd, Cmd: model.IoctlSessionFinish, Buf: model.FinishArgBuf(0)}
			if r := c.Do(op); r.Errno == syscall.EBUSY {
				// Take the refusals back for the next try.
				for _, f := range se.In {
					if f.Handler == model.TestCompatible && s.TestCtl.Refuse[f.Test] {
						c.Do(model.Op{Kind: model.OpTestCtl, TestCmd: model.TestCmdRefuse, TestFile: f.Test})
					}
				}
			}
			return true
		}
	}
	devTask, dev, haveDev := deviceHolder(s)
	for _, id := range s.Incoming {
		se := s.Sessions[id]
		if se.Retrieved {
			continue
		}
		if !haveDev {
			return c.openDevice(live[0])
		}
		c.Do(model.Op{Kind: model.OpIoctl, Task: devTask, FD: dev, Cmd: model.IoctlRetrieveSession, Buf: model.SessionArgBuf(se.Name)})
		return true
	}
	// Between kernels' work: the retrieved test files are done with.
	for _, task := range live {
		if fds := fdsOf(s, task, kindIs(model.KindTest)); len(fds) > 0 && len(s.Outgoing) == 0 && chance(c.Src, "close test files", 50) {
			c.Do(model.Op{Kind: model.OpClose, Task: task, FD: fds[0]})
			return true
		}
	}
	if !s.Test.Loaded {
		return c.loadTestModule(live[0])
	}
	// The old kernel: a session with test files (and a memfd).
	if !haveDev {
		return c.openDevice(live[0])
	}
	task, sfd, acted := c.outgoingSessionFD(live, devTask, dev)
	if sfd < 0 {
		return acted
	}
	se := c.sessionOf(task, sfd)
	nt := outgoingTests(s)
	if nt > 0 && (nt >= 3 || !chance(c.Src, "more files", 60)) {
		if chance(c.Src, "direct freeze", 30) && !directed(s, model.CbFreeze) {
			var ids []model.TestFileID
			for _, f := range se.Out {
				if file := s.Files[f.File]; file.Kind == model.KindTest {
					ids = append(ids, file.Test)
				}
			}
			if len(ids) > 0 {
				// Mostly the last: the files frozen before it are
				// rolled back.
				id := ids[len(ids)-1]
				if chance(c.Src, "any frozen file", 30) {
					id = pick(c.Src, "file", ids)
				}
				c.Do(model.Op{Kind: model.OpTestCtl, TestCmd: model.TestCmdFail, TestFile: id, FLB: -1,
					Callback: model.CbFreeze, Nth: 1, Errno: pick(c.Src, "errno", directErrnos)})
				return true
			}
		}
		if chance(c.Src, "query outgoing flb", 15) {
			c.Do(model.Op{Kind: model.OpTestCtl, TestCmd: model.TestCmdFLBOutgoing, FLB: c.Src.Intn(model.NTestFLBs, "flb")})
			return true
		}
		c.Do(model.Op{Kind: model.OpKexec})
		c.Do(model.Op{Kind: model.OpNewTask})
		c.Do(model.Op{Kind: model.OpNewTask})
		return true
	}
	free := fdsOf(s, task, func(f *model.File) bool {
		return f.Kind == model.KindTest && !s.PreservedTest[f.Test]
	})
	if len(free) == 0 {
		c.Do(model.Op{Kind: model.OpOpen, Task: task, Path: model.DevLiveUpdateTest, Flags: model.ORdwr})
		return true
	}
	tfd := free[0]
	f := s.Files[s.Tasks[task].FDs[tfd]]
	if len(s.TestFiles[f.Test].Payload) == 0 {
		c.Do(model.Op{Kind: model.OpWrite, Task: task, FD: tfd, Buf: c.testData()})
		return true
	}
	// Sometimes the preserve, or the first file's FLB preserve, is
	// directed to fail.
	if !directed(s, model.CbPreserve) && !directed(s, model.FlbPreserve) {
		switch n := c.Src.Intn(100, "direct preserve"); {
		case n >= 80 && nt == 0:
			return c.directFLB(model.FlbPreserve)
		case n >= 88:
			c.Do(model.Op{Kind: model.OpTestCtl, TestCmd: model.TestCmdFail, TestFile: f.Test, FLB: -1,
				Callback: model.CbPreserve, Nth: 1, Errno: pick(c.Src, "errno", directErrnos)})
			return true
		}
	}
	c.Do(model.Op{Kind: model.OpIoctl, Task: task, FD: sfd, Cmd: model.IoctlSessionPreserveFD,
		Buf: model.FDArgBuf(int32(tfd), c.freshToken(se))})
	return true
}

// testData draws a test payload: short, or up to the limit.
func (c *Ctx) testData() []byte {
	n := pick(c.Src, "test len", []int{5, 1, 64, model.TestPayloadMax, model.TestPayloadMax + 10})
	fill := byte('A' + c.Src.Intn(26, "byte"))
	b := make([]byte, n)
	for i := range b {
		b[i] = fill + byte(i%5)
	}
	return b
}

// testFileOp builds a syscall on a test file's fd (sometimes another).
func (c *Ctx) testFileOp(kind model.OpKind) (model.Op, bool) {
	return c.fileOp(kind, kindIs(model.KindTest))
}

// HandlerActions returns the actions of the in-kernel face.
func HandlerActions() []Action {
	return []Action{
		{"test_live_update", always(12), testLiveUpdateStep},
		{"init_module", func(s *model.State) int {
			switch {
			case testModuleNeeded(s):
				return 200
			case s.Test.Loaded:
				return 1 // EEXIST
			}
			return 20
		}, func(c *Ctx) bool {
			task, ok := c.task(nil)
			if !ok {
				return false
			}
			op := model.Op{Kind: model.OpInitModule, Task: task, Name: model.TestModuleName}
			if chance(c.Src, "unknown module", 3) {
				op.Name = "no_such_module"
			}
			c.Do(op)
			return true
		}},
		{"delete_module", when(1, testLoaded), func(c *Ctx) bool {
			task, ok := c.task(nil)
			if !ok {
				return false
			}
			c.Do(model.Op{Kind: model.OpDeleteModule, Task: task, Name: model.TestModuleName})
			return true
		}},
		{"open_test", when(6, testLoaded), single(func(c *Ctx) (model.Op, bool) {
			task, ok := c.task(nil)
			op := model.Op{Kind: model.OpOpen, Task: task, Path: model.DevLiveUpdateTest}
			op.Flags = pick(c.Src, "flags", []int{model.ORdwr, model.ORdwr | model.OCloexec, model.ORdonly})
			return op, ok
		})},
		{"write_test", when(4, haveTestFile), single(func(c *Ctx) (model.Op, bool) {
			op, ok := c.testFileOp(model.OpWrite)
			op.Buf = c.testData()
			return op, ok
		})},
		{"read_test", when(2, haveTestFile), single(func(c *Ctx) (model.Op, bool) {
			op, ok := c.testFileOp(model.OpRead)
			op.N = pick(c.Src, "read len", []int{64, 0, 8, 5000})
			return op, ok
		})},
		{"lseek_test", when(2, haveTestFile), single(func(c *Ctx) (model.Op, bool) {
			op, ok := c.testFileOp(model.OpLseek)
			op.Off = pick(c.Src, "offset", []int64{0, 3, -1, model.TestPayloadMax, model.TestPayloadMax + 1})
			op.Whence = pick(c.Src, "whence", []int{model.SeekSet, model.SeekCur, model.SeekEnd})
			return op, ok
		})},
		{"preserve_test", func(s *model.State) int {
			if haveOutgoingFile(s) && haveTestFile(s) {
				return 60
			}
			return 0
		}, single(buildPreserveTest)},
		{"direct", func(s *model.State) int {
			if haveTestFile(s) || len(incomingTests(s)) > 0 || len(s.FLBIn) > 0 {
				return 40
			}
			return 1
		}, direct},
		{"refuse_finish", func(s *model.State) int {
			if len(incomingTests(s)) > 0 {
				return 20
			}
			return 0
		}, func(c *Ctx) bool {
			in := incomingTests(c.S)
			op := model.Op{Kind: model.OpTestCtl, TestCmd: model.TestCmdRefuse, TestFile: pick(c.Src, "file", in).Test}
			if !c.S.TestCtl.Refuse[op.TestFile] {
				op.Nth = 1
			}
			c.Do(op)
			return true
		}},
		{"flb_query", when(3, testLoaded), func(c *Ctx) bool {
			op := model.Op{Kind: model.OpTestCtl, TestCmd: model.TestCmdFLBOutgoing, FLB: c.Src.Intn(model.NTestFLBs, "flb")}
			if len(c.S.FLBIn) > 0 && !chance(c.Src, "outgoing", 40) {
				op.TestCmd = model.TestCmdFLBIncoming
			}
			c.Do(op)
			return true
		}},
		{"flb_register", when(1, testLoaded), func(c *Ctx) bool {
			op := model.Op{Kind: model.OpTestCtl, TestCmd: model.TestCmdRegisterFLB, FLB: c.Src.Intn(model.NTestFLBs, "flb")}
			// Unlink only while no preserved file counts on the FLBs:
			// under one, the FLB would stay preserved for good (its
			// state page leaked), as upstream.
			if chance(c.Src, "unregister", 50) && outgoingTests(c.S) == 0 {
				op.TestCmd = model.TestCmdUnregisterFLB
			}
			c.Do(op)
			return true
		}},
		// What a module may pass to the registration API: compatibles
		// at and past the 48-byte field, with a NUL, or in use; ops
		// left out; an FLB's handler not registered.
		{"probe_register", when(1, testLoaded), func(c *Ctx) bool {
			compat := pick(c.Src, "compatible", []string{
				"probe-v1", "", strings.Repeat("p", model.HandlerCompatLength-1),
				strings.Repeat("p", model.HandlerCompatLength), strings.Repeat("p", model.HandlerCompatLength+9),
				"probe\x00v1", model.MemfdCompatible, model.TestCompatible, model.TestFLBCompatible(0), model.TestFLBCompatible(1),
			})
			op := model.Op{Kind: model.OpTestCtl, TestCmd: model.TestCmdProbeRegister, Name: compat, Nth: c.Src.Intn(2, "probe flb")}
			// Now and then without one of its ops (a required one, or
			// an optional one), or an FLB of a handler never registered.
			if c.Src.Intn(3, "probe ops") == 0 {
				op.Callback = pick(c.Src, "probe missing op", model.ProbeOps(op.Nth != 0))
			}
			if op.Nth != 0 && c.Src.Intn(4, "probe unregistered handler") == 0 {
				op.FLB = 1
			}
			c.Do(op)
			return true
		}},
		{"flb_state", rare(2), func(c *Ctx) bool {
			st := pick(c.Src, "state", []string{"", "s", "state of the FLB"})
			c.Do(model.Op{Kind: model.OpTestCtl, TestCmd: model.TestCmdSetFLBState, FLB: c.Src.Intn(model.NTestFLBs, "flb"), Buf: []byte(st)})
			return true
		}},
	}
}

// haveOutgoingTest: a test file is preserved in an outgoing session.
func haveOutgoingTest(s *model.State) bool { return outgoingTests(s) > 0 }

// flbHandedOver: the previous kernel handed test FLBs over.
func flbHandedOver(s *model.State) bool { return len(s.FLBIn) > 0 }

// buildPreserveTest is PRESERVE_FD of a test file not preserved yet.
func buildPreserveTest(c *Ctx) (model.Op, bool) {
	op, ok := c.fileOp(model.OpIoctl, sessionFile(c.S, false))
	if !ok {
		return op, false
	}
	op.Cmd = model.IoctlSessionPreserveFD
	target := c.fd(op.Task, func(f *model.File) bool { return f.Kind == model.KindTest && !c.S.PreservedTest[f.Test] })
	op.Buf = model.FDArgBuf(int32(target), c.preserveToken(c.sessionOf(op.Task, op.FD)))
	return op, true
}

// buildFLBRetrieve is an operation that retrieves the handed-over FLBs:
// loading the module, or querying an incoming object.
func buildFLBRetrieve(c *Ctx) (model.Op, bool) {
	if !c.S.Test.Loaded {
		task, ok := c.task(nil)
		return model.Op{Kind: model.OpInitModule, Task: task, Name: model.TestModuleName}, ok
	}
	return model.Op{Kind: model.OpTestCtl, TestCmd: model.TestCmdFLBIncoming, FLB: c.Src.Intn(model.NTestFLBs, "flb")}, true
}

// strandedFiles says whether a session stranded by a refused finish
// still holds files (they live until the next kexec).
func strandedFiles(s *model.State) bool {
	for _, id := range s.Incoming {
		if se := s.Sessions[id]; se.Stranded && len(se.In) > 0 {
			return true
		}
	}
	return false
}

// directed says whether a directive for callback cb is armed.
func directed(s *model.State, cb string) bool {
	for _, d := range s.TestCtl.Directives {
		if d.Callback == cb {
			return true
		}
	}
	return false
}

// directFLB arms a failure of an FLB callback (a drawn FLB or any).
func (c *Ctx) directFLB(cb string) bool {
	flb := -1
	if !chance(c.Src, "any flb", 30) {
		flb = c.Src.Intn(model.NTestFLBs, "flb")
	}
	c.Do(model.Op{Kind: model.OpTestCtl, TestCmd: model.TestCmdFail, Name: "flb", FLB: flb, Callback: cb,
		Nth: 1, Errno: pick(c.Src, "errno", directErrnos)})
	return true
}
