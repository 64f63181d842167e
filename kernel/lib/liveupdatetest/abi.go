package liveupdatetest

import (
	"encoding/binary"
	"strconv"

	"luomodel/kernel/mm"
)

// Names and limits of the test module.
const (
	// ModuleName is the loadable module's name (init_module/delete_module).
	ModuleName = "liveupdate_test"
	// DeviceName is the misc device: /dev/liveupdate_test.
	DeviceName = "liveupdate_test"
	// DevicePath is the device's path for open(2).
	DevicePath = "/dev/" + DeviceName
	// Compatible is the test file handler's compatible string.
	Compatible = "liveupdate-test-v1"
	// NumFLBs is the number of test FLBs the handler depends on.
	NumFLBs = 2
	// PayloadMax is the largest payload of a test file: the rest of one
	// page after the serialized header.
	PayloadMax = mm.PageSize - SerOffPayload
	// FLBStateMax is the largest state of a test FLB.
	FLBStateMax = mm.PageSize - FLBSerOffState
	// IoctlGetID is _IOR('L', 1, __u64): the test file's id.
	IoctlGetID = 2<<30 | 8<<16 | 'L'<<8 | 1
)

// FLBCompatible ports LIVEUPDATE_TEST_FLB_COMPATIBLE(i).
func FLBCompatible(i int) string { return "liveupdate-test-flb-v" + strconv.Itoa(i) }

// Magic words of the serialized structs.
const (
	SerMagic    = 0x31545345544f554c // "LUOTEST1", little-endian
	FLBSerMagic = 0xFEEDF00DCAFEBEE0 // TEST_FLB_MAGIC_BASE of lib/tests/liveupdate.c; + index
)

// Layout of struct liveupdate_test_ser { u64 magic; u64 id; u64 size;
// u64 pos; u8 payload[]; } __packed, one preserved page per file; its PA is
// the file's serialized data.
const (
	SerOffMagic   = 0
	SerOffID      = 8
	SerOffSize    = 16
	SerOffPos     = 24
	SerOffPayload = 32
)

// Ser is struct liveupdate_test_ser, decoded.
type Ser struct {
	Magic, ID, Size, Pos uint64
	Payload              []byte
}

// Encode writes s into b (at least SerOffPayload+len(Payload) bytes).
func (s *Ser) Encode(b []byte) {
	binary.LittleEndian.PutUint64(b[SerOffMagic:], s.Magic)
	binary.LittleEndian.PutUint64(b[SerOffID:], s.ID)
	binary.LittleEndian.PutUint64(b[SerOffSize:], s.Size)
	binary.LittleEndian.PutUint64(b[SerOffPos:], s.Pos)
	copy(b[SerOffPayload:], s.Payload)
}

// DecodeSer reads a page; the payload is bounded by PayloadMax.
func DecodeSer(b []byte) Ser {
	s := Ser{
		Magic: binary.LittleEndian.Uint64(b[SerOffMagic:]),
		ID:    binary.LittleEndian.Uint64(b[SerOffID:]),
		Size:  binary.LittleEndian.Uint64(b[SerOffSize:]),
		Pos:   binary.LittleEndian.Uint64(b[SerOffPos:]),
	}
	if s.Size <= PayloadMax && SerOffPayload+s.Size <= uint64(len(b)) {
		s.Payload = append([]byte(nil), b[SerOffPayload:SerOffPayload+s.Size]...)
	}
	return s
}

// Layout of struct liveupdate_test_flb_ser { u64 magic; u64 index;
// u64 len; u8 state[]; } __packed, one preserved page per preserved FLB;
// its PA is the FLB's data.
const (
	FLBSerOffMagic = 0
	FLBSerOffIndex = 8
	FLBSerOffLen   = 16
	FLBSerOffState = 24
)

// FLBSer is struct liveupdate_test_flb_ser, decoded.
type FLBSer struct {
	Magic, Index, Len uint64
	State             []byte
}

// Encode writes s into b.
func (s *FLBSer) Encode(b []byte) {
	binary.LittleEndian.PutUint64(b[FLBSerOffMagic:], s.Magic)
	binary.LittleEndian.PutUint64(b[FLBSerOffIndex:], s.Index)
	binary.LittleEndian.PutUint64(b[FLBSerOffLen:], s.Len)
	copy(b[FLBSerOffState:], s.State)
}

// DecodeFLBSer reads a page; the state is bounded by FLBStateMax.
func DecodeFLBSer(b []byte) FLBSer {
	s := FLBSer{
		Magic: binary.LittleEndian.Uint64(b[FLBSerOffMagic:]),
		Index: binary.LittleEndian.Uint64(b[FLBSerOffIndex:]),
		Len:   binary.LittleEndian.Uint64(b[FLBSerOffLen:]),
	}
	if s.Len <= FLBStateMax && FLBSerOffState+s.Len <= uint64(len(b)) {
		s.State = append([]byte(nil), b[FLBSerOffState:FLBSerOffState+s.Len]...)
	}
	return s
}
