package liveupdate

import (
	"bytes"
	"encoding/binary"

	"luomodel/kernel/mm"
)

// This file ports include/linux/kho/abi/luo.h as merged for 6.19: the FDT
// names of the "LUO" KHO subtree and the __packed serialization structs.
// The structs live as bytes in simulated physical memory; the Go types below
// are only their decoded form, and Encode/Decode are the one place where the
// little-endian layout is spelled out.

// FDT names (LUO_FDT_*).
const (
	// FDTSize ports LUO_FDT_SIZE: the outgoing LUO FDT is one page.
	FDTSize = mm.PageSize
	// FDTKHOEntryName ports LUO_FDT_KHO_ENTRY_NAME, the KHO subtree name.
	FDTKHOEntryName = "LUO"
	// FDTCompatible ports LUO_FDT_COMPATIBLE (root node).
	FDTCompatible = "luo-v1"
	// FDTLiveupdateNum ports LUO_FDT_LIVEUPDATE_NUM: 8 raw host-endian
	// (little-endian) bytes, not an FDT big-endian cell.
	FDTLiveupdateNum = "liveupdate-number"
	// FDTSessionNodeName ports LUO_FDT_SESSION_NODE_NAME.
	FDTSessionNodeName = "luo-session"
	// FDTSessionCompatible ports LUO_FDT_SESSION_COMPATIBLE; "v2" since
	// luo_session_ser gained file_set_ser.
	FDTSessionCompatible = "luo-session-v2"
	// FDTSessionHeader ports LUO_FDT_SESSION_HEADER: the u64 PA of the
	// luo_session_header_ser block, raw host-endian.
	FDTSessionHeader = "luo-session-header"
	// FDTFLBNodeName ports LUO_FDT_FLB_NODE_NAME (7.0).
	FDTFLBNodeName = "luo-flb"
	// FDTFLBCompatible ports LUO_FDT_FLB_COMPATIBLE.
	FDTFLBCompatible = "luo-flb-v1"
	// FDTFLBHeader ports LUO_FDT_FLB_HEADER: the u64 PA of the
	// luo_flb_header_ser page, raw host-endian.
	FDTFLBHeader = "luo-flb-header"
)

// Layout of struct luo_session_header_ser { u64 count; } __packed.
const (
	SessionHeaderSerOffCount = 0
	SessionHeaderSerSize     = 8
)

// Layout of struct luo_file_set_ser { u64 files; u64 count; } __packed.
const (
	FileSetSerOffFiles = 0
	FileSetSerOffCount = 8
	FileSetSerSize     = 16
)

// Layout of struct luo_session_ser { char name[64]; struct luo_file_set_ser
// file_set_ser; } __packed.
const (
	SessionSerOffName       = 0
	SessionSerOffFileSetSer = SessionNameLength
	SessionSerSize          = SessionNameLength + FileSetSerSize
)

// Layout of struct luo_file_ser { char compatible[48]; u64 data; u64 token;
// } __packed.
const (
	FileSerOffCompatible = 0
	FileSerOffData       = HandlerCompatLength
	FileSerOffToken      = HandlerCompatLength + 8
	FileSerSize          = HandlerCompatLength + 16
)

// Block geometry and limits (luo_session.c, luo_file.c).
const (
	// SessionPgcnt ports LUO_SESSION_PGCNT: pages of the session block
	// (header followed by the luo_session_ser array).
	SessionPgcnt = 16
	// SessionBlockSize is the byte size of the session block.
	SessionBlockSize = SessionPgcnt * mm.PageSize
	// SessionMax ports LUO_SESSION_MAX = (65536 - 8) / 80 = 819.
	SessionMax = (SessionBlockSize - SessionHeaderSerSize) / SessionSerSize
	// FilePgcnt ports LUO_FILE_PGCNT: pages of one file set's array.
	FilePgcnt = 2
	// FileBlockSize is the byte size of one file set's luo_file_ser array.
	FileBlockSize = FilePgcnt * mm.PageSize
	// FileMax ports LUO_FILE_MAX = 8192 / 64 = 128.
	FileMax = FileBlockSize / FileSerSize
)

// FLBCompatLength ports LIVEUPDATE_FLB_COMPAT_LENGTH (incl. the NUL).
const FLBCompatLength = 48

// Layout of struct luo_flb_header_ser { u64 pgcnt; u64 count; } __packed.
const (
	FLBHeaderSerOffPgcnt = 0
	FLBHeaderSerOffCount = 8
	FLBHeaderSerSize     = 16
)

// Layout of struct luo_flb_ser { char name[48]; u64 data; u64 count; }
// __packed.
const (
	FLBSerOffName  = 0
	FLBSerOffData  = FLBCompatLength
	FLBSerOffCount = FLBCompatLength + 8
	FLBSerSize     = FLBCompatLength + 16
)

