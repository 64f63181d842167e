// Package luotest is the handler conformance kit: it checks a Live Update
// Orchestrator file handler, written in Go against the port's handler
// interface (liveupdate.FileHandler, liveupdate.FileOps), against LUO's
// contract, in one test function.
//
// # How to use it
//
// Describe the handler and its files with a Handler and call Check from a
// test:
//
//	func TestMyHandler(t *testing.T) {
//		luotest.Check(t, luotest.Handler{
//			Install:  func(k *kernel.Kernel, t *kernel.Task) (*liveupdate.FileHandler, error) { ... },
//			NewFile:  func(t *kernel.Task, data []byte) (int, error) { ... },
//			ReadFile: func(t *kernel.Task, fd int) ([]byte, error) { ... },
//		})
//	}
//
// Install makes the handler available in a freshly booted kernel (register
// it, or load the module that does) and returns it, registered; NewFile
// creates a file the handler preserves holding data; ReadFile reads a
// file's contents back from its start. The kit names a file in the next
// kernel by its serialized data, so a handler must give its files
// different serialized data (a real one stores where it preserved them).
//
// # What it checks
//
// Check runs a campaign of random live updates (rapid; -rapid.checks sets
// how many): files of the handler, with random contents, are preserved in
// one or two sessions next to a memfd (and maybe in a session closed
// before the kexec, which unpreserves them), the machine kexecs, and the next
// kernel retrieves, reads and finishes them. The kit wraps the handler's
// callbacks to direct one of them to fail at a drawn call: preserve or
// freeze with an errno (the handler is not called), retrieve with an errno
// after the handler built the file (the kit drops it, as LUO's
// handler_retrieve fault site does), or can_finish answering false; only
// the optional callbacks the handler has are wrapped and directed, so LUO
// calls it as it would without the kit.
//
// Every syscall runs in lockstep with the kit's model of LUO as a handler
// sees it (contract.go): LUO records every call it makes into the handler
// (liveupdate.CallRecorder: callback, session and token, result), and
// after each syscall the model predicts those calls, in order, taking the
// handler's results as inputs (what preserve, freeze, retrieve and
// can_finish returned decides what LUO must call next and what the
// syscall must return). A call too many, too few, out of order or on
// another file fails the check with both sequences. So it requires, as
// LUO's contract says:
//
//   - PRESERVE_FD asks can_preserve, get_id (if the handler has one) and
//     preserve, and fails with the errno preserve returned, taking the
//     file out of the map again (get_id) and never unpreserving it;
//   - closing an outgoing session unpreserves its files, newest first,
//     each taken out of the map (get_id);
//   - a reboot freezes every file, session by session, in preservation
//     order; one whose freeze fails returns that errno, unfreezes exactly
//     the files frozen before it (its session's, then the earlier
//     sessions', last first), and the next kexec succeeds;
//   - RETRIEVE_FD calls retrieve once: its errno is returned again without
//     a call, a retrieved file is returned again without one;
//   - SESSION_FINISH asks can_finish of every file in order; one no is
//     EBUSY with no file finished; then every file is finished once,
//     newest first;
//
// and of the handler:
//
//   - can_preserve accepts the files NewFile makes;
//   - get_id names a file the same while LUO holds it;
//   - a file retrieved in the next kernel reads back exactly what it held
//     at the kexec;
//   - the kernel files no report (WARN, lockdep, use-after-free, KASAN),
//     no file outlives the tasks, and every block of preserved memory is
//     handed over, restored or freed (the ledger of proptest/account): an
//     unpreserve or a finish that does not free what the handler
//     preserved leaks.
//
// # What it does not check
//
// Each check is one live update (one kexec), its syscalls in sequence: races
// between the handler's callbacks and other syscalls are the concurrent
// campaign's (proptest/concurrent). The FLB calls LUO makes for the
// handler's FLBs are recorded but not predicted here; `luo check` predicts
// and compares them for the test module's FLBs.
//
// The memfd handler and the test module's handler both pass it (see the
// package tests); the package example shows a minimal handler.
package luotest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"

	"pgregory.net/rapid"

	"luomodel/kernel"
	"luomodel/kernel/bug"
	"luomodel/kernel/liveupdate"
	"luomodel/kernel/vfs"
	"luomodel/machine"
	"luomodel/model"
	"luomodel/proptest/account"
	lu "luomodel/userspace/libliveupdate"
)

