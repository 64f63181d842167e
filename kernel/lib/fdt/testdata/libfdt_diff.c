// libfdt_diff.c runs the real libfdt over a file of blobs (each a
// big-endian u32 length, then the bytes) and prints one line of results per
// blob: fdt_check_full() and, for blobs whose header is sane, a set of
// lookups and a walk. TestLibfdtDifferential prints the same line from the
// Go port and compares. libfdt's headers are not installed on the build
// machine, so the prototypes are declared here.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fdt_check_full(const void *fdt, size_t bufsize);
int fdt_check_header(const void *fdt);
int fdt_subnode_offset(const void *fdt, int parentoffset, const char *name);
int fdt_path_offset(const void *fdt, const char *path);
const void *fdt_getprop(const void *fdt, int nodeoffset, const char *name, int *lenp);
int fdt_node_check_compatible(const void *fdt, int nodeoffset, const char *compatible);
int fdt_first_subnode(const void *fdt, int offset);
int fdt_next_subnode(const void *fdt, int offset);
int fdt_first_property_offset(const void *fdt, int nodeoffset);
int fdt_next_property_offset(const void *fdt, int offset);
int fdt_num_mem_rsv(const void *fdt);
int fdt_next_node(const void *fdt, int offset, int *depth);
const char *fdt_get_name(const void *fdt, int nodeoffset, int *lenp);
const void *fdt_getprop_by_offset(const void *fdt, int offset, const char **namep, int *lenp);

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

static void hexs(const void *p, int n)
{
	const unsigned char *b = p;
	for (int i = 0; i < n; i++)
		printf("%02x", b[i]);
}

int main(int argc, char **argv)
{
	FILE *f = fopen(argv[1], "rb");
	unsigned char lenb[4];
	while (fread(lenb, 1, 4, f) == 4) {
		uint32_t n = be32(lenb);
		unsigned char *buf = aligned_alloc(8, (n + 64 + 8) & ~7u);
		memset(buf, 0, n + 64);
		if (fread(buf, 1, n, f) != n) return 1;
		int full = n >= 40 ? fdt_check_full(buf, n) : -8;
		printf("full=%d", full < 0 ? full : 0);
		int hdr = n >= 40 ? fdt_check_header(buf) : -8;
		if (hdr == 0 && be32(buf + 4) <= n && be32(buf + 20) >= 16) {
			int len, o;
			const void *v;
			printf(" sub=%d", fdt_subnode_offset(buf, 0, "luo-session"));
			printf(" path=%d", fdt_path_offset(buf, "/luo-session"));
			v = fdt_getprop(buf, 0, "compatible", &len);
			printf(" prop=%d:", len);
			if (v) hexs(v, len);
			printf(" compat=%d", fdt_node_check_compatible(buf, 0, "luo-v1"));
			o = fdt_first_subnode(buf, 0);
			printf(" fsub=%d", o);
			if (o >= 0) printf(" nsub=%d", fdt_next_subnode(buf, o));
			printf(" fprop=%d", fdt_first_property_offset(buf, 0));
			printf(" nrsv=%d", fdt_num_mem_rsv(buf));
			int depth = 0, k = 0;
			for (o = 0; o >= 0 && k < 200; k++) {
				const char *nm = fdt_get_name(buf, o, &len);
				printf(" n%d=%d", o, len);
				if (nm) { printf(":"); hexs(nm, len); }
				int p = fdt_first_property_offset(buf, o);
				for (int j = 0; p >= 0 && j < 50; j++) {
					const char *pn; int pl;
					const void *pv = fdt_getprop_by_offset(buf, p, &pn, &pl);
					printf(" p%d=%d", p, pl);
					if (pv) { printf(":"); hexs(pn, strlen(pn)); }
					p = fdt_next_property_offset(buf, p);
				}
				printf(" pe=%d", p);
				o = fdt_next_node(buf, o, &depth);
				printf(" d=%d", depth);
				if (depth < 0) break;
			}
			printf(" end=%d", o < 0 ? o : 0);
		}
		printf("\n");
		free(buf);
	}
	return 0;
}
