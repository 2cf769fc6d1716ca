/* pipe_size: F_GETPIPE_SZ/F_SETPIPE_SZ, compared with Linux: the default, rounding to a page
 * and a power of two, a full pipe holding exactly its size, EBUSY below what it holds, EBADF
 * for a file that is no pipe. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static long fill(int w) {
    static char buf[4096];
    long total = 0;
    for (;;) {
        long n = write(w, buf, sizeof buf);
        if (n < 0)
            return errno == EAGAIN ? total : -errno;
        total += n;
    }
}

int main(void) {
    int p[2];
    if (pipe2(p, O_NONBLOCK) != 0)
        return 1;
    printf("default %d\n", fcntl(p[1], F_GETPIPE_SZ));
    printf("set 1 -> %d\n", fcntl(p[1], F_SETPIPE_SZ, 1));
    int got = fcntl(p[1], F_SETPIPE_SZ, 5000);
    printf("set 5000 -> %d, read end sees %d\n", got, fcntl(p[0], F_GETPIPE_SZ));
    printf("a full pipe holds %ld\n", fill(p[1]));
    struct pollfd pf = {p[1], POLLOUT, 0};
    printf("writable when full %d\n", poll(&pf, 1, 0));
    int r = fcntl(p[1], F_SETPIPE_SZ, 4096);
    printf("shrink below its data: %d %s\n", r, r < 0 ? strerror(errno) : "");
    got = fcntl(p[1], F_SETPIPE_SZ, 65536);
    printf("grow to 65536 -> %d, writable %d\n", got, poll(&pf, 1, 0));
    printf("then holds %ld more\n", fill(p[1]));
    int fd = open("/proc/self/stat", O_RDONLY);
    r = fcntl(fd, F_GETPIPE_SZ);
    printf("not a pipe: %d %s\n", r, r < 0 ? strerror(errno) : "");
    return 0;
}
