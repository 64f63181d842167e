package model

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"syscall"
)

// TaskID names a task (process). IDs are never reused, across kexecs too.
type TaskID int

// FileID names an open file description (struct file).
type FileID int

// InodeID names a memfd inode: the identity the double-preservation map
// keys on (memfd's get_id).
type InodeID int

// SessionID names a session object.
type SessionID int

// FileKind is what an open file description is.
type FileKind int

// File kinds.
const (
	KindDevice  FileKind = iota + 1 // /dev/liveupdate
	KindNull                        // /dev/null
	KindSession                     // an anon-inode LUO session file
	KindMemfd                       // a memfd (shmem, no links)
	KindTest                        // a file of /dev/liveupdate_test
)

func (k FileKind) String() string {
	switch k {
	case KindDevice:
		return "liveupdate"
	case KindNull:
		return "null"
	case KindSession:
		return "session"
	case KindMemfd:
		return "memfd"
	case KindTest:
		return "test"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Task is a process: alive or not, its fd table and its open-file limit.
type Task struct {
	Alive bool
	// FDs maps an fd to the open file description it refers to.
	FDs map[int]FileID
	// Cloexec holds the fds of FDs marked close-on-exec (FD_CLOEXEC);
	// nil or absent means clear.
	Cloexec map[int]bool
	// Nofile and NofileMax are RLIMIT_NOFILE's soft and hard limits.
	Nofile    int
	NofileMax uint64
	// nextFD is files_struct.next_fd, where allocFD starts looking:
	// every fd below it is in FDs (0 always holds). Without it a table
	// filled to its limit costs a quadratic number of probes.
	nextFD int
	// id is the task's own id and owner the copy-on-write record of the
	// state that may write it (cow.go).
	id    TaskID
	owner *cow
}

// newTask is a fresh process: no fds, the default limits.
func newTask() *Task {
	return &Task{Alive: true, FDs: map[int]FileID{}, Cloexec: map[int]bool{}, Nofile: NRFileMax, NofileMax: NofileMaxDefault}
}

// clone copies the task's fd table and limits (the open files are
// shared: the caller takes their references). The copy has no owner.
func (t *Task) clone() *Task {
	nt := *t
	nt.owner = nil
	nt.cloneTables()
	return &nt
}

// cloneTables gives t its own copies of its fd table and close-on-exec
// flags (an empty flag set stays nil: setFD makes it).
func (t *Task) cloneTables() {
	t.FDs = maps.Clone(t.FDs)
	if len(t.Cloexec) == 0 {
		t.Cloexec = nil
	} else {
		t.Cloexec = maps.Clone(t.Cloexec)
	}
}

// removeFD takes fd out of the table (its close-on-exec flag with it).
// t must be writable (wTask).
func (t *Task) removeFD(fd int) {
	delete(t.FDs, fd)
	delete(t.Cloexec, fd)
	t.nextFD = min(t.nextFD, fd) // __put_unused_fd()
}

// File is an open file description. Refs counts fd-table entries in every
// task plus LUO's own references (a preserved outgoing file, a retrieved
// incoming file); the description is released when Refs drops to 0.
type File struct {
	Kind     FileKind
	Readable bool
	Writable bool
	Refs     int
	Pos      int64      // memfd and test files
	Inode    InodeID    // memfd only
	Session  SessionID  // session only
	Test     TestFileID // test files only

	owner *cow // the state that may write it (cow.go)
}

// Inode is a memfd's contents. Data is immutable: every change installs a
// new slice, so clones of the state share it safely.
type Inode struct {
	Data []byte // len(Data) is the file size
	// Pages says what each page holds (a page beyond the slice is a
	// hole): a write dirties the folios it writes (allocating them), a
	// shrink drops those past the new end and dirties the partial last
	// one, preserving fills every hole with a clean folio and then
	// dirties the folios it preserves, a retrieved file has a dirty folio
	// in every page of its size, and drop_caches drops the clean ones.
	// Immutable like Data.
	Pages []PageState
	// Frozen is SHMEM_F_MAPPING_FROZEN: set while preserved by an outgoing
	// session; size changes fail with EPERM.
	Frozen bool
	// Refs counts open file descriptions on the inode.
	Refs int
	// Seals are the memfd's F_SEAL_* (F_SEAL_SEAL alone unless it was
	// created with MFD_ALLOW_SEALING or MFD_NOEXEC_SEAL); NoExec clears
	// its mode's exec bits (MFD_NOEXEC_SEAL), so F_SEAL_EXEC brings no
	// other seal.
	Seals  uint32
	NoExec bool

	owner *cow // the state that may write it (cow.go)
}

// OutFile is a file preserved in an outgoing session.
type OutFile struct {
	Token uint64
	File  FileID // LUO holds one reference
}

// InFile is a file handed over by the previous kernel.
type InFile struct {
	Token uint64
	// Handler is the compatible string of the handler that preserved
	// it (MemfdCompatible or TestCompatible); Test is a test file's id.
	Handler string
	Test    TestFileID
	Data    []byte // contents (immutable), len = size; a test file's payload
	Pos     int64
	// Retrieved is retrieve_status > 0; File is then the retrieved open
	// file description, on which LUO holds one reference until finish.
	Retrieved bool
	File      FileID
	// RetrieveErr is a failed retrieve remembered (retrieve_status < 0,
	// M6): every later RETRIEVE_FD of the token returns it without the
	// handler; the handler already discarded the data.
	RetrieveErr syscall.Errno
	// BadFolio: a memfd whose folio array names a page KHO did not
	// preserve (HostileFolioNotPreserved). Restoring that entry fails
	// with KHO's WARN, in retrieve (EIO, M25) or in finish's discard.
	BadFolio bool
	// BadCount: a memfd whose memfd_luo_ser counts more folios than its
	// array holds (HostileMemfdCount). Retrieve refuses it (EINVAL), the
	// folios the array lists discarded.
	BadCount bool
}

// Session is a LUO session, outgoing (created here) or incoming (handed
// over by the previous kernel).
type Session struct {
	Name     string
	Incoming bool
	// Retrieved: incoming only, once RETRIEVE_SESSION succeeded.
	Retrieved bool
	// Stranded: a retrieved incoming session whose file was released
	// while a file's can_finish refused: it stays listed, with its
	// files and no file of its own, until the next kexec.
	Stranded bool
	// File is the session's open file description (0: none).
	File FileID
	Out  []OutFile // outgoing: preserved files, preservation order
	In   []InFile  // incoming: handed-over files, serialization order

	owner *cow // the state that may write it (cow.go)
}

// clone copies the session and its file lists. The copy has no owner.
func (se *Session) clone() *Session {
	n := *se
	n.owner = nil
	n.Out = slices.Clone(se.Out)
	n.In = slices.Clone(se.In)
	return &n
}

// State is everything user space can observe. Step copies it on write
// (cow.go); Clone copies it whole.
type State struct {
	// Enabled is "liveupdate=on" with KHO: /dev/liveupdate exists.
	Enabled bool
	// LiveUpdateNum is the incoming liveupdate number (0 on a cold boot);
	// the outgoing tree carries LiveUpdateNum+1.
	LiveUpdateNum uint64
	// DeserializeErr is the cached result of luo_session_deserialize():
	// set only by a fault injected into it (ApplyFault) or, outside the
	// model, by a corrupted hand-over.
	DeserializeErr syscall.Errno
	// Deserialized is luo_session_deserialize()'s is_deserialized: the
	// first open of /dev/liveupdate in this kernel got past the
	// exclusivity check and ran it.
	Deserialized bool
	// DevInUse is luo_device_state.in_use.
	DevInUse bool
	// SetupFailed is set when this kernel's luo_late_startup() failed (a
	// fault in luo_fdt_setup()): LUO is disabled (Enabled is false) and
	// /dev/liveupdate does not exist although the command line asked for
	// it. Whatever was handed over stays unreachable (leaked by design
	// until the next kexec), no LUO tree is handed on, and the next
	// kernel has LUO again with liveupdate number 0.
	SetupFailed bool
	// MemfdUnregistered: the memfd file handler was unregistered
	// (OpUnregisterHandler) and not registered again. Every kernel
	// registers it at boot.
	MemfdUnregistered bool
	// Image is the hand-over a hostile previous kernel left (KexecHostile),
	// until the first open of /dev/liveupdate deserializes it; nil
	// otherwise (Incoming then holds what was handed over). Immutable.
	Image *Image

	NextTask    TaskID
	NextFile    FileID
	NextInode   InodeID
	NextSession SessionID

	Tasks    map[TaskID]*Task
	Files    map[FileID]*File
	Inodes   map[InodeID]*Inode
	Sessions map[SessionID]*Session
	// Outgoing and Incoming are the two session lists, in list order.
	Outgoing []SessionID
	Incoming []SessionID
	// outNames indexes Outgoing by name for FindOutgoing, or is nil (built
	// at the next lookup). Whatever changes Outgoing updates it or sets
	// it to nil: a CREATE_SESSION to the limit would otherwise compare
	// names a quadratic number of times.
	outNames map[string]SessionID
	// openKinds counts Files by kind, and openIncoming the session files of
	// incoming sessions: the campaign's generator asks every step
	// (OpenFiles). newFile and put keep them; Check recounts.
	openKinds    [KindTest + 1]int
	openIncoming int
	// Preserved is the global double-preservation map (keyed by get_id):
	// inodes of outgoing preserved files and of retrieved incoming files;
	// PreservedTest is its test-file part (the test handler's get_id is
	// the TestFileID).
	Preserved     map[InodeID]bool
	PreservedTest map[TestFileID]bool

	// TestFiles holds the payload of every open test file; NextTestFile
	// is the next TestFileID (never reused, across kexecs too).
	TestFiles    map[TestFileID]*TestFile
	NextTestFile TestFileID
	// Test is the test module, its handler and FLBs in this kernel;
	// TestCtl its directions (they outlive a reload, not a kexec).
	Test    TestModule
	TestCtl TestControls
	// FLBIn is the FLB block the previous kernel handed over, in its
	// order; FLBInActive says whether there was one.
	FLBIn       []FLBSer
	FLBInActive bool

	// Calls is the trace of handler and FLB callbacks of the last
	// operation applied, in order.
	Calls []Call
	// Warns counts the WARNs the kernel must have filed (a handed-over
	// FLB that cannot be retrieved when its last file finishes).
	Warns int

	// armed is the fault site ApplyFault armed for the operation being
	// applied; it is consumed where the port consults the site. Not part
	// of the observable state: it is clear between operations.
	armed armedFault

	// flbSplit is set by DeferringFLBWork for one step, and holds the FLB
	// half the step deferred until TakeFLBWork (flbsplit.go). Not part of
	// the observable state: it is clear between operations.
	flbSplit flbSplit

	// cow records what of the maps, lists and objects above this state
	// owns, the rest being shared with the states Step copied it from or
	// to (cow.go). Not part of the observable state.
	cow *cow
}

// NewState returns the state of a freshly cold-booted machine with no
// tasks; enabled says whether LUO is on.
func NewState(enabled bool) State {
	return State{
		Enabled:     enabled,
		NextTask:    1,
		NextFile:    1,
		NextInode:   1,
		NextSession: 1,
		Tasks:       map[TaskID]*Task{},
		Files:       map[FileID]*File{},
		Inodes:      map[InodeID]*Inode{},
		Sessions:    map[SessionID]*Session{},
		Preserved:   map[InodeID]bool{},

		PreservedTest: map[TestFileID]bool{},
		TestFiles:     map[TestFileID]*TestFile{},
		NextTestFile:  1,
		TestCtl:       TestControls{Refuse: map[TestFileID]bool{}},

		cow: owningAll(),
	}
}

// Clone returns a deep copy of s that shares nothing with s (memfd byte
// slices, test payloads and the test module's directives are shared: they
// are immutable), for a caller that applies operations to it in place.
// The tasks, files, inodes and sessions are copied into one array per
// kind.
func (s State) Clone() State {
	c := s
	c.cow = owningAll()
	own := c.cow
	c.Calls = slices.Clone(s.Calls)
	tasks := make([]Task, len(s.Tasks))
	c.Tasks = make(map[TaskID]*Task, len(s.Tasks))
	i := 0
	for id, t := range s.Tasks {
		nt := &tasks[i]
		i++
		*nt = *t
		nt.cloneTables()
		nt.owner = own
		c.Tasks[id] = nt
	}
	files := make([]File, len(s.Files))
	c.Files = make(map[FileID]*File, len(s.Files))
	i = 0
	for id, f := range s.Files {
		files[i] = *f
		files[i].owner = own
		c.Files[id] = &files[i]
		i++
	}
	inodes := make([]Inode, len(s.Inodes))
	c.Inodes = make(map[InodeID]*Inode, len(s.Inodes))
	i = 0
	for id, in := range s.Inodes {
		inodes[i] = *in
		inodes[i].owner = own
		c.Inodes[id] = &inodes[i]
		i++
	}
	sessions := make([]Session, len(s.Sessions))
	c.Sessions = make(map[SessionID]*Session, len(s.Sessions))
	i = 0
	for id, se := range s.Sessions {
		ns := &sessions[i]
		i++
		*ns = *se
		ns.Out = slices.Clone(se.Out)
		ns.In = slices.Clone(se.In)
		ns.owner = own
		c.Sessions[id] = ns
	}
	c.Outgoing = slices.Clone(s.Outgoing)
	c.outNames = nil
	c.Incoming = slices.Clone(s.Incoming)
	c.Preserved = maps.Clone(s.Preserved)
	c.PreservedTest = maps.Clone(s.PreservedTest)
	// A test file's payload is replaced, never written: the entries are
	// shared.
	c.TestFiles = maps.Clone(s.TestFiles)
	c.Test = s.Test.clone()
	c.TestCtl = s.TestCtl.clone()
	c.FLBIn = slices.Clone(s.FLBIn)
	return c
}

// Task returns the task or nil.
func (s *State) Task(id TaskID) *Task { return s.Tasks[id] }

// OutgoingNames returns the outgoing session names in list order.
func (s *State) OutgoingNames() []string {
	var n []string
	for _, id := range s.Outgoing {
		n = append(n, s.Sessions[id].Name)
	}
	return n
}

// IncomingNames returns the incoming session names in list order.
func (s *State) IncomingNames() []string {
	var n []string
	for _, id := range s.Incoming {
		n = append(n, s.Sessions[id].Name)
	}
	return n
}

// FindIncoming returns the incoming session named name, or nil.
func (s *State) FindIncoming(name string) *Session {
	for _, id := range s.Incoming {
		if se := s.Sessions[id]; se.Name == name {
			return se
		}
	}
	return nil
}

// OpenFiles returns how many open file descriptions of kind k exist.
func (s *State) OpenFiles(k FileKind) int {
	if k < 0 || int(k) >= len(s.openKinds) {
		return 0
	}
	return s.openKinds[k]
}

// OpenSessionFiles returns how many session files of incoming sessions
// (or, incoming false, of outgoing ones) are open.
func (s *State) OpenSessionFiles(incoming bool) int {
	if incoming {
		return s.openIncoming
	}
	return s.openKinds[KindSession] - s.openIncoming
}

// countFile adds d to the counts of f's kind (OpenFiles).
func (s *State) countFile(f *File, d int) {
	s.openKinds[f.Kind] += d
	if f.Kind == KindSession {
		if se := s.Sessions[f.Session]; se != nil && se.Incoming {
			s.openIncoming += d
		}
	}
}

// FindOutgoing returns the outgoing session named name, or nil.
func (s *State) FindOutgoing(name string) *Session {
	if s.outNames == nil {
		s.outNames = make(map[string]SessionID, len(s.Outgoing))
		for _, id := range s.Outgoing {
			s.outNames[s.Sessions[id].Name] = id
		}
	}
	if id, ok := s.outNames[name]; ok {
		return s.Sessions[id]
	}
	return nil
}

// Canon renders s canonically: two states are equal iff their Canon
// strings are. Internal ids appear renumbered by first use, so states
// reached through different id allocations still compare equal.
//
// It is appended byte by byte (strconv, no fmt): the concurrent checker
// renders every state porcupine reaches.
func (s State) Canon() string {
	c := canon{b: make([]byte, 0, 1024)}
	c.str("enabled=").bool(s.Enabled).str(" setupfailed=").bool(s.SetupFailed).str(" lu=").uint(s.LiveUpdateNum)
	c.str(" deser=").int(int64(s.DeserializeErr)).str(" deserialized=").bool(s.Deserialized).str(" inuse=").bool(s.DevInUse)
	c.str(" nexttask=").int(int64(s.NextTask)).byte('\n')
	if s.MemfdUnregistered {
		c.str("memfd handler unregistered\n")
	}
	if s.Image != nil {
		c.str("hostile image ").str(s.Image.String()).byte('\n')
	}
	tids := make([]int, 0, len(s.Tasks))
	for id := range s.Tasks {
		tids = append(tids, int(id))
	}
	sort.Ints(tids)
	var fds []int
	for _, id := range tids {
		t := s.Tasks[TaskID(id)]
		c.str("task ").int(int64(id)).str(" alive=").bool(t.Alive).str(" nofile=").int(int64(t.Nofile)).byte('/').uint(t.NofileMax).byte(':')
		fds = fds[:0]
		for fd := range t.FDs {
			fds = append(fds, fd)
		}
		sort.Ints(fds)
		for _, fd := range fds {
			c.byte(' ').int(int64(fd)).byte('=').file(t.FDs[fd])
			if t.Cloexec[fd] {
				c.str("(cloexec)")
			}
		}
		c.byte('\n')
	}
	list := func(tag string, ids []SessionID) {
		for _, id := range ids {
			se := s.Sessions[id]
			c.str(tag).byte(' ').quote(se.Name).str(" retrieved=").bool(se.Retrieved).str(" stranded=").bool(se.Stranded).str(" file=").file(se.File).byte(':')
			for _, f := range se.Out {
				c.str(" [").uint(f.Token).byte(' ').file(f.File).byte(']')
			}
			for _, f := range se.In {
				c.str(" [").uint(f.Token).byte(' ').str(f.Handler).str(" test#").int(int64(f.Test)).byte(' ').quote(string(f.Data))
				c.str(" pos=").int(f.Pos).str(" retrieved=").bool(f.Retrieved).byte(' ').file(f.File).byte(']')
				if f.RetrieveErr != 0 {
					c.str(" retrieve failed: ").str(ErrnoName(f.RetrieveErr))
				}
				if f.BadFolio {
					c.str(" bad folio")
				}
				if f.BadCount {
					c.str(" bad folio count")
				}
			}
			c.byte('\n')
		}
	}
	list("out", s.Outgoing)
	list("in", s.Incoming)
	// Files in first-use order, then inodes in first-use order.
	for i, id := range c.files {
		n := int64(i + 1)
		f, ok := s.Files[id]
		if !ok {
			c.byte('f').int(n).str(" dangling\n")
			continue
		}
		c.byte('f').int(n).byte(' ').str(f.Kind.String()).str(" r=").bool(f.Readable).str(" w=").bool(f.Writable).str(" refs=").int(int64(f.Refs))
		if f.Kind == KindMemfd {
			c.str(" pos=").int(f.Pos).str(" inode=").inode(f.Inode)
		}
		if f.Kind == KindSession {
			c.str(" session=").quote(s.Sessions[f.Session].Name)
		}
		if f.Kind == KindTest {
			c.str(" pos=").int(f.Pos).str(" test#").int(int64(f.Test)).byte(' ').quote(string(s.TestFiles[f.Test].Payload)).str(" preserved=").bool(s.PreservedTest[f.Test])
		}
		c.byte('\n')
	}
	for i, id := range c.inodes {
		in := s.Inodes[id]
		c.byte('i').int(int64(i + 1)).byte(' ').quote(string(in.Data)).str(" pages=").str(in.PageMap())
		c.str(" frozen=").bool(in.Frozen).str(" refs=").int(int64(in.Refs)).str(" preserved=").bool(s.Preserved[id])
		c.str(" seals=").uint(uint64(in.Seals)).str(" noexec=").bool(in.NoExec).byte('\n')
	}
	c.str("files=").int(int64(len(s.Files))).str(" inodes=").int(int64(len(s.Inodes)))
	c.str(" preserved=").int(int64(len(s.Preserved) + len(s.PreservedTest))).str(" testfiles=").int(int64(len(s.TestFiles))).byte('\n')
	s.canonTest(&c)
	return string(c.b)
}

// canon is Canon's buffer and its first-use numbering of files and inodes.
type canon struct {
	b      []byte
	files  []FileID // files[n-1] is rendered fn
	inodes []InodeID
}

func (c *canon) str(s string) *canon  { c.b = append(c.b, s...); return c }
func (c *canon) byte(b byte) *canon   { c.b = append(c.b, b); return c }
func (c *canon) int(v int64) *canon   { c.b = strconv.AppendInt(c.b, v, 10); return c }
func (c *canon) uint(v uint64) *canon { c.b = strconv.AppendUint(c.b, v, 10); return c }
func (c *canon) bool(v bool) *canon   { c.b = strconv.AppendBool(c.b, v); return c }

// quote appends s as %q does. Most of what it quotes (names, the test
// payloads and FLB objects) is printable ASCII without a quote or a
// backslash, which %q leaves as it is: that is appended without
// strconv's escaping, rune by rune.
func (c *canon) quote(s string) *canon {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' || b > '~' || b == '"' || b == '\\' {
			c.b = strconv.AppendQuote(c.b, s)
			return c
		}
	}
	c.b = append(append(append(c.b, '"'), s...), '"')
	return c
}

// file appends file id's first-use name ("-" for none).
func (c *canon) file(id FileID) *canon {
	if id == 0 {
		return c.byte('-')
	}
	n := slices.Index(c.files, id)
	if n < 0 {
		n = len(c.files)
		c.files = append(c.files, id)
	}
	return c.byte('f').int(int64(n + 1))
}

// inode appends inode id's first-use name.
func (c *canon) inode(id InodeID) *canon {
	n := slices.Index(c.inodes, id)
	if n < 0 {
		n = len(c.inodes)
		c.inodes = append(c.inodes, id)
	}
	return c.byte('i').int(int64(n + 1))
}

// Equal reports whether a and b are the same state up to id renaming.
func Equal(a, b State) bool { return a.Canon() == b.Canon() }

// FDFile returns the open file description fd of task refers to, and its
// ID; nil if task or fd does not exist.
func (s *State) FDFile(task TaskID, fd int) (FileID, *File) {
	t, ok := s.Tasks[task]
	if !ok {
		return 0, nil
	}
	fid, ok := t.FDs[fd]
	if !ok {
		return 0, nil
	}
	return fid, s.Files[fid]
}
