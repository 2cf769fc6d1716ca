/* enosys: syscall numbers the kernel does not implement must fail with ENOSYS. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int check(long nr)
{
	errno = 0;
	long r = syscall(nr);
	int e = errno;
	if (r == -1 && e == ENOSYS) {
		printf("syscall(%ld) = -1 ENOSYS\n", nr);
		return 1;
	}
	printf("FAIL syscall(%ld) = %ld errno %d (%s)\n", nr, r, e, strerror(e));
	return 0;
}

int main(void)
{
	int ok = 1;
	ok &= check(1000);
	ok &= check(449 + 100);
	if (ok) {
		printf("ENOSYS ok\n");
		return 0;
	}
	return 1;
}
