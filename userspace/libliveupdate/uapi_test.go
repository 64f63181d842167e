package libliveupdate

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestUapiCommandValues(t *testing.T) {
	require.Equal(t, 0xBA00, IoctlCreateSession)
	require.Equal(t, 0xBA01, IoctlRetrieveSession)
	require.Equal(t, 0xBA40, SessionPreserveFD)
	require.Equal(t, 0xBA41, SessionRetrieveFD)
	require.Equal(t, 0xBA42, SessionFinish)
	require.Equal(t, 0xBA43, SessionGetName)
}

func TestUapiEncoding(t *testing.T) {
	s := SessionArgs{Size: SizeofCreateSession, FD: -1, Name: nameField("abc")}
	b := s.Marshal()
	require.Len(t, b, 72)
	require.Equal(t, []byte{72, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 'a', 'b', 'c', 0}, b[:12])
	var s2 SessionArgs
	s2.Unmarshal(b)
	require.Equal(t, s, s2)

	p := PreserveFDArgs{Size: SizeofPreserveFD, FD: 3, Token: 0x0102030405060708}
	b = p.Marshal()
	require.Equal(t, []byte{16, 0, 0, 0, 3, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1}, b)
	var p2 PreserveFDArgs
	p2.Unmarshal(b)
	require.Equal(t, p, p2)

	f := FinishArgs{Size: SizeofFinish, Reserved: 9}
	require.Equal(t, []byte{8, 0, 0, 0, 9, 0, 0, 0}, f.Marshal())

	g := GetNameArgs{Size: SizeofGetName, Name: nameField("n")}
	b = g.Marshal()
	require.Len(t, b, 72)
	var g2 GetNameArgs
	g2.Unmarshal(b)
	require.Equal(t, g, g2)
}

func TestNameFieldTruncates(t *testing.T) {
	long := strings.Repeat("x", 100)
	f := nameField(long)
	require.Equal(t, strings.Repeat("x", 63), cString(f[:]))
	require.Equal(t, byte(0), f[63])
}

func TestAtoi(t *testing.T) {
	require.Equal(t, 2, atoi([]byte("2\x00")))
	require.Equal(t, 123, atoi([]byte("123abc")))
	require.Equal(t, 0, atoi([]byte("x")))
}

// uapiC is include/uapi/linux/liveupdate.h's structs (6.19 + GET_NAME),
// written from the uapi header's layout.
const uapiC = `
#include <stdio.h>
#include <stddef.h>
#include <linux/types.h>
#include <linux/ioctl.h>
#define LIVEUPDATE_IOCTL_TYPE 0xBA
#define LIVEUPDATE_SESSION_NAME_LENGTH 64
struct liveupdate_ioctl_create_session { __u32 size; __s32 fd; __u8 name[LIVEUPDATE_SESSION_NAME_LENGTH]; };
struct liveupdate_ioctl_retrieve_session { __u32 size; __s32 fd; __u8 name[LIVEUPDATE_SESSION_NAME_LENGTH]; };
struct liveupdate_session_preserve_fd { __u32 size; __s32 fd; __aligned_u64 token; };
struct liveupdate_session_retrieve_fd { __u32 size; __s32 fd; __aligned_u64 token; };
struct liveupdate_session_finish { __u32 size; __u32 reserved; };
struct liveupdate_session_get_name { __u32 size; __u32 reserved; __u8 name[LIVEUPDATE_SESSION_NAME_LENGTH]; };
#define P(s) printf(#s " %zu\n", sizeof(struct s))
#define O(s, f) printf(#s "." #f " %zu\n", offsetof(struct s, f))
int main(void) {
	P(liveupdate_ioctl_create_session); O(liveupdate_ioctl_create_session, fd); O(liveupdate_ioctl_create_session, name);
	P(liveupdate_ioctl_retrieve_session); O(liveupdate_ioctl_retrieve_session, name);
	P(liveupdate_session_preserve_fd); O(liveupdate_session_preserve_fd, fd); O(liveupdate_session_preserve_fd, token);
	P(liveupdate_session_retrieve_fd); O(liveupdate_session_retrieve_fd, token);
	P(liveupdate_session_finish); O(liveupdate_session_finish, reserved);
	P(liveupdate_session_get_name); O(liveupdate_session_get_name, reserved); O(liveupdate_session_get_name, name);
	printf("CREATE %u\n", (unsigned)_IO(LIVEUPDATE_IOCTL_TYPE, 0x00));
	printf("GET_NAME %u\n", (unsigned)_IO(LIVEUPDATE_IOCTL_TYPE, 0x43));
	return 0;
}
`

// TestUapiLayoutMatchesGCC compiles the uapi structs with gcc and compares
// every size and offset with this package's encoding.
func TestUapiLayoutMatchesGCC(t *testing.T) {
	got := compileAndRun(t, uapiC)
	want := map[string]int{
		"liveupdate_ioctl_create_session":        SizeofCreateSession,
		"liveupdate_ioctl_create_session.fd":     4,
		"liveupdate_ioctl_create_session.name":   8,
		"liveupdate_ioctl_retrieve_session":      SizeofRetrieveSession,
		"liveupdate_ioctl_retrieve_session.name": 8,
		"liveupdate_session_preserve_fd":         SizeofPreserveFD,
		"liveupdate_session_preserve_fd.fd":      4,
		"liveupdate_session_preserve_fd.token":   8,
		"liveupdate_session_retrieve_fd":         SizeofRetrieveFD,
		"liveupdate_session_retrieve_fd.token":   8,
		"liveupdate_session_finish":              SizeofFinish,
		"liveupdate_session_finish.reserved":     4,
		"liveupdate_session_get_name":            SizeofGetName,
		"liveupdate_session_get_name.reserved":   4,
		"liveupdate_session_get_name.name":       8,
		"CREATE":                                 IoctlCreateSession,
		"GET_NAME":                               SessionGetName,
	}
	require.Equal(t, want, got)
}

// compileAndRun builds a C program with gcc and parses its "name value"
// lines. It skips when gcc is not installed.
func compileAndRun(t *testing.T, src string) map[string]int {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not installed")
	}
	dir := t.TempDir()
	c := filepath.Join(dir, "layout.c")
	bin := filepath.Join(dir, "layout")
	require.NoError(t, os.WriteFile(c, []byte(src), 0o600))
	out, err := exec.Command(gcc, "-o", bin, c).CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.Command(bin).Output()
	require.NoError(t, err)
	got := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, ok := strings.Cut(line, " ")
		require.True(t, ok, line)
		n, err := strconv.Atoi(v)
		require.NoError(t, err)
		got[k] = n
	}
	return got
}
