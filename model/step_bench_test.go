package model

import "testing"

// stepBenchState is a state like those of a concurrent round: a handed-over
// session with a memfd and a test file retrieved, an outgoing session
// preserving a memfd, the test module loaded.
func stepBenchState(tb testing.TB) State {
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

// BenchmarkStep is one model step (a clone and an lseek) on a state like a
// concurrent round's: the porcupine search does one per operation it tries.
func BenchmarkStep(b *testing.B) {
	s := stepBenchState(b)
	op := Op{Kind: OpLseek, Task: 2, FD: 1, Off: 1}
	b.ReportAllocs()
	for b.Loop() {
		Step(s, op)
	}
}
