package liveupdate

import (
	"encoding/binary"
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

// FuzzSessionDeserialize feeds arbitrary hand-over bytes to
// luo_session_deserialize(): it must never panic, never report, and keep
// count == len(list) for every list it builds (S1, F1, F2).
func FuzzSessionDeserialize(f *testing.F) {
	valid := make([]byte, SessionSerSize+SessionHeaderSerSize)
	binary.LittleEndian.PutUint64(valid, 1)
	s := SessionSer{FileSetSer: FileSetSer{Files: uint64(fuzzBase + SessionBlockSize), Count: 1}}
	copy(s.Name[:], "vm1")
	s.Encode(valid[SessionHeaderSerSize:])
	file := make([]byte, FileSerSize)
	fs := FileSer{Data: 1, Token: 2}
	copy(fs.Compatible[:], "fuzz-v1")
	fs.Encode(file)
	f.Add(valid, file)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, []byte{})
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
	})
}
