// SPDX-License-Identifier: GPL-2.0
/*
 * luoshim_probe: run a script of system calls through libc (so, under
 * LD_PRELOAD=libluoshim.so, through the shim) and print each call's result,
 * one line per call: "RET ERRNO [HEX]". serve/equiv_test.go runs the same
 * script through the Go API (kernel.Task) and compares the lines.
 *
 * Fds and mappings are named by slot: a call that returns an fd prints
 * "fd" for RET and puts the fd in the next fd slot; mmap puts the mapping
 * in the next mapping slot. Script lines (numbers in decimal, data in hex,
 * "-" for empty data):
 *
 *	open PATH FLAGS		memfd NAME FLAGS	close S
 *	read S N		pread S N OFF		write S HEX
 *	pwrite S OFF HEX	lseek S OFF WHENCE	ftruncate S LEN
 *	fstat S			fcntl S CMD ARG		dup S
 *	dup2 S T		dup3 S T FLAGS
 *	ioctl S CMD HEX		(the user buffer, printed again after the call)
 *	create S NAME		retrieve S NAME		preserve S T TOKEN
 *	retrievefd S TOKEN	mmap S LEN PROT FLAGS OFF
 *	mwrite M OFF HEX	(a no-op on a read-only mapping)
 *	msync M			munmap M
 *	badioctl S CMD		(a pointer to nothing)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAXSLOTS 4096

static int fds[MAXSLOTS];
static int nfds;
static struct { char *p; size_t len; int writable; } maps[MAXSLOTS];
static int nmaps;

static void *volatile bad_pointer = (void *)16;

static size_t unhex(const char *h, unsigned char *out, size_t max)
{
	size_t n = 0;

	if (strcmp(h, "-") == 0)
		return 0;
	while (h[0] && h[1] && n < max) {
		unsigned int b;

		sscanf(h, "%2x", &b);
		out[n++] = (unsigned char)b;
		h += 2;
	}
	return n;
}

static void put_hex(const unsigned char *p, size_t n)
{
	putchar(' ');
	if (n == 0)
		putchar('-');
	for (size_t i = 0; i < n; i++)
		printf("%02x", p[i]);
}

static int slot(const char *s)
{
	int i = atoi(s);

	return i >= 0 && i < nfds ? fds[i] : -1;
}

static void new_fd(long r)
{
	if (r >= 0 && nfds < MAXSLOTS)
		fds[nfds++] = (int)r;
}

/* result prints RET ERRNO; fd results print "fd". */
static void result(long r, int isfd)
{
	if (r >= 0 && isfd)
		printf("fd 0");
	else
		printf("%ld %d", r, r < 0 ? errno : 0);
}

struct sess {
	uint32_t size;
	int32_t fd;
	uint8_t name[64];
};

struct pfd {
	uint32_t size;
	int32_t fd;
	uint64_t token;
};

