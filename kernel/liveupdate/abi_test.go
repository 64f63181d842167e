package liveupdate

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/mm"
)

// TestABILayoutMatchesGCC compiles the C definitions of the hand-over ABI
// (include/linux/kho/abi/luo.h) and of the uapi (include/uapi/linux/
// liveupdate.h) with gcc and compares every size, offset and ioctl number
// with the Go encoding.
func TestABILayoutMatchesGCC(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		if os.Getenv("LUOMODEL_REQUIRE_GCC") == "1" {
			t.Fatalf("gcc required (LUOMODEL_REQUIRE_GCC=1) but not found: %v", err)
		}
		t.Skip("gcc not found")
	}

	var src strings.Builder
	src.WriteString("#include <stddef.h>\n#include <stdio.h>\n#include <linux/ioctl.h>\n#include <linux/types.h>\n")
	fmt.Fprintf(&src, "#define LIVEUPDATE_IOCTL_TYPE 0x%X\n", IoctlType)
	fmt.Fprintf(&src, "#define LIVEUPDATE_SESSION_NAME_LENGTH %d\n", SessionNameLength)
	fmt.Fprintf(&src, "#define LIVEUPDATE_HNDL_COMPAT_LENGTH %d\n", HandlerCompatLength)
	fmt.Fprintf(&src, "#define LIVEUPDATE_FLB_COMPAT_LENGTH %d\n", FLBCompatLength)
	src.WriteString("#define LIVEUPDATE_CMD_BASE 0x00\n#define LIVEUPDATE_CMD_SESSION_BASE 0x40\n")
	src.WriteString(`enum {
	LIVEUPDATE_CMD_CREATE_SESSION = LIVEUPDATE_CMD_BASE,
	LIVEUPDATE_CMD_RETRIEVE_SESSION = 0x01,
};
enum {
	LIVEUPDATE_CMD_SESSION_PRESERVE_FD = LIVEUPDATE_CMD_SESSION_BASE,
	LIVEUPDATE_CMD_SESSION_RETRIEVE_FD = 0x41,
	LIVEUPDATE_CMD_SESSION_FINISH = 0x42,
	LIVEUPDATE_CMD_SESSION_GET_NAME = 0x43,
};
#define LIVEUPDATE_IOCTL_CREATE_SESSION _IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_CREATE_SESSION)
#define LIVEUPDATE_IOCTL_RETRIEVE_SESSION _IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_RETRIEVE_SESSION)
#define LIVEUPDATE_SESSION_PRESERVE_FD _IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_SESSION_PRESERVE_FD)
#define LIVEUPDATE_SESSION_RETRIEVE_FD _IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_SESSION_RETRIEVE_FD)
#define LIVEUPDATE_SESSION_FINISH _IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_SESSION_FINISH)
#define LIVEUPDATE_SESSION_GET_NAME _IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_SESSION_GET_NAME)
`)
	layouts := append(append([]structLayout{}, abiLayouts...), uapiLayouts...)
	for _, l := range layouts {
		src.WriteString(l.Def + "\n")
	}
	// luo_session.c / luo_file.c limits, computed by the C expressions.
	src.WriteString("#define PAGE_SHIFT 12\n")
	src.WriteString("#define LUO_SESSION_PGCNT 16ul\n")
	src.WriteString("#define LUO_SESSION_MAX (((LUO_SESSION_PGCNT << PAGE_SHIFT) - sizeof(struct luo_session_header_ser)) / sizeof(struct luo_session_ser))\n")
	src.WriteString("#define LUO_FILE_PGCNT 2ul\n")
	src.WriteString("#define LUO_FILE_MAX ((LUO_FILE_PGCNT << PAGE_SHIFT) / sizeof(struct luo_file_ser))\n")
	src.WriteString("#define LUO_FLB_PGCNT 1ul\n")
	src.WriteString("#define LUO_FLB_MAX (((LUO_FLB_PGCNT << PAGE_SHIFT) - sizeof(struct luo_flb_header_ser)) / sizeof(struct luo_flb_ser))\n")
	src.WriteString("int main(void) {\n")
	want := map[string]uint64{}
	for _, l := range layouts {
		key := "size " + l.C
		fmt.Fprintf(&src, "\tprintf(\"%s %%zu\\n\", sizeof(%s));\n", key, l.C)
		want[key] = uint64(l.Size)
		for _, f := range l.Fields {
			key := "off " + l.C + " " + f.Name
			fmt.Fprintf(&src, "\tprintf(\"%s %%zu\\n\", offsetof(%s, %s));\n", key, l.C, f.Name)
			want[key] = uint64(f.Off)
		}
	}
	for _, io := range ioctlLayouts {
		key := "ioctl " + io.C
		fmt.Fprintf(&src, "\tprintf(\"%s %%lu\\n\", (unsigned long)%s);\n", key, io.C)
		want[key] = uint64(io.Cmd)
		key = "nr " + io.C
		fmt.Fprintf(&src, "\tprintf(\"%s %%lu\\n\", (unsigned long)_IOC_NR(%s));\n", key, io.C)
		want[key] = uint64(io.Nr)
	}
	src.WriteString("\tprintf(\"max LUO_SESSION_MAX %lu\\n\", (unsigned long)LUO_SESSION_MAX);\n")
	want["max LUO_SESSION_MAX"] = SessionMax
	src.WriteString("\tprintf(\"max LUO_FILE_MAX %lu\\n\", (unsigned long)LUO_FILE_MAX);\n")
	want["max LUO_FILE_MAX"] = FileMax
	src.WriteString("\tprintf(\"max LUO_FLB_MAX %lu\\n\", (unsigned long)LUO_FLB_MAX);\n")
	want["max LUO_FLB_MAX"] = FLBMax
	src.WriteString("\treturn 0;\n}\n")

	dir := t.TempDir()
	cfile := filepath.Join(dir, "layout.c")
	bin := filepath.Join(dir, "layout")
	require.NoError(t, os.WriteFile(cfile, []byte(src.String()), 0o644))
	out, err := exec.Command(gcc, "-Wall", "-Werror", "-o", bin, cfile).CombinedOutput()
	require.NoError(t, err, "gcc: %s\n%s", out, src.String())
	out, err = exec.Command(bin).Output()
	require.NoError(t, err)

	got := map[string]uint64{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		i := strings.LastIndexByte(line, ' ')
		require.Positive(t, i, "line %q", line)
		v, err := strconv.ParseUint(line[i+1:], 10, 64)
		require.NoError(t, err, "line %q", line)
		got[line[:i]] = v
	}
	require.Equal(t, want, got)
	require.Equal(t, 819, SessionMax)
	require.Equal(t, 128, FileMax)
	require.Equal(t, 63, FLBMax)
}

