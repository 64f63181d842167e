package model

import (
	"bytes"
	"fmt"
	"strings"
	"syscall"
)

// This file predicts hostile hand-overs and the memfd handler's
// registration churn.
//
// A hostile hand-over is a kexec after which the outgoing LUO data, as the
// old kernel serialized it into physical memory, is corrupted in one
// structured way before the new kernel boots (a buggy or malicious
// previous kernel). The model keeps the hand-over as an abstract Image of
// the session block and the file arrays and runs luo_session_deserialize()
// over it at the first open of /dev/liveupdate, check by check in the
// port's order: which check fails (so which errno is cached and every
// open is EIO), and which sessions and files are left in the incoming
// list (the failed file set is unwound, the sessions restored before it
// stay, as the port does).

// HandlerCompatLength is LIVEUPDATE_HNDL_COMPAT_LENGTH, the size of
// luo_file_ser.compatible.
const HandlerCompatLength = 48

// HostileKind is one structured corruption of the outgoing LUO data.
type HostileKind int

// The corruptions. Session, Other, File, OtherFile and N of Hostile say
// where; each kind's comment says which it uses.
const (
	HostileDupName            HostileKind = iota + 1 // entry Session gets the name of entry Other (< Session)
	HostileEmptyName                                 // entry Session's name is all NULs
	HostileUnterminatedName                          // entry Session's name fills its 64 bytes
	HostileCountPast                                 // the header counts N entries (> the sessions; the extra entries are zero)
	HostileDupToken                                  // file File of entry Session gets the token of file OtherFile (< File)
	HostileFileCountPast                             // entry Session's file count is N (> its files; extra entries zero)
	HostileFileCountNoArray                          // entry Session (no files) counts N files but has no array
	HostileArrayOutside                              // entry Session's file array lies outside physical memory
	HostileArrayOverlap                              // entry Session's file array overlaps the session block (at entry 0)
	HostileUnknownCompat                             // file File of entry Session names a handler nobody registered
	HostileUnterminatedCompat                        // file File of entry Session has a compatible filling its 48 bytes
	HostileNoSubtree                                 // the KHO tree has no "LUO" subtree
	HostileTruncatedSubtree                          // the LUO FDT's totalsize cuts it short: the new kernel panics
	HostileFolioNotPreserved                         // memfd File of entry Session: folio entry Folio names a page KHO did not preserve
	HostileMemfdCount                                // memfd File of entry Session: its memfd_luo_ser counts one folio more than its array holds
	hostileEnd
)

var hostileNames = map[HostileKind]string{
	HostileDupName: "dup_name", HostileEmptyName: "empty_name", HostileUnterminatedName: "unterminated_name",
	HostileCountPast: "count_past_entries", HostileDupToken: "dup_token", HostileFileCountPast: "file_count_past_entries",
	HostileFileCountNoArray: "file_count_no_array", HostileArrayOutside: "array_outside_memory",
	HostileArrayOverlap: "array_overlaps_session_block", HostileUnknownCompat: "unknown_compatible",
	HostileUnterminatedCompat: "unterminated_compatible", HostileNoSubtree: "missing_subtree",
	HostileTruncatedSubtree: "truncated_subtree", HostileFolioNotPreserved: "folio_not_preserved",
	HostileMemfdCount: "memfd_nr_folios_past_array",
}

func (k HostileKind) String() string {
	if n, ok := hostileNames[k]; ok {
		return n
	}
	return fmt.Sprintf("hostile(%d)", int(k))
}

// HostileKinds lists every kind.
func HostileKinds() []HostileKind {
	var ks []HostileKind
	for k := HostileDupName; k < hostileEnd; k++ {
		ks = append(ks, k)
	}
	return ks
}

// Hostile is one corruption and where it applies.
type Hostile struct {
	Kind            HostileKind
	Session, Other  int
	File, OtherFile int
	N               uint64
	// Folio is the entry of a memfd's folio array that
	// HostileFolioNotPreserved rewrites: to the pfn of entry FolioFrom
	// (< Folio: restored just before, so no longer a preserved block), or
	// for FolioFrom -1 to the first page past physical memory.
	Folio, FolioFrom int
}

