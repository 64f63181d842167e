// libfdt_ref.c writes reference blobs with the real libfdt, to compare the
// Go Writer with byte for byte (TestWriterMatchesLibfdt). libfdt's headers
// are not installed on the build machine, so the prototypes are declared
// here. Regenerate with:
//
//	gcc -O2 -o /tmp/libfdt_ref libfdt_ref.c /usr/lib/x86_64-linux-gnu/libfdt.so.1
//	(cd testdata && /tmp/libfdt_ref)
//
// The trees must match the ones the Go test builds (writeLUO, writeKHO,
// writeMisc in the _test.go files). Every output file is the whole 4096-byte
// buffer, including what fdt_finish() leaves past totalsize.
#include <endian.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fdt_create(void *buf, int bufsize);
int fdt_create_with_flags(void *buf, int bufsize, uint32_t flags);
int fdt_add_reservemap_entry(void *fdt, uint64_t addr, uint64_t size);
int fdt_finish_reservemap(void *fdt);
int fdt_begin_node(void *fdt, const char *name);
int fdt_property(void *fdt, const char *name, const void *val, int len);
int fdt_property_placeholder(void *fdt, const char *name, int len, void **valp);
int fdt_end_node(void *fdt);
int fdt_finish(void *fdt);

#define BUFSIZE 4096
#define CHECK(x) do { int e_ = (x); if (e_) { fprintf(stderr, "%s:%d: %s = %d\n", __FILE__, __LINE__, #x, e_); exit(1); } } while (0)

static int prop_string(void *fdt, const char *name, const char *s)
{
	return fdt_property(fdt, name, s, strlen(s) + 1);
}

static int prop_u32(void *fdt, const char *name, uint32_t v)
{
	uint32_t be = htobe32(v);
	return fdt_property(fdt, name, &be, sizeof(be));
}

static int prop_u64(void *fdt, const char *name, uint64_t v)
{
	uint64_t be = htobe64(v);
	return fdt_property(fdt, name, &be, sizeof(be));
}

static int prop_u64le(void *fdt, const char *name, uint64_t v)
{
	uint64_t le = htole64(v);
	return fdt_property(fdt, name, &le, sizeof(le));
}

static void save(const char *path, const void *buf)
{
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, BUFSIZE, f) != BUFSIZE || fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void luo(void *fdt)
{
	CHECK(fdt_create(fdt, BUFSIZE));
	CHECK(fdt_finish_reservemap(fdt));
	CHECK(fdt_begin_node(fdt, ""));
	CHECK(prop_string(fdt, "compatible", "luo-v1"));
	CHECK(prop_u64le(fdt, "liveupdate-number", 3));
	CHECK(fdt_begin_node(fdt, "luo-session"));
	CHECK(prop_string(fdt, "compatible", "luo-session-v2"));
	CHECK(prop_u64le(fdt, "luo-session-header", 0x0000000123456000ULL));
	CHECK(fdt_end_node(fdt));
	CHECK(fdt_end_node(fdt));
	CHECK(fdt_finish(fdt));
}

static void kho(void *fdt)
{
	uint64_t *mm;

	CHECK(fdt_create(fdt, BUFSIZE));
	CHECK(fdt_finish_reservemap(fdt));
	CHECK(fdt_begin_node(fdt, ""));
	CHECK(prop_string(fdt, "compatible", "kho-v1"));
	CHECK(fdt_property_placeholder(fdt, "preserved-memory-map", 8, (void **)&mm));
	CHECK(fdt_begin_node(fdt, "LUO"));
	CHECK(prop_u64le(fdt, "fdt", 0x0000000100042000ULL));
	CHECK(fdt_end_node(fdt));
	CHECK(fdt_end_node(fdt));
	CHECK(fdt_finish(fdt));
	*mm = htole64(0x00000000abcd0000ULL);
}

static void misc(void *fdt, uint32_t flags)
{
	static const unsigned char bytes[] = { 0xde, 0xad, 0xbe, 0xef, 0x01 };

	CHECK(fdt_create_with_flags(fdt, BUFSIZE, flags));
	CHECK(fdt_add_reservemap_entry(fdt, 0x1000, 0x2000));
	CHECK(fdt_add_reservemap_entry(fdt, 0xffffffff00000000ULL, 0x10));
	CHECK(fdt_finish_reservemap(fdt));
	CHECK(fdt_begin_node(fdt, ""));
	CHECK(prop_string(fdt, "compatible", "test,misc"));
	CHECK(prop_u32(fdt, "#address-cells", 2));
	CHECK(prop_u32(fdt, "#size-cells", 1));
	CHECK(prop_string(fdt, "model", "luomodel misc tree"));
	CHECK(fdt_begin_node(fdt, "cpus"));
	CHECK(fdt_begin_node(fdt, "cpu@0"));
	CHECK(prop_u32(fdt, "linux,phandle", 1));
	CHECK(prop_u32(fdt, "phandle", 1));
	CHECK(prop_string(fdt, "compatible", "test,cpu"));
	CHECK(fdt_end_node(fdt));
	CHECK(fdt_begin_node(fdt, "cpu@1"));
	CHECK(prop_u32(fdt, "phandle", 2));
	CHECK(fdt_end_node(fdt));
	CHECK(fdt_end_node(fdt));
	CHECK(fdt_begin_node(fdt, "memory@80000000"));
	CHECK(fdt_property(fdt, "compatible", "test,mem\0test,generic", 22));
	CHECK(prop_u64(fdt, "reg", 0x80000000ULL));
	CHECK(fdt_property(fdt, "empty", NULL, 0));
	CHECK(fdt_property(fdt, "bytes", bytes, sizeof(bytes)));
	CHECK(fdt_end_node(fdt));
	CHECK(fdt_end_node(fdt));
	CHECK(fdt_finish(fdt));
}

int main(void)
{
	static unsigned char buf[BUFSIZE];

	luo(buf);
	save("luo.libfdt.bin", buf);
	kho(buf);
	save("kho.libfdt.bin", buf);
	misc(buf, 0);
	save("misc.libfdt.bin", buf);
	misc(buf, 1); /* FDT_CREATE_FLAG_NO_NAME_DEDUP */
	save("misc-nodedup.libfdt.bin", buf);
	return 0;
}