// Handler is a file handler under test and how to make its files.
type Handler struct {
	// Install makes the handler available in k, using task t if it needs
	// a syscall (e.g. init_module), and returns it registered. It is
	// called in every kernel the campaign boots or kexecs into, before
	// /dev/liveupdate is opened.
	Install func(k *kernel.Kernel, t *kernel.Task) (*liveupdate.FileHandler, error)
	// NewFile creates in t a file the handler preserves, holding data,
	// and returns its fd.
	NewFile func(t *kernel.Task, data []byte) (int, error)
	// ReadFile returns the contents of the file at fd of t, from its
	// start.
	ReadFile func(t *kernel.Task, fd int) ([]byte, error)
	// MaxData bounds the contents NewFile is given (0: 256 bytes; -1:
	// the files hold no data, NewFile is given none).
	MaxData int
}

// Check runs the conformance campaign on h (see the package doc).
func Check(t *testing.T, h Handler) {
	t.Helper()
	rapid.Check(t, func(rt *rapid.T) { newRun(rt, h).live() })
}

// errnos are those a directed failure returns.
var errnos = []syscall.Errno{syscall.ENOMEM, syscall.EIO, syscall.ENOSPC}

// wrapper interposes on a registered handler's callbacks to fail the
// directed one (LUO's calls are recorded by LUO itself, see contract.go).
type wrapper struct {
	mu sync.Mutex
	// byFile and byData name a file by its struct file (before preserve)
	// or its serialized data (after).
	byFile map[*vfs.File]string
	byData map[uint64]string
	// fail is the directed callback, its remaining count and errno.
	failCb   string
	failLeft int
	failErr  syscall.Errno
	// pending names the file the next preserve is about; known are the
	// campaign's files of the handler.
	pending string
	known   map[string]bool
}

// expect names the file the next preserve is about ("" for one that is
// not the campaign's).
func (w *wrapper) expect(key string) {
	w.mu.Lock()
	w.pending = key
	if key != "" {
		w.known[key] = true
	}
	w.mu.Unlock()
}

// direct makes the nth call of cb on the campaign's files fail with e.
func (w *wrapper) direct(cb string, nth int, e syscall.Errno) {
	w.mu.Lock()
	w.failCb, w.failLeft, w.failErr = cb, nth, e
	w.mu.Unlock()
}

// fire says whether this call of cb on the file named key is the
// directed failure (only the campaign's files count).
func (w *wrapper) fire(cb, key string) syscall.Errno {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failCb != cb || w.failLeft == 0 || !w.known[key] {
		return 0
	}
	w.failLeft--
	if w.failLeft > 0 {
		return 0
	}
	return w.failErr
}

// key names the file a callback is about: by its struct file while it
// has one, else (in the next kernel, before retrieve) by its serialized
// data, which therefore must differ between a handler's files.
func (w *wrapper) key(a *liveupdate.FileOpArgs) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if k, ok := w.byFile[a.File]; ok && a.File != nil {
		return k
	}
	if k, ok := w.byData[a.SerializedData]; ok {
		return k
	}
	return "?"
}

// wrap interposes w on fh's ops (in place: LUO holds fh).
func (w *wrapper) wrap(fh *liveupdate.FileHandler) {
	ops := *fh.Ops
	o := fh.Ops
	o.Preserve = func(a *liveupdate.FileOpArgs) error {
		w.mu.Lock()
		k := w.pending
		w.byFile[a.File] = k
		w.mu.Unlock()
		if e := w.fire("preserve", k); e != 0 {
			return e
		}
		err := ops.Preserve(a)
		if err == nil {
			w.mu.Lock()
			w.byData[a.SerializedData] = k
			w.mu.Unlock()
		}
		return err
	}
	// Only the ops the handler has are wrapped: LUO's calls depend on
	// which it has (no unfreeze, no rollback calls).
	if ops.Freeze != nil {
		o.Freeze = func(a *liveupdate.FileOpArgs) error {
			k := w.key(a)
			if e := w.fire("freeze", k); e != 0 {
				return e
			}
			err := ops.Freeze(a)
			if err == nil {
				w.mu.Lock()
				w.byData[a.SerializedData] = k
				w.mu.Unlock()
			}
			return err
		}
	}
	// A directed retrieve fails at the handler's last step, as LUO's
	// handler_retrieve fault site does: the handler restored the file
	// and drops it again (which releases what it restored).
	o.Retrieve = func(a *liveupdate.FileOpArgs) error {
		k := w.key(a)
		err := ops.Retrieve(a)
		if err == nil {
			if e := w.fire("retrieve", k); e != 0 {
				a.File.Put()
				a.File = nil
				err = e
			}
		}
		return err
	}
	if ops.CanFinish != nil {
		o.CanFinish = func(a *liveupdate.FileOpArgs) bool {
			k := w.key(a)
			return w.fire("can_finish", k) == 0 && ops.CanFinish(a)
		}
	}
}

