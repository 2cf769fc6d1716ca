/* segv_rodata [rodata|mmap]: print "before", then write to read-only memory:
 * a static const string (default) or a page mmap'ed PROT_READ -> SIGSEGV. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

static const char msg[] = "this string lives in .rodata";

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "rodata";
	volatile char *volatile target;
	if (strcmp(mode, "mmap") == 0) {
		void *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			printf("FAIL mmap\n");
			return 1;
		}
		target = p;
		if (target[0] != 0) { /* reading is fine */
			printf("FAIL read\n");
			return 1;
		}
	} else if (strcmp(mode, "rodata") == 0) {
		target = (char *)msg;
	} else {
		printf("FAIL unknown mode\n");
		return 2;
	}
	printf("before\n");
	fflush(stdout);
	target[0] = 'X';
	printf("after\n");
	return 0;
}
