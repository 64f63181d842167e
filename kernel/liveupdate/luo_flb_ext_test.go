package liveupdate_test

import (
	"fmt"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel"
	"luomodel/kernel/bug"
	"luomodel/kernel/liveupdate"
	"luomodel/kernel/module"
	"luomodel/machine"
)

// flbTrace records FLB and handler callbacks in order, C-like.
type flbTrace struct {
	mu    sync.Mutex
	calls []string
}

func (tr *flbTrace) add(format string, args ...any) {
	tr.mu.Lock()
	tr.calls = append(tr.calls, fmt.Sprintf(format, args...))
	tr.mu.Unlock()
}

func (tr *flbTrace) take() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := tr.calls
	tr.calls = nil
	return out
}

// testFLB is an FLB like upstream's lib/tests/liveupdate.c: data is a magic
// plus the FLB's index, the object the data. failPreserve fails Preserve.
func testFLB(tr *flbTrace, i int, owner *module.Module, failPreserve *error) *liveupdate.FLB {
	magic := uint64(0xFEEDF00DCAFEBEE0) + uint64(i)
	name := fmt.Sprintf("test-flb-v%d", i)
	return &liveupdate.FLB{Compatible: name, Ops: &liveupdate.FLBOps{
		Owner: owner,
		Preserve: func(a *liveupdate.FLBOpArgs) error {
			if failPreserve != nil && *failPreserve != nil {
				tr.add("%s.preserve = %v", name, *failPreserve)
				return *failPreserve
			}
			tr.add("%s.preserve", name)
			a.Data, a.Obj = magic, magic
			return nil
		},
		Unpreserve: func(a *liveupdate.FLBOpArgs) {
			tr.add("%s.unpreserve(%#x)", name, a.Obj)
		},
		Retrieve: func(a *liveupdate.FLBOpArgs) error {
			tr.add("%s.retrieve(%#x)", name, a.Data)
			if a.Data != magic {
				return syscall.EINVAL
			}
			a.Obj = a.Data
			return nil
		},
		Finish: func(a *liveupdate.FLBOpArgs) {
			tr.add("%s.finish(%#x)", name, a.Obj)
		},
	}}
}

// traced wraps the fake handler's preserve, unpreserve and finish to
// record them in tr.
func traced(h *fakeHandler, tr *flbTrace) {
	ops := *h.fh.Ops
	pre, unp, fin := ops.Preserve, ops.Unpreserve, ops.Finish
	ops.Preserve = func(a *liveupdate.FileOpArgs) error {
		err := pre(a)
		tr.add("file.preserve(%#x)", a.SerializedData)
		return err
	}
	ops.Unpreserve = func(a *liveupdate.FileOpArgs) { unp(a); tr.add("file.unpreserve(%#x)", a.SerializedData) }
	ops.Finish = func(a *liveupdate.FileOpArgs) { fin(a); tr.add("file.finish(%#x)", a.SerializedData) }
	h.fh.Ops = &ops
}

// reportMachine boots a LUO machine whose reports are collected.
func reportMachine(t *testing.T) (*machine.Machine, func() []*bug.Report) {
	t.Helper()
	var mu sync.Mutex
	var reps []*bug.Report
	m, err := machine.New(machine.Config{LiveUpdate: true, Report: func(r *bug.Report) {
		mu.Lock()
		reps = append(reps, r)
		mu.Unlock()
	}})
	require.NoError(t, err)
	return m, func() []*bug.Report {
		mu.Lock()
		defer mu.Unlock()
		out := reps
		reps = nil
		return out
	}
}

