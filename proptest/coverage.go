package proptest

// Expected lists, per operation (as OpLabel names it), the outcomes a
// default `luo check` campaign must reach: every success and every errno
// the reference profile gives the operation for what user space can do.
// Not listed: EIO from opening /dev/liveupdate, which needs a corrupted
// hand-over (no operation of the campaign makes one), and ESRCH beyond a
// few representative calls.
var Expected = map[string][]string{
	"newtask":             {"OK"},
	"exit":                {"OK"},
	"kexec":               {"OK"},
	"open":                {"OK", "ENOENT", "EBUSY", "EMFILE", "ESRCH"},
	"close":               {"OK", "EBADF", "ESRCH"},
	"dup":                 {"OK", "EBADF", "EMFILE"},
	"memfd_create":        {"OK", "EINVAL", "EMFILE"},
	"read":                {"OK", "EBADF", "EINVAL"},
	"write":               {"OK", "EBADF", "EINVAL", "EPERM"},
	"lseek":               {"OK", "EBADF", "EINVAL", "ESPIPE"},
	"ftruncate":           {"OK", "EBADF", "EINVAL", "EPERM"},
	"CREATE_SESSION":      {"OK", "E2BIG", "EBADF", "EEXIST", "EFAULT", "EINVAL", "EMFILE", "ENOMEM", "ENOTTY"},
	"RETRIEVE_SESSION":    {"OK", "E2BIG", "EFAULT", "EINVAL", "EMFILE", "ENOENT", "ENOTTY"},
	"SESSION_PRESERVE_FD": {"OK", "E2BIG", "EBADF", "EBUSY", "EEXIST", "EFAULT", "EINVAL", "ENOENT", "ENOSPC", "ENOTTY"},
	"SESSION_RETRIEVE_FD": {"OK", "EINVAL", "EMFILE", "ENOENT"},
	"SESSION_FINISH":      {"OK", "EINVAL"},
	"SESSION_GET_NAME":    {"OK", "EINVAL"},
	"IOCTL_OTHER":         {"EINVAL", "ENOTTY"},
	// The test module (gen_handler.go).
	"init_module":   {"OK", "EEXIST", "ENOENT"},
	"delete_module": {"OK", "EAGAIN", "ENOENT"},
	"testctl":       {"OK", "EEXIST", "EINVAL", "ENODATA", "ENODEV", "ENOENT"},
}
