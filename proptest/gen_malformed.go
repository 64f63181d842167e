package proptest

import (
	"encoding/binary"

	"luomodel/model"
)

var malformedCmds = []uint32{
	model.IoctlCreateSession, model.IoctlRetrieveSession,
	model.IoctlSessionPreserveFD, model.IoctlSessionRetrieveFD,
	model.IoctlSessionFinish, model.IoctlSessionGetName,
	0xBA02, 0xBA3F, 0xBA44, 0xBAFF, // unknown numbers
	0xBB00, 0xBB40, 0xB941, // wrong type byte
	0xC048BA00, 0x4010BA40, // direction and size bits set
}

// oversize is the largest size field: the kernel must fault (EFAULT)
// without reading past the buffer, and without allocating what the field
// claims (the port once allocated 4 GiB here, stalling campaigns for
// seconds per call; fixed in 11895d8).
const oversize = 0xFFFFFFFF

// malformedIoctl sends a LUO ioctl with a broken buffer or command to a
// device, session or other fd.
func malformedIoctl(c *Ctx) bool {
	target := pick(c.Src, "target", []model.FileKind{model.KindDevice, model.KindSession, model.KindMemfd, model.KindNull})
	op, ok := c.fileOp(model.OpIoctl, kindIs(target))
	if !ok {
		return false
	}
	op.Cmd = pick(c.Src, "cmd", malformedCmds)
	var base []byte
	switch op.Cmd & 0xff {
	case 0x00, 0x01:
		base = model.SessionArgBuf(pick(c.Src, "name", SessionNames))
	case 0x40, 0x41:
		base = model.FDArgBuf(0, pick(c.Src, "token", tokens))
	case 0x42:
		base = model.FinishArgBuf(0)
	default:
		base = model.GetNameArgBuf(0)
	}
	size := uint32(len(base))
	switch c.Src.Intn(8, "malformation") {
	case 0: // well-formed (with a wrong cmd, often)
	case 1: // shorter than the size field
		base = base[:c.Src.Intn(4, "short len")]
	case 2: // size below the minimum
		binary.LittleEndian.PutUint32(base, size-1-uint32(c.Src.Intn(int(size)-1, "smaller")))
	case 3: // longer, zero tail
		base = append(base, make([]byte, 8)...)
		binary.LittleEndian.PutUint32(base, size+8)
	case 4: // longer, non-zero tail
		base = append(base, make([]byte, 8)...)
		base[len(base)-1-c.Src.Intn(8, "tail byte")] = 0x5A
		binary.LittleEndian.PutUint32(base, size+8)
	case 5: // size beyond the buffer
		binary.LittleEndian.PutUint32(base, size+uint32(1+c.Src.Intn(64, "over")))
	case 6: // size far beyond the buffer
		binary.LittleEndian.PutUint32(base, oversize)
	case 7: // size zero
		binary.LittleEndian.PutUint32(base, 0)
	}
	op.Buf = base
	c.Do(op)
	return true
}
