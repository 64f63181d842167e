package libliveupdate

import (
	"errors"
	"strconv"
	"syscall"

	"luomodel/kernel"
)

// Device is LUO_DEVICE.
const Device = "/dev/liveupdate"

// pageSize is getpagesize() on the simulated machine.
const pageSize = 4096

// OpenDevice ports luo_test_utils.c:luo_open_device(): open(/dev/liveupdate, O_RDWR).
func OpenDevice(t *kernel.Task) (int, error) {
	return t.Open(Device, syscall.O_RDWR)
}

// sessionIoctl issues a CREATE_SESSION or RETRIEVE_SESSION ioctl and
// returns the new session fd.
func sessionIoctl(t *kernel.Task, devfd int, cmd uint32, name string) (int, error) {
	a := SessionArgs{Size: SizeofCreateSession, Name: nameField(name)}
	b := a.Marshal()
	if err := t.Ioctl(devfd, cmd, b); err != nil {
		return -1, err
	}
	a.Unmarshal(b)
	return int(a.FD), nil
}

// CreateSession ports luo_test_utils.c:luo_create_session(): LIVEUPDATE_IOCTL_CREATE_SESSION
// with name cut to 63 bytes, as the C helper's snprintf does.
func CreateSession(t *kernel.Task, devfd int, name string) (int, error) {
	return sessionIoctl(t, devfd, IoctlCreateSession, name)
}

// RetrieveSession ports luo_test_utils.c:luo_retrieve_session():
// LIVEUPDATE_IOCTL_RETRIEVE_SESSION.
func RetrieveSession(t *kernel.Task, devfd int, name string) (int, error) {
	return sessionIoctl(t, devfd, IoctlRetrieveSession, name)
}

// PreserveFD ports luo_test_utils.c:luo_session_preserve_fd(): LIVEUPDATE_SESSION_PRESERVE_FD.
func PreserveFD(t *kernel.Task, sessfd, fd int, token uint64) error {
	a := PreserveFDArgs{Size: SizeofPreserveFD, FD: int32(fd), Token: token}
	return t.Ioctl(sessfd, SessionPreserveFD, a.Marshal())
}

// RetrieveFD ports luo_test_utils.c:luo_session_retrieve_fd(): LIVEUPDATE_SESSION_RETRIEVE_FD;
// it returns the new fd.
func RetrieveFD(t *kernel.Task, sessfd int, token uint64) (int, error) {
	a := PreserveFDArgs{Size: SizeofRetrieveFD, Token: token}
	b := a.Marshal()
	if err := t.Ioctl(sessfd, SessionRetrieveFD, b); err != nil {
		return -1, err
	}
	a.Unmarshal(b)
	return int(a.FD), nil
}

// FinishSession ports luo_test_utils.c:luo_session_finish(): LIVEUPDATE_SESSION_FINISH.
func FinishSession(t *kernel.Task, sessfd int) error {
	a := FinishArgs{Size: SizeofFinish}
	return t.Ioctl(sessfd, SessionFinish, a.Marshal())
}

// SessionName ports luo_test_utils.c:luo_get_session_name(): LIVEUPDATE_SESSION_GET_NAME.
func SessionName(t *kernel.Task, sessfd int) (string, error) {
	a := GetNameArgs{Size: SizeofGetName}
	b := a.Marshal()
	if err := t.Ioctl(sessfd, SessionGetName, b); err != nil {
		return "", err
	}
	a.Unmarshal(b)
	return cString(a.Name[:]), nil
}

// CreateAndPreserveMemfd ports luo_test_utils.c:create_and_preserve_memfd(): a one-page
// memfd holding data and a NUL at offset 0 (file position left at 0, as
// the C helper's mmap write leaves it), preserved under token; the memfd's
// fd is closed whatever happens, LUO keeps the file.
func CreateAndPreserveMemfd(t *kernel.Task, sessfd int, token uint64, data string) (err error) {
	mfd, err := t.MemfdCreate("test_mfd", 0)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := t.Close(mfd); err == nil {
			err = cerr
		}
	}()
	if err := t.Ftruncate(mfd, pageSize); err != nil {
		return err
	}
	buf := []byte(data)
	if len(buf) > pageSize-1 {
		buf = buf[:pageSize-1]
	}
	if _, err := t.Write(mfd, append(buf, 0)); err != nil {
		return err
	}
	if _, err := t.Lseek(mfd, 0, 0); err != nil {
		return err
	}
	return PreserveFD(t, sessfd, mfd, token)
}

// readPage reads up to a page at offset 0 without moving the file
// position, which is what the C helpers' mmap reads amount to.
func readPage(t *kernel.Task, fd int) ([]byte, error) {
	pos, err := t.Lseek(fd, 0, 1)
	if err != nil {
		return nil, err
	}
	if _, err := t.Lseek(fd, 0, 0); err != nil {
		return nil, err
	}
	buf := make([]byte, pageSize)
	n, err := t.Read(fd, buf)
	if err != nil {
		return nil, err
	}
	if _, err := t.Lseek(fd, pos, 0); err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// RestoreAndVerifyMemfd ports luo_test_utils.c:restore_and_verify_memfd(): retrieve token
// and check that the C string at the start of the file is expected. It
// returns the new fd, or EINVAL (fd closed) on a mismatch.
func RestoreAndVerifyMemfd(t *kernel.Task, sessfd int, token uint64, expected string) (int, error) {
	mfd, err := RetrieveFD(t, sessfd, token)
	if err != nil {
		return -1, err
	}
	page, err := readPage(t, mfd)
	if err == nil && cString(page) != expected {
		err = syscall.EINVAL
	}
	if err != nil {
		_ = t.Close(mfd)
		return -1, err
	}
	return mfd, nil
}

// CreateStateFile ports luo_test_utils.c:create_state_file(): a session holding a memfd
// with the next stage number. The session fd is returned and must stay
// open, or the session would be unpreserved.
func CreateStateFile(t *kernel.Task, devfd int, sessionName string, token uint64, nextStage int) (int, error) {
	sfd, err := CreateSession(t, devfd, sessionName)
	if err != nil {
		return -1, err
	}
	if err := CreateAndPreserveMemfd(t, sfd, token, strconv.Itoa(nextStage)); err != nil {
		_ = t.Close(sfd)
		return -1, err
	}
	return sfd, nil
}

// RestoreAndReadStage ports luo_test_utils.c:restore_and_read_stage(): retrieve the state
// memfd and parse the stage number it holds (atoi semantics: leading
// digits, 0 if none).
func RestoreAndReadStage(t *kernel.Task, stateSessfd int, token uint64) (int, error) {
	mfd, err := RetrieveFD(t, stateSessfd, token)
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 31)
	n, rerr := t.Read(mfd, buf)
	if cerr := t.Close(mfd); rerr == nil {
		rerr = cerr
	}
	if rerr != nil {
		return 0, rerr
	}
	return atoi(buf[:n]), nil
}

// atoi ports atoi(3) for non-negative decimal numbers.
func atoi(b []byte) int {
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + int(c-'0')
	}
	return v
}

// DetectStage ports the stage detection of luo_test_utils.c:luo_test(): stage 2 if the
// state session can be retrieved (its fd is returned), stage 1 if it does
// not exist (ENOENT); any other error is returned.
func DetectStage(t *kernel.Task, devfd int, stateSessionName string) (stage, stateSessfd int, err error) {
	sfd, err := RetrieveSession(t, devfd, stateSessionName)
	switch {
	case err == nil:
		return 2, sfd, nil
	case errors.Is(err, syscall.ENOENT):
		return 1, -1, nil
	default:
		return 0, -1, err
	}
}