// FLB block geometry (luo_flb.c).
const (
	// FLBPgcnt ports LUO_FLB_PGCNT: the FLB block is one page, header
	// then the luo_flb_ser array.
	FLBPgcnt = 1
	// FLBBlockSize is the byte size of the FLB block.
	FLBBlockSize = FLBPgcnt * mm.PageSize
	// FLBMax ports LUO_FLB_MAX = (4096 - 16) / 64 = 63.
	FLBMax = (FLBBlockSize - FLBHeaderSerSize) / FLBSerSize
)

// FLBHeaderSer is struct luo_flb_header_ser, decoded.
type FLBHeaderSer struct {
	Pgcnt uint64
	Count uint64
}

// Encode writes h into b[:FLBHeaderSerSize].
func (h *FLBHeaderSer) Encode(b []byte) {
	binary.LittleEndian.PutUint64(b[FLBHeaderSerOffPgcnt:], h.Pgcnt)
	binary.LittleEndian.PutUint64(b[FLBHeaderSerOffCount:], h.Count)
}

// DecodeFLBHeaderSer reads b[:FLBHeaderSerSize].
func DecodeFLBHeaderSer(b []byte) FLBHeaderSer {
	return FLBHeaderSer{
		Pgcnt: binary.LittleEndian.Uint64(b[FLBHeaderSerOffPgcnt:]),
		Count: binary.LittleEndian.Uint64(b[FLBHeaderSerOffCount:]),
	}
}

// FLBSer is struct luo_flb_ser, decoded.
type FLBSer struct {
	Name  [FLBCompatLength]byte
	Data  uint64
	Count uint64
}

// Encode writes s into b[:FLBSerSize].
func (s *FLBSer) Encode(b []byte) {
	copy(b[FLBSerOffName:FLBSerOffName+FLBCompatLength], s.Name[:])
	binary.LittleEndian.PutUint64(b[FLBSerOffData:], s.Data)
	binary.LittleEndian.PutUint64(b[FLBSerOffCount:], s.Count)
}

// DecodeFLBSer reads b[:FLBSerSize].
func DecodeFLBSer(b []byte) FLBSer {
	var s FLBSer
	copy(s.Name[:], b[FLBSerOffName:])
	s.Data = binary.LittleEndian.Uint64(b[FLBSerOffData:])
	s.Count = binary.LittleEndian.Uint64(b[FLBSerOffCount:])
	return s
}

// flbSerPA is the PA of entry i of the FLB array after the header at hdr.
func flbSerPA(hdr mm.PhysAddr, i int) mm.PhysAddr {
	return hdr + FLBHeaderSerSize + mm.PhysAddr(i*FLBSerSize)
}

// SessionHeaderSer is struct luo_session_header_ser, decoded.
type SessionHeaderSer struct {
	Count uint64
}

// Encode writes h into b[:SessionHeaderSerSize].
func (h *SessionHeaderSer) Encode(b []byte) {
	binary.LittleEndian.PutUint64(b[SessionHeaderSerOffCount:], h.Count)
}

// DecodeSessionHeaderSer reads b[:SessionHeaderSerSize].
func DecodeSessionHeaderSer(b []byte) SessionHeaderSer {
	return SessionHeaderSer{Count: binary.LittleEndian.Uint64(b[SessionHeaderSerOffCount:])}
}

// FileSetSer is struct luo_file_set_ser, decoded.
type FileSetSer struct {
	// Files is the PA of the luo_file_ser array, 0 if the set is empty.
	Files uint64
	Count uint64
}

// Encode writes s into b[:FileSetSerSize].
func (s *FileSetSer) Encode(b []byte) {
	binary.LittleEndian.PutUint64(b[FileSetSerOffFiles:], s.Files)
	binary.LittleEndian.PutUint64(b[FileSetSerOffCount:], s.Count)
}

// DecodeFileSetSer reads b[:FileSetSerSize].
func DecodeFileSetSer(b []byte) FileSetSer {
	return FileSetSer{
		Files: binary.LittleEndian.Uint64(b[FileSetSerOffFiles:]),
		Count: binary.LittleEndian.Uint64(b[FileSetSerOffCount:]),
	}
}

// SessionSer is struct luo_session_ser, decoded.
type SessionSer struct {
	Name       [SessionNameLength]byte
	FileSetSer FileSetSer
}

// Encode writes s into b[:SessionSerSize].
func (s *SessionSer) Encode(b []byte) {
	copy(b[SessionSerOffName:SessionSerOffName+SessionNameLength], s.Name[:])
	s.FileSetSer.Encode(b[SessionSerOffFileSetSer:])
}

// DecodeSessionSer reads b[:SessionSerSize].
func DecodeSessionSer(b []byte) SessionSer {
	var s SessionSer
	copy(s.Name[:], b[SessionSerOffName:])
	s.FileSetSer = DecodeFileSetSer(b[SessionSerOffFileSetSer:])
	return s
}

// FileSer is struct luo_file_ser, decoded.
type FileSer struct {
	Compatible [HandlerCompatLength]byte
	Data       uint64
	Token      uint64
}

