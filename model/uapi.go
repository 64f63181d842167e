package model

import "encoding/binary"

// The uapi of include/uapi/linux/liveupdate.h, restated here because the
// model imports nothing of the port.
const (
	IoctlType         = 0xBA
	SessionNameLength = 64
	CmdSessionBase    = 0x40

	IoctlCreateSession     uint32 = IoctlType << 8
	IoctlRetrieveSession   uint32 = IoctlType<<8 | 0x01
	IoctlSessionPreserveFD uint32 = IoctlType<<8 | 0x40
	IoctlSessionRetrieveFD uint32 = IoctlType<<8 | 0x41
	IoctlSessionFinish     uint32 = IoctlType<<8 | 0x42
	IoctlSessionGetName    uint32 = IoctlType<<8 | 0x43

	SizeofSessionArg = 72 // create/retrieve session
	SizeofFDArg      = 16 // preserve/retrieve fd
	SizeofFinishArg  = 8
	SizeofGetNameArg = 72
)

// Limits of the reference profile.
const (
	SessionMax = 819  // LUO_SESSION_MAX: CREATE_SESSION beyond -> ENOMEM
	FileMax    = 128  // LUO_FILE_MAX: PRESERVE_FD beyond -> ENOSPC
	NRFileMax  = 1024 // RLIMIT_NOFILE of a new task
	PageSize   = 4096
	// MemfdNameMax is MFD_NAME_MAX_LEN: NAME_MAX - strlen("memfd:").
	MemfdNameMax = 249
	// MemfdCompatible is the memfd handler's compatible string.
	MemfdCompatible = "memfd-v1"
)

// Open flags and memfd_create flags (Linux values).
const (
	ORdonly  = 0x0
	OWronly  = 0x1
	ORdwr    = 0x2
	OAccmode = 0x3
	OCloexec = 0x80000

	MfdCloexec      = 0x1
	MfdAllowSealing = 0x2
	MfdNoexecSeal   = 0x8
	MfdExec         = 0x10
	mfdAllFlags     = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0xfc000000
	mfdHugetlb      = 0x4

	// File seals (F_SEAL_*).
	SealSeal        = 0x1
	SealShrink      = 0x2
	SealGrow        = 0x4
	SealWrite       = 0x8
	SealFutureWrite = 0x10
	SealExec        = 0x20
	sealsAll        = 0x3f

	SeekSet  = 0
	SeekCur  = 1
	SeekEnd  = 2
	SeekData = 3
	SeekHole = 4
	seekMax  = SeekHole
)

// Paths user space can open.
const (
	DevLiveUpdate = "/dev/liveupdate"
	DevNull       = "/dev/null"
)

// SessionArgBuf returns the 72-byte create/retrieve-session buffer for name
// (copied into the 64-byte field, truncated, NUL-padded).
func SessionArgBuf(name string) []byte {
	b := make([]byte, SizeofSessionArg)
	binary.LittleEndian.PutUint32(b, SizeofSessionArg)
	copy(b[8:8+SessionNameLength], name)
	return b
}

// FDArgBuf returns the 16-byte preserve/retrieve-fd buffer.
func FDArgBuf(fd int32, token uint64) []byte {
	b := make([]byte, SizeofFDArg)
	binary.LittleEndian.PutUint32(b, SizeofFDArg)
	binary.LittleEndian.PutUint32(b[4:], uint32(fd))
	binary.LittleEndian.PutUint64(b[8:], token)
	return b
}

// FinishArgBuf returns the 8-byte finish buffer.
func FinishArgBuf(reserved uint32) []byte {
	b := make([]byte, SizeofFinishArg)
	binary.LittleEndian.PutUint32(b, SizeofFinishArg)
	binary.LittleEndian.PutUint32(b[4:], reserved)
	return b
}

// GetNameArgBuf returns the 72-byte get-name buffer.
func GetNameArgBuf(reserved uint32) []byte {
	b := make([]byte, SizeofGetNameArg)
	binary.LittleEndian.PutUint32(b, SizeofGetNameArg)
	binary.LittleEndian.PutUint32(b[4:], reserved)
	return b
}

// IoctlName names a LUO ioctl command, or returns "" for other values.
func IoctlName(cmd uint32) string {
	switch cmd {
	case IoctlCreateSession:
		return "LIVEUPDATE_IOCTL_CREATE_SESSION"
	case IoctlRetrieveSession:
		return "LIVEUPDATE_IOCTL_RETRIEVE_SESSION"
	case IoctlSessionPreserveFD:
		return "LIVEUPDATE_SESSION_PRESERVE_FD"
	case IoctlSessionRetrieveFD:
		return "LIVEUPDATE_SESSION_RETRIEVE_FD"
	case IoctlSessionFinish:
		return "LIVEUPDATE_SESSION_FINISH"
	case IoctlSessionGetName:
		return "LIVEUPDATE_SESSION_GET_NAME"
	}
	return ""
}
