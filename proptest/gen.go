package proptest

import (
	"encoding/binary"
	"sort"
	"strings"

	"luomodel/model"
)

// Source is where actions draw their choices: rapid in tests and in
// `luo check`, a seeded PRNG in benchmarks.
type Source interface {
	// Intn returns a value in [0, n); label names the choice.
	Intn(n int, label string) int
}

// Action generates the next operations from the model's state. It returns
// nil when it does not apply (rapid then picks another action).
type Action func(s *model.State, src Source) []model.Op

// SessionNames is the pool of session names: valid ones, the longest
// valid (63 bytes), an unterminated 64-byte one, the empty one, and one
// with bytes after its NUL.
var SessionNames = []string{
	"a", "b", "vm0",
	strings.Repeat("n", 63),
	strings.Repeat("x", 64),
	"",
	"a\x00junk",
}

var tokens = []uint64{0, 1, 2, 7, 1 << 63}

func pick[T any](src Source, label string, xs []T) T {
	return xs[src.Intn(len(xs), label)]
}

func chance(src Source, label string, pct int) bool {
	return src.Intn(100, label) < pct
}

// liveTasks returns the ids of live tasks, ascending.
func liveTasks(s *model.State) []model.TaskID {
	var ids []model.TaskID
	for id, t := range s.Tasks {
		if t.Alive {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// pickTask mostly picks a live task, sometimes a dead one (ESRCH).
func pickTask(s *model.State, src Source) (model.TaskID, bool) {
	live := liveTasks(s)
	if len(s.Tasks) > len(live) && chance(src, "dead task", 3) {
		var dead []model.TaskID
		for id, t := range s.Tasks {
			if !t.Alive {
				dead = append(dead, id)
			}
		}
		sort.Slice(dead, func(i, j int) bool { return dead[i] < dead[j] })
		return pick(src, "task", dead), true
	}
	if len(live) == 0 {
		return 0, false
	}
	return pick(src, "task", live), true
}

// pickFD picks an fd of task whose file has one of kinds (any kind if
// none), and sometimes an fd that is not open.
func pickFD(s *model.State, src Source, task model.TaskID, kinds ...model.FileKind) int {
	t := s.Tasks[task]
	var fds []int
	for fd, id := range t.FDs {
		f := s.Files[id]
		ok := len(kinds) == 0
		for _, k := range kinds {
			ok = ok || f.Kind == k
		}
		if ok {
			fds = append(fds, fd)
		}
	}
	sort.Ints(fds)
	if len(fds) == 0 || chance(src, "bad fd", 5) {
		return pick(src, "bad fd value", []int{-1, 42, 1023, 1024})
	}
	return pick(src, "fd", fds)
}

func taskOp(s *model.State, src Source, kind model.OpKind) (model.Op, bool) {
	task, ok := pickTask(s, src)
	return model.Op{Kind: kind, Task: task}, ok
}

func one(op model.Op, ok bool) []model.Op {
	if !ok {
		return nil
	}
	return []model.Op{op}
}

// Actions returns the action set, keyed by name.
func Actions() map[string]Action {
	return map[string]Action{
		"open_device": func(s *model.State, src Source) []model.Op {
			op, ok := taskOp(s, src, model.OpOpen)
			op.Path = model.DevLiveUpdate
			op.Flags = pick(src, "flags", []int{model.ORdwr, model.ORdwr | model.OCloexec, model.ORdonly})
			return one(op, ok)
		},
		"open_other": func(s *model.State, src Source) []model.Op {
			op, ok := taskOp(s, src, model.OpOpen)
			op.Path = pick(src, "path", []string{model.DevNull, model.DevNull, "/dev/nonexistent"})
			op.Flags = pick(src, "flags", []int{model.ORdwr, model.ORdonly, model.OWronly})
			return one(op, ok)
		},
		"close": func(s *model.State, src Source) []model.Op {
			op, ok := taskOp(s, src, model.OpClose)
			if ok && s.Tasks[op.Task].Alive {
				op.FD = pickFD(s, src, op.Task)
			}
			return one(op, ok)
		},
		"dup": func(s *model.State, src Source) []model.Op {
			op, ok := taskOp(s, src, model.OpDup)
			if ok && s.Tasks[op.Task].Alive {
				op.FD = pickFD(s, src, op.Task)
			}
			return one(op, ok)
		},
		"create_session": func(s *model.State, src Source) []model.Op {
			op, ok := devIoctl(s, src, model.IoctlCreateSession)
			return one(op, ok)
		},
		"retrieve_session": func(s *model.State, src Source) []model.Op {
			op, ok := devIoctl(s, src, model.IoctlRetrieveSession)
			return one(op, ok)
		},
		"preserve_fd": func(s *model.State, src Source) []model.Op {
			op, ok := sessionIoctl(s, src, model.IoctlSessionPreserveFD)
			if !ok {
				return nil
			}
			var fd int
			if s.Tasks[op.Task].Alive {
				if chance(src, "preserve memfd", 75) {
					fd = pickFD(s, src, op.Task, model.KindMemfd)
				} else {
					fd = pickFD(s, src, op.Task)
				}
			}
			op.Buf = model.FDArgBuf(int32(fd), pick(src, "token", tokens))
			return []model.Op{op}
		},
		"retrieve_fd": func(s *model.State, src Source) []model.Op {
			op, ok := sessionIoctl(s, src, model.IoctlSessionRetrieveFD)
			op.Buf = model.FDArgBuf(int32(src.Intn(3, "junk fd")), pick(src, "token", tokens))
			return one(op, ok)
		},
		"finish": func(s *model.State, src Source) []model.Op {
			op, ok := sessionIoctl(s, src, model.IoctlSessionFinish)
			op.Buf = model.FinishArgBuf(pick(src, "reserved", []uint32{0, 0, 0, 1}))
			return one(op, ok)
		},
		"get_name": func(s *model.State, src Source) []model.Op {
			op, ok := sessionIoctl(s, src, model.IoctlSessionGetName)
			op.Buf = model.GetNameArgBuf(pick(src, "reserved", []uint32{0, 0, 0, 1}))
			if chance(src, "junk name field", 30) {
				for i := 8; i < len(op.Buf); i++ {
					op.Buf[i] = 0xAA
				}
			}
			return one(op, ok)
		},
		"malformed_ioctl": malformedIoctl,
		"memfd_create": func(s *model.State, src Source) []model.Op {
			op, ok := taskOp(s, src, model.OpMemfdCreate)
			op.Name = pick(src, "memfd name", []string{"guest", "", strings.Repeat("m", 250)})
			op.Flags = pick(src, "memfd flags", []int{0, model.MfdCloexec, model.MfdAllowSealing, 0x100})
			return one(op, ok)
		},
		"write": func(s *model.State, src Source) []model.Op {
			op, ok := taskOp(s, src, model.OpWrite)
			if !ok {
				return nil
			}
			if s.Tasks[op.Task].Alive {
				op.FD = pickFD(s, src, op.Task, model.KindMemfd, model.KindMemfd, model.KindNull)
			}
			n := pick(src, "write len", []int{0, 1, 3, 16, 5000})
			fill := byte('a' + src.Intn(26, "write byte"))
			op.Buf = make([]byte, n)
			for i := range op.Buf {
				op.Buf[i] = fill + byte(i%7)
			}
			return []model.Op{op}
		},
		"read": func(s *model.State, src Source) []model.Op {
			op, ok := taskOp(s, src, model.OpRead)
			if ok && s.Tasks[op.Task].Alive {
				op.FD = pickFD(s, src, op.Task, model.KindMemfd, model.KindMemfd, model.KindNull)
			}
			op.N = pick(src, "read len", []int{0, 1, 8, 64, 6000})
			return one(op, ok)
		},
		"lseek": func(s *model.State, src Source) []model.Op {
			op, ok := taskOp(s, src, model.OpLseek)
			if ok && s.Tasks[op.Task].Alive {
				op.FD = pickFD(s, src, op.Task, model.KindMemfd, model.KindMemfd, model.KindNull)
			}
			op.Off = pick(src, "offset", []int64{0, 0, 1, 3, -1, -5, 4090, 4100, 9000})
			op.Whence = pick(src, "whence", []int{model.SeekSet, model.SeekCur, model.SeekEnd, 9})
			return one(op, ok)
		},
		"ftruncate": func(s *model.State, src Source) []model.Op {
			op, ok := taskOp(s, src, model.OpFtruncate)
			if ok && s.Tasks[op.Task].Alive {
				op.FD = pickFD(s, src, op.Task, model.KindMemfd, model.KindMemfd, model.KindNull)
			}
			op.Off = pick(src, "length", []int64{0, 3, 16, 4096, 5000, -1})
			return one(op, ok)
		},
		"kexec": func(s *model.State, src Source) []model.Op {
			// The whole machine live-updates; two tasks of the new kernel
			// take over.
			return []model.Op{{Kind: model.OpKexec}, {Kind: model.OpNewTask}, {Kind: model.OpNewTask}}
		},
		"new_task": func(s *model.State, src Source) []model.Op {
			if len(liveTasks(s)) >= 4 {
				return nil
			}
			return []model.Op{{Kind: model.OpNewTask}}
		},
		"exit": func(s *model.State, src Source) []model.Op {
			live := liveTasks(s)
			if len(live) < 2 {
				return nil
			}
			return []model.Op{{Kind: model.OpExit, Task: pick(src, "task", live)}}
		},
	}
}

// devIoctl builds a well-formed CREATE/RETRIEVE_SESSION on a device fd.
func devIoctl(s *model.State, src Source, cmd uint32) (model.Op, bool) {
	op, ok := taskOp(s, src, model.OpIoctl)
	if !ok {
		return op, false
	}
	if s.Tasks[op.Task].Alive {
		if chance(src, "device fd", 90) {
			op.FD = pickFD(s, src, op.Task, model.KindDevice)
		} else {
			op.FD = pickFD(s, src, op.Task)
		}
	}
	op.Cmd = cmd
	op.Buf = model.SessionArgBuf(pick(src, "name", SessionNames))
	return op, true
}

// sessionIoctl picks a task and one of its session fds for cmd.
func sessionIoctl(s *model.State, src Source, cmd uint32) (model.Op, bool) {
	op, ok := taskOp(s, src, model.OpIoctl)
	if !ok {
		return op, false
	}
	if s.Tasks[op.Task].Alive {
		if chance(src, "session fd", 90) {
			op.FD = pickFD(s, src, op.Task, model.KindSession)
		} else {
			op.FD = pickFD(s, src, op.Task)
		}
	}
	op.Cmd = cmd
	return op, true
}

var malformedCmds = []uint32{
	model.IoctlCreateSession, model.IoctlRetrieveSession,
	model.IoctlSessionPreserveFD, model.IoctlSessionRetrieveFD,
	model.IoctlSessionFinish, model.IoctlSessionGetName,
	0xBA02, 0xBA3F, 0xBA44, 0xBAFF, // unknown numbers
	0xBB00, 0xBB40, 0xB941, // wrong type byte
	0xC048BA00, 0x4010BA40, // direction and size bits set
}

// malformedIoctl sends a LUO ioctl with a broken buffer or command to a
// device, session or other fd.
func malformedIoctl(s *model.State, src Source) []model.Op {
	op, ok := taskOp(s, src, model.OpIoctl)
	if !ok {
		return nil
	}
	if s.Tasks[op.Task].Alive {
		op.FD = pickFD(s, src, op.Task, pick(src, "target", []model.FileKind{model.KindDevice, model.KindSession, model.KindSession, model.KindMemfd, model.KindNull}))
	}
	op.Cmd = pick(src, "cmd", malformedCmds)
	var base []byte
	switch op.Cmd & 0xff {
	case 0x00, 0x01:
		base = model.SessionArgBuf(pick(src, "name", SessionNames))
	case 0x40, 0x41:
		base = model.FDArgBuf(0, pick(src, "token", tokens))
	case 0x42:
		base = model.FinishArgBuf(0)
	default:
		base = model.GetNameArgBuf(0)
	}
	size := uint32(len(base))
	switch src.Intn(8, "malformation") {
	case 0: // well-formed (with a wrong cmd, often)
	case 1: // shorter than the size field
		base = base[:src.Intn(4, "short len")]
	case 2: // size below the minimum
		binary.LittleEndian.PutUint32(base, size-1-uint32(src.Intn(int(size)-1, "smaller")))
	case 3: // longer, zero tail
		base = append(base, make([]byte, 8)...)
		binary.LittleEndian.PutUint32(base, size+8)
	case 4: // longer, non-zero tail
		base = append(base, make([]byte, 8)...)
		base[len(base)-1-src.Intn(8, "tail byte")] = 0x5A
		binary.LittleEndian.PutUint32(base, size+8)
	case 5: // size beyond the buffer
		binary.LittleEndian.PutUint32(base, size+uint32(1+src.Intn(64, "over")))
	case 6: // huge size
		binary.LittleEndian.PutUint32(base, 0xFFFFFFFF)
	case 7: // size zero
		binary.LittleEndian.PutUint32(base, 0)
	}
	op.Buf = base
	return []model.Op{op}
}