// Encode writes f into b[:FileSerSize].
func (f *FileSer) Encode(b []byte) {
	copy(b[FileSerOffCompatible:FileSerOffCompatible+HandlerCompatLength], f.Compatible[:])
	binary.LittleEndian.PutUint64(b[FileSerOffData:], f.Data)
	binary.LittleEndian.PutUint64(b[FileSerOffToken:], f.Token)
}

// DecodeFileSer reads b[:FileSerSize].
func DecodeFileSer(b []byte) FileSer {
	var f FileSer
	copy(f.Compatible[:], b[FileSerOffCompatible:])
	f.Data = binary.LittleEndian.Uint64(b[FileSerOffData:])
	f.Token = binary.LittleEndian.Uint64(b[FileSerOffToken:])
	return f
}

// sessionSerPA is the PA of entry i of the session array that follows the
// header at hdr (luo_session_header.ser + i).
func sessionSerPA(hdr mm.PhysAddr, i int) mm.PhysAddr {
	return hdr + SessionHeaderSerSize + mm.PhysAddr(i*SessionSerSize)
}

// fileSerPA is the PA of entry i of a file array at files.
func fileSerPA(files mm.PhysAddr, i int) mm.PhysAddr {
	return files + mm.PhysAddr(i*FileSerSize)
}

// cString returns the bytes of b up to its first NUL and whether a NUL was
// found. Incoming names are untrusted: an unterminated one is rejected, and
// never read past its array (M23).
func cString(b []byte) (string, bool) {
	n := bytes.IndexByte(b, 0)
	if n < 0 {
		return "", false
	}
	return string(b[:n]), true
}

// printable renders an untrusted byte string for a log line: bounded by
// its array and with non-printing bytes escaped (M23, "safely print
// untrusted strings").
func printable(b []byte) string {
	if n := bytes.IndexByte(b, 0); n >= 0 {
		b = b[:n]
	}
	var out []byte
	for _, c := range b {
		if c >= 0x20 && c < 0x7f && c != '\\' {
			out = append(out, c)
			continue
		}
		const hex = "0123456789abcdef"
		out = append(out, '\\', 'x', hex[c>>4], hex[c&0xf])
	}
	return string(out)
}

// structLayout is one C struct's size and field offsets, for the test that
// compiles the C definitions with gcc and compares.
type structLayout struct {
	C      string // C declaration, e.g. "struct luo_file_ser"
	Def    string // C definition
	Size   int
	Fields []fieldLayout
}

type fieldLayout struct {
	Name string
	Off  int
}

// abiLayouts are the __packed structs of include/linux/kho/abi/luo.h.
var abiLayouts = []structLayout{
	{
		C:    "struct luo_session_header_ser",
		Def:  "struct luo_session_header_ser { __u64 count; } __attribute__((packed));",
		Size: SessionHeaderSerSize,
		Fields: []fieldLayout{
			{"count", SessionHeaderSerOffCount},
		},
	},
	{
		C:    "struct luo_file_set_ser",
		Def:  "struct luo_file_set_ser { __u64 files; __u64 count; } __attribute__((packed));",
		Size: FileSetSerSize,
		Fields: []fieldLayout{
			{"files", FileSetSerOffFiles},
			{"count", FileSetSerOffCount},
		},
	},
	{
		C: "struct luo_session_ser",
		Def: "struct luo_session_ser { char name[LIVEUPDATE_SESSION_NAME_LENGTH]; " +
			"struct luo_file_set_ser file_set_ser; } __attribute__((packed));",
		Size: SessionSerSize,
		Fields: []fieldLayout{
			{"name", SessionSerOffName},
			{"file_set_ser", SessionSerOffFileSetSer},
			{"file_set_ser.files", SessionSerOffFileSetSer + FileSetSerOffFiles},
			{"file_set_ser.count", SessionSerOffFileSetSer + FileSetSerOffCount},
		},
	},
	{
		C: "struct luo_file_ser",
		Def: "struct luo_file_ser { char compatible[LIVEUPDATE_HNDL_COMPAT_LENGTH]; " +
			"__u64 data; __u64 token; } __attribute__((packed));",
		Size: FileSerSize,
		Fields: []fieldLayout{
			{"compatible", FileSerOffCompatible},
			{"data", FileSerOffData},
			{"token", FileSerOffToken},
		},
	},
	{
		C:    "struct luo_flb_header_ser",
		Def:  "struct luo_flb_header_ser { __u64 pgcnt; __u64 count; } __attribute__((packed));",
		Size: FLBHeaderSerSize,
		Fields: []fieldLayout{
			{"pgcnt", FLBHeaderSerOffPgcnt},
			{"count", FLBHeaderSerOffCount},
		},
	},
	{
		C: "struct luo_flb_ser",
		Def: "struct luo_flb_ser { char name[LIVEUPDATE_FLB_COMPAT_LENGTH]; " +
			"__u64 data; __u64 count; } __attribute__((packed));",
		Size: FLBSerSize,
		Fields: []fieldLayout{
			{"name", FLBSerOffName},
			{"data", FLBSerOffData},
			{"count", FLBSerOffCount},
		},
	},
}
