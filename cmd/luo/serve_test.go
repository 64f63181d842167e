package main

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"luomodel/serve"
)

// TestServeAndKexec drives `luo kexec` against a server: the machine is
// kexeced once per call, and a kexec without a server fails.
func TestServeAndKexec(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "luo.sock")
	require.Equal(t, 1, runKexec([]string{"-socket", sock}), "no server")
	s, err := serve.New(serve.Config{Socket: sock})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	defer func() {
		require.NoError(t, s.Close())
		require.NoError(t, <-done)
	}()
	require.Equal(t, 0, runKexec([]string{"-socket", sock}))
	require.Equal(t, 0, runKexec([]string{"-socket", sock}))
	require.Equal(t, 2, s.Machine().Kexecs())
}

// TestRunServeStopsOnSignal: `luo serve` serves until SIGTERM, then closes
// its clients and exits 0.
func TestRunServeStopsOnSignal(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "luo.sock")
	code := make(chan int, 1)
	go func() { code <- runServe([]string{"-socket", sock, "-q"}) }()
	require.Eventually(t, func() bool { return runKexec([]string{"-socket", sock}) == 0 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGTERM))
	select {
	case c := <-code:
		require.Zero(t, c)
	case <-time.After(10 * time.Second):
		t.Fatal("luo serve did not stop on SIGTERM")
	}
}
