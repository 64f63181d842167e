package model

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// deepCopy copies s whole, independently of Clone and of the
// copy-on-write code: every map, object, list and byte slice. The copy
// keeps s's cow record and the objects' owners, which reflect.DeepEqual
// then compares by identity: a snapshot of s equals s until something of
// s's is written.
func deepCopy(s State) State {
	c := s
	c.Tasks = make(map[TaskID]*Task, len(s.Tasks))
	for id, t := range s.Tasks {
		nt := *t
		nt.FDs = maps.Clone(t.FDs)
		nt.Cloexec = maps.Clone(t.Cloexec)
		c.Tasks[id] = &nt
	}
	c.Files = make(map[FileID]*File, len(s.Files))
	for id, f := range s.Files {
		nf := *f
		c.Files[id] = &nf
	}
	c.Inodes = make(map[InodeID]*Inode, len(s.Inodes))
	for id, in := range s.Inodes {
		n := *in
		n.Data = slices.Clone(in.Data)
		n.Pages = slices.Clone(in.Pages)
		c.Inodes[id] = &n
	}
	c.Sessions = make(map[SessionID]*Session, len(s.Sessions))
	for id, se := range s.Sessions {
		n := *se
		n.Out = slices.Clone(se.Out)
		n.In = slices.Clone(se.In)
		for i := range n.In {
			n.In[i].Data = slices.Clone(se.In[i].Data)
		}
		c.Sessions[id] = &n
	}
	c.Outgoing = slices.Clone(s.Outgoing)
	c.Incoming = slices.Clone(s.Incoming)
	c.outNames = maps.Clone(s.outNames)
	c.Preserved = maps.Clone(s.Preserved)
	c.PreservedTest = maps.Clone(s.PreservedTest)
	c.TestFiles = make(map[TestFileID]*TestFile, len(s.TestFiles))
	for id, tf := range s.TestFiles {
		c.TestFiles[id] = &TestFile{Payload: slices.Clone(tf.Payload)}
	}
	c.Test.Links = slices.Clone(s.Test.Links)
	for i := range c.Test.FLBs {
		c.Test.FLBs[i].OutObj = slices.Clone(s.Test.FLBs[i].OutObj)
		c.Test.FLBs[i].InObj = slices.Clone(s.Test.FLBs[i].InObj)
	}
	c.TestCtl.Directives = slices.Clone(s.TestCtl.Directives)
	for i, d := range c.TestCtl.Directives {
		nd := *d
		c.TestCtl.Directives[i] = &nd
	}
	c.TestCtl.Refuse = maps.Clone(s.TestCtl.Refuse)
	for i := range c.TestCtl.FLBStates {
		c.TestCtl.FLBStates[i] = slices.Clone(s.TestCtl.FLBStates[i])
	}
	c.FLBIn = slices.Clone(s.FLBIn)
	for i := range c.FLBIn {
		c.FLBIn[i].State = slices.Clone(s.FLBIn[i].State)
	}
	c.Calls = slices.Clone(s.Calls)
	return c
}

// ownAll is a deep copy of s that owns all it holds: stepping it in place
// is what Step was before copy-on-write (a full clone, then apply).
func ownAll(s State) State {
	c := deepCopy(s)
	c.cow = owningAll()
	c.stripOwners(c.cow)
	return c
}

// plain is a deep copy of s without the copy-on-write bookkeeping (the
// record, the owners, the name index that Step shares and a full clone
// rebuilds), for comparing states that reached the same contents by
// different copies. An empty callback trace or close-on-exec set is nil
// (a task's copy drops an empty set).
func plain(s State) State {
	c := deepCopy(s)
	c.cow = nil
	c.outNames = nil
	if len(c.Calls) == 0 {
		c.Calls = nil
	}
	for _, t := range c.Tasks {
		if len(t.Cloexec) == 0 {
			t.Cloexec = nil
		}
	}
	c.stripOwners(nil)
	return c
}

// stripOwners sets the owner of every object of s (its own, after
// deepCopy) to c.
func (s *State) stripOwners(c *cow) {
	for _, t := range s.Tasks {
		t.owner = c
	}
	for _, f := range s.Files {
		f.owner = c
	}
	for _, in := range s.Inodes {
		in.owner = c
	}
	for _, se := range s.Sessions {
		se.owner = c
	}
}

