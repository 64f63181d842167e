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
// one or two sessions next to a memfd, the machine kexecs, and the next
// kernel retrieves, reads and finishes them. The kit wraps the handler's
// callbacks: it records every call LUO makes (callback, file) and directs
// one of them to fail at a drawn call: preserve or freeze with an errno
// (the handler is not called), retrieve with an errno after the handler
// built the file (the kit drops it, as LUO's handler_retrieve fault site
// does), or can_finish answering false. It requires, as LUO's contract
// says:
//
//   - PRESERVE_FD fails with the errno preserve returned, and LUO never
//     unpreserves a file whose preserve failed;
//   - a reboot whose freeze fails returns that errno, unfreezes exactly
//     the files frozen before the failed one (in each session in
//     preservation order, earlier sessions after), and the machine keeps
//     running: the next kexec succeeds;
//   - every handler callback of a file comes in an order its life allows
//     (can_preserve before preserve, freeze only between preserve and the
//     kexec, retrieve and finish only in the next kernel, finish once);
//   - a file retrieved in the next kernel reads back exactly what it held
//     at the kexec; a failed retrieve is remembered (the next RETRIEVE_FD
//     returns the same errno without calling retrieve);
//   - a refused can_finish makes SESSION_FINISH fail with EBUSY with no
//     file finished, and a later finish finishes every file once, newest
//     first;
//   - the kernel files no report (WARN, lockdep, use-after-free, KASAN),
//     no file outlives the tasks, and every block of preserved memory is
//     handed over, restored or freed (the ledger of proptest/account).
//
// The memfd handler and the test module's handler both pass it (see the
// package tests); the package example shows a minimal handler.
package luotest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
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

// call is one callback the kit saw LUO make.
type call struct {
	cb   string
	file string // the file's key: its token in its session, "s/tok"
	res  syscall.Errno
}

func (c call) String() string {
	if c.res != 0 {
		return fmt.Sprintf("%s(%s) = -%s", c.cb, c.file, model.ErrnoName(c.res))
	}
	return fmt.Sprintf("%s(%s)", c.cb, c.file)
}

// wrapper interposes on a registered handler's callbacks: it records them
// and fails the directed one.
type wrapper struct {
	mu sync.Mutex
	// keyOf names a file by its serialized data (after preserve) or its
	// struct file (before).
	byFile map[*vfs.File]string
	byData map[uint64]string
	calls  []call
	// fail is the directed callback, its remaining count and errno.
	failCb   string
	failLeft int
	failErr  syscall.Errno
	// pending names the file the next preserve is about; known are the
	// campaign's files of the handler (other files' calls, e.g. of a
	// memfd next to them when the handler is memfd's, are not kept).
	pending string
	known   map[string]bool
}

func (w *wrapper) record(cb, file string, res syscall.Errno) {
	w.mu.Lock()
	if w.known[file] {
		w.calls = append(w.calls, call{cb, file, res})
	}
	w.mu.Unlock()
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

func (w *wrapper) take() []call {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.calls
	w.calls = nil
	return c
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
			w.record("preserve", k, e)
			return e
		}
		err := ops.Preserve(a)
		w.record("preserve", k, errnoOf(err))
		if err == nil {
			w.mu.Lock()
			w.byData[a.SerializedData] = k
			w.mu.Unlock()
		}
		return err
	}
	o.Unpreserve = func(a *liveupdate.FileOpArgs) {
		w.record("unpreserve", w.key(a), 0)
		ops.Unpreserve(a)
	}
	// freeze and unfreeze are wrapped whether the handler has them or
	// not: a directed freeze failure needs a call to fail, and LUO's
	// rollback must reach every file it froze.
	o.Freeze = func(a *liveupdate.FileOpArgs) error {
		k := w.key(a)
		if e := w.fire("freeze", k); e != 0 {
			w.record("freeze", k, e)
			return e
		}
		var err error
		if ops.Freeze != nil {
			err = ops.Freeze(a)
		}
		w.record("freeze", k, errnoOf(err))
		if err == nil {
			w.mu.Lock()
			w.byData[a.SerializedData] = k
			w.mu.Unlock()
		}
		return err
	}
	o.Unfreeze = func(a *liveupdate.FileOpArgs) {
		w.record("unfreeze", w.key(a), 0)
		if ops.Unfreeze != nil {
			ops.Unfreeze(a)
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
		w.record("retrieve", k, errnoOf(err))
		return err
	}
	o.CanFinish = func(a *liveupdate.FileOpArgs) bool {
		k := w.key(a)
		ok := w.fire("can_finish", k) == 0
		if ok && ops.CanFinish != nil {
			ok = ops.CanFinish(a)
		}
		res := syscall.Errno(0)
		if !ok {
			res = syscall.EBUSY
		}
		w.record("can_finish", k, res)
		return ok
	}
	o.Finish = func(a *liveupdate.FileOpArgs) {
		w.record("finish", w.key(a), 0)
		ops.Finish(a)
	}
}

