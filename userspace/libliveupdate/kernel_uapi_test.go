package libliveupdate

import (
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/liveupdate"
)

// TestUapiMatchesKernel: userspace's encoding of the uapi (this package)
// and the kernel's (kernel/liveupdate) agree on every constant.
func TestUapiMatchesKernel(t *testing.T) {
	require.EqualValues(t, liveupdate.IoctlType, IoctlType)
	require.EqualValues(t, liveupdate.SessionNameLength, SessionNameLength)
	require.EqualValues(t, liveupdate.CmdBase, CmdBase)
	require.EqualValues(t, liveupdate.CmdSessionBase, CmdSessionBase)
	require.EqualValues(t, liveupdate.IoctlCreateSession, IoctlCreateSession)
	require.EqualValues(t, liveupdate.IoctlRetrieveSession, IoctlRetrieveSession)
	require.EqualValues(t, liveupdate.IoctlSessionPreserveFD, SessionPreserveFD)
	require.EqualValues(t, liveupdate.IoctlSessionRetrieveFD, SessionRetrieveFD)
	require.EqualValues(t, liveupdate.IoctlSessionFinish, SessionFinish)
	require.EqualValues(t, liveupdate.IoctlSessionGetName, SessionGetName)
	require.EqualValues(t, liveupdate.SessionArgSize, SizeofCreateSession)
	require.EqualValues(t, liveupdate.SessionArgSize, SizeofRetrieveSession)
	require.EqualValues(t, liveupdate.FDArgSize, SizeofPreserveFD)
	require.EqualValues(t, liveupdate.FDArgSize, SizeofRetrieveFD)
	require.EqualValues(t, liveupdate.FinishArgSize, SizeofFinish)
	require.EqualValues(t, liveupdate.GetNameArgSize, SizeofGetName)

	// The kernel decodes what userspace encodes.
	s := SessionArgs{Size: SizeofCreateSession, FD: 7, Name: nameField("x")}
	ks := liveupdate.DecodeSessionArg(s.Marshal())
	require.EqualValues(t, 7, ks.FD)
	p := PreserveFDArgs{Size: SizeofPreserveFD, FD: 3, Token: 0xfeed}
	kp := liveupdate.DecodeFDArg(p.Marshal())
	require.EqualValues(t, 3, kp.FD)
	require.EqualValues(t, 0xfeed, kp.Token)
	f := FinishArgs{Size: SizeofFinish, Reserved: 2}
	require.EqualValues(t, 2, liveupdate.DecodeFinishArg(f.Marshal()).Reserved)
}