// run is one check: a machine, the handler, the files preserved.
type run struct {
	t    *rapid.T
	h    Handler
	m    *machine.Machine
	w    *wrapper
	fh   *liveupdate.FileHandler // the running kernel's handler under test
	rec  *liveupdate.CallLog
	mu   sync.Mutex
	reps []*bug.Report
}

func newRun(t *rapid.T, h Handler) *run {
	r := &run{t: t, h: h, rec: &liveupdate.CallLog{}}
	m, err := machine.New(machine.Config{LiveUpdate: true, Calls: r.rec, Report: func(rep *bug.Report) {
		r.mu.Lock()
		r.reps = append(r.reps, rep)
		r.mu.Unlock()
	}})
	if err != nil {
		t.Fatalf("boot: %v", err)
	}
	r.m = m
	return r
}

// install installs and wraps the handler in the running kernel.
func (r *run) install(task *kernel.Task) {
	fh, err := r.h.Install(r.m.Kernel(), task)
	if err != nil {
		r.t.Fatalf("install: %v", err)
	}
	if fh == nil {
		r.t.Fatalf("install returned no handler")
	}
	w := &wrapper{byFile: map[*vfs.File]string{}, byData: map[uint64]string{}, known: map[string]bool{}}
	if r.w != nil {
		// Serialized data crosses the kexec.
		w.byData, w.known = r.w.byData, r.w.known
	}
	w.wrap(fh)
	r.w, r.fh = w, fh
}

func (r *run) noReports(when string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reps) > 0 {
		r.t.Fatalf("%s: the kernel filed a report:\n%s", when, r.reps[0])
	}
}

// step checks one syscall in lockstep with the contract: LUO's calls into
// the handler during it (recorded by LUO) against predict's, which reads
// the handler's results from them, and the syscall's result (got)
// against the errno predict returns.
func (r *run) step(m *contract, what string, got error, predict func(*cursor) syscall.Errno) {
	r.t.Helper()
	c := &cursor{obs: observed(r.rec.Take(), r.fh, m.known)}
	want := predict(c)
	if err := c.end(); err != nil {
		r.t.Fatalf("%s: LUO's calls into the handler break the contract: %v", what, err)
	}
	if e := errnoFrom(got); e != want {
		r.t.Fatalf("%s returned %v (%v); with the handler's results LUO must return %s", what, model.ErrnoName(e), got, model.ErrnoName(want))
	}
}

// noCalls is the prediction of a syscall that calls no handler.
func noCalls(*cursor) syscall.Errno { return 0 }

// errnoFrom is err's errno (0 for nil; EIO stands for one that is none).
func errnoFrom(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return syscall.EIO
}