func errnoOf(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	if e, ok := err.(syscall.Errno); ok {
		return e
	}
	return syscall.EIO
}

// run is one check: a machine, the handler, the files preserved.
type run struct {
	t    *rapid.T
	h    Handler
	m    *machine.Machine
	w    *wrapper
	mu   sync.Mutex
	reps []*bug.Report
}

func newRun(t *rapid.T, h Handler) *run {
	r := &run{t: t, h: h}
	m, err := machine.New(machine.Config{LiveUpdate: true, Report: func(rep *bug.Report) {
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
	w := &wrapper{byFile: map[*vfs.File]string{}, byData: map[uint64]string{}, known: map[string]bool{}}
	if r.w != nil {
		// Serialized data crosses the kexec.
		w.byData, w.known = r.w.byData, r.w.known
	}
	w.wrap(fh)
	r.w = w
}

func (r *run) noReports(when string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reps) > 0 {
		r.t.Fatalf("%s: the kernel filed a report:\n%s", when, r.reps[0])
	}
}

// file is one file of the handler preserved by the campaign.
type file struct {
	sess string
	tok  uint64
	data []byte
}

func (f file) key() string { return fmt.Sprintf("%s/%d", f.sess, f.tok) }

// live runs one live update of the handler's files with one directed
// failure.
func (r *run) live() {
	t := r.t
	task := r.m.Kernel().NewTask()
	r.install(task)
	dev, err := lu.OpenDevice(task)
	if err != nil {
		t.Fatalf("open /dev/liveupdate: %v", err)
	}
	max := r.h.MaxData
	switch {
	case max == 0:
		max = 256
	case max < 0:
		max = 0
	}
	fail := rapid.SampledFrom([]string{"", "preserve", "freeze", "retrieve", "can_finish"}).Draw(t, "fail")
	nth := rapid.IntRange(1, 3).Draw(t, "nth")
	errno := rapid.SampledFrom(errnos).Draw(t, "errno")
	nsess := rapid.IntRange(1, 2).Draw(t, "sessions")
	var files []file
	sessFD := map[string]int{}
	for si := range nsess {
		name := fmt.Sprintf("s%d", si)
		s, err := lu.CreateSession(task, dev, name)
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		sessFD[name] = s
		// A memfd next to the handler's files.
		r.w.expect("")
		if err := lu.CreateAndPreserveMemfd(task, s, 1000, "memfd"); err != nil {
			t.Fatalf("memfd: %v", err)
		}
		for fi := range rapid.IntRange(1, 3).Draw(t, "files") {
			data := rapid.SliceOfN(rapid.Byte(), 0, max).Draw(t, "data")
			f := file{sess: name, tok: uint64(fi)}
			fd, err := r.h.NewFile(task, data)
			if err != nil {
				t.Fatalf("NewFile: %v", err)
			}
			if fail == "preserve" {
				r.w.mu.Lock()
				r.w.failCb, r.w.failLeft, r.w.failErr = "preserve", 1, errno
				r.w.mu.Unlock()
				r.w.expect(f.key())
				err := lu.PreserveFD(task, s, fd, f.tok)
				if !errorsIs(err, errno) {
					t.Fatalf("PRESERVE_FD with preserve failing with %s returned %v", errno, err)
				}
				r.checkCalls(r.w.take(), func(c []call) error {
					if len(c) != 1 || c[0].cb != "preserve" || c[0].res != errno {
						return fmt.Errorf("want one failed preserve")
					}
					return nil
				})
			}
			r.w.expect(f.key())
			if err := lu.PreserveFD(task, s, fd, f.tok); err != nil {
				t.Fatalf("PRESERVE_FD %s: %v", f.key(), err)
			}
			r.checkCalls(r.w.take(), func(c []call) error {
				if len(c) != 1 || c[0].cb != "preserve" || c[0].file != f.key() || c[0].res != 0 {
					return fmt.Errorf("want one preserve of %s", f.key())
				}
				return nil
			})
			if err := task.Close(fd); err != nil {
				t.Fatalf("close: %v", err)
			}
			f.data = data
			files = append(files, f)
		}
	}
	r.noReports("preserve")

	// The reboot: every file frozen in order; a directed failure rolls
	// back exactly those frozen before it.
	var order []string
	for _, f := range files {
		order = append(order, f.key())
	}
	if fail == "freeze" {
		k := min(nth, len(order))
		r.w.mu.Lock()
		r.w.failCb, r.w.failLeft, r.w.failErr = "freeze", k, errno
		r.w.mu.Unlock()
		err := r.m.Kexec()
		if !errorsIs(err, errno) {
			t.Fatalf("kexec with the freeze of %s failing with %s returned %v", order[k-1], errno, err)
		}
		r.checkCalls(r.w.take(), func(c []call) error {
			var want []string
			for _, key := range order[:k-1] {
				want = append(want, "freeze("+key+")")
			}
			want = append(want, fmt.Sprintf("freeze(%s) = -%s", order[k-1], model.ErrnoName(errno)))
			// Unfrozen: the files before the failed one in its
			// session, then the earlier sessions', last session first.
			failed := files[k-1].sess
			var done []string
			for _, f := range files[:k-1] {
				if f.sess == failed {
					want = append(want, "unfreeze("+f.key()+")")
				} else {
					done = append(done, f.key())
				}
			}
			for i := len(done) - 1; i >= 0; {
				sess := strings.Split(done[i], "/")[0]
				j := i
				for j >= 0 && strings.Split(done[j], "/")[0] == sess {
					j--
				}
				for _, key := range done[j+1 : i+1] {
					want = append(want, "unfreeze("+key+")")
				}
				i = j
			}
			if got := callStrings(c); !slices.Equal(got, want) {
				return fmt.Errorf("want %q", want)
			}
			return nil
		})
		r.noReports("failed kexec")
	}
	if err := r.m.Kexec(); err != nil {
		t.Fatalf("kexec: %v", err)
	}
	r.checkCalls(r.w.take(), func(c []call) error {
		for i, x := range c {
			if x.cb != "freeze" || x.res != 0 || (i < len(order) && x.file != order[i]) {
				return fmt.Errorf("want a freeze of each file in order")
			}
		}
		if len(c) != len(order) {
			return fmt.Errorf("want %d freezes", len(order))
		}
		return nil
	})

	// The next kernel.
	t2 := r.m.Kernel().NewTask()
	r.install(t2)
	dev2, err := lu.OpenDevice(t2)
	if err != nil {
		t.Fatalf("open /dev/liveupdate after kexec: %v", err)
	}
	for si := range nsess {
		name := fmt.Sprintf("s%d", si)
		s, err := lu.RetrieveSession(t2, dev2, name)
		if err != nil {
			t.Fatalf("retrieve %s: %v", name, err)
		}
		var mine []file
		for _, f := range files {
			if f.sess == name {
				mine = append(mine, f)
			}
		}
		for i, f := range mine {
			if fail == "retrieve" && i == 0 {
				r.w.mu.Lock()
				r.w.failCb, r.w.failLeft, r.w.failErr = "retrieve", 1, errno
				r.w.mu.Unlock()
				for range 2 {
					if _, err := lu.RetrieveFD(t2, s, f.tok); !errorsIs(err, errno) {
						t.Fatalf("RETRIEVE_FD of %s with retrieve failing with %s returned %v", f.key(), errno, err)
					}
				}
				r.checkCalls(r.w.take(), func(c []call) error {
					if got := callStrings(c); !slices.Equal(got, []string{fmt.Sprintf("retrieve(%s) = -%s", f.key(), model.ErrnoName(errno))}) {
						return fmt.Errorf("want one failed retrieve, remembered")
					}
					return nil
				})
				continue
			}
			fd, err := lu.RetrieveFD(t2, s, f.tok)
			if err != nil {
				t.Fatalf("RETRIEVE_FD %s: %v", f.key(), err)
			}
			got, err := r.h.ReadFile(t2, fd)
			if err != nil {
				t.Fatalf("ReadFile %s: %v", f.key(), err)
			}
			if !bytes.Equal(got, f.data) {
				t.Fatalf("%s read back %q after the kexec, held %q", f.key(), got, f.data)
			}
			if err := t2.Close(fd); err != nil {
				t.Fatalf("close: %v", err)
			}
			r.checkCalls(r.w.take(), func(c []call) error {
				if len(c) != 1 || c[0].cb != "retrieve" || c[0].file != f.key() || c[0].res != 0 {
					return fmt.Errorf("want one retrieve of %s", f.key())
				}
				return nil
			})
		}
		if fail == "can_finish" && len(mine) > 0 {
			k := min(nth, len(mine))
			r.w.mu.Lock()
			r.w.failCb, r.w.failLeft, r.w.failErr = "can_finish", k, syscall.EBUSY
			r.w.mu.Unlock()
			if err := lu.FinishSession(t2, s); !errorsIs(err, syscall.EBUSY) {
				t.Fatalf("SESSION_FINISH with a can_finish refusing returned %v", err)
			}
			r.checkCalls(r.w.take(), func(c []call) error {
				for i, x := range c {
					if x.cb != "can_finish" || x.file != mine[i].key() || (x.res != 0) != (i == k-1) {
						return fmt.Errorf("want can_finish in order up to the refusal, no finish")
					}
				}
				if len(c) != k {
					return fmt.Errorf("want %d can_finish calls", k)
				}
				return nil
			})
		}
		if err := lu.FinishSession(t2, s); err != nil {
			t.Fatalf("SESSION_FINISH %s: %v", name, err)
		}
		r.checkCalls(r.w.take(), func(c []call) error {
			var want []string
			for _, f := range mine {
				want = append(want, "can_finish("+f.key()+")")
			}
			for i := len(mine) - 1; i >= 0; i-- {
				want = append(want, "finish("+mine[i].key()+")")
			}
			if got := callStrings(c); !slices.Equal(got, want) {
				return fmt.Errorf("want %q", want)
			}
			return nil
		})
		if err := t2.Close(s); err != nil {
			t.Fatalf("close session: %v", err)
		}
	}
	t2.Exit()
	task.Exit()
	r.noReports("teardown")
	if live := r.m.Kernel().VFS().LiveFiles(); len(live) > 0 {
		t.Fatalf("%d file(s) alive after every task exited; first: %v", len(live), live[0])
	}
	if led := account.Take(r.m); led.Err() != nil {
		t.Fatalf("%v\n\nledger:\n%s", led.Err(), led)
	}
}

// checkCalls fails the check if ok rejects the calls LUO made.
func (r *run) checkCalls(c []call, ok func([]call) error) {
	r.t.Helper()
	if err := ok(c); err != nil {
		r.t.Fatalf("LUO's calls into the handler break the contract: %v\ngot:\n  %s", err, strings.Join(callStrings(c), "\n  "))
	}
}

func callStrings(c []call) []string {
	var s []string
	for _, x := range c {
		s = append(s, x.String())
	}
	return s
}

func errorsIs(err error, e syscall.Errno) bool { return errors.Is(err, e) }
