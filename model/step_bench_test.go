package model

import "testing"

// stepBenchState is a state like those of a concurrent round: a handed-over
// session with a memfd and a test file retrieved, an outgoing session
// preserving a memfd, the test module loaded. tb is a *testing.T, B or
// *rapid.T.
func stepBenchState(tb interface{ Fatalf(string, ...any) }) State {
	s := NewState(true)
	for _, op := range []Op{
		{Kind: OpNewTask},
		{Kind: OpInitModule, Task: 1, Name: TestModuleName},
		{Kind: OpOpen, Task: 1, Path: DevLiveUpdate, Flags: ORdwr},
		{Kind: OpMemfdCreate, Task: 1, Name: "m0"},
		{Kind: OpWrite, Task: 1, FD: 1, Buf: []byte("memfd 0")},
		{Kind: OpIoctl, Task: 1, FD: 0, Cmd: IoctlCreateSession, Buf: SessionArgBuf("a")},
		{Kind: OpIoctl, Task: 1, FD: 2, Cmd: IoctlSessionPreserveFD, Buf: FDArgBuf(1, 1)},
		{Kind: OpOpen, Task: 1, Path: DevLiveUpdateTest, Flags: ORdwr},
		{Kind: OpWrite, Task: 1, FD: 3, Buf: []byte("test")},
		{Kind: OpIoctl, Task: 1, FD: 2, Cmd: IoctlSessionPreserveFD, Buf: FDArgBuf(3, 2)},
		{Kind: OpKexec},
		{Kind: OpNewTask},
		{Kind: OpInitModule, Task: 2, Name: TestModuleName},
		{Kind: OpOpen, Task: 2, Path: DevLiveUpdate, Flags: ORdwr},
		{Kind: OpMemfdCreate, Task: 2, Name: "m0"},
		{Kind: OpWrite, Task: 2, FD: 1, Buf: []byte("memfd 0")},
		{Kind: OpMemfdCreate, Task: 2, Name: "m1"},
		{Kind: OpIoctl, Task: 2, FD: 0, Cmd: IoctlRetrieveSession, Buf: SessionArgBuf("a")},
		{Kind: OpIoctl, Task: 2, FD: 3, Cmd: IoctlSessionRetrieveFD, Buf: FDArgBuf(0, 1)},
		{Kind: OpIoctl, Task: 2, FD: 3, Cmd: IoctlSessionRetrieveFD, Buf: FDArgBuf(0, 2)},
		{Kind: OpIoctl, Task: 2, FD: 0, Cmd: IoctlCreateSession, Buf: SessionArgBuf("b")},
		{Kind: OpIoctl, Task: 2, FD: 6, Cmd: IoctlSessionPreserveFD, Buf: FDArgBuf(2, 1)},
	} {
		if r := s.Apply(op); r.Errno != 0 {
			tb.Fatalf("%s", Format(op, r))
		}
	}
	return s
}

// BenchmarkStep is one model step (an lseek) on a state like a concurrent
// round's: the porcupine search does one per operation it tries.
func BenchmarkStep(b *testing.B) {
	s := stepBenchState(b)
	op := Op{Kind: OpLseek, Task: 2, FD: 1, Off: 1}
	b.ReportAllocs()
	for b.Loop() {
		Step(s, op)
	}
}

// BenchmarkStepOps is a step of each common kind of operation on
// stepBenchState, where task 2 holds: 0 the device, 1 a memfd (its only
// reference), 2 a memfd preserved in "b", 3 the retrieved session "a", 4
// and 5 its retrieved memfd and test file, 6 the outgoing session "b".
func BenchmarkStepOps(b *testing.B) {
	s := stepBenchState(b)
	for _, bc := range []struct {
		name string
		op   Op
	}{
		{"lseek", Op{Kind: OpLseek, Task: 2, FD: 1, Off: 1}},
		{"read", Op{Kind: OpRead, Task: 2, FD: 1, N: 4}},
		{"write", Op{Kind: OpWrite, Task: 2, FD: 1, Buf: []byte("x")}},
		{"close", Op{Kind: OpClose, Task: 2, FD: 1}},
		{"dup", Op{Kind: OpDup, Task: 2, FD: 1}},
		{"ioctl-getname", Op{Kind: OpIoctl, Task: 2, FD: 6, Cmd: IoctlSessionGetName, Buf: GetNameArgBuf(0)}},
		{"ioctl-preserve", Op{Kind: OpIoctl, Task: 2, FD: 6, Cmd: IoctlSessionPreserveFD, Buf: FDArgBuf(1, 2)}},
		{"ioctl-create", Op{Kind: OpIoctl, Task: 2, FD: 0, Cmd: IoctlCreateSession, Buf: SessionArgBuf("c")}},
		{"close-session", Op{Kind: OpClose, Task: 2, FD: 6}},
		{"ebadf", Op{Kind: OpLseek, Task: 2, FD: 40, Off: 1}},
	} {
		if r, _ := Step(s, bc.op); r.Errno != 0 && bc.name != "ebadf" {
			b.Fatalf("%s", Format(bc.op, r))
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Step(s, bc.op)
			}
		})
	}
}
