package locking

// This file is the Go shape of include/linux/cleanup.h's lock guards.
//
//	guard(mutex)(&s->mutex);        defer s.mu.Guard()()
//	scoped_guard(mutex, &s->mutex)  err := locking.Scoped(&s.mu, func() error { ... })
//	{ ... }
//
// Guard suits a lock held to the end of the function; Scoped suits a lock
// held for part of one, and returns what the block returns. Both unlock on
// panic. Plain `m.Lock(); defer m.Unlock()` is just as good and is what most
// of the port uses.

// Locker is a lock that Scoped can hold: a *Mutex, or a view of an RWSem
// from Reader or Writer.
type Locker interface {
	Lock()
	Unlock()
}

// Scoped ports scoped_guard(): it runs f with l held and returns f's result.
func Scoped(l Locker, f func() error) error {
	l.Lock()
	defer l.Unlock()
	return f()
}

// Guard ports guard(mutex)(&m): it locks m and returns the unlock, so that
// `defer m.Guard()()` holds m to the end of the function.
func (m *Mutex) Guard() (unlock func()) {
	m.Lock()
	return m.Unlock
}

// GuardRead ports guard(rwsem_read)(&s): `defer s.GuardRead()()`.
func (s *RWSem) GuardRead() (upRead func()) {
	s.DownRead()
	return s.UpRead
}

// GuardWrite ports guard(rwsem_write)(&s): `defer s.GuardWrite()()`.
func (s *RWSem) GuardWrite() (upWrite func()) {
	s.DownWrite()
	return s.UpWrite
}

// rwsemReader and rwsemWriter are the Locker views of an RWSem.
type (
	rwsemReader RWSem
	rwsemWriter RWSem
)

func (r *rwsemReader) Lock()   { (*RWSem)(r).DownRead() }
func (r *rwsemReader) Unlock() { (*RWSem)(r).UpRead() }
func (w *rwsemWriter) Lock()   { (*RWSem)(w).DownWrite() }
func (w *rwsemWriter) Unlock() { (*RWSem)(w).UpWrite() }

// Reader returns s as a Locker that takes it for read, for Scoped:
//
//	locking.Scoped(s.Reader(), func() error { ... })
func (s *RWSem) Reader() Locker { return (*rwsemReader)(s) }

// Writer returns s as a Locker that takes it for write.
func (s *RWSem) Writer() Locker { return (*rwsemWriter)(s) }