func TestFLBRegisterUnregister(t *testing.T) {
	m, reports := reportMachine(t)
	k := m.Kernel()
	l := k.LUO()
	var tr flbTrace
	h := newFakeHandler(k)
	h2 := newFakeHandler(k)
	h2.fh.Compatible = "fake-v2"
	f0, f1 := testFLB(&tr, 0, nil, nil), testFLB(&tr, 1, nil, nil)

	// An unregistered handler, or an FLB without all four ops, is a WARN.
	require.ErrorIs(t, l.RegisterFLB(&h.fh, f0), syscall.EINVAL)
	require.Len(t, reports(), 1)
	h.register(t, k)
	h2.register(t, k)
	bad := &liveupdate.FLB{Compatible: "bad", Ops: &liveupdate.FLBOps{Preserve: f0.Ops.Preserve}}
	require.ErrorIs(t, l.RegisterFLB(&h.fh, bad), syscall.EINVAL)
	require.Len(t, reports(), 1)
	long := &liveupdate.FLB{Compatible: string(make([]byte, liveupdate.FLBCompatLength)), Ops: f0.Ops}
	require.ErrorIs(t, l.RegisterFLB(&h.fh, long), syscall.EINVAL)

	require.NoError(t, l.RegisterFLB(&h.fh, f0))
	require.NoError(t, l.RegisterFLB(&h.fh, f1))
	require.ErrorIs(t, l.RegisterFLB(&h.fh, f0), syscall.EEXIST)
	require.NoError(t, l.RegisterFLB(&h2.fh, f0), "an FLB may serve several handlers")
	dup := testFLB(&tr, 0, nil, nil)
	require.ErrorIs(t, l.RegisterFLB(&h2.fh, dup), syscall.EEXIST, "compatible in use")

	st := l.Snapshot()
	require.Equal(t, [][]string{nil, {"test-flb-v0", "test-flb-v1"}, {"test-flb-v0"}}, st.HandlerFLBs)
	require.Len(t, st.FLBs, 2)
	require.Equal(t, 2, st.FLBs[0].Users)
	require.Equal(t, 1, st.FLBs[1].Users)

	l.UnregisterFLB(&h.fh, f0)
	st = l.Snapshot()
	require.Equal(t, []string{"test-flb-v1"}, st.HandlerFLBs[1])
	require.Equal(t, 1, st.FLBs[0].Users)
	l.UnregisterFLB(&h.fh, f0) // not linked: a logged warning only
	require.Contains(t, l.Log()[len(l.Log())-1], "Failed to unregister FLB 'test-flb-v0'")

	// Unregistering a handler unregisters its FLBs.
	require.NoError(t, l.UnregisterFileHandler(&h2.fh))
	st = l.Snapshot()
	require.Len(t, st.FLBs, 1)
	require.Equal(t, "test-flb-v1", st.FLBs[0].Compatible)
	require.Empty(t, reports())

	// LUO_FLB_MAX FLBs at most.
	for i := 2; len(l.Snapshot().FLBs) < liveupdate.FLBMax; i++ {
		require.NoError(t, l.RegisterFLB(&h.fh, testFLB(&tr, i, nil, nil)))
	}
	require.ErrorIs(t, l.RegisterFLB(&h.fh, testFLB(&tr, 99, nil, nil)), syscall.ENOSPC)
	require.Empty(t, tr.take(), "registration calls no FLB op")
}

func TestFLBDisabled(t *testing.T) {
	m, err := machine.New(machine.Config{Report: func(r *bug.Report) { t.Errorf("%s", r) }})
	require.NoError(t, err)
	l := m.Kernel().LUO()
	var tr flbTrace
	f := testFLB(&tr, 0, nil, nil)
	require.ErrorIs(t, l.RegisterFLB(&liveupdate.FileHandler{}, f), syscall.EOPNOTSUPP)
	_, err = l.FLBGetIncoming(f)
	require.ErrorIs(t, err, syscall.EOPNOTSUPP)
	_, err = l.FLBGetOutgoing(f)
	require.ErrorIs(t, err, syscall.EOPNOTSUPP)
}

// flbSetup registers a traced fake handler depending on two test FLBs.
func flbSetup(t *testing.T, k *kernel.Kernel, tr *flbTrace, owner *module.Module, fail *error) (*fakeHandler, []*liveupdate.FLB) {
	t.Helper()
	h := newFakeHandler(k)
	traced(h, tr)
	h.fh.Ops.Owner = owner
	h.register(t, k)
	flbs := []*liveupdate.FLB{testFLB(tr, 0, owner, nil), testFLB(tr, 1, owner, fail)}
	for _, f := range flbs {
		require.NoError(t, k.LUO().RegisterFLB(&h.fh, f))
	}
	return h, flbs
}

