package model

import (
	"maps"
	"slices"
	"sync/atomic"
)

// Copy-on-write. Step copies a State shallowly: the child shares its
// parent's maps, objects (tasks, files, inodes, sessions) and lists, and
// copies one of them only when it first writes it. The porcupine search
// steps the model once per operation it tries, and most operations write
// one or two objects of a state that holds dozens.
//
// The rule for the code of the model: every write goes through the
// accessors below. A map is written through its *W accessor; a task, file,
// inode or session through wTask, wFile, wInode or wSession, which return
// the state's own copy (a pointer read before it may be the parent's: write
// only through the one they return). Byte slices (memfd contents, page
// maps, test payloads, FLB states), test payloads (TestFile) and the test
// module's directives, refusals and FLB links are immutable: a change
// installs a new one.
//
// UnpreserveSessionFiles, FLB*IncomingHeld and CopyOnWrite copy as Step
// does; Clone copies everything and owns it.
//
// What a state owns is its cow record: the maps and lists it copied, and
// the objects whose owner is the record. A state without a record owns
// nothing. Step marks the parent's record stepped, so that the parent too
// owns nothing from then on (a caller that applies ops to the parent in
// place then copies before it writes, instead of writing into what the
// child shares).

// cow records what a State owns.
type cow struct {
	// stepped: a Step copied a state holding this record (atomic: one
	// state may be stepped from several goroutines at once).
	stepped atomic.Bool

	tasks, files, inodes, sessions      bool
	preserved, preservedTest, testFiles bool
	outgoing, incoming, outNames        bool
}

// owningAll is a record for a state that shares nothing (NewState, Clone).
func owningAll() *cow {
	return &cow{
		tasks: true, files: true, inodes: true, sessions: true,
		preserved: true, preservedTest: true, testFiles: true,
		outgoing: true, incoming: true, outNames: true,
	}
}

// stepCopy is Step's copy of s: it shares everything with s and owns
// nothing; s owns nothing any more either. The callback trace is not
// copied (apply starts a new one).
func (s State) stepCopy() State {
	if c := s.cow; c != nil && !c.stepped.Load() {
		c.stepped.Store(true)
	}
	n := s
	n.cow = nil
	n.Calls = nil
	return n
}

// CopyOnWrite returns a copy of s, with its callback trace, for a caller
// that applies operations to it in place: like Clone, but sharing
// everything with s until one of them writes it, as Step's copy does. A
// state stepped once or twice and dropped (the porcupine search's) then
// copies the one or two objects it writes, not all of them. Its tasks,
// files, inodes and sessions are written only through operations, never
// through pointers read out of its maps (a test that does must Clone).
func (s State) CopyOnWrite() State {
	n := s.stepCopy()
	n.Calls = slices.Clone(s.Calls)
	return n
}

// own returns s's record, ready for a write: a new one, owning nothing, if
// s has none or was stepped since it got it.
func (s *State) own() *cow {
	if s.cow == nil || s.cow.stepped.Load() {
		s.cow = &cow{}
	}
	return s.cow
}

// ownMap makes *m the state's own (a copy, unless *owned says it is
// already) and returns it.
func ownMap[K comparable, V any](m *map[K]V, owned *bool) map[K]V {
	if !*owned {
		if *m == nil {
			*m = map[K]V{}
		} else {
			*m = maps.Clone(*m)
		}
		*owned = true
	}
	return *m
}

func (s *State) tasksW() map[TaskID]*Task    { return ownMap(&s.Tasks, &s.own().tasks) }
func (s *State) filesW() map[FileID]*File    { return ownMap(&s.Files, &s.own().files) }
func (s *State) inodesW() map[InodeID]*Inode { return ownMap(&s.Inodes, &s.own().inodes) }
func (s *State) sessionsW() map[SessionID]*Session {
	return ownMap(&s.Sessions, &s.own().sessions)
}
func (s *State) preservedW() map[InodeID]bool { return ownMap(&s.Preserved, &s.own().preserved) }
func (s *State) preservedTestW() map[TestFileID]bool {
	return ownMap(&s.PreservedTest, &s.own().preservedTest)
}
func (s *State) testFilesW() map[TestFileID]*TestFile {
	return ownMap(&s.TestFiles, &s.own().testFiles)
}

// outNamesW returns the name index for writing: nil while it is not built
// (FindOutgoing builds it).
func (s *State) outNamesW() map[string]SessionID {
	if c := s.own(); !c.outNames {
		s.outNames = maps.Clone(s.outNames)
		c.outNames = true
	}
	return s.outNames
}

// ownOutgoing and ownIncoming make the session lists the state's own,
// before an append or an in-place removal (removeID).
func (s *State) ownOutgoing() {
	if c := s.own(); !c.outgoing {
		s.Outgoing = slices.Clone(s.Outgoing)
		c.outgoing = true
	}
}

func (s *State) ownIncoming() {
	if c := s.own(); !c.incoming {
		s.Incoming = slices.Clone(s.Incoming)
		c.incoming = true
	}
}

// wTask returns task id for writing. The task must exist.
func (s *State) wTask(id TaskID) *Task {
	c := s.own()
	t := s.Tasks[id]
	if t.owner != c {
		t = t.clone()
		t.owner = c
		s.tasksW()[id] = t
	}
	return t
}

// wFile returns file id for writing. The file must exist.
func (s *State) wFile(id FileID) *File {
	c := s.own()
	f := s.Files[id]
	if f.owner != c {
		nf := *f
		nf.owner = c
		f = &nf
		s.filesW()[id] = f
	}
	return f
}

// wInode returns inode id for writing. The inode must exist.
func (s *State) wInode(id InodeID) *Inode {
	c := s.own()
	in := s.Inodes[id]
	if in.owner != c {
		n := *in
		n.owner = c
		in = &n
		s.inodesW()[id] = in
	}
	return in
}

// wSession returns session id for writing, with its own file lists. The
// session must exist.
func (s *State) wSession(id SessionID) *Session {
	c := s.own()
	se := s.Sessions[id]
	if se.owner != c {
		se = se.clone()
		se.owner = c
		s.sessionsW()[id] = se
	}
	return se
}

// addTask, addFile, addInode and addSession put a new object in its map,
// owned by the state.
func (s *State) addTask(id TaskID, t *Task) {
	t.id, t.owner = id, s.own()
	s.tasksW()[id] = t
}

func (s *State) addFile(id FileID, f *File) {
	f.owner = s.own()
	s.filesW()[id] = f
}

func (s *State) addInode(id InodeID, in *Inode) {
	in.owner = s.own()
	s.inodesW()[id] = in
}

func (s *State) addSession(id SessionID, se *Session) {
	se.owner = s.own()
	s.sessionsW()[id] = se
}