// live runs one live update of the handler's files with one directed
// failure, every syscall in lockstep with the contract.
func (r *run) live() {
	t := r.t
	m := newContract()
	task := r.m.Kernel().NewTask()
	r.install(task)
	m.fh = r.fh
	dev, err := lu.OpenDevice(task)
	r.step(m, "open(/dev/liveupdate)", err, noCalls)
	max := r.h.MaxData
	switch {
	case max == 0:
		max = 256
	case max < 0:
		max = 0
	}
	// A directed failure of a callback the handler has.
	fails := []string{"", "preserve", "retrieve"}
	if r.fh.Ops.Freeze != nil {
		fails = append(fails, "freeze")
	}
	if r.fh.Ops.CanFinish != nil {
		fails = append(fails, "can_finish")
	}
	fail := rapid.SampledFrom(fails).Draw(t, "fail")
	nth := rapid.IntRange(1, 3).Draw(t, "nth")
	errno := rapid.SampledFrom(errnos).Draw(t, "errno")
	nsess := rapid.IntRange(1, 2).Draw(t, "sessions")
	// A session closed before the kexec (its files unpreserved) may
	// come at a drawn place among them.
	var names []string
	for si := range nsess {
		names = append(names, fmt.Sprintf("s%d", si))
	}
	if at := rapid.IntRange(-1, nsess).Draw(t, "aborted"); at >= 0 {
		names = slices.Insert(names, at, "aborted")
	}
	var files []*cfile
	for _, name := range names {
		s, err := lu.CreateSession(task, dev, name)
		r.step(m, "CREATE_SESSION "+name, err, noCalls)
		// A memfd next to the handler's files (not the campaign's: its
		// calls are not compared, even when the handler is memfd's).
		r.w.expect("")
		err = lu.CreateAndPreserveMemfd(task, s, 1000, "memfd")
		r.step(m, "PRESERVE_FD of a memfd", err, noCalls)
		for fi := range rapid.IntRange(1, 3).Draw(t, "files") {
			data := rapid.SliceOfN(rapid.Byte(), 0, max).Draw(t, "data")
			f := &cfile{sess: name, tok: uint64(fi), key: fileKey(name, uint64(fi)), data: data}
			fd, err := r.h.NewFile(task, data)
			if err != nil {
				t.Fatalf("NewFile: %v", err)
			}
			r.rec.Take() // NewFile's syscalls are the handler author's
			what := fmt.Sprintf("PRESERVE_FD %s", f.key)
			if fail == "preserve" {
				r.w.direct("preserve", 1, errno)
				r.w.expect(f.key)
				m.known[f.key] = true
				err := lu.PreserveFD(task, s, fd, f.tok)
				r.step(m, what+" (preserve directed to fail)", err, func(c *cursor) syscall.Errno { return m.preserve(c, f) })
			}
			r.w.expect(f.key)
			m.known[f.key] = true
			err = lu.PreserveFD(task, s, fd, f.tok)
			r.step(m, what, err, func(c *cursor) syscall.Errno { return m.preserve(c, f) })
			err = task.Close(fd)
			r.step(m, "close", err, noCalls)
			files = append(files, f)
		}
		if name == "aborted" {
			err := task.Close(s)
			r.step(m, "close of outgoing session "+name, err, func(c *cursor) syscall.Errno { return m.abort(c, name) })
			files = slices.DeleteFunc(files, func(f *cfile) bool { return f.sess == name })
		}
	}
	r.noReports("preserve")

	// The reboot: a directed freeze failure rolls back, and the next
	// reboot goes through.
	if fail == "freeze" {
		r.w.direct("freeze", min(nth, len(files)), errno)
		err := r.m.Kexec()
		r.step(m, "reboot (a freeze directed to fail)", err, m.kexec)
		r.noReports("failed kexec")
	}
	err = r.m.Kexec()
	r.step(m, "reboot", err, m.kexec)

	// The next kernel.
	t2 := r.m.Kernel().NewTask()
	r.install(t2)
	m.booted(r.fh)
	dev2, err := lu.OpenDevice(t2)
	r.step(m, "open(/dev/liveupdate) after the kexec", err, noCalls)
	for si := range nsess {
		name := fmt.Sprintf("s%d", si)
		s, err := lu.RetrieveSession(t2, dev2, name)
		r.step(m, "RETRIEVE_SESSION "+name, err, noCalls)
		var mine []*cfile
		for _, f := range files {
			if f.sess == name {
				mine = append(mine, f)
			}
		}
		for i, f := range mine {
			what := "RETRIEVE_FD " + f.key
			if fail == "retrieve" && i == 0 {
				r.w.direct("retrieve", 1, errno)
				for range 2 {
					_, err := lu.RetrieveFD(t2, s, f.tok)
					r.step(m, what+" (retrieve directed to fail)", err, func(c *cursor) syscall.Errno { return m.retrieve(c, f) })
				}
				continue
			}
			fd, err := lu.RetrieveFD(t2, s, f.tok)
			r.step(m, what, err, func(c *cursor) syscall.Errno { return m.retrieve(c, f) })
			got, err := r.h.ReadFile(t2, fd)
			if err != nil {
				t.Fatalf("ReadFile %s: %v", f.key, err)
			}
			r.rec.Take() // ReadFile's syscalls are the handler author's
			if !bytes.Equal(got, f.data) {
				t.Fatalf("%s read back %q after the kexec, held %q: retrieve must rebuild the file byte for byte", f.key, got, f.data)
			}
			err = t2.Close(fd)
			r.step(m, "close", err, noCalls)
		}
		if fail == "can_finish" && len(mine) > 0 {
			r.w.direct("can_finish", min(nth, len(mine)), syscall.EBUSY)
			err := lu.FinishSession(t2, s)
			r.step(m, "SESSION_FINISH "+name+" (a can_finish directed to refuse)", err, func(c *cursor) syscall.Errno { return m.finish(c, name) })
		}
		err = lu.FinishSession(t2, s)
		r.step(m, "SESSION_FINISH "+name, err, func(c *cursor) syscall.Errno { return m.finish(c, name) })
		err = t2.Close(s)
		r.step(m, "close of session "+name, err, noCalls)
	}
	t2.Exit()
	task.Exit()
	r.step(m, "exit", nil, noCalls)
	r.noReports("teardown")
	if live := r.m.Kernel().VFS().LiveFiles(); len(live) > 0 {
		t.Fatalf("%d file(s) alive after every task exited; first: %v", len(live), live[0])
	}
	if led := account.Take(r.m); led.Err() != nil {
		t.Fatalf("every block of preserved memory must end handed over, restored or freed (unpreserve frees what preserve kept, finish what no retrieve restored): %v\n\nledger:\n%s", led.Err(), led)
	}
}