func TestFLBPreserveUnpreserveOrder(t *testing.T) {
	m := newMachine(t)
	k := m.Kernel()
	l := k.LUO()
	var tr flbTrace
	var fail error
	_, flbs := flbSetup(t, k, &tr, nil, &fail)

	obj, err := l.FLBGetOutgoing(flbs[0])
	require.NoError(t, err)
	require.Nil(t, obj, "no object before the first preserve")

	task := k.NewTask()
	dev := openDev(t, task)
	s, err := createSession(task, dev, "s")
	require.NoError(t, err)
	require.NoError(t, preserveFD(task, s, openNull(t, task), 1))
	require.NoError(t, preserveFD(task, s, openNull(t, task), 2))
	// The FLBs are preserved once, by the first file, before its handler.
	require.Equal(t, []string{
		"test-flb-v0.preserve", "test-flb-v1.preserve", "file.preserve(0x1000)",
		"file.preserve(0x1001)",
	}, tr.take())
	obj, err = l.FLBGetOutgoing(flbs[1])
	require.NoError(t, err)
	require.Equal(t, uint64(0xFEEDF00DCAFEBEE1), obj)
	st := l.Snapshot()
	require.EqualValues(t, 2, st.FLBs[0].OutgoingCount)

	// A failing FLB preserve undoes the FLBs before it and fails the
	// preservation before the handler is called.
	fail = syscall.ENOSPC
	require.NoError(t, task.Close(s))
	require.Equal(t, []string{
		"file.unpreserve(0x1001)", "file.unpreserve(0x1000)",
		"test-flb-v1.unpreserve(0xfeedf00dcafebee1)", "test-flb-v0.unpreserve(0xfeedf00dcafebee0)",
	}, tr.take())
	s, err = createSession(task, dev, "s")
	require.NoError(t, err)
	require.ErrorIs(t, preserveFD(task, s, openNull(t, task), 3), syscall.ENOSPC)
	require.Equal(t, []string{
		"test-flb-v0.preserve", "test-flb-v1.preserve = no space left on device",
		"test-flb-v0.unpreserve(0xfeedf00dcafebee0)",
	}, tr.take())
	fail = nil
	obj, err = l.FLBGetOutgoing(flbs[0])
	require.NoError(t, err)
	require.Nil(t, obj)
	require.Zero(t, l.Snapshot().FLBs[0].OutgoingCount)
	task.Exit()
}

func TestFLBKexecGetIncomingFinish(t *testing.T) {
	m := newMachine(t)
	k := m.Kernel()
	var tr flbTrace
	flbSetup(t, k, &tr, nil, nil)
	task := k.NewTask()
	dev := openDev(t, task)
	s, err := createSession(task, dev, "s")
	require.NoError(t, err)
	require.NoError(t, preserveFD(task, s, openNull(t, task), 1))
	require.NoError(t, preserveFD(task, s, openNull(t, task), 2))
	tr.take()
	require.NoError(t, m.Kexec())

	k2 := m.Kernel()
	l2 := k2.LUO()
	st := l2.Snapshot()
	require.Len(t, st.FLBInEntries, 2)
	e := st.FLBInEntries[1]
	require.Equal(t, "test-flb-v1", string(e.Name[:len("test-flb-v1")]))
	require.Equal(t, uint64(0xFEEDF00DCAFEBEE1), e.Data)
	require.Equal(t, uint64(2), e.Count)

	var tr2 flbTrace
	_, flbs := flbSetup(t, k2, &tr2, nil, nil)
	// Not handed over: ENOENT.
	h3 := newFakeHandler(k2)
	h3.fh.Compatible = "other-v1"
	h3.register(t, k2)
	stray := testFLB(&tr2, 7, nil, nil)
	require.NoError(t, l2.RegisterFLB(&h3.fh, stray))
	_, err = l2.FLBGetIncoming(stray)
	require.ErrorIs(t, err, syscall.ENOENT)

	obj, err := l2.FLBGetIncoming(flbs[0])
	require.NoError(t, err)
	require.Equal(t, uint64(0xFEEDF00DCAFEBEE0), obj)
	obj, err = l2.FLBGetIncoming(flbs[0])
	require.NoError(t, err)
	require.Equal(t, uint64(0xFEEDF00DCAFEBEE0), obj)
	require.Equal(t, []string{"test-flb-v0.retrieve(0xfeedf00dcafebee0)"}, tr2.take(), "retrieved once")
	st = l2.Snapshot()
	require.EqualValues(t, 4, st.FLBs[0].IncomingCount, "two files and two gets")
	l2.FLBPutIncoming(flbs[0])
	// A driver loads its FLB state before its files finish (upstream's
	// test module does so at registration): get and put.
	_, err = l2.FLBGetIncoming(flbs[1])
	require.NoError(t, err)
	l2.FLBPutIncoming(flbs[1])
	require.Equal(t, []string{"test-flb-v1.retrieve(0xfeedf00dcafebee1)"}, tr2.take())

	t2 := k2.NewTask()
	dev2 := openDev(t, t2)
	s2, err := retrieveSession(t2, dev2, "s")
	require.NoError(t, err)
	require.NoError(t, finishSession(t2, s2))
	// Files finish newest first; test-flb-v0 is still held by a get, so
	// only test-flb-v1 finishes, after the last file.
	require.Equal(t, []string{
		"file.finish(0x1001)", "file.finish(0x1000)", "test-flb-v1.finish(0xfeedf00dcafebee1)",
	}, tr2.take())
	l2.FLBPutIncoming(flbs[0])
	require.Equal(t, []string{"test-flb-v0.finish(0xfeedf00dcafebee0)"}, tr2.take())
	_, err = l2.FLBGetIncoming(flbs[0])
	require.ErrorIs(t, err, syscall.ENODATA, "finished")
	st = l2.Snapshot()
	require.True(t, st.FLBs[0].Finished)
	require.True(t, st.FLBs[1].Finished)
	require.NoError(t, t2.Close(s2))
}

