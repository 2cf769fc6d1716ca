/* efault: syscalls given bad user pointers must fail with EFAULT, not crash.
 * Note: read() from /dev/null never touches the buffer (the kernel returns 0
 * after only a range check), so the low-address read uses a pipe that holds
 * data; the kernel-half address fails the range check for any fd. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int fails;

static void report(const char *what, long r, int e)
{
	if (r == -1 && e == EFAULT) {
		printf("%s = -1 EFAULT\n", what);
	} else {
		printf("FAIL %s = %ld errno %d (%s)\n", what, r, e, strerror(e));
		fails++;
	}
}

int main(void)
{
	void *volatile low = (void *)0x10;
	void *volatile high = (void *)-4096L;
	long r;

	errno = 0;
	r = write(1, low, 5);
	report("write(1, 0x10, 5)", r, errno);

	errno = 0;
	r = write(1, high, 5);
	report("write(1, -4096, 5)", r, errno);

	int p[2];
	if (pipe(p) != 0 || write(p[1], "hello", 5) != 5) {
		printf("FAIL pipe setup\n");
		return 1;
	}
	errno = 0;
	r = read(p[0], low, 5);
	report("read(pipe, 0x10, 5)", r, errno);

	errno = 0;
	r = read(0, high, 5);
	report("read(0, -4096, 5)", r, errno);

	/* The process is still alive and the pipe data is still there. */
	char buf[8] = {0};
	if (read(p[0], buf, 5) == 5 && memcmp(buf, "hello", 5) == 0)
		printf("pipe data intact\n");
	else {
		printf("FAIL pipe data\n");
		fails++;
	}
	return fails ? 1 : 0;
}
