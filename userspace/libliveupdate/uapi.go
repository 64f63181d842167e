package libliveupdate

import "encoding/binary"

// The uapi of /dev/liveupdate (include/uapi/linux/liveupdate.h), as
// userspace sees it.
const (
	// IoctlType is LIVEUPDATE_IOCTL_TYPE.
	IoctlType = 0xBA
	// SessionNameLength is LIVEUPDATE_SESSION_NAME_LENGTH, including the NUL.
	SessionNameLength = 64

	// CmdBase is LIVEUPDATE_CMD_BASE: the device's ioctl numbers.
	CmdBase = 0x00
	// CmdSessionBase is LIVEUPDATE_CMD_SESSION_BASE: a session fd's numbers.
	CmdSessionBase = 0x40
)

// Ioctl command values. LUO uses _IO(type, nr): no direction, no size.
const (
	IoctlCreateSession   = IoctlType<<8 | (CmdBase + 0)        // LIVEUPDATE_IOCTL_CREATE_SESSION
	IoctlRetrieveSession = IoctlType<<8 | (CmdBase + 1)        // LIVEUPDATE_IOCTL_RETRIEVE_SESSION
	SessionPreserveFD    = IoctlType<<8 | (CmdSessionBase + 0) // LIVEUPDATE_SESSION_PRESERVE_FD
	SessionRetrieveFD    = IoctlType<<8 | (CmdSessionBase + 1) // LIVEUPDATE_SESSION_RETRIEVE_FD
	SessionFinish        = IoctlType<<8 | (CmdSessionBase + 2) // LIVEUPDATE_SESSION_FINISH
	SessionGetName       = IoctlType<<8 | (CmdSessionBase + 3) // LIVEUPDATE_SESSION_GET_NAME
)

// Sizes of the uapi structs (sizeof in C).
const (
	SizeofCreateSession   = 72 // struct liveupdate_ioctl_create_session
	SizeofRetrieveSession = 72 // struct liveupdate_ioctl_retrieve_session
	SizeofPreserveFD      = 16 // struct liveupdate_session_preserve_fd
	SizeofRetrieveFD      = 16 // struct liveupdate_session_retrieve_fd
	SizeofFinish          = 8  // struct liveupdate_session_finish
	SizeofGetName         = 72 // struct liveupdate_session_get_name
)

var le = binary.LittleEndian

// SessionArgs is struct liveupdate_ioctl_create_session and its twin
// struct liveupdate_ioctl_retrieve_session: {u32 size @0; s32 fd @4;
// u8 name[64] @8}.
type SessionArgs struct {
	Size uint32
	FD   int32
	Name [SessionNameLength]byte
}

// Marshal encodes a into the 72-byte user struct.
func (a *SessionArgs) Marshal() []byte {
	b := make([]byte, SizeofCreateSession)
	le.PutUint32(b[0:], a.Size)
	le.PutUint32(b[4:], uint32(a.FD))
	copy(b[8:], a.Name[:])
	return b
}

// Unmarshal decodes b (at least 72 bytes) into a.
func (a *SessionArgs) Unmarshal(b []byte) {
	a.Size = le.Uint32(b[0:])
	a.FD = int32(le.Uint32(b[4:]))
	copy(a.Name[:], b[8:8+SessionNameLength])
}

// PreserveFDArgs is struct liveupdate_session_preserve_fd and its twin
// struct liveupdate_session_retrieve_fd: {u32 size @0; s32 fd @4;
// aligned u64 token @8}.
type PreserveFDArgs struct {
	Size  uint32
	FD    int32
	Token uint64
}

// Marshal encodes a into the 16-byte user struct.
func (a *PreserveFDArgs) Marshal() []byte {
	b := make([]byte, SizeofPreserveFD)
	le.PutUint32(b[0:], a.Size)
	le.PutUint32(b[4:], uint32(a.FD))
	le.PutUint64(b[8:], a.Token)
	return b
}

// Unmarshal decodes b (at least 16 bytes) into a.
func (a *PreserveFDArgs) Unmarshal(b []byte) {
	a.Size = le.Uint32(b[0:])
	a.FD = int32(le.Uint32(b[4:]))
	a.Token = le.Uint64(b[8:])
}

// FinishArgs is struct liveupdate_session_finish: {u32 size @0;
// u32 reserved @4}.
type FinishArgs struct {
	Size     uint32
	Reserved uint32
}

// Marshal encodes a into the 8-byte user struct.
func (a *FinishArgs) Marshal() []byte {
	b := make([]byte, SizeofFinish)
	le.PutUint32(b[0:], a.Size)
	le.PutUint32(b[4:], a.Reserved)
	return b
}

// GetNameArgs is struct liveupdate_session_get_name: {u32 size @0;
// u32 reserved @4; u8 name[64] @8}.
type GetNameArgs struct {
	Size     uint32
	Reserved uint32
	Name     [SessionNameLength]byte
}

// Marshal encodes a into the 72-byte user struct.
func (a *GetNameArgs) Marshal() []byte {
	b := make([]byte, SizeofGetName)
	le.PutUint32(b[0:], a.Size)
	le.PutUint32(b[4:], a.Reserved)
	copy(b[8:], a.Name[:])
	return b
}

// Unmarshal decodes b (at least 72 bytes) into a.
func (a *GetNameArgs) Unmarshal(b []byte) {
	a.Size = le.Uint32(b[0:])
	a.Reserved = le.Uint32(b[4:])
	copy(a.Name[:], b[8:8+SessionNameLength])
}

// cString returns the bytes of b up to its first NUL (all of b if none).
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// nameField ports the selftests' snprintf("%.*s", 63, name): at most 63
// bytes of name, NUL-terminated.
func nameField(name string) [SessionNameLength]byte {
	var f [SessionNameLength]byte
	copy(f[:SessionNameLength-1], name)
	return f
}
