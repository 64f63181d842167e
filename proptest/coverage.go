package proptest

// Expected lists, per operation (as OpLabel names it), the outcomes a
// default `luo check` campaign must reach: every success and every errno
// the reference profile gives the operation for what user space can do.
// Not listed: ESRCH beyond a few representative calls. The hostile
// hand-overs have a row per kind (hostile:KIND: the first open after it,
// EIO for a deserialization that fails; the kexec's EINVAL if the new
// kernel panics; for folio_not_preserved the corrupt memfd's retrieve), the
// memfd handler's registration churn the rows register_handler and
// unregister_handler.
var Expected = map[string][]string{
	"newtask":             {"OK"},
	"exit":                {"OK"},
	"kexec":               {"OK"},
	"open":                {"OK", "ENOENT", "EBUSY", "EIO", "EMFILE", "ESRCH"},
	"close":               {"OK", "EBADF", "ESRCH"},
	"dup":                 {"OK", "EBADF", "EMFILE"},
	"memfd_create":        {"OK", "EINVAL", "EMFILE"},
	"read":                {"OK", "EBADF", "EINVAL"},
	"write":               {"OK", "EBADF", "EINVAL", "EPERM"},
	"lseek":               {"OK", "EBADF", "EINVAL", "ENXIO", "ESPIPE"},
	"ftruncate":           {"OK", "EBADF", "EINVAL", "EPERM"},
	"CREATE_SESSION":      {"OK", "E2BIG", "EBADF", "EEXIST", "EFAULT", "EINVAL", "EMFILE", "ENOMEM", "ENOTTY"},
	"RETRIEVE_SESSION":    {"OK", "E2BIG", "EFAULT", "EINVAL", "EMFILE", "ENOENT", "ENOTTY"},
	"SESSION_PRESERVE_FD": {"OK", "E2BIG", "EBADF", "EBUSY", "EEXIST", "EFAULT", "EINVAL", "ENOENT", "ENOSPC", "ENOTTY"},
	"SESSION_RETRIEVE_FD": {"OK", "EINVAL", "EIO", "EMFILE", "ENOENT"},
	"SESSION_FINISH":      {"OK", "EINVAL"},
	"SESSION_GET_NAME":    {"OK", "EINVAL"},
	"IOCTL_OTHER":         {"EINVAL", "ENOTTY"},
	// The test module (gen_handler.go).
	"init_module":   {"OK", "EEXIST", "ENOENT"},
	"delete_module": {"OK", "EAGAIN", "ENOENT"},
	"testctl":       {"OK", "EEXIST", "EINVAL", "ENODATA", "ENODEV", "ENOENT"},
	// Hostile hand-overs and the memfd handler's churn (gen_hostile.go).
	"register_handler":                     {"OK", "EEXIST"},
	"unregister_handler":                   {"OK", "EBUSY", "ENOENT"},
	"hostile:dup_name":                     {"EIO"},
	"hostile:empty_name":                   {"OK"},
	"hostile:unterminated_name":            {"EIO"},
	"hostile:count_past_entries":           {"OK", "EIO"},
	"hostile:dup_token":                    {"EIO"},
	"hostile:file_count_past_entries":      {"EIO"},
	"hostile:file_count_no_array":          {"EIO"},
	"hostile:array_outside_memory":         {"EIO"},
	"hostile:array_overlaps_session_block": {"EIO"},
	"hostile:unknown_compatible":           {"EIO"},
	"hostile:unterminated_compatible":      {"EIO"},
	"hostile:missing_subtree":              {"OK"},
	"hostile:truncated_subtree":            {"EINVAL"}, // the new kernel panics
	"hostile:folio_not_preserved":          {"EIO"},    // RETRIEVE_FD of the corrupt memfd
	"hostile:memfd_nr_folios_past_array":   {"EINVAL"}, // RETRIEVE_FD of the corrupt memfd
	// gen_process.go
	"fork":            {"OK", "ESRCH"},
	"exec":            {"OK", "ESRCH"},
	"F_GETFD":         {"OK", "EBADF"},
	"F_SETFD":         {"OK", "EBADF"},
	"F_DUPFD":         {"OK", "EBADF", "EINVAL", "EMFILE"},
	"F_DUPFD_CLOEXEC": {"OK", "EINVAL", "EMFILE"},
	"FCNTL_OTHER":     {"EINVAL"},
	"F_ADD_SEALS":     {"OK", "EINVAL", "EPERM", "EBUSY"},
	"F_GET_SEALS":     {"OK", "EINVAL"},
	"setrlimit":       {"OK", "EINVAL", "EPERM"},
	"drop_caches":     {"OK", "EINVAL"},
}
