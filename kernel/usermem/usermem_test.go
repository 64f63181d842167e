package usermem

import (
	"bytes"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCopyBounds(t *testing.T) {
	b := make([]byte, 8)
	u := NewBuffer(b)
	require.Equal(t, 8, u.Len())

	require.NoError(t, u.CopyOut(4, []byte{1, 2, 3, 4}))
	require.Equal(t, []byte{0, 0, 0, 0, 1, 2, 3, 4}, b)
	require.ErrorIs(t, u.CopyOut(5, []byte{9, 9, 9, 9}), syscall.EFAULT)
	require.Equal(t, []byte{0, 0, 0, 0, 1, 2, 3, 4}, b, "a faulting copy-out writes nothing")
	require.ErrorIs(t, u.CopyOut(-1, []byte{1}), syscall.EFAULT)
	require.NoError(t, u.CopyOut(8, nil), "an empty copy at the end is fine")
	require.ErrorIs(t, u.CopyOut(9, nil), syscall.EFAULT)

	dst := make([]byte, 4)
	require.NoError(t, u.CopyIn(4, dst))
	require.Equal(t, []byte{1, 2, 3, 4}, dst)
	require.ErrorIs(t, u.CopyIn(6, dst), syscall.EFAULT)
	require.ErrorIs(t, u.CopyIn(-2, dst), syscall.EFAULT)

	var nilBuf Buffer
	require.ErrorIs(t, nilBuf.CopyIn(0, dst), syscall.EFAULT)
	_, err := NewBuffer(nil).GetU32(0)
	require.ErrorIs(t, err, syscall.EFAULT)
}

func TestIntegers(t *testing.T) {
	b := make([]byte, 12)
	u := NewBuffer(b)
	require.NoError(t, u.PutU32(0, 0xdeadbeef))
	require.Equal(t, []byte{0xef, 0xbe, 0xad, 0xde}, b[:4], "little-endian")
	v, err := u.GetU32(0)
	require.NoError(t, err)
	require.Equal(t, uint32(0xdeadbeef), v)

	require.NoError(t, u.PutU64(4, 0x0102030405060708))
	w, err := u.GetU64(4)
	require.NoError(t, err)
	require.Equal(t, uint64(0x0102030405060708), w)
	require.Equal(t, byte(0x08), b[4])

	require.ErrorIs(t, u.PutU32(9, 1), syscall.EFAULT)
	require.ErrorIs(t, u.PutU64(5, 1), syscall.EFAULT)
	_, err = u.GetU64(5)
	require.ErrorIs(t, err, syscall.EFAULT)
	_, err = u.GetU32(10)
	require.ErrorIs(t, err, syscall.EFAULT)
}

func TestSub(t *testing.T) {
	b := []byte{0, 1, 2, 3, 4, 5, 6, 7}
	u := NewBuffer(b)

	s := u.Sub(2, 4)
	require.Equal(t, 4, s.Len())
	x, err := s.GetU32(0)
	require.NoError(t, err)
	require.Equal(t, uint32(0x05040302), x)
	require.ErrorIs(t, s.PutU32(1, 0), syscall.EFAULT, "a sub-buffer does not reach past its end")
	require.Equal(t, byte(6), b[6])

	require.NoError(t, s.PutU32(0, 0))
	require.Equal(t, []byte{0, 1, 0, 0, 0, 0, 6, 7}, b, "a sub-buffer aliases the user memory")

	require.Equal(t, 2, u.Sub(6, 100).Len(), "clipped at the end of the user buffer")
	require.Equal(t, 0, u.Sub(8, 1).Len())
	require.Equal(t, 0, u.Sub(100, 1).Len())
	require.Equal(t, 0, u.Sub(-1, 1).Len())
	require.Equal(t, 0, u.Sub(0, -1).Len())
	_, err = u.Sub(100, 4).GetU32(0)
	require.ErrorIs(t, err, syscall.EFAULT)
}

func TestCheckZeroed(t *testing.T) {
	u := NewBuffer([]byte{1, 0, 0, 2})
	z, err := u.CheckZeroed(1, 2)
	require.NoError(t, err)
	require.True(t, z)
	z, err = u.CheckZeroed(1, 3)
	require.NoError(t, err)
	require.False(t, z)
	z, err = u.CheckZeroed(0, 0)
	require.NoError(t, err)
	require.True(t, z)
	_, err = u.CheckZeroed(2, 3)
	require.ErrorIs(t, err, syscall.EFAULT)
}

func TestCopyStructFromUser(t *testing.T) {
	// Same size.
	dst := make([]byte, 4)
	require.NoError(t, NewBuffer([]byte{1, 2, 3, 4}).CopyStructFromUser(dst, 4))
	require.Equal(t, []byte{1, 2, 3, 4}, dst)

	// Older, shorter user struct: zero-extended.
	dst = []byte{9, 9, 9, 9}
	require.NoError(t, NewBuffer([]byte{1, 2, 7, 7}).CopyStructFromUser(dst, 2))
	require.Equal(t, []byte{1, 2, 0, 0}, dst)

	// Newer, longer user struct with a zero tail.
	dst = make([]byte, 2)
	require.NoError(t, NewBuffer([]byte{1, 2, 0, 0}).CopyStructFromUser(dst, 4))
	require.Equal(t, []byte{1, 2}, dst)

	// Non-zero tail: E2BIG.
	require.ErrorIs(t, NewBuffer([]byte{1, 2, 0, 5}).CopyStructFromUser(dst, 4), syscall.E2BIG)

	// Declared size beyond the buffer.
	require.ErrorIs(t, NewBuffer([]byte{1, 2, 0}).CopyStructFromUser(dst, 4), syscall.EFAULT)
	require.ErrorIs(t, NewBuffer([]byte{1}).CopyStructFromUser(make([]byte, 4), 4), syscall.EFAULT)
	require.ErrorIs(t, NewBuffer([]byte{1}).CopyStructFromUser(dst, -1), syscall.EFAULT)
}

// FuzzCopyStructFromUser checks copy_struct_from_user() against its
// contract for any user bytes and sizes: EFAULT when the declared size is
// negative or runs past the buffer, else E2BIG when a longer user struct
// has a non-zero byte past the kernel's, else success with the common
// prefix copied and the rest of the kernel struct zeroed.
func FuzzCopyStructFromUser(f *testing.F) {
	f.Add([]byte{4, 0, 0, 0, 1, 2, 3, 4}, 8, 6)
	f.Add([]byte{}, 0, 0)
	f.Add([]byte{1, 2, 0, 5}, 4, 2)
	f.Add([]byte{1, 2, 0, 0}, 4, 2)
	f.Add([]byte{1, 2}, 4, 8)
	f.Add([]byte{1, 2}, -1, 2)
	f.Fuzz(func(t *testing.T, b []byte, usize, ksize int) {
		if ksize < 0 || ksize > 1<<12 {
			return
		}
		dst := bytes.Repeat([]byte{0xa5}, ksize) // stale kernel bytes
		err := NewBuffer(b).CopyStructFromUser(dst, usize)
		var want error
		switch {
		case usize < 0 || usize > len(b):
			want = syscall.EFAULT
		case usize > ksize && !bytes.Equal(b[ksize:usize], make([]byte, usize-ksize)):
			want = syscall.E2BIG
		}
		require.Equal(t, want, err, "usize %d ksize %d len %d", usize, ksize, len(b))
		if err == nil {
			n := min(ksize, usize)
			require.Equal(t, b[:n], dst[:n])
			require.Equal(t, make([]byte, ksize-n), dst[n:], "zero-extended")
		}
	})
}

func BenchmarkGetU32(b *testing.B) {
	u := NewBuffer(make([]byte, 72))
	for b.Loop() {
		_, _ = u.GetU32(0)
	}
}
