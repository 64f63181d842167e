// Package liveupdate ports Linux's Live Update Orchestrator
// (kernel/liveupdate/luo_core.c, luo_session.c, luo_file.c, luo_internal.h,
// include/linux/kho/abi/luo.h and include/uapi/linux/liveupdate.h).
//
// The port follows the project's reference profile: the 6.19 structure,
// hand-over ABI and limits (FDT root "luo-v1", node "luo-session-v2", 819
// sessions, 128 files per session, 64-byte names) with the later
// correctness fixes applied (M1-M14, M17, M18, M21-M23 and GET_NAME of
// ../shared/spec/luo-reference.md), plus one repair: when kho_finalize()
// fails after a successful serialization, LUO undoes the serialization and
// returns EAGAIN so that a retried reboot can succeed.
//
// Every C global is a field of LUO, one per kernel. Serialized structs are
// bytes in simulated physical memory at physical addresses; only preserved
// memory and the "LUO" KHO subtree cross a kexec.
//
// # Lock order
//
// Outer to inner; a lock may be taken while holding any lock above it on
// its line, never the reverse:
//
//		luo_session_serialize_rwsem
//		  → luo_session_header.rwsem (incoming or outgoing; never both at once)
//		    → luo_session.mutex
//		      → luo_file.mutex
//		luo_session.mutex → luo_register_rwlock (read)
//
//	  - luo_session_serialize_rwsem (LUO.serializeRwsem) is taken for read by
//	    every session mutator: luo_session_create, luo_session_retrieve,
//	    luo_session_release and every session-file ioctl; for write by
//	    luo_session_serialize, which keeps it after a successful
//	    serialization (the subsystem is frozen until kexec) and releases it on
//	    failure or when the serialization is undone (M13, M14).
//	  - The two list rwsems (lockdep classes
//	    "luo_session_global.incoming.rwsem" and
//	    "luo_session_global.outgoing.rwsem") guard their list and count.
//	    luo_session_retrieve holds the incoming one for read across the whole
//	    lookup and session-mutex section (M12); luo_session_serialize holds the
//	    outgoing one for write across the whole walk.
//	  - The session mutex guards the session's retrieved flag and file set;
//	    luo_session_getfile asserts it is held (M2).
//	  - The luo_file mutex guards one preserved file's file pointer,
//	    serialized data and retrieve status.
//	  - luo_register_rwlock (LUO.registerRwsem, M18) guards the handler list:
//	    write for (un)registration, read while walking it in luo_preserve_file
//	    and luo_file_deserialize (both under a session mutex).
//
// Two leaf locks sit below everything and are never held across a
// scheduling point: the global double-preservation map (M17,
// luo_preserved_files' xa_lock) and the log buffer.
//
// The /dev/liveupdate in_use flag is a try-lock (compare-and-swap, EBUSY);
// it never waits. It serializes luo_session_deserialize, which runs only
// in the exclusive opener.
package liveupdate
