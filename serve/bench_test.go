package serve

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkRoundTrip measures one syscall served over the socket (a
// 64-byte pwrite to a memfd): the protocol's and the server's overhead per
// interposed call, the figure a shimmed program pays on top of the model.
func BenchmarkRoundTrip(b *testing.B) {
	s, err := New(Config{Socket: filepath.Join(b.TempDir(), "luo.sock")})
	require.NoError(b, err)
	go func() { _ = s.Serve() }()
	defer s.Close()
	c, err := DialAs(s.Addr(), HelloTask, 0)
	require.NoError(b, err)
	defer c.Close()
	p, err := c.Call(&Request{Op: OpMemfd, Data: []byte("bench")})
	require.NoError(b, err)
	q := &Request{Op: OpPwrite, Arg: [4]int64{p.Ret, 0}, Data: make([]byte, 64)}
	b.ReportAllocs()
	for b.Loop() {
		if p, err := c.Call(q); err != nil || p.Errno != 0 {
			b.Fatal(err, p.Errno)
		}
	}
}
