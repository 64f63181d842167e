package docs

// cFunc is one function of a ported C file. note, when set, says why it has
// no Go counterpart in the reference profile; a catalogued function with a
// counterpart must not carry a note.
type cFunc struct {
	file string // path in the Linux tree
	name string
	note string
}

const (
	noteParam   = "folded into kernel/cmdline.go:ParseCmdline (parse_early_param() for every parameter)"
	noteFail    = "a boot error: EarlyInit returns it, Kernel Boot fails and the machine halts (kernel panic)"
	noteQuiesce = "removed by the 7.1 registry rwsem (M18), which the profile applies"
)

// catalogue lists the functions of the ported C files: the 6.19 sources
// (spec Part 2) plus the functions that the profile's later fixes add
// (GET_NAME, get_id for the double-preservation map).
var catalogue = []cFunc{
	// kernel/liveupdate/luo_core.c
	{file: "kernel/liveupdate/luo_core.c", name: "early_liveupdate_param", note: noteParam},
	{file: "kernel/liveupdate/luo_core.c", name: "luo_early_startup"},
	{file: "kernel/liveupdate/luo_core.c", name: "liveupdate_early_init"},
	{file: "kernel/liveupdate/luo_core.c", name: "luo_fdt_setup"},
	{file: "kernel/liveupdate/luo_core.c", name: "luo_late_startup"},
	{file: "kernel/liveupdate/luo_core.c", name: "liveupdate_reboot"},
	{file: "kernel/liveupdate/luo_core.c", name: "liveupdate_enabled"},
	{file: "kernel/liveupdate/luo_core.c", name: "luo_ioctl_create_session"},
	{file: "kernel/liveupdate/luo_core.c", name: "luo_ioctl_retrieve_session"},
	{file: "kernel/liveupdate/luo_core.c", name: "luo_open"},
	{file: "kernel/liveupdate/luo_core.c", name: "luo_release"},
	{file: "kernel/liveupdate/luo_core.c", name: "luo_ioctl"},
	{file: "kernel/liveupdate/luo_core.c", name: "liveupdate_ioctl_init"},

	// kernel/liveupdate/luo_internal.h
	{file: "kernel/liveupdate/luo_internal.h", name: "luo_ucmd_respond"},
	{file: "kernel/liveupdate/luo_internal.h", name: "luo_restore_fail", note: noteFail},

	// kernel/liveupdate/luo_session.c
	{file: "kernel/liveupdate/luo_session.c", name: "luo_session_alloc"},
	{file: "kernel/liveupdate/luo_session.c", name: "luo_session_free"},
	{file: "kernel/liveupdate/luo_session.c", name: "luo_session_insert"},
	{file: "kernel/liveupdate/luo_session.c", name: "luo_session_remove"},
	{file: "kernel/liveupdate/luo_session.c", name: "luo_session_finish_one"},
	{file: "kernel/liveupdate/luo_session.c", name: "luo_session_unfreeze_one"},
	{file: "kernel/liveupdate/luo_session.c", name: "luo_session_freeze_one"},
	{file: "kernel/liveupdate/luo_session.c", name: "luo_session_release"},
	{file: "kernel/liveupdate/luo_session.c", name: "luo_session_preserve_fd"},
	{file: "kernel/liveupdate/luo_session.c", name: "luo_session_retrieve_fd"},
	{file: "kernel/liveupdate/luo_session.c", name: "luo_session_finish"},
	{file: "kernel/liveupdate/luo_session.c", name: "luo_session_get_name"},
	{file: "kernel/liveupdate/luo_session.c", name: "luo_session_ioctl"},
	{file: "kernel/liveupdate/luo_session.c", name: "luo_session_getfile"},
	{file: "kernel/liveupdate/luo_session.c", name: "luo_session_create"},
	{file: "kernel/liveupdate/luo_session.c", name: "luo_session_retrieve"},
	{file: "kernel/liveupdate/luo_session.c", name: "luo_session_setup_outgoing"},
	{file: "kernel/liveupdate/luo_session.c", name: "luo_session_setup_incoming"},
	{file: "kernel/liveupdate/luo_session.c", name: "luo_session_deserialize"},
	{file: "kernel/liveupdate/luo_session.c", name: "luo_session_serialize"},
	{file: "kernel/liveupdate/luo_session.c", name: "luo_session_quiesce", note: noteQuiesce},
	{file: "kernel/liveupdate/luo_session.c", name: "luo_session_resume", note: noteQuiesce},

	// kernel/liveupdate/luo_file.c
	{file: "kernel/liveupdate/luo_file.c", name: "luo_alloc_files_mem"},
	{file: "kernel/liveupdate/luo_file.c", name: "luo_free_files_mem"},
	{file: "kernel/liveupdate/luo_file.c", name: "luo_token_is_used"},
	{file: "kernel/liveupdate/luo_file.c", name: "luo_get_id"},
	{file: "kernel/liveupdate/luo_file.c", name: "luo_preserve_file"},
	{file: "kernel/liveupdate/luo_file.c", name: "luo_file_unpreserve_files"},
	{file: "kernel/liveupdate/luo_file.c", name: "luo_file_freeze_one"},
	{file: "kernel/liveupdate/luo_file.c", name: "luo_file_unfreeze_one"},
	{file: "kernel/liveupdate/luo_file.c", name: "__luo_file_unfreeze"},
	{file: "kernel/liveupdate/luo_file.c", name: "luo_file_freeze"},
	{file: "kernel/liveupdate/luo_file.c", name: "luo_file_unfreeze"},
	{file: "kernel/liveupdate/luo_file.c", name: "luo_retrieve_file"},
	{file: "kernel/liveupdate/luo_file.c", name: "luo_file_can_finish_one"},
	{file: "kernel/liveupdate/luo_file.c", name: "luo_file_finish_one"},
	{file: "kernel/liveupdate/luo_file.c", name: "luo_file_finish"},
	{file: "kernel/liveupdate/luo_file.c", name: "luo_file_deserialize"},
	{file: "kernel/liveupdate/luo_file.c", name: "luo_file_set_init"},
	{file: "kernel/liveupdate/luo_file.c", name: "luo_file_set_destroy"},
	{file: "kernel/liveupdate/luo_file.c", name: "liveupdate_register_file_handler"},
	{file: "kernel/liveupdate/luo_file.c", name: "liveupdate_unregister_file_handler"},

	// kernel/liveupdate/luo_flb.c (7.0 with the 7.1/7.2 fixes: M19, M20)
	{file: "kernel/liveupdate/luo_flb.c", name: "luo_flb_get_private"},
	{file: "kernel/liveupdate/luo_flb.c", name: "luo_flb_file_preserve_one"},
	{file: "kernel/liveupdate/luo_flb.c", name: "luo_flb_file_unpreserve_one"},
	{file: "kernel/liveupdate/luo_flb.c", name: "luo_flb_retrieve_one"},
	{file: "kernel/liveupdate/luo_flb.c", name: "liveupdate_flb_put_incoming"},
	{file: "kernel/liveupdate/luo_flb.c", name: "luo_flb_file_preserve"},
	{file: "kernel/liveupdate/luo_flb.c", name: "luo_flb_file_unpreserve"},
	{file: "kernel/liveupdate/luo_flb.c", name: "luo_flb_file_finish"},
	{file: "kernel/liveupdate/luo_flb.c", name: "luo_flb_unregister_one"},
	{file: "kernel/liveupdate/luo_flb.c", name: "luo_flb_unregister_all"},
	{file: "kernel/liveupdate/luo_flb.c", name: "liveupdate_register_flb"},
	{file: "kernel/liveupdate/luo_flb.c", name: "liveupdate_unregister_flb"},
	{file: "kernel/liveupdate/luo_flb.c", name: "liveupdate_flb_get_incoming"},
	{file: "kernel/liveupdate/luo_flb.c", name: "liveupdate_flb_get_outgoing"},
	{file: "kernel/liveupdate/luo_flb.c", name: "luo_flb_setup_outgoing"},
	{file: "kernel/liveupdate/luo_flb.c", name: "luo_flb_setup_incoming"},
	{file: "kernel/liveupdate/luo_flb.c", name: "luo_flb_serialize"},

	// mm/memfd_luo.c
	{file: "mm/memfd_luo.c", name: "memfd_luo_preserve_folios"},
	{file: "mm/memfd_luo.c", name: "memfd_luo_unpreserve_folios"},
	{file: "mm/memfd_luo.c", name: "memfd_luo_preserve"},
	{file: "mm/memfd_luo.c", name: "memfd_luo_freeze"},
	{file: "mm/memfd_luo.c", name: "memfd_luo_unpreserve"},
	{file: "mm/memfd_luo.c", name: "memfd_luo_discard_folios"},
	{file: "mm/memfd_luo.c", name: "memfd_luo_finish"},
	{file: "mm/memfd_luo.c", name: "memfd_luo_retrieve_folios"},
	{file: "mm/memfd_luo.c", name: "memfd_luo_retrieve"},
	{file: "mm/memfd_luo.c", name: "memfd_luo_can_preserve"},
	{file: "mm/memfd_luo.c", name: "memfd_luo_get_id"},
	{file: "mm/memfd_luo.c", name: "memfd_luo_init"},
}
