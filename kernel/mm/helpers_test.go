package mm

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/bug"
	"luomodel/kernel/locking"
	"luomodel/kernel/vfs"
)

const (
	kib = 1 << 10
	mib = 1 << 20
	gib = 1 << 30
)

// failReporter fails t on any report.
func failReporter(t testing.TB) *bug.Reporter {
	return bug.NewReporter(func(r *bug.Report) { t.Errorf("%s", r.String()) })
}

// recorder collects reports instead of failing.
type recorder struct {
	mu   sync.Mutex
	reps []*bug.Report
}

func (r *recorder) handle(rep *bug.Report) {
	r.mu.Lock()
	r.reps = append(r.reps, rep)
	r.mu.Unlock()
}

// take returns and forgets the reports so far.
func (r *recorder) take() []*bug.Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	reps := r.reps
	r.reps = nil
	return reps
}

// newRecordingMM returns an MM over size bytes whose reports go to a
// recorder.
func newRecordingMM(t testing.TB, size uint64, reserved ...Range) (*MM, *recorder) {
	rec := &recorder{}
	return New(NewRAM(size), bug.NewReporter(rec.handle), reserved), rec
}

// newTestMM returns an MM over size bytes whose reports fail t.
func newTestMM(t testing.TB, size uint64, reserved ...Range) *MM {
	return New(NewRAM(size), failReporter(t), reserved)
}

// newTestShmem returns a shmem instance over size bytes of memory, with
// lockdep on and every report failing t.
func newTestShmem(t testing.TB, size uint64) *Shmem {
	rep := failReporter(t)
	dom := locking.NewDomain(locking.Options{Lockdep: true, Reporter: rep})
	return NewShmem(New(NewRAM(size), rep, nil), vfs.New(dom))
}

// memfile drives a file through its operations with a private position,
// as a task's read(2)/write(2)/lseek(2) would.
type memfile struct {
	f   *vfs.File
	pos int64
}

func (m *memfile) read(p []byte) (int, error) {
	return m.f.Ops().Read(&vfs.Context{}, m.f, p, &m.pos)
}

func (m *memfile) write(p []byte) (int, error) {
	return m.f.Ops().Write(&vfs.Context{}, m.f, p, &m.pos)
}

func (m *memfile) seek(off int64, whence int) (int64, error) {
	return m.f.Ops().Llseek(m.f, &m.pos, off, whence)
}

func (m *memfile) truncate(n int64) error { return m.f.Ops().Truncate(m.f, n) }

// mustMemfd creates a memfd named name.
func mustMemfd(t testing.TB, s *Shmem, name string, flags uint) *memfile {
	f, err := s.MemfdCreate(name, flags)
	require.NoError(t, err)
	return &memfile{f: f}
}

// pattern returns n bytes of a recognisable sequence.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7) + byte(i>>8)
	}
	return b
}
