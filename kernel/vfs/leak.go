package vfs

import (
	"cmp"
	"slices"
	"sync"
)

// leakRegistry tracks every live file of a VFS, so tests can name the files
// nobody closed and where they were created.
type leakRegistry struct {
	// mu is a plain sync.Mutex on purpose: it is held only to update the
	// map, no task ever waits on it for long, and it must stay invisible
	// to lockdep and the controlled scheduler (it is bookkeeping, not
	// part of the modelled kernel).
	mu   sync.Mutex
	seq  uint64             // guarded by mu
	live map[*File]struct{} // guarded by mu
}

func (r *leakRegistry) init() { r.live = make(map[*File]struct{}) }

func (r *leakRegistry) add(f *File) {
	r.mu.Lock()
	r.seq++
	f.seq = r.seq
	r.live[f] = struct{}{}
	r.mu.Unlock()
}

func (r *leakRegistry) remove(f *File) {
	r.mu.Lock()
	delete(r.live, f)
	r.mu.Unlock()
}

// LiveFiles returns every file of v that has not been released, oldest
// first.
func (v *VFS) LiveFiles() []*File {
	v.leaks.mu.Lock()
	fs := make([]*File, 0, len(v.leaks.live))
	for f := range v.leaks.live {
		fs = append(fs, f)
	}
	v.leaks.mu.Unlock()
	slices.SortFunc(fs, func(a, b *File) int { return cmp.Compare(a.seq, b.seq) })
	return fs
}

// CreationStack renders where the file was created, innermost first.
func (f *File) CreationStack() string { return f.created.String() }

// TestingT is the part of *testing.T that CheckNoLeaks uses.
type TestingT interface {
	Helper()
	Errorf(format string, args ...any)
}

// CheckNoLeaks fails t once for every file of v still alive, naming it and
// where it was created. It returns true if there was none. Call it when
// every task has exited and every file should have been released.
func CheckNoLeaks(t TestingT, v *VFS) bool {
	t.Helper()
	live := v.LiveFiles()
	for _, f := range live {
		t.Errorf("vfs: leaked %s, created at:\n%s", f, f.CreationStack())
	}
	return len(live) == 0
}
