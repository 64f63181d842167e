package liveupdate

import "encoding/binary"

// This file ports include/uapi/linux/liveupdate.h: the ioctl numbers of
// /dev/liveupdate and of session files, and the argument structs, which
// user space passes as byte buffers (the first u32 is the caller's struct
// size, see luo_ioctl.go).

// General constants.
const (
	// IoctlType ports LIVEUPDATE_IOCTL_TYPE.
	IoctlType = 0xBA
	// SessionNameLength ports LIVEUPDATE_SESSION_NAME_LENGTH (incl. NUL).
	SessionNameLength = 64
	// CmdBase ports LIVEUPDATE_CMD_BASE, the first /dev/liveupdate nr.
	CmdBase = 0x00
	// CmdSessionBase ports LIVEUPDATE_CMD_SESSION_BASE, the first session
	// ioctl nr.
	CmdSessionBase = 0x40
)

// ioctl nrs (enum in the uapi header).
const (
	CmdCreateSession     = CmdBase + 0
	CmdRetrieveSession   = CmdBase + 1
	CmdSessionPreserveFD = CmdSessionBase + 0
	CmdSessionRetrieveFD = CmdSessionBase + 1
	CmdSessionFinish     = CmdSessionBase + 2
	CmdSessionGetName    = CmdSessionBase + 3
)

// ioctlNR ports _IOC_NR(cmd).
func ioctlNR(cmd uint32) uint32 { return cmd & 0xff }

// Full ioctl command values: _IO(LIVEUPDATE_IOCTL_TYPE, nr), that is
// direction none and size 0, so type<<8 | nr.
const (
	IoctlCreateSession     uint32 = IoctlType<<8 | CmdCreateSession     // LIVEUPDATE_IOCTL_CREATE_SESSION
	IoctlRetrieveSession   uint32 = IoctlType<<8 | CmdRetrieveSession   // LIVEUPDATE_IOCTL_RETRIEVE_SESSION
	IoctlSessionPreserveFD uint32 = IoctlType<<8 | CmdSessionPreserveFD // LIVEUPDATE_SESSION_PRESERVE_FD
	IoctlSessionRetrieveFD uint32 = IoctlType<<8 | CmdSessionRetrieveFD // LIVEUPDATE_SESSION_RETRIEVE_FD
	IoctlSessionFinish     uint32 = IoctlType<<8 | CmdSessionFinish     // LIVEUPDATE_SESSION_FINISH
	IoctlSessionGetName    uint32 = IoctlType<<8 | CmdSessionGetName    // LIVEUPDATE_SESSION_GET_NAME
)

// Layout of struct liveupdate_ioctl_create_session and
// struct liveupdate_ioctl_retrieve_session (identical).
const (
	SessionArgOffSize = 0
	SessionArgOffFD   = 4
	SessionArgOffName = 8
	SessionArgSize    = 8 + SessionNameLength
)

// Layout of struct liveupdate_session_preserve_fd and
// struct liveupdate_session_retrieve_fd (identical; token is
// __aligned_u64).
const (
	FDArgOffSize  = 0
	FDArgOffFD    = 4
	FDArgOffToken = 8
	FDArgSize     = 16
)

// Layout of struct liveupdate_session_finish.
const (
	FinishArgOffSize     = 0
	FinishArgOffReserved = 4
	FinishArgSize        = 8
)

// Layout of struct liveupdate_session_get_name.
const (
	GetNameArgOffSize     = 0
	GetNameArgOffReserved = 4
	GetNameArgOffName     = 8
	GetNameArgSize        = 8 + SessionNameLength
)

// SessionArg is struct liveupdate_ioctl_create_session /
// liveupdate_ioctl_retrieve_session.
type SessionArg struct {
	Size uint32 // in: the caller's struct size
	FD   int32  // out: the session fd
	Name [SessionNameLength]byte
}

// Encode writes a into b[:SessionArgSize].
func (a *SessionArg) Encode(b []byte) {
	binary.LittleEndian.PutUint32(b[SessionArgOffSize:], a.Size)
	binary.LittleEndian.PutUint32(b[SessionArgOffFD:], uint32(a.FD))
	copy(b[SessionArgOffName:SessionArgOffName+SessionNameLength], a.Name[:])
}

// DecodeSessionArg reads b[:SessionArgSize].
func DecodeSessionArg(b []byte) SessionArg {
	var a SessionArg
	a.Size = binary.LittleEndian.Uint32(b[SessionArgOffSize:])
	a.FD = int32(binary.LittleEndian.Uint32(b[SessionArgOffFD:]))
	copy(a.Name[:], b[SessionArgOffName:])
	return a
}

// FDArg is struct liveupdate_session_preserve_fd /
// liveupdate_session_retrieve_fd.
type FDArg struct {
	Size  uint32
	FD    int32 // preserve: in; retrieve: out
	Token uint64
}

// Encode writes a into b[:FDArgSize].
func (a *FDArg) Encode(b []byte) {
	binary.LittleEndian.PutUint32(b[FDArgOffSize:], a.Size)
	binary.LittleEndian.PutUint32(b[FDArgOffFD:], uint32(a.FD))
	binary.LittleEndian.PutUint64(b[FDArgOffToken:], a.Token)
}

// DecodeFDArg reads b[:FDArgSize].
func DecodeFDArg(b []byte) FDArg {
	return FDArg{
		Size:  binary.LittleEndian.Uint32(b[FDArgOffSize:]),
		FD:    int32(binary.LittleEndian.Uint32(b[FDArgOffFD:])),
		Token: binary.LittleEndian.Uint64(b[FDArgOffToken:]),
	}
}

