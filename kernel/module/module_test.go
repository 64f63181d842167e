package module_test

import (
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/bug"
	"luomodel/kernel/locking"
	"luomodel/kernel/module"
)

type reports struct {
	mu   sync.Mutex
	reps []*bug.Report
}

func (r *reports) handle(rep *bug.Report) {
	r.mu.Lock()
	r.reps = append(r.reps, rep)
	r.mu.Unlock()
}

func (r *reports) all() []*bug.Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*bug.Report(nil), r.reps...)
}

func setup(t *testing.T) (*module.Modules, *reports) {
	t.Helper()
	var r reports
	rep := bug.NewReporter(r.handle)
	dom := locking.NewDomain(locking.Options{Lockdep: true, Reporter: rep})
	return module.New(dom, rep), &r
}

func TestLoadGetPutDelete(t *testing.T) {
	ms, r := setup(t)
	var calls []string
	require.NoError(t, ms.AddImage(module.Image{
		Name: "m",
		Init: func(*module.Module) error { calls = append(calls, "init"); return nil },
		Exit: func(*module.Module) { calls = append(calls, "exit") },
	}))
	require.ErrorIs(t, ms.AddImage(module.Image{Name: "m"}), syscall.EEXIST)
	_, err := ms.Load("nope")
	require.ErrorIs(t, err, syscall.ENOENT)

	m, err := ms.Load("m")
	require.NoError(t, err)
	require.Equal(t, module.StateLive, m.State())
	require.EqualValues(t, 0, m.Refcount())
	_, err = ms.Load("m")
	require.ErrorIs(t, err, syscall.EEXIST)

	require.True(t, module.TryGet(m))
	require.True(t, module.TryGet(m))
	require.EqualValues(t, 2, m.Refcount())
	// Refused while references are held, and nothing changes.
	require.ErrorIs(t, ms.Delete("m", 0), syscall.EWOULDBLOCK)
	require.Equal(t, module.StateLive, m.State())
	require.EqualValues(t, 2, m.Refcount())
	module.Put(m)
	require.ErrorIs(t, ms.Delete("m", 0), syscall.EAGAIN) // EWOULDBLOCK == EAGAIN
	module.Put(m)

	require.NoError(t, ms.Delete("m", 0))
	require.Equal(t, module.StateGone, m.State())
	require.Equal(t, []string{"init", "exit"}, calls)
	require.Empty(t, ms.Loaded())
	require.ErrorIs(t, ms.Delete("m", 0), syscall.ENOENT)
	require.Empty(t, r.all())

	// A fresh instance can be loaded again.
	m2, err := ms.Load("m")
	require.NoError(t, err)
	require.NotSame(t, m, m2)
	require.True(t, module.TryGet(nil), "a built-in owner is always pinned")
	module.Put(nil)
}

func TestTryGetFailsOnceGoing(t *testing.T) {
	ms, r := setup(t)
	var got, gotExit bool
	var self *module.Module
	require.NoError(t, ms.AddImage(module.Image{
		Name: "g",
		Init: func(m *module.Module) error {
			// Coming modules can be pinned (module_is_live()).
			require.Equal(t, module.StateComing, m.State())
			require.True(t, module.TryGet(m))
			module.Put(m)
			self = m
			return nil
		},
		Exit: func(m *module.Module) {
			require.Equal(t, module.StateGoing, m.State())
			got = module.TryGet(m)
			gotExit = true
			// Calling into a going module is still fine.
			require.False(t, m.Check("exit"))
		},
	}))
	_, err := ms.Load("g")
	require.NoError(t, err)
	require.NoError(t, ms.Delete("g", 0))
	require.True(t, gotExit)
	require.False(t, got, "try_module_get must fail once the module is going")
	require.Empty(t, r.all())
	_ = self
}

func TestFailedInitFreesModule(t *testing.T) {
	ms, _ := setup(t)
	var mod *module.Module
	require.NoError(t, ms.AddImage(module.Image{
		Name: "f",
		Init: func(m *module.Module) error { mod = m; return syscall.ENODEV },
	}))
	_, err := ms.Load("f")
	require.ErrorIs(t, err, syscall.ENODEV)
	require.Equal(t, module.StateGone, mod.State())
	require.Nil(t, ms.Find("f"))
}

func TestNoExitCannotUnload(t *testing.T) {
	ms, _ := setup(t)
	require.NoError(t, ms.AddImage(module.Image{Name: "n", Init: func(*module.Module) error { return nil }}))
	_, err := ms.Load("n")
	require.NoError(t, err)
	require.ErrorIs(t, ms.Delete("n", 0), syscall.EBUSY)
}

func TestGoneModuleUseIsUAFWithBothStacks(t *testing.T) {
	ms, r := setup(t)
	require.NoError(t, ms.AddImage(module.Image{Name: "u"}))
	m, err := ms.Load("u")
	require.NoError(t, err)
	require.NoError(t, ms.Delete("u", 0))

	require.True(t, m.Check("handler .preserve"))
	require.False(t, module.TryGet(m))
	reps := r.all()
	require.Len(t, reps, 2)
	rep := reps[0]
	require.Equal(t, bug.KindUAF, rep.Kind)
	require.Contains(t, rep.Title, "module u")
	require.Contains(t, rep.Detail, "handler .preserve")
	// The free stack (delete_module) and the use stack (filed at).
	require.Contains(t, rep.Detail, "freed by")
	require.True(t, strings.Contains(rep.Detail, "module.(*Modules).Delete"), rep.Detail)
	require.Contains(t, rep.Stack, "TestGoneModuleUseIsUAFWithBothStacks")
}

func TestPutUnderflowWarns(t *testing.T) {
	ms, r := setup(t)
	require.NoError(t, ms.AddImage(module.Image{Name: "w"}))
	m, err := ms.Load("w")
	require.NoError(t, err)
	module.Put(m) // drops the base reference: a bug
	module.Put(m)
	reps := r.all()
	require.Len(t, reps, 1)
	require.Equal(t, bug.KindWarn, reps[0].Kind)
}
