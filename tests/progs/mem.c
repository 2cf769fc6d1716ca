/* mem: brk, mmap, munmap, mprotect, MAP_FIXED and argument errors.
 * Prints "ok <name>" or "FAIL <name> ..." per check; exit 0 iff all ok.
 * brk is driven through the raw syscall (musl's sbrk() only supports 0), and
 * stdout uses a static buffer so no malloc() moves the break behind our back. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096UL

static int fails;
static char outbuf[1 << 16];

static void check(int cond, const char *name, const char *detail)
{
	if (cond) {
		printf("ok %s\n", name);
	} else {
		printf("FAIL %s %s (errno %d %s)\n", name, detail, errno, strerror(errno));
		fails++;
	}
}

static uintptr_t raw_brk(uintptr_t addr)
{
	return (uintptr_t)syscall(SYS_brk, addr);
}

static unsigned char pat(size_t i)
{
	return (unsigned char)((i * 131u + (i >> 12) * 7u + 1u) & 0xff);
}

static int fill_and_verify(unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i += 61)
		p[i] = pat(i);
	for (size_t i = 0; i < len; i += 61)
		if (p[i] != pat(i))
			return 0;
	return 1;
}

static int all_zero(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i += 64)
		if (p[i])
			return 0;
	return 1;
}

int main(void)
{
	setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);

	/* --- brk --- */
	uintptr_t b0 = raw_brk(0);
	check(b0 != 0, "brk_query", "brk(0) returned 0");
	uintptr_t want = b0 + 16 * PAGE;
	uintptr_t b1 = raw_brk(want);
	check(b1 == want, "brk_grow", "brk(b0+64K) did not move the break");
	if (b1 == want)
		check(fill_and_verify((unsigned char *)b0, 16 * PAGE), "brk_rw",
		      "pattern mismatch in grown heap");
	check(raw_brk(0) == want, "brk_query_grown", "brk(0) != grown break");
	uintptr_t b2 = raw_brk(b0);
	check(b2 == b0, "brk_shrink", "brk(b0) did not shrink");
	check(raw_brk(0) == b0, "brk_query_shrunk", "brk(0) != original break");
	/* Growing again must give zeroed memory. */
	if (raw_brk(want) == want) {
		check(all_zero((unsigned char *)b0, 16 * PAGE), "brk_regrow_zero",
		      "re-grown heap not zero");
		raw_brk(b0);
	} else {
		check(0, "brk_regrow_zero", "re-grow failed");
	}

	/* --- anonymous mmap, 1 MiB --- */
	const size_t mib = 1 << 20;
	unsigned char *m = mmap(NULL, mib, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	check(m != MAP_FAILED, "mmap_anon", "mmap 1MiB failed");
	if (m == MAP_FAILED)
		goto out;
	check(((uintptr_t)m & (PAGE - 1)) == 0, "mmap_aligned", "not page aligned");
	check(all_zero(m, mib), "mmap_zero", "fresh mapping not zero");
	check(fill_and_verify(m, mib), "mmap_rw", "pattern mismatch");
	/* First and last byte of every page. */
	int edges = 1;
	for (size_t pg = 0; pg < mib / PAGE; pg++) {
		m[pg * PAGE] = (unsigned char)pg;
		m[pg * PAGE + PAGE - 1] = (unsigned char)~pg;
	}
	for (size_t pg = 0; pg < mib / PAGE; pg++)
		edges &= m[pg * PAGE] == (unsigned char)pg &&
			 m[pg * PAGE + PAGE - 1] == (unsigned char)~pg;
	check(edges, "mmap_page_edges", "page edge mismatch");

	/* --- munmap, then a fresh mmap works and is zeroed --- */
	errno = 0;
	check(munmap(m, mib) == 0, "munmap", "munmap returned nonzero");
	unsigned char *m2 = mmap(NULL, mib, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	check(m2 != MAP_FAILED, "remmap", "mmap after munmap failed");
	if (m2 != MAP_FAILED) {
		check(all_zero(m2, mib), "remmap_zero", "re-mapped memory not zero");
		check(munmap(m2, mib) == 0, "munmap_again", "second munmap failed");
	}

	/* --- mprotect --- */
	unsigned char *pr = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	check(pr != MAP_FAILED, "mprotect_setup", "mmap failed");
	if (pr != MAP_FAILED) {
		memset(pr, 0x5a, 2 * PAGE);
		errno = 0;
		check(mprotect(pr, 2 * PAGE, PROT_READ) == 0, "mprotect_ro",
		      "mprotect(PROT_READ) failed");
		volatile unsigned char *v = pr;
		check(v[0] == 0x5a && v[2 * PAGE - 1] == 0x5a, "mprotect_ro_read",
		      "read after PROT_READ wrong");
		errno = 0;
		check(mprotect(pr, 2 * PAGE, PROT_READ | PROT_WRITE) == 0, "mprotect_rw",
		      "mprotect(PROT_READ|PROT_WRITE) failed");
		v[PAGE] = 0xa5;
		check(v[PAGE] == 0xa5 && v[0] == 0x5a, "mprotect_rw_write",
		      "write after PROT_WRITE wrong");
		munmap(pr, 2 * PAGE);
	}

	/* --- hint and MAP_FIXED inside a reserved PROT_NONE range --- */
	unsigned char *res = mmap(NULL, 8 * PAGE, PROT_NONE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	check(res != MAP_FAILED, "reserve", "PROT_NONE reservation failed");
	if (res != MAP_FAILED) {
		unsigned char *want_fixed = res + 2 * PAGE;
		unsigned char *f = mmap(want_fixed, 2 * PAGE, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		check(f == want_fixed, "mmap_fixed", "MAP_FIXED not at requested address");
		if (f == want_fixed)
			check(fill_and_verify(f, 2 * PAGE), "mmap_fixed_rw",
			      "pattern mismatch in MAP_FIXED region");
		check(munmap(res, 8 * PAGE) == 0, "munmap_reserve", "munmap failed");
		/* A hint (no MAP_FIXED) just has to produce a usable mapping. */
		unsigned char *h = mmap(res, PAGE, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		check(h != MAP_FAILED, "mmap_hint", "mmap with hint failed");
		if (h != MAP_FAILED) {
			h[0] = 1;
			munmap(h, PAGE);
		}
	}

	/* --- argument errors --- */
	errno = 0;
	void *z = mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	check(z == MAP_FAILED && errno == EINVAL, "mmap_len0_einval",
	      "mmap(len 0) did not fail with EINVAL");
	unsigned char *u = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (u != MAP_FAILED) {
		errno = 0;
		int r = munmap(u + 1, PAGE);
		check(r == -1 && errno == EINVAL, "munmap_unaligned_einval",
		      "munmap(unaligned) did not fail with EINVAL");
		errno = 0;
		void *fx = mmap(u + 1, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
				-1, 0);
		check(fx == MAP_FAILED && errno == EINVAL, "mmap_fixed_unaligned_einval",
		      "mmap(MAP_FIXED, unaligned) did not fail with EINVAL");
		munmap(u, 2 * PAGE);
	} else {
		check(0, "munmap_unaligned_einval", "setup mmap failed");
	}

	/* mremap: grow in place into free space, move when blocked (data kept), shrink, and
	 * the error cases. */
	{
		char *m = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		munmap(m + 2 * PAGE, 2 * PAGE);
		strcpy(m, "mremap-data");
		strcpy(m + PAGE, "second-page");
		char *g = mremap(m, 2 * PAGE, 4 * PAGE, 0);
		check(g == m, "mremap_grow_in_place", "growing into free space moved or failed");
		g[3 * PAGE] = 1;
		char *blk = mmap(m + 4 * PAGE, PAGE, PROT_READ,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		errno = 0;
		char *n = mremap(m, 4 * PAGE, 8 * PAGE, 0);
		check(n == MAP_FAILED && errno == ENOMEM, "mremap_no_move_enomem",
		      "growing a blocked mapping without MAYMOVE did not fail with ENOMEM");
		n = mremap(m, 4 * PAGE, 8 * PAGE, MREMAP_MAYMOVE);
		check(n != MAP_FAILED && n != m && !strcmp(n, "mremap-data") &&
			      !strcmp(n + PAGE, "second-page") && n[3 * PAGE] == 1 && n[7 * PAGE] == 0,
		      "mremap_move_keeps_data", "moved mapping lost its contents");
		char *s2 = mremap(n, 8 * PAGE, PAGE, 0);
		check(s2 == n && !strcmp(s2, "mremap-data"), "mremap_shrink",
		      "shrinking moved or lost data");
		errno = 0;
		check(mremap(n + 1, PAGE, 2 * PAGE, MREMAP_MAYMOVE) == MAP_FAILED && errno == EINVAL,
		      "mremap_unaligned_einval", "unaligned mremap did not fail with EINVAL");
		errno = 0;
		check(mremap(n, PAGE, 2 * PAGE, 0x80) == MAP_FAILED && errno == EINVAL,
		      "mremap_bad_flags_einval", "unknown flags did not fail with EINVAL");
		errno = 0;
		check(mremap(n, 2 * PAGE, 4 * PAGE, MREMAP_MAYMOVE) == MAP_FAILED && errno == EFAULT,
		      "mremap_unmapped_efault", "a range past the mapping did not fail with EFAULT");
		munmap(n, PAGE);
		munmap(blk, PAGE);
	}

out:
	if (fails)
		printf("mem: %d FAILED\n", fails);
	else
		printf("mem: all ok\n");
	fflush(stdout);
	return fails ? 1 : 0;
}