int main(void)
{
	static char line[(5 << 20) + 64];
	static unsigned char buf[1 << 19];

	while (fgets(line, sizeof(line), stdin)) {
		static char a[5][(1 << 20) + 8];
		char op[32];
		long r = 0;
		int n;

		line[strcspn(line, "\n")] = 0;
		n = sscanf(line, "%31s %s %s %s %s %s", op, a[0], a[1], a[2], a[3], a[4]);
		if (n < 1)
			continue;
		errno = 0;
		if (!strcmp(op, "open")) {
			r = open(a[0], atoi(a[1]));
			result(r, 1);
			new_fd(r);
		} else if (!strcmp(op, "memfd")) {
			r = memfd_create(a[0], (unsigned)strtoul(a[1], NULL, 0));
			result(r, 1);
			new_fd(r);
		} else if (!strcmp(op, "close")) {
			result(close(slot(a[0])), 0);
		} else if (!strcmp(op, "read") || !strcmp(op, "pread")) {
			size_t cnt = strtoul(a[1], NULL, 0);

			if (cnt > sizeof(buf))
				cnt = sizeof(buf);
			if (op[0] == 'r')
				r = read(slot(a[0]), buf, cnt);
			else
				r = pread(slot(a[0]), buf, cnt, strtol(a[2], NULL, 0));
			result(r, 0);
			put_hex(buf, r > 0 ? (size_t)r : 0);
		} else if (!strcmp(op, "write")) {
			size_t k = unhex(a[1], buf, sizeof(buf));

			result(write(slot(a[0]), buf, k), 0);
		} else if (!strcmp(op, "pwrite")) {
			size_t k = unhex(a[2], buf, sizeof(buf));

			result(pwrite(slot(a[0]), buf, k, strtol(a[1], NULL, 0)), 0);
		} else if (!strcmp(op, "lseek")) {
			result(lseek(slot(a[0]), strtol(a[1], NULL, 0), atoi(a[2])), 0);
		} else if (!strcmp(op, "ftruncate")) {
			result(ftruncate(slot(a[0]), strtol(a[1], NULL, 0)), 0);
		} else if (!strcmp(op, "fstat")) {
			struct stat st;

			r = fstat(slot(a[0]), &st);
			result(r, 0);
			if (r == 0)
				printf(" mode=%o nlink=%lu size=%ld blocks=%ld blksize=%ld rdev=%lx",
				       st.st_mode, (unsigned long)st.st_nlink, (long)st.st_size,
				       (long)st.st_blocks, (long)st.st_blksize, (unsigned long)st.st_rdev);
		} else if (!strcmp(op, "fcntl")) {
			int cmd = atoi(a[1]);

			r = fcntl(slot(a[0]), cmd, strtol(a[2], NULL, 0));
			if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) {
				/* The fd itself is the shim's; that it is >= arg is checked. */
				if (r >= 0 && r < strtol(a[2], NULL, 0))
					r = -1000;
				result(r, 1);
				new_fd(r);
			} else {
				result(r, 0);
			}
		} else if (!strcmp(op, "dup")) {
			r = dup(slot(a[0]));
			result(r, 1);
			new_fd(r);
		} else if (!strcmp(op, "dup2") || !strcmp(op, "dup3")) {
			int t = slot(a[1]);

			if (op[3] == '2')
				r = dup2(slot(a[0]), t);
			else
				r = dup3(slot(a[0]), t, atoi(a[2]));
			if (r >= 0)
				r = r == t ? 0 : -1000; /* dup2 returns T */
			result(r, 0);
		} else if (!strcmp(op, "ioctl")) {
			size_t k = unhex(a[2], buf, sizeof(buf));

			result(ioctl(slot(a[0]), strtoul(a[1], NULL, 0), buf), 0);
			put_hex(buf, k);
		} else if (!strcmp(op, "badioctl")) {
			result(ioctl(slot(a[0]), strtoul(a[1], NULL, 0), bad_pointer), 0);
		} else if (!strcmp(op, "create") || !strcmp(op, "retrieve")) {
			struct sess s = { .size = sizeof(s) };

			snprintf((char *)s.name, sizeof(s.name), "%.63s", a[1]);
			r = ioctl(slot(a[0]), op[0] == 'c' ? 0xBA00 : 0xBA01, &s);
			if (r == 0)
				r = s.fd;
			result(r, 1);
			new_fd(r);
		} else if (!strcmp(op, "preserve")) {
			struct pfd p = { .size = sizeof(p), .fd = slot(a[1]),
					 .token = strtoull(a[2], NULL, 0) };

			result(ioctl(slot(a[0]), 0xBA40, &p), 0);
		} else if (!strcmp(op, "retrievefd")) {
			struct pfd p = { .size = sizeof(p), .token = strtoull(a[1], NULL, 0) };

			r = ioctl(slot(a[0]), 0xBA41, &p);
			if (r == 0)
				r = p.fd;
			result(r, 1);
			new_fd(r);
		} else if (!strcmp(op, "mmap")) {
			size_t len = strtoul(a[1], NULL, 0);
			char *p = mmap(NULL, len, atoi(a[2]) | PROT_READ, atoi(a[3]), slot(a[0]),
				       strtol(a[4], NULL, 0));

			if (p == MAP_FAILED) {
				result(-1, 0);
			} else {
				size_t plen = (len + 4095) & ~4095UL;

				result(0, 0);
				put_hex((unsigned char *)p, plen);
				if (nmaps < MAXSLOTS) {
					maps[nmaps].p = p;
					maps[nmaps].writable = atoi(a[2]) & PROT_WRITE;
					maps[nmaps++].len = plen;
				}
			}
		} else if (!strcmp(op, "mwrite")) {
			int m = atoi(a[0]);
			size_t off = strtoul(a[1], NULL, 0), k = unhex(a[2], buf, sizeof(buf));

			/* Only into a writable map (a read-only one would SIGSEGV). */
			if (m < nmaps && maps[m].p && maps[m].writable && off + k <= maps[m].len)
				memcpy(maps[m].p + off, buf, k);
			result(0, 0);
		} else if (!strcmp(op, "msync") || !strcmp(op, "munmap")) {
			int m = atoi(a[0]);

			if (m >= nmaps || !maps[m].p) {
				result(0, 0);
			} else if (op[2] == 's') {
				result(msync(maps[m].p, maps[m].len, MS_SYNC), 0);
			} else {
				result(munmap(maps[m].p, maps[m].len), 0);
				maps[m].p = NULL;
			}
		} else {
			fprintf(stderr, "luoshim_probe: unknown op %s\n", op);
			return 2;
		}
		putchar('\n');
		fflush(stdout);
	}
	return 0;
}