// drawCOWOp draws an operation of task: drawOp's vocabulary and the rest
// of what writes the state (lseek, truncation, exec and exit, fd flags,
// limits, test files' writes and seeks, the test module's directives).
func drawCOWOp(t *rapid.T, s *State, task TaskID) Op {
	fd := drawFD(t, s, task, rapid.SampledFrom([]FileKind{KindMemfd, KindTest, KindSession, KindDevice, KindNull}).Draw(t, "fdkind"))
	switch rapid.IntRange(0, 17).Draw(t, "cowkind") {
	case 0:
		return Op{Kind: OpLseek, Task: task, FD: fd, Off: rapid.Int64Range(-1, 3).Draw(t, "off"), Whence: rapid.IntRange(0, 2).Draw(t, "whence")}
	case 1:
		return Op{Kind: OpFtruncate, Task: task, FD: fd, Off: rapid.Int64Range(0, 2*PageSize).Draw(t, "len")}
	case 2:
		return Op{Kind: OpExec, Task: task}
	case 3:
		return Op{Kind: OpExit, Task: task}
	case 4:
		cmd := rapid.SampledFrom([]int{FDupfd, FGetfd, FSetfd, FDupfdCloexec}).Draw(t, "fcntl")
		return Op{Kind: OpFcntl, Task: task, FD: fd, Cmd: uint32(cmd), Arg: rapid.IntRange(0, 3).Draw(t, "arg")}
	case 5:
		n := rapid.Uint64Range(0, 8).Draw(t, "nofile")
		return Op{Kind: OpSetrlimit, Task: task, Arg: RlimitNofile, Cur: n, Max: NofileMaxDefault}
	case 6:
		return Op{Kind: OpOpen, Task: task, Path: DevNull, Flags: ORdwr | rapid.SampledFrom([]int{0, OCloexec}).Draw(t, "cloexec")}
	case 7:
		return Op{Kind: OpWrite, Task: task, FD: fd, Buf: []byte("cow")}
	case 8:
		cb := rapid.SampledFrom(FailableHandlerCallbacks).Draw(t, "cb")
		return Op{Kind: OpTestCtl, TestCmd: TestCmdFail, Callback: cb, Nth: rapid.IntRange(1, 2).Draw(t, "nth"), Errno: 12}
	case 9:
		return Op{Kind: OpTestCtl, TestCmd: TestCmdRefuse, TestFile: TestFileID(rapid.IntRange(1, 3).Draw(t, "tf")), Nth: rapid.IntRange(0, 1).Draw(t, "refuse")}
	case 10:
		cmd := rapid.SampledFrom([]int{TestCmdRegisterFLB, TestCmdUnregisterFLB, TestCmdFLBOutgoing}).Draw(t, "flbcmd")
		return Op{Kind: OpTestCtl, TestCmd: cmd, FLB: rapid.IntRange(0, NTestFLBs-1).Draw(t, "flb")}
	case 11:
		return Op{Kind: rapid.SampledFrom([]OpKind{OpRegisterHandler, OpUnregisterHandler}).Draw(t, "handler")}
	case 12:
		return Op{Kind: OpNewTask}
	case 13:
		// More sessions than drawOp's two names, so that a release
		// removes one from the middle of the list.
		name := rapid.SampledFrom([]string{"a", "b", "c", "d"}).Draw(t, "session")
		return Op{Kind: OpIoctl, Task: task, FD: drawFD(t, s, task, KindDevice), Cmd: IoctlCreateSession, Buf: SessionArgBuf(name)}
	case 14:
		return Op{Kind: OpClose, Task: task, FD: fd}
	}
	return drawOp(t, s, task)
}

// cowState is a state of TestStepCopiesOnWrite and its snapshot.
type cowState struct {
	s    State
	snap State
}