func (h Hostile) String() string {
	switch h.Kind {
	case HostileDupName:
		return fmt.Sprintf("%s(session %d := session %d)", h.Kind, h.Session, h.Other)
	case HostileCountPast:
		return fmt.Sprintf("%s(count %d)", h.Kind, h.N)
	case HostileDupToken:
		return fmt.Sprintf("%s(session %d file %d := file %d)", h.Kind, h.Session, h.File, h.OtherFile)
	case HostileFileCountPast, HostileFileCountNoArray:
		return fmt.Sprintf("%s(session %d count %d)", h.Kind, h.Session, h.N)
	case HostileUnknownCompat, HostileUnterminatedCompat, HostileMemfdCount:
		return fmt.Sprintf("%s(session %d file %d)", h.Kind, h.Session, h.File)
	case HostileNoSubtree, HostileTruncatedSubtree:
		return h.Kind.String()
	case HostileFolioNotPreserved:
		from := "past memory"
		if h.FolioFrom >= 0 {
			from = fmt.Sprintf("folio %d", h.FolioFrom)
		}
		return fmt.Sprintf("%s(session %d file %d folio %d := %s)", h.Kind, h.Session, h.File, h.Folio, from)
	}
	return fmt.Sprintf("%s(session %d)", h.Kind, h.Session)
}

// Image is the hand-over as the new kernel reads it: the session block's
// count and entries, each with its file array.
type Image struct {
	Count    uint64
	Sessions []ImageSession // entries past the slice read as zero
}

// ImageSession is one luo_session_ser and its file array.
type ImageSession struct {
	Name [SessionNameLength]byte
	// HasArray: file_set_ser.files is not 0; ArrayBad: it is not a block
	// the previous kernel preserved.
	HasArray, ArrayBad bool
	FileCount          uint64
	Files              []ImageFile // entries past the slice read as zero
}

// ImageFile is one luo_file_ser, with the file it stands for (In: what
// the intact entry would deserialize to; Token and the handler are the
// entry's own).
type ImageFile struct {
	Compat [HandlerCompatLength]byte
	Token  uint64
	In     InFile
}

func (img *Image) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "count=%d", img.Count)
	for _, e := range img.Sessions {
		n, _ := cName(e.Name[:])
		fmt.Fprintf(&b, " [%q array=%v bad=%v files=%d", n, e.HasArray, e.ArrayBad, e.FileCount)
		for _, f := range e.Files {
			c, _ := cName(f.Compat[:])
			fmt.Fprintf(&b, " %q/%d", c, f.Token)
		}
		b.WriteByte(']')
	}
	return b.String()
}

// imageOf is what luo_session_serialize() wrote for the sessions that
// kexec (s has just live-updated) built as incoming: their names, and
// each file's handler, token and data.
func imageOf(s *State) *Image {
	img := &Image{Count: uint64(len(s.Incoming))}
	for _, sid := range s.Incoming {
		se := s.Sessions[sid]
		var e ImageSession
		copy(e.Name[:], se.Name)
		e.HasArray = len(se.In) > 0
		e.FileCount = uint64(len(se.In))
		for _, f := range se.In {
			var c [HandlerCompatLength]byte
			copy(c[:], f.Handler)
			e.Files = append(e.Files, ImageFile{Compat: c, Token: f.Token, In: f})
		}
		img.Sessions = append(img.Sessions, e)
	}
	return img
}

// HostileApplies says whether h fits the outgoing sessions of s (indices
// in range, the structure it corrupts present) and the model predicts it.
func (s *State) HostileApplies(h Hostile) bool {
	if !s.Enabled {
		return false // no LUO tree is handed over
	}
	n := len(s.Outgoing)
	files := func(i int) int { return len(s.Sessions[s.Outgoing[i]].Out) }
	inSession := h.Session >= 0 && h.Session < n
	switch h.Kind {
	case HostileDupName:
		return inSession && h.Other >= 0 && h.Other < h.Session
	case HostileEmptyName, HostileUnterminatedName:
		return inSession
	case HostileCountPast:
		return h.N > uint64(n)
	case HostileDupToken:
		return inSession && h.File < files(h.Session) && h.OtherFile >= 0 && h.OtherFile < h.File
	case HostileFileCountPast:
		return inSession && files(h.Session) > 0 && h.N > uint64(files(h.Session))
	case HostileFileCountNoArray:
		return inSession && files(h.Session) == 0 && h.N > 0
	case HostileArrayOutside:
		return inSession && files(h.Session) > 0
	case HostileArrayOverlap:
		return inSession && files(h.Session) > 0
	case HostileUnknownCompat, HostileUnterminatedCompat:
		return inSession && h.File >= 0 && h.File < files(h.Session)
	case HostileNoSubtree, HostileTruncatedSubtree:
		return true
	case HostileFolioNotPreserved:
		if !inSession || h.File < 0 || h.File >= files(h.Session) {
			return false
		}
		return h.Folio < s.MemfdFolios(s.Outgoing[h.Session], h.File) && h.FolioFrom >= -1 && h.FolioFrom < h.Folio
	case HostileMemfdCount:
		return inSession && h.File >= 0 && h.File < files(h.Session) && s.MemfdFolios(s.Outgoing[h.Session], h.File) > 0
	}
	return false
}