// TestFLBFinishWithoutRetrievalUnderflows: as upstream, the incoming count
// is loaded only by a retrieval, so a file finished while nobody retrieved
// its FLB drops a zero count: a refcount_t underflow WARN, and the FLB is
// never finished.
func TestFLBFinishWithoutRetrievalUnderflows(t *testing.T) {
	m, reports := reportMachine(t)
	var tr flbTrace
	flbSetup(t, m.Kernel(), &tr, nil, nil)
	task := m.Kernel().NewTask()
	dev := openDev(t, task)
	s, err := createSession(task, dev, "s")
	require.NoError(t, err)
	require.NoError(t, preserveFD(task, s, openNull(t, task), 1))
	require.NoError(t, m.Kexec())
	k2 := m.Kernel()
	flbSetup(t, k2, &tr, nil, nil)
	t2 := k2.NewTask()
	s2, err := retrieveSession(t2, openDev(t, t2), "s")
	require.NoError(t, err)
	require.NoError(t, finishSession(t2, s2))
	reps := reports()
	require.Len(t, reps, 2)
	require.Contains(t, reps[0].Title, "refcount_t: underflow")
	require.False(t, k2.LUO().Snapshot().FLBs[0].Finished)
}

func TestFLBPutIncomingUnderflowWarns(t *testing.T) {
	m, reports := reportMachine(t)
	k := m.Kernel()
	var tr flbTrace
	_, flbs := flbSetup(t, k, &tr, nil, nil)
	k.LUO().FLBPutIncoming(flbs[0])
	reps := reports()
	require.Len(t, reps, 1)
	require.Contains(t, reps[0].Title, "refcount_t: underflow")
}

// modImage is a module owning a traced fake handler and two FLBs; unreg
// controls whether its exit unregisters the handler.
func modImage(k *kernel.Kernel, tr *flbTrace, unreg bool) (module.Image, *[]*liveupdate.FLB) {
	var h *fakeHandler
	var flbs []*liveupdate.FLB
	return module.Image{
		Name: "fake_luo",
		Init: func(m *module.Module) error {
			h = newFakeHandler(k)
			traced(h, tr)
			h.fh.Ops.Owner = m
			if err := k.LUO().RegisterFileHandler(&h.fh); err != nil {
				return err
			}
			flbs = nil
			for i := range 2 {
				flbs = append(flbs, testFLB(tr, i, m, nil))
				if err := k.LUO().RegisterFLB(&h.fh, flbs[i]); err != nil {
					return err
				}
			}
			return nil
		},
		Exit: func(*module.Module) {
			if unreg {
				if err := k.LUO().UnregisterFileHandler(&h.fh); err != nil {
					panic(err)
				}
			}
		},
	}, &flbs
}