// FinishArg is struct liveupdate_session_finish.
type FinishArg struct {
	Size     uint32
	Reserved uint32 // must be 0 (M21)
}

// Encode writes a into b[:FinishArgSize].
func (a *FinishArg) Encode(b []byte) {
	binary.LittleEndian.PutUint32(b[FinishArgOffSize:], a.Size)
	binary.LittleEndian.PutUint32(b[FinishArgOffReserved:], a.Reserved)
}

// DecodeFinishArg reads b[:FinishArgSize].
func DecodeFinishArg(b []byte) FinishArg {
	return FinishArg{
		Size:     binary.LittleEndian.Uint32(b[FinishArgOffSize:]),
		Reserved: binary.LittleEndian.Uint32(b[FinishArgOffReserved:]),
	}
}

// GetNameArg is struct liveupdate_session_get_name.
type GetNameArg struct {
	Size     uint32
	Reserved uint32 // must be 0 (M22)
	Name     [SessionNameLength]byte
}

// Encode writes a into b[:GetNameArgSize].
func (a *GetNameArg) Encode(b []byte) {
	binary.LittleEndian.PutUint32(b[GetNameArgOffSize:], a.Size)
	binary.LittleEndian.PutUint32(b[GetNameArgOffReserved:], a.Reserved)
	copy(b[GetNameArgOffName:GetNameArgOffName+SessionNameLength], a.Name[:])
}

// DecodeGetNameArg reads b[:GetNameArgSize].
func DecodeGetNameArg(b []byte) GetNameArg {
	var a GetNameArg
	a.Size = binary.LittleEndian.Uint32(b[GetNameArgOffSize:])
	a.Reserved = binary.LittleEndian.Uint32(b[GetNameArgOffReserved:])
	copy(a.Name[:], b[GetNameArgOffName:])
	return a
}

// uapiLayouts are the uapi argument structs, for the gcc layout test.
var uapiLayouts = []structLayout{
	{
		C: "struct liveupdate_ioctl_create_session",
		Def: "struct liveupdate_ioctl_create_session { __u32 size; __s32 fd; " +
			"__u8 name[LIVEUPDATE_SESSION_NAME_LENGTH]; };",
		Size:   SessionArgSize,
		Fields: []fieldLayout{{"size", SessionArgOffSize}, {"fd", SessionArgOffFD}, {"name", SessionArgOffName}},
	},
	{
		C: "struct liveupdate_ioctl_retrieve_session",
		Def: "struct liveupdate_ioctl_retrieve_session { __u32 size; __s32 fd; " +
			"__u8 name[LIVEUPDATE_SESSION_NAME_LENGTH]; };",
		Size:   SessionArgSize,
		Fields: []fieldLayout{{"size", SessionArgOffSize}, {"fd", SessionArgOffFD}, {"name", SessionArgOffName}},
	},
	{
		C:      "struct liveupdate_session_preserve_fd",
		Def:    "struct liveupdate_session_preserve_fd { __u32 size; __s32 fd; __aligned_u64 token; };",
		Size:   FDArgSize,
		Fields: []fieldLayout{{"size", FDArgOffSize}, {"fd", FDArgOffFD}, {"token", FDArgOffToken}},
	},
	{
		C:      "struct liveupdate_session_retrieve_fd",
		Def:    "struct liveupdate_session_retrieve_fd { __u32 size; __s32 fd; __aligned_u64 token; };",
		Size:   FDArgSize,
		Fields: []fieldLayout{{"size", FDArgOffSize}, {"fd", FDArgOffFD}, {"token", FDArgOffToken}},
	},
	{
		C:      "struct liveupdate_session_finish",
		Def:    "struct liveupdate_session_finish { __u32 size; __u32 reserved; };",
		Size:   FinishArgSize,
		Fields: []fieldLayout{{"size", FinishArgOffSize}, {"reserved", FinishArgOffReserved}},
	},
	{
		C: "struct liveupdate_session_get_name",
		Def: "struct liveupdate_session_get_name { __u32 size; __u32 reserved; " +
			"__u8 name[LIVEUPDATE_SESSION_NAME_LENGTH]; };",
		Size:   GetNameArgSize,
		Fields: []fieldLayout{{"size", GetNameArgOffSize}, {"reserved", GetNameArgOffReserved}, {"name", GetNameArgOffName}},
	},
}

// ioctlLayouts are the ioctl command values, for the gcc test (_IO()).
var ioctlLayouts = []struct {
	C   string
	Nr  uint32
	Cmd uint32
}{
	{"LIVEUPDATE_IOCTL_CREATE_SESSION", CmdCreateSession, IoctlCreateSession},
	{"LIVEUPDATE_IOCTL_RETRIEVE_SESSION", CmdRetrieveSession, IoctlRetrieveSession},
	{"LIVEUPDATE_SESSION_PRESERVE_FD", CmdSessionPreserveFD, IoctlSessionPreserveFD},
	{"LIVEUPDATE_SESSION_RETRIEVE_FD", CmdSessionRetrieveFD, IoctlSessionRetrieveFD},
	{"LIVEUPDATE_SESSION_FINISH", CmdSessionFinish, IoctlSessionFinish},
	{"LIVEUPDATE_SESSION_GET_NAME", CmdSessionGetName, IoctlSessionGetName},
}