// MemfdFolios is how many entries the folio array of file i of outgoing
// session sid has once preserved: one order-0 folio per page of the size
// (memfd_pin_folios() fills the holes); 0 for a file that is not a memfd.
func (s *State) MemfdFolios(sid SessionID, i int) int {
	f := s.Files[s.Sessions[sid].Out[i].File]
	if f.Kind != KindMemfd {
		return 0
	}
	return int(pagesFor(int64(len(s.Inodes[f.Inode].Data))))
}

// corrupt applies h to img (a fresh copy).
func (img *Image) corrupt(h Hostile) {
	switch h.Kind {
	case HostileDupName:
		img.Sessions[h.Session].Name = img.Sessions[h.Other].Name
	case HostileEmptyName:
		img.Sessions[h.Session].Name = [SessionNameLength]byte{}
	case HostileUnterminatedName:
		copy(img.Sessions[h.Session].Name[:], bytes.Repeat([]byte{'x'}, SessionNameLength))
	case HostileCountPast:
		img.Count = h.N
	case HostileDupToken:
		e := &img.Sessions[h.Session]
		e.Files[h.File].Token = e.Files[h.OtherFile].Token
	case HostileFileCountPast, HostileFileCountNoArray:
		img.Sessions[h.Session].FileCount = h.N
	case HostileArrayOutside:
		img.Sessions[h.Session].ArrayBad = true
	case HostileArrayOverlap:
		// Not the start of a preserved block: rejected like an array
		// outside memory.
		img.Sessions[h.Session].ArrayBad = true
	case HostileUnknownCompat:
		e := &img.Sessions[h.Session]
		e.Files[h.File].Compat = [HandlerCompatLength]byte{}
		copy(e.Files[h.File].Compat[:], HostileCompatible)
	case HostileUnterminatedCompat:
		e := &img.Sessions[h.Session]
		copy(e.Files[h.File].Compat[:], bytes.Repeat([]byte{'c'}, HandlerCompatLength))
	case HostileFolioNotPreserved:
		img.Sessions[h.Session].Files[h.File].In.BadFolio = true
	case HostileMemfdCount:
		img.Sessions[h.Session].Files[h.File].In.BadCount = true
	}
}

// HostileCompatible is the handler compatible string of
// HostileUnknownCompat: no kernel registers it.
const HostileCompatible = "hostile-v1"

// KexecHostile predicts a kexec of s followed by h. The result is the
// kexec's: the old kernel's failure to prepare (nothing is corrupted
// then), success, or for HostileTruncatedSubtree the boot
// failure (EINVAL: LUO's early startup rejects the tree and the new kernel
// panics, halting the machine; see ColdBoot). The caller has checked
// HostileApplies.
func (s *State) KexecHostile(h Hostile) Result {
	s.Calls = s.Calls[:0:0]
	if e := s.reboot(); e != 0 {
		return errResult(e) // the old kernel runs on, nothing corrupted
	}
	s.kexec()
	switch h.Kind {
	case HostileTruncatedSubtree:
		return errResult(syscall.EINVAL)
	case HostileNoSubtree:
		// luo_early_startup(): no subtree is a first boot; the FLB
		// block went with it.
		s.LiveUpdateNum = 0
		s.dropIncoming()
		s.FLBIn, s.FLBInActive = nil, false
		return okResult(0)
	}
	if s.Enabled {
		img := imageOf(s)
		img.corrupt(h)
		s.dropIncoming()
		s.Image = img
	}
	return okResult(0)
}

// dropIncoming forgets the incoming sessions kexec built.
func (s *State) dropIncoming() {
	for _, id := range s.Incoming {
		delete(s.sessionsW(), id)
	}
	s.Incoming = nil
}

// ColdBoot is the machine powered on again after a kernel panic: a first
// kernel, nothing handed over, every task and file gone. Task ids go on.
func (s *State) ColdBoot() {
	s.Outgoing, s.outNames = nil, nil
	s.kexec()
	s.Enabled, s.SetupFailed = true, false
	s.LiveUpdateNum = 0
	s.dropIncoming()
	s.FLBIn, s.FLBInActive = nil, false
	s.Calls = s.Calls[:0:0]
}

