package liveupdate_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// corruptEveryByte corrupts each byte of region r, one at a time, by XOR
// 0xFF and by setting it to 0x00, and boots the next kernel on each
// image: a boot error, EIO on open, a session under another name, or
// errnos are all fine; a panic, a hang or an unexpected report (KASAN on
// valid memory, use-after-free, lockdep, a WARN other than KHO's on a
// bogus restore) fails the test. It returns how the boots ended.
func corruptEveryByte(t *testing.T, r handoverRegion) map[string]int {
	img := newHandoverImage(t)
	orig := make([]byte, img.regions[r].n)
	require.NoError(t, img.m.RAM().ReadRaw(img.regions[r].pa, orig))
	ends := map[string]int{}
	for i := range orig {
		for _, v := range []byte{orig[i] ^ 0xff, 0x00} {
			img.reset(t)
			img.set(t, r, i, v)
			out := img.bootAndDrive(t)
			switch {
			case out.bootErr != nil:
				ends["boot error"]++
			case out.openErr != nil:
				ends["open error"]++
			case len(out.sessions) == 2 && out.retrieved == 3:
				ends["all files back"]++
			default:
				ends["partial"]++
			}
			if t.Failed() {
				t.Fatalf("byte %d set to %#x: %v", i, v, out)
			}
		}
	}
	return ends
}

// TestCorruptSessionArray: every byte of the session array written at
// serialize (luo_session_header_ser and both luo_session_ser entries).
func TestCorruptSessionArray(t *testing.T) {
	ends := corruptEveryByte(t, regionSessions)
	t.Logf("session array: %v", ends)
	require.NotZero(t, ends["open error"], "a corrupt count or array must fail deserialization")
}

// TestCorruptFileArray: every byte of session "vm0"'s luo_file_ser array.
func TestCorruptFileArray(t *testing.T) {
	ends := corruptEveryByte(t, regionFiles)
	t.Logf("file array: %v", ends)
	require.NotZero(t, ends["open error"])
}
