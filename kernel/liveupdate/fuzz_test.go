package liveupdate

import (
	"encoding/binary"
	"errors"
	"strings"
	"syscall"
	"testing"

	"luomodel/kernel/bug"
	"luomodel/kernel/locking"
	"luomodel/kernel/mm"
	"luomodel/kernel/vfs"
)

// fuzzBase is where the fuzzed hand-over memory lies: the session block,
// followed by room for file arrays.
const (
	fuzzBase = mm.PhysAddr(0x100000)
	fuzzSize = SessionBlockSize + 4*FileBlockSize
)

// fuzzHandover serves a byte slice as the previous kernel's preserved
// memory; nothing else exists.
type fuzzHandover struct{ mem []byte }

func (f *fuzzHandover) IsEnabled() bool                           { return true }
func (f *fuzzHandover) AllocPreserve(uint64) (mm.PhysAddr, error) { return 0, syscall.ENOMEM }
func (f *fuzzHandover) UnpreserveFree(mm.PhysAddr)                {}
func (f *fuzzHandover) RestoreFree(mm.PhysAddr)                   {}
func (f *fuzzHandover) AddSubtree(string, mm.PhysAddr) error      { return nil }
func (f *fuzzHandover) RetrieveSubtree(string) (mm.PhysAddr, error) {
	return 0, syscall.ENOENT
}
func (f *fuzzHandover) Finalize() error { return nil }
func (f *fuzzHandover) incoming(pa mm.PhysAddr, size uint64) bool {
	return pa >= fuzzBase && uint64(pa-fuzzBase) <= fuzzSize && size <= fuzzSize-uint64(pa-fuzzBase)
}
func (f *fuzzHandover) Read(pa mm.PhysAddr, dst []byte) error { return f.readIncoming(pa, dst) }
func (f *fuzzHandover) Write(mm.PhysAddr, []byte) error       { return syscall.EFAULT }
func (f *fuzzHandover) readIncoming(pa mm.PhysAddr, dst []byte) error {
	if !f.incoming(pa, uint64(len(dst))) {
		return syscall.EFAULT
	}
	copy(dst, f.mem[pa-fuzzBase:])
	return nil
}

