package machine_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/machine"
)

// TestBootSavedHandover: machines booted from a saved hand-over start with
// the RAM the kexec left (every byte the same) and find what was
// preserved, independently of each other and of the saving machine.
func TestBootSavedHandover(t *testing.T) {
	cfg := machine.Config{MemoryMiB: 16, LiveUpdate: true, Report: failOnReport(t)}
	m := newMachine(t, cfg)
	k := m.Kernel()
	f, err := k.MM().FolioAlloc(1, true)
	require.NoError(t, err)
	data := []byte("preserved across a saved kexec")
	require.NoError(t, f.Write(100, data))
	require.NoError(t, k.KHO().PreserveFolio(f))
	pa := f.PA()
	h, err := m.KexecSave()
	require.NoError(t, err)
	require.Equal(t, 1, m.Kexecs())

	size := m.RAM().Size()
	want := make([]byte, size)
	require.NoError(t, m.RAM().ReadRaw(0, want))
	for range 2 {
		b, err := machine.Boot(cfg, h)
		require.NoError(t, err)
		require.Equal(t, m.Kexecs(), b.Kexecs())
		require.Equal(t, m.LastHandover(), b.LastHandover())
		got := make([]byte, size)
		require.NoError(t, b.RAM().ReadRaw(0, got))
		require.True(t, string(want) == string(got), "RAM after Boot differs from RAM after the kexec")

		g, err := b.Kernel().KHO().RestoreFolio(pa)
		require.NoError(t, err)
		buf := make([]byte, len(data))
		require.NoError(t, g.Read(100, buf))
		require.Equal(t, data, buf)
		g.Put()
		require.NoError(t, b.Kexec(), "a booted machine live-updates like any other")
	}
	// The saving machine is untouched by the others.
	g, err := m.Kernel().KHO().RestoreFolio(pa)
	require.NoError(t, err)
	g.Put()

	_, err = machine.Boot(machine.Config{MemoryMiB: 32, LiveUpdate: true, Report: failOnReport(t)}, h)
	require.Error(t, err, "another memory size")
	_, err = machine.Boot(machine.Config{MemoryMiB: 16, Report: failOnReport(t)}, h)
	require.Error(t, err, "another command line")
}