func TestModuleWithPreservedFileCannotUnload(t *testing.T) {
	m := newMachine(t)
	k := m.Kernel()
	var tr flbTrace
	img, _ := modImage(k, &tr, true)
	require.NoError(t, k.Modules().AddImage(img))
	task := k.NewTask()
	require.NoError(t, task.InitModule("fake_luo"))
	mod := k.Modules().Find("fake_luo")
	require.EqualValues(t, 0, mod.Refcount(), "registration pins nothing")

	dev := openDev(t, task)
	s, err := createSession(task, dev, "s")
	require.NoError(t, err)
	require.NoError(t, preserveFD(task, s, openNull(t, task), 1))
	require.NoError(t, preserveFD(task, s, openNull(t, task), 2))
	// One pin per preserved file, one per FLB with live outgoing state.
	require.EqualValues(t, 4, mod.Refcount())
	require.ErrorIs(t, task.DeleteModule("fake_luo", 0), syscall.EWOULDBLOCK)
	require.Equal(t, module.StateLive, mod.State())

	require.NoError(t, task.Close(s))
	require.EqualValues(t, 0, mod.Refcount())
	require.NoError(t, task.DeleteModule("fake_luo", 0))
	require.Equal(t, module.StateGone, mod.State())
	st := k.LUO().Snapshot()
	require.Equal(t, []string{"memfd-v1"}, st.Handlers)
	require.Empty(t, st.FLBs, "the handler's FLBs left with it")
	task.Exit()
}

func TestModuleDeserializedFilePinsOwner(t *testing.T) {
	m := newMachine(t)
	k := m.Kernel()
	var tr flbTrace
	img, _ := modImage(k, &tr, true)
	require.NoError(t, k.Modules().AddImage(img))
	task := k.NewTask()
	require.NoError(t, task.InitModule("fake_luo"))
	dev := openDev(t, task)
	s, err := createSession(task, dev, "s")
	require.NoError(t, err)
	require.NoError(t, preserveFD(task, s, openNull(t, task), 1))
	require.NoError(t, m.Kexec())

	k2 := m.Kernel()
	img2, flbs2 := modImage(k2, &tr, true)
	require.NoError(t, k2.Modules().AddImage(img2))
	t2 := k2.NewTask()
	require.NoError(t, t2.InitModule("fake_luo"))
	mod := k2.Modules().Find("fake_luo")
	dev2 := openDev(t, t2) // deserializes: one pin for the file
	require.EqualValues(t, 1, mod.Refcount())
	require.ErrorIs(t, t2.DeleteModule("fake_luo", 0), syscall.EWOULDBLOCK)
	st := k2.LUO().Snapshot()
	flbs := st.FLBs
	require.Len(t, flbs, 2)

	s2, err := retrieveSession(t2, dev2, "s")
	require.NoError(t, err)
	// Load the FLB state before the finish (a driver does at init): each
	// retrieved FLB pins the owner until it is finished.
	for _, f := range *flbs2 {
		_, err := k2.LUO().FLBGetIncoming(f)
		require.NoError(t, err)
		k2.LUO().FLBPutIncoming(f)
	}
	require.EqualValues(t, 3, mod.Refcount())
	require.NoError(t, t2.Close(s2)) // finishes the file, then the FLBs
	require.EqualValues(t, 0, mod.Refcount())
	require.NoError(t, t2.DeleteModule("fake_luo", 0))
}

func TestGoneModuleHandlerIsUseAfterFree(t *testing.T) {
	m, reports := reportMachine(t)
	k := m.Kernel()
	var tr flbTrace
	img, _ := modImage(k, &tr, false) // exit forgets to unregister
	require.NoError(t, k.Modules().AddImage(img))
	task := k.NewTask()
	require.NoError(t, task.InitModule("fake_luo"))
	require.NoError(t, task.DeleteModule("fake_luo", 0))
	require.Empty(t, reports())

	dev := openDev(t, task)
	s, err := createSession(task, dev, "s")
	require.NoError(t, err)
	// The lookup calls the gone module's can_preserve.
	_ = preserveFD(task, s, openNull(t, task), 1)
	reps := reports()
	require.NotEmpty(t, reps)
	require.Equal(t, bug.KindUAF, reps[0].Kind)
	require.Contains(t, reps[0].Detail, "file handler fake-v1 .can_preserve")
	require.Contains(t, reps[0].Detail, "freed by (delete_module)")
	require.Contains(t, reps[0].Stack, "preserveFileLocked")
	task.Exit()
}