// FuzzSessionDeserialize feeds arbitrary hand-over bytes (the session
// block, then a file array) to luo_session_deserialize(): it must never
// panic or report, end in success or an errno (cached: the second call
// returns the same), and keep count == len(list) for every list it builds
// (S1, F1, F2). On success nothing is lost: every session of the block is
// in the list, in order, with its name and every file of its array.
func FuzzSessionDeserialize(f *testing.F) {
	session := func(name string, files mm.PhysAddr, count uint64) []byte {
		b := make([]byte, SessionSerSize)
		s := SessionSer{FileSetSer: FileSetSer{Files: uint64(files), Count: count}}
		copy(s.Name[:], name)
		s.Encode(b)
		return b
	}
	block := func(count uint64, sessions ...[]byte) []byte {
		b := binary.LittleEndian.AppendUint64(nil, count)
		for _, s := range sessions {
			b = append(b, s...)
		}
		return b
	}
	fileArray := func(tokens ...uint64) []byte {
		var b []byte
		for _, tok := range tokens {
			fb := make([]byte, FileSerSize)
			fs := FileSer{Data: tok << 12, Token: tok}
			copy(fs.Compatible[:], "fuzz-v1")
			fs.Encode(fb)
			b = append(b, fb...)
		}
		return b
	}
	files := fuzzBase + SessionBlockSize
	f.Add(block(1, session("vm1", files, 1)), fileArray(2))
	f.Add(block(2, session("vm1", files, 2), session("vm2", 0, 0)), fileArray(2, 3))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, []byte{})
	f.Add(block(3, session("vm1", 0, 0)), []byte{})                                                         // count past the entries
	f.Add(block(1, session(strings.Repeat("n", SessionNameLength), 0, 0)), []byte{})                        // name without NUL
	f.Add(block(2, session("vm1", 0, 0), session("vm1", 0, 0)), []byte{})                                   // same name twice
	f.Add(block(1, session("vm1", files, FileMax+1)), fileArray(2))                                         // file count past the array
	f.Add(block(1, session("vm1", fuzzBase+fuzzSize, 1)), fileArray(2))                                     // array outside memory
	f.Add(block(1, session("vm1", fuzzBase, 1)), []byte{})                                                  // array inside the session block
	f.Add(block(1, session("vm1", files, 2)), fileArray(2, 2))                                              // duplicate token
	f.Add(block(1, session("vm1", files, 1)), append([]byte("other-v1\x00"), make([]byte, FileSerSize)...)) // unknown handler
	f.Fuzz(func(t *testing.T, block, files []byte) {
		h := &fuzzHandover{mem: make([]byte, fuzzSize)}
		copy(h.mem, block)
		copy(h.mem[SessionBlockSize:], files)
		rep := bug.NewReporter(func(r *bug.Report) { t.Errorf("%s", r.String()) })
		dom := locking.NewDomain(locking.Options{Reporter: rep})
		l, err := earlyInit(Config{Enabled: true, Domain: dom, Reporter: rep}, h, h)
		if err != nil {
			t.Fatal(err)
		}
		fh := &FileHandler{Compatible: "fuzz-v1", Ops: &FileOps{
			CanPreserve: func(*FileHandler, *vfs.File) bool { return false },
			Preserve:    func(*FileOpArgs) error { return nil },
			Unpreserve:  func(*FileOpArgs) {},
			Retrieve:    func(*FileOpArgs) error { return syscall.EIO },
			Finish:      func(*FileOpArgs) {},
		}}
		if err := l.RegisterFileHandler(fh); err != nil {
			t.Fatal(err)
		}
		sh := &l.sessions.incoming
		sh.headerSer, sh.ser, sh.active = fuzzBase, fuzzBase+SessionHeaderSerSize, true

		err1 := l.sessionDeserialize()
		if err1 != nil && !errors.As(err1, new(syscall.Errno)) {
			t.Fatalf("deserialize: %v is not an errno", err1)
		}
		if err2 := l.sessionDeserialize(); err2 != err1 {
			t.Fatalf("deserialize result not cached: %v then %v", err1, err2)
		}
		st := l.Snapshot()
		if st.Incoming.Count != len(st.Incoming.Sessions) {
			t.Fatalf("S1: count %d, list %d", st.Incoming.Count, len(st.Incoming.Sessions))
		}
		for _, s := range st.Incoming.Sessions {
			if s.FileCount != len(s.Files) || s.FileCount > FileMax {
				t.Fatalf("F1: session %q count %d, list %d", s.Name, s.FileCount, len(s.Files))
			}
			tokens := map[uint64]bool{}
			for _, f := range s.Files {
				if tokens[f.Token] {
					t.Fatalf("F2: duplicate token %#x", f.Token)
				}
				tokens[f.Token] = true
			}
		}
		if err1 == nil {
			checkDeserialized(t, h.mem, st)
		}
	})
}

// checkDeserialized compares the sessions a successful deserialization
// built with the hand-over bytes mem: the same sessions in block order,
// each with its name and its files (token, data, compatible) in array
// order, and every file counted as a user of the handler.
func checkDeserialized(t *testing.T, mem []byte, st DebugState) {
	hdr := DecodeSessionHeaderSer(mem)
	if uint64(len(st.Incoming.Sessions)) != hdr.Count {
		t.Fatalf("header counts %d sessions, %d deserialized", hdr.Count, len(st.Incoming.Sessions))
	}
	users := 0
	for i, s := range st.Incoming.Sessions {
		ser := DecodeSessionSer(mem[SessionHeaderSerSize+i*SessionSerSize:])
		if name, ok := cString(ser.Name[:]); !ok || name != s.Name {
			t.Fatalf("session %d is %q; the block names %q", i, s.Name, ser.Name[:])
		}
		if uint64(len(s.Files)) != ser.FileSetSer.Count {
			t.Fatalf("session %q has %d files; the block says %d", s.Name, len(s.Files), ser.FileSetSer.Count)
		}
		for j, f := range s.Files {
			fs := DecodeFileSer(mem[uint64(mm.PhysAddr(ser.FileSetSer.Files)-fuzzBase)+uint64(j*FileSerSize):])
			compat, _ := cString(fs.Compatible[:])
			if f.Token != fs.Token || f.SerializedData != fs.Data || f.Compatible != compat {
				t.Fatalf("session %q file %d is %#x/%#x/%q; the array holds %#x/%#x/%q",
					s.Name, j, f.Token, f.SerializedData, f.Compatible, fs.Token, fs.Data, compat)
			}
		}
		users += len(s.Files)
	}
	if len(st.HandlerUsers) != 1 || st.HandlerUsers[0] != int64(users) {
		t.Fatalf("handler users %v, files %d", st.HandlerUsers, users)
	}
}
