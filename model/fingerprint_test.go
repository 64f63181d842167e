package model

import (
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// drawFD draws an fd of task, of kind k if it has one.
func drawFD(t *rapid.T, s *State, task TaskID, k FileKind) int {
	var fds []int
	if tk := s.Tasks[task]; tk != nil {
		for fd, id := range tk.FDs {
			if f := s.Files[id]; f != nil && f.Kind == k {
				fds = append(fds, fd)
			}
		}
	}
	if len(fds) == 0 {
		return rapid.IntRange(0, 7).Draw(t, "fd")
	}
	slices.Sort(fds)
	return rapid.SampledFrom(fds).Draw(t, "fd")
}

// drawOp draws an operation of task, mostly on fds of the kind it takes:
// enough of the vocabulary (sessions, memfds, test files and their FLBs,
// module churn, kexec) to reach most of what Canon renders.
func drawOp(t *rapid.T, s *State, task TaskID) Op {
	fd := rapid.IntRange(0, 7).Draw(t, "fd")
	dev := drawFD(t, s, task, KindDevice)
	sess := drawFD(t, s, task, KindSession)
	file := drawFD(t, s, task, rapid.SampledFrom([]FileKind{KindMemfd, KindTest}).Draw(t, "kind"))
	name := rapid.SampledFrom([]string{"a", "b"}).Draw(t, "name")
	token := rapid.Uint64Range(1, 2).Draw(t, "token")
	switch rapid.IntRange(0, 17).Draw(t, "kind") {
	case 0:
		return Op{Kind: OpOpen, Task: task, Path: DevLiveUpdate, Flags: ORdwr}
	case 1:
		return Op{Kind: OpOpen, Task: task, Path: DevLiveUpdateTest, Flags: ORdwr}
	case 2:
		return Op{Kind: OpMemfdCreate, Task: task, Name: name}
	case 3:
		return Op{Kind: OpWrite, Task: task, FD: file, Buf: []byte(name)}
	case 4:
		return Op{Kind: OpClose, Task: task, FD: fd}
	case 5:
		return Op{Kind: OpDup, Task: task, FD: fd}
	case 6:
		return Op{Kind: OpIoctl, Task: task, FD: dev, Cmd: IoctlCreateSession, Buf: SessionArgBuf(name)}
	case 7:
		return Op{Kind: OpIoctl, Task: task, FD: dev, Cmd: IoctlRetrieveSession, Buf: SessionArgBuf(name)}
	case 8:
		return Op{Kind: OpIoctl, Task: task, FD: sess, Cmd: IoctlSessionPreserveFD, Buf: FDArgBuf(int32(file), token)}
	case 9:
		return Op{Kind: OpIoctl, Task: task, FD: sess, Cmd: IoctlSessionRetrieveFD, Buf: FDArgBuf(0, token)}
	case 10:
		return Op{Kind: OpIoctl, Task: task, FD: sess, Cmd: IoctlSessionFinish, Buf: FinishArgBuf(0)}
	case 11:
		return Op{Kind: OpKexec}
	case 12:
		return Op{Kind: OpInitModule, Task: task, Name: TestModuleName}
	case 13:
		return Op{Kind: OpDeleteModule, Task: task, Name: TestModuleName}
	case 14:
		return Op{Kind: OpTestCtl, TestCmd: TestCmdFLBIncoming, FLB: rapid.IntRange(0, NTestFLBs-1).Draw(t, "flb")}
	case 15:
		return Op{Kind: OpTestCtl, TestCmd: TestCmdSetFLBState, FLB: rapid.IntRange(0, NTestFLBs-1).Draw(t, "flb"), Buf: []byte(name)}
	case 16:
		return Op{Kind: OpRead, Task: task, FD: file, N: 4}
	}
	return Op{Kind: OpFork, Task: task}
}

// TestFingerprintFollowsCanon: two worlds run the same operations, one
// with its files, inodes and sessions numbered differently; whenever their
// Canon agree, so must their Fingerprint; and across every state reached,
// one Canon never has two fingerprints.
func TestFingerprintFollowsCanon(t *testing.T) {
	seen := map[string]uint64{}
	agreed := 0
	rapid.Check(t, func(t *rapid.T) {
		a, b := NewState(true), NewState(true)
		for _, s := range []*State{&a, &b} {
			s.Apply(Op{Kind: OpNewTask})
			s.Apply(Op{Kind: OpOpen, Task: 1, Path: DevLiveUpdate, Flags: ORdwr})
			s.Apply(Op{Kind: OpClose, Task: 1, FD: 0})
		}
		// b allocates ids first: a memfd and a session, both closed.
		for _, op := range []Op{
			{Kind: OpMemfdCreate, Task: 1, Name: "x"},
			{Kind: OpClose, Task: 1, FD: 0},
			{Kind: OpOpen, Task: 1, Path: DevLiveUpdate, Flags: ORdwr},
			{Kind: OpIoctl, Task: 1, FD: 0, Cmd: IoctlCreateSession, Buf: SessionArgBuf("x")},
			{Kind: OpClose, Task: 1, FD: 1},
			{Kind: OpClose, Task: 1, FD: 0},
		} {
			b.Apply(op)
		}
		if a.Canon() != b.Canon() {
			t.Fatalf("the worlds differ at the start:\n%s\n%s", a.Canon(), b.Canon())
		}
		task := TaskID(1)
		for range rapid.IntRange(1, 30).Draw(t, "n") {
			op := drawOp(t, &a, task)
			a.Apply(op)
			b.Apply(op)
			if op.Kind == OpKexec {
				task = TaskID(a.Apply(Op{Kind: OpNewTask}).Ret)
				b.Apply(Op{Kind: OpNewTask})
			}
			ca, cb := a.Canon(), b.Canon()
			fa, fb := a.Fingerprint(), b.Fingerprint()
			if ca == cb {
				agreed++
				if fa != fb {
					t.Fatalf("equal Canon, fingerprints %x and %x:\n%s", fa, fb, ca)
				}
			}
			for c, f := range map[string]uint64{ca: fa, cb: fb} {
				if old, ok := seen[c]; ok && old != f {
					t.Fatalf("Canon seen with fingerprints %x and %x:\n%s", old, f, c)
				}
				seen[c] = f
			}
		}
	})
	if agreed == 0 {
		t.Fatal("the two worlds never agreed: the test compared nothing")
	}
	// Different states mostly differ in fingerprint.
	fps := map[uint64]bool{}
	for _, f := range seen {
		fps[f] = true
	}
	if len(fps) < len(seen)*9/10 {
		t.Fatalf("%d states, %d fingerprints", len(seen), len(fps))
	}
}
