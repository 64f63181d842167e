package model

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestIncrementalIndexes drives one state in place, as the lockstep
// checker does, through session creates, retrieves and releases, fd
// allocations and frees, lowered fd limits and kexecs, and after every
// operation compares its result with the same operation stepped on a copy
// whose indexes (the outgoing name index, each task's next_fd) start from
// scratch; Check recounts the open files by kind.
func TestIncrementalIndexes(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 14))
	s := NewState(true)
	s.Apply(Op{Kind: OpNewTask})
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for i := range 5000 {
		var op Op
		task := TaskID(s.NextTask - 1)
		switch n := r.IntN(100); {
		case !s.Tasks[task].Alive:
			op = Op{Kind: OpNewTask}
		case n < 2:
			op = Op{Kind: OpKexec}
		case n < 4:
			op = Op{Kind: OpNewTask}
		case n < 10:
			op = Op{Kind: OpOpen, Task: task, Path: DevLiveUpdate, Flags: ORdwr}
		case n < 45:
			fd := r.IntN(12)
			if dev := devFD(&s, task); dev >= 0 && r.IntN(4) > 0 {
				fd = dev
			}
			cmd := IoctlCreateSession
			if r.IntN(3) == 0 {
				cmd = IoctlRetrieveSession
			}
			op = Op{Kind: OpIoctl, Task: task, FD: fd, Cmd: cmd, Buf: SessionArgBuf(names[r.IntN(len(names))])}
		case n < 70:
			op = Op{Kind: OpClose, Task: task, FD: r.IntN(12)}
		case n < 80:
			op = Op{Kind: OpOpen, Task: task, Path: DevNull, Flags: ORdwr}
		case n < 85:
			op = Op{Kind: OpMemfdCreate, Task: task, Name: "m"}
		case n < 92:
			op = Op{Kind: OpFcntl, Task: task, FD: r.IntN(4), Cmd: FDupfd, Arg: r.IntN(10)}
		default:
			lim := uint64(2 + r.IntN(12))
			op = Op{Kind: OpSetrlimit, Task: task, Arg: RlimitNofile, Cur: lim, Max: NofileMaxDefault}
		}
		fresh := s.Clone()
		for _, t := range fresh.Tasks {
			t.nextFD = 0
		}
		want, _ := Step(fresh, op)
		got := s.Apply(op)
		require.True(t, got.Equal(want), "operation %d %s: in place %s", i, Format(op, want), Format(op, got))
		require.NoError(t, s.Check(), "after operation %d %s", i, Format(op, got))
		for _, t2 := range s.Tasks {
			for fd := range t2.nextFD {
				_, used := t2.FDs[fd]
				require.True(t, used, "operation %d: next_fd %d but fd %d is free", i, t2.nextFD, fd)
			}
		}
	}
}

// devFD returns an fd of task open on /dev/liveupdate, or -1.
func devFD(s *State, task TaskID) int {
	t := s.Tasks[task]
	if t == nil {
		return -1
	}
	for fd, id := range t.FDs {
		if s.Files[id].Kind == KindDevice {
			return fd
		}
	}
	return -1
}