// deserialize is the deserialization that the first open of
// /dev/liveupdate runs (luo_session_deserialize()): over a hostile image,
// or of the intact hand-over kexec predicted, whose files need their
// handlers registered (deserializeFiles).
func (s *State) deserialize() {
	if s.Image == nil {
		s.deserializeFiles()
		return
	}
	img := s.Image
	s.Image = nil
	s.DeserializeErr = s.deserializeImage(img)
}

// handlerRegistered says whether a handler with compatible string compat
// is registered.
func (s *State) handlerRegistered(compat string) bool {
	switch compat {
	case MemfdCompatible:
		return s.Enabled && !s.MemfdUnregistered
	case TestCompatible:
		return s.testRegistered()
	}
	return false
}

// deserializeImage ports luo_session_deserialize() and
// luo_file_deserialize() over img, in the port's order of checks; the
// sessions and files restored before a failure stay listed.
func (s *State) deserializeImage(img *Image) syscall.Errno {
	if img.Count > SessionMax {
		return syscall.EINVAL
	}
	for i := 0; i < int(img.Count); i++ {
		var e ImageSession
		if i < len(img.Sessions) {
			e = img.Sessions[i]
		}
		name, terminated := cName(e.Name[:])
		if !terminated {
			return syscall.EINVAL // an empty name is restored, as upstream
		}
		if s.FindIncoming(name) != nil {
			return syscall.EEXIST // luo_session_insert()
		}
		sid := s.NextSession
		s.NextSession++
		se := &Session{Name: name, Incoming: true} // new: the state's own
		s.addSession(sid, se)
		s.ownIncoming()
		s.Incoming = append(s.Incoming, sid)
		if !e.HasArray {
			if e.FileCount != 0 {
				return syscall.EINVAL
			}
			continue
		}
		if e.ArrayBad {
			return syscall.EINVAL
		}
		if e := s.deserializeFileSet(se, e); e != 0 {
			se.In = nil // the failed file set is unwound
			return e
		}
	}
	return 0
}

// deserializeFileSet restores the entries of e's file array into se
// (luo_file_deserialize() past the array's own checks).
func (s *State) deserializeFileSet(se *Session, e ImageSession) syscall.Errno {
	if e.FileCount == 0 || e.FileCount > FileMax {
		return syscall.EINVAL
	}
	tokens := map[uint64]bool{}
	for j := 0; j < int(e.FileCount); j++ {
		var f ImageFile
		if j < len(e.Files) {
			f = e.Files[j]
		}
		compat, terminated := cName(f.Compat[:])
		if !terminated || tokens[f.Token] {
			return syscall.EINVAL
		}
		if !s.handlerRegistered(compat) || compat != f.In.Handler {
			// A compatible rewritten to another registered handler
			// is not predicted (not drawn).
			return syscall.ENOENT
		}
		tokens[f.Token] = true
		in := f.In
		in.Token = f.Token
		se.In = append(se.In, in)
	}
	return 0
}

// memfdUsers is how many luo_files pin the memfd handler.
func (s *State) memfdUsers() int { return s.handlerUsers(KindMemfd, MemfdCompatible) }

// handlerUsers is how many luo_files pin the handler of files of kind
// (compatible compat): every outgoing preserved one, and once deserialized
// every incoming one until its session finishes.
func (s *State) handlerUsers(kind FileKind, compat string) int {
	n := 0
	for _, id := range s.Outgoing {
		for _, f := range s.Sessions[id].Out {
			if s.Files[f.File].Kind == kind {
				n++
			}
		}
	}
	if s.Deserialized {
		for _, id := range s.Incoming {
			for _, f := range s.Sessions[id].In {
				if f.Handler == compat {
					n++
				}
			}
		}
	}
	return n
}

// registerHandler ports liveupdate_register_file_handler() for the memfd
// handler.
func (s *State) registerHandler() syscall.Errno {
	switch {
	case !s.Enabled:
		return syscall.EOPNOTSUPP
	case !s.MemfdUnregistered:
		return syscall.EEXIST
	}
	s.MemfdUnregistered = false
	return 0
}

// unregisterHandler ports liveupdate_unregister_file_handler() for the
// memfd handler: EBUSY while a luo_file uses it.
func (s *State) unregisterHandler() syscall.Errno {
	switch {
	case !s.Enabled:
		return syscall.EOPNOTSUPP
	case s.MemfdUnregistered:
		return syscall.ENOENT
	case s.memfdUsers() > 0:
		return syscall.EBUSY
	}
	s.MemfdUnregistered = true
	return 0
}