// TestABIEncodeDecodeRoundTrip checks that Encode and Decode are inverse and
// write exactly the documented bytes.
func TestABIEncodeDecodeRoundTrip(t *testing.T) {
	s := SessionSer{FileSetSer: FileSetSer{Files: 0x1122334455667788, Count: 3}}
	copy(s.Name[:], "vm1")
	b := make([]byte, SessionSerSize)
	s.Encode(b)
	require.Equal(t, byte('v'), b[0])
	require.Equal(t, byte(0x88), b[SessionSerOffFileSetSer])
	require.Equal(t, byte(3), b[SessionSerOffFileSetSer+FileSetSerOffCount])
	require.Equal(t, s, DecodeSessionSer(b))

	f := FileSer{Data: 7, Token: 0xdeadbeef}
	copy(f.Compatible[:], "memfd-v1")
	b = make([]byte, FileSerSize)
	f.Encode(b)
	require.Equal(t, byte(7), b[FileSerOffData])
	require.Equal(t, f, DecodeFileSer(b))

	h := SessionHeaderSer{Count: 819}
	b = make([]byte, SessionHeaderSerSize)
	h.Encode(b)
	require.Equal(t, h, DecodeSessionHeaderSer(b))

	a := SessionArg{Size: SessionArgSize, FD: -1}
	copy(a.Name[:], "x")
	b = make([]byte, SessionArgSize)
	a.Encode(b)
	require.Equal(t, a, DecodeSessionArg(b))

	fa := FDArg{Size: FDArgSize, FD: 3, Token: 9}
	b = make([]byte, FDArgSize)
	fa.Encode(b)
	require.Equal(t, fa, DecodeFDArg(b))

	fi := FinishArg{Size: FinishArgSize, Reserved: 1}
	b = make([]byte, FinishArgSize)
	fi.Encode(b)
	require.Equal(t, fi, DecodeFinishArg(b))

	gn := GetNameArg{Size: GetNameArgSize}
	copy(gn.Name[:], "n")
	b = make([]byte, GetNameArgSize)
	gn.Encode(b)
	require.Equal(t, gn, DecodeGetNameArg(b))

	fh := FLBHeaderSer{Pgcnt: FLBPgcnt, Count: 63}
	b = make([]byte, FLBHeaderSerSize)
	fh.Encode(b)
	require.Equal(t, byte(1), b[FLBHeaderSerOffPgcnt])
	require.Equal(t, byte(63), b[FLBHeaderSerOffCount])
	require.Equal(t, fh, DecodeFLBHeaderSer(b))

	fs := FLBSer{Data: 0xFEEDF00DCAFEBEE0, Count: 2}
	copy(fs.Name[:], "liveupdate-test-flb-v0")
	b = make([]byte, FLBSerSize)
	fs.Encode(b)
	require.Equal(t, byte('l'), b[FLBSerOffName])
	require.Equal(t, byte(0xE0), b[FLBSerOffData])
	require.Equal(t, byte(2), b[FLBSerOffCount])
	require.Equal(t, fs, DecodeFLBSer(b))
	require.Equal(t, mm.PhysAddr(0x1000+16+64), flbSerPA(0x1000, 1))

	require.Equal(t, uint32(0xBA00), IoctlCreateSession)
	require.Equal(t, uint32(0xBA43), IoctlSessionGetName)
}

func TestPrintableBoundsUntrustedStrings(t *testing.T) {
	var name [8]byte
	copy(name[:], "ab\ncdefg")
	require.Equal(t, `ab\x0acdefg`, printable(name[:]))
	_, ok := cString(name[:])
	require.False(t, ok)
	s, ok := cString([]byte("ab\x00cd"))
	require.True(t, ok)
	require.Equal(t, "ab", s)
}