// TestStepCopiesOnWrite: among a family of states made by Step from one
// another (and by operations applied in place to some of them), stepping
// or applying an operation to one state changes no other, and Step's
// result equals a step of a full, unshared copy. Each action is checked
// against deep snapshots of every state of the family.
func TestStepCopiesOnWrite(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var start State
		switch rapid.IntRange(0, 2).Draw(t, "start") {
		case 0:
			start = NewState(true)
			start.Apply(Op{Kind: OpNewTask})
		case 1:
			start = stepBenchState(t)
		default:
			// Five outgoing sessions, so that a release takes one from
			// the middle of the list.
			start = stepBenchState(t)
			for _, name := range []string{"c", "d", "e", "f"} {
				if r := start.Apply(Op{Kind: OpIoctl, Task: 2, FD: 0, Cmd: IoctlCreateSession, Buf: SessionArgBuf(name)}); r.Errno != 0 {
					t.Fatalf("CREATE_SESSION %q: %v", name, r.Errno)
				}
			}
		}
		fam := []cowState{{s: start, snap: deepCopy(start)}}
		// unchanged checks every state of the family but skip.
		unchanged := func(skip int, what string) {
			for i, m := range fam {
				if i == skip {
					continue
				}
				if !reflect.DeepEqual(m.s, m.snap) || m.s.Canon() != m.snap.Canon() || m.s.Fingerprint() != m.snap.Fingerprint() {
					t.Fatalf("%s changed state %d (%s):\n%s\nwas:\n%s", what, i, stateDiff(m.s, m.snap), m.s.Canon(), m.snap.Canon())
				}
			}
		}
		for range rapid.IntRange(1, 60).Draw(t, "n") {
			i := rapid.IntRange(0, len(fam)-1).Draw(t, "from")
			from := &fam[i].s
			var tasks []TaskID // the live ones, if any
			for id, tk := range from.Tasks {
				if tk.Alive {
					tasks = append(tasks, id)
				}
			}
			if len(tasks) == 0 {
				tasks = slices.Collect(maps.Keys(from.Tasks))
			}
			slices.Sort(tasks)
			task := TaskID(1)
			if len(tasks) > 0 {
				task = rapid.SampledFrom(tasks).Draw(t, "task")
			}
			op := drawCOWOp(t, from, task)
			switch rapid.IntRange(0, 9).Draw(t, "how") {
			case 0, 1:
				// In place: the others must not see it.
				from.Apply(op)
				fam[i].snap = deepCopy(*from)
				unchanged(i, "Apply "+Format(op, Result{}))
			case 2:
				// A fault injected in place.
				site := rapid.SampledFrom(FaultSites).Draw(t, "site")
				from.ApplyFault(site, op)
				fam[i].snap = deepCopy(*from)
				unchanged(i, "ApplyFault "+site+" "+Format(op, Result{}))
			case 3:
				// The split halves of a release and an FLB query.
				fd := drawFD(t, from, task, KindSession)
				flb := rapid.IntRange(0, NTestFLBs-1).Draw(t, "flb")
				want := UnpreserveSessionFiles(ownAll(*from), task, fd)
				next := UnpreserveSessionFiles(*from, task, fd)
				_, held := FLBGetIncomingHeld(next, flb)
				put := FLBPutIncomingHeld(held, flb)
				unchanged(-1, "UnpreserveSessionFiles and FLB*IncomingHeld")
				if !reflect.DeepEqual(plain(next), plain(want)) {
					t.Fatalf("UnpreserveSessionFiles:\n%s\nwant:\n%s", next.Canon(), want.Canon())
				}
				for _, n := range []State{next, held, put} {
					fam = append(fam, cowState{s: n, snap: deepCopy(n)})
				}
			default:
				want := ownAll(*from)
				wr := want.Apply(op)
				r, next := Step(*from, op)
				unchanged(-1, "Step "+Format(op, r))
				if !reflect.DeepEqual(r, wr) {
					t.Fatalf("Step %s, a full copy %s", Format(op, r), Format(op, wr))
				}
				if next.Canon() != want.Canon() || !reflect.DeepEqual(plain(next), plain(want)) {
					t.Fatalf("Step %s:\n%s\na full copy:\n%s", Format(op, r), next.Canon(), want.Canon())
				}
				if err := next.Check(); err != nil {
					t.Fatalf("Step %s: %v", Format(op, r), err)
				}
				fam = append(fam, cowState{s: next, snap: deepCopy(next)})
			}
			if len(fam) > 12 {
				fam = fam[len(fam)-12:]
			}
		}
	})
}

// TestStepSharesUntouched: Step of an operation that fails on an fd the
// task does not hold copies nothing, and one that moves a file's position
// copies that file and its map only.
func TestStepSharesUntouched(t *testing.T) {
	s := stepBenchState(t)
	_, n := Step(s, Op{Kind: OpLseek, Task: 2, FD: 40})
	if n.cow != nil || reflect.ValueOf(n.Files).UnsafePointer() != reflect.ValueOf(s.Files).UnsafePointer() {
		t.Fatal("a failing lseek copied the state")
	}
	_, n = Step(s, Op{Kind: OpLseek, Task: 2, FD: 1, Off: 1})
	fid, _ := s.FDFile(2, 1)
	if n.Files[fid] == s.Files[fid] || n.Files[fid].Pos != 1 {
		t.Fatal("lseek did not copy its file")
	}
	for id := range s.Files {
		if id != fid && n.Files[id] != s.Files[id] {
			t.Fatalf("lseek copied file %d too", id)
		}
	}
	if n.cow.tasks || n.cow.inodes || n.cow.sessions || reflect.ValueOf(n.Tasks).UnsafePointer() != reflect.ValueOf(s.Tasks).UnsafePointer() {
		t.Fatal("lseek copied more than the files")
	}
}

// stateDiff names the fields of State where a and b differ.
func stateDiff(a, b State) []string {
	var d []string
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range va.NumField() {
		if !va.Type().Field(i).IsExported() {
			continue
		}
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			d = append(d, fmt.Sprintf("%s %#v %#v", va.Type().Field(i).Name, va.Field(i).Interface(), vb.Field(i).Interface()))
		}
	}
	return d
}
