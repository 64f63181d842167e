/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The wire protocol between libluoshim.so and `luo serve`: the C twin of
 * serve/protocol.go (a Go test checks that the two agree).
 *
 * All integers are little-endian. A request is a 40-byte header
 * {u32 len; u32 op; s64 arg[4]} followed by len - 36 bytes of data; a reply
 * is a 16-byte header {u32 len; s32 err; s64 ret} followed by len - 12 bytes
 * of data. err is a Linux errno, 0 on success.
 */
#ifndef LUOSHIM_PROTO_H
#define LUOSHIM_PROTO_H

#include <stdint.h>

#define LUOSHIM_OP_HELLO	1
#define LUOSHIM_OP_OPEN		2
#define LUOSHIM_OP_CLOSE	3
#define LUOSHIM_OP_MEMFD	4
#define LUOSHIM_OP_READ		5
#define LUOSHIM_OP_WRITE	6
#define LUOSHIM_OP_PREAD	7
#define LUOSHIM_OP_PWRITE	8
#define LUOSHIM_OP_LSEEK	9
#define LUOSHIM_OP_FTRUNCATE	10
#define LUOSHIM_OP_FSTAT	11
#define LUOSHIM_OP_FCNTL	12
#define LUOSHIM_OP_DUP		13
#define LUOSHIM_OP_IOCTL	14
#define LUOSHIM_OP_MMAP		15
#define LUOSHIM_OP_MSYNC	16
#define LUOSHIM_OP_MUNMAP	17
#define LUOSHIM_OP_FORK		18
#define LUOSHIM_OP_FORKWAIT	19
#define LUOSHIM_OP_EXIT		20
#define LUOSHIM_OP_KEXEC	21
#define LUOSHIM_OP_REAP		22
#define LUOSHIM_OP_SETRLIMIT	23
#define LUOSHIM_OP_STATUS	24

#define LUOSHIM_HELLO_TASK	0
#define LUOSHIM_HELLO_FORK	1
#define LUOSHIM_HELLO_CONTROL	2

#define LUOSHIM_REQ_HEADER	40
#define LUOSHIM_REP_HEADER	16
#define LUOSHIM_MAX_DATA	(64 << 20)
#define LUOSHIM_STAT_LEN	48

struct luoshim_req {
	uint32_t len;
	uint32_t op;
	int64_t arg[4];
} __attribute__((packed));

struct luoshim_rep {
	uint32_t len;
	int32_t err;
	int64_t ret;
} __attribute__((packed));

/* The stat reply's data. */
struct luoshim_stat {
	uint64_t ino;
	uint32_t mode;
	uint32_t nlink;
	uint64_t rdev;
	int64_t size;
	int64_t blksize;
	int64_t blocks;
} __attribute__((packed));

#endif
