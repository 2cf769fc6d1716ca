/* poll_select: readiness of pipes through poll, ppoll, select and pselect, timeouts, a child
 * waking a parent blocked in poll, POLLHUP, POLLNVAL, FIONREAD. Stable output. */
#define _GNU_SOURCE
#include <poll.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long ms_since(struct timespec *a) {
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (b.tv_sec - a->tv_sec) * 1000 + (b.tv_nsec - a->tv_nsec) / 1000000;
}

int main(void) {
    int p[2];
    pipe(p);
    struct pollfd f[2] = {{.fd = p[0], .events = POLLIN}, {.fd = p[1], .events = POLLOUT}};
    int n = poll(f, 2, 0);
    printf("poll empty: %d in %d out %d\n", n, !!(f[0].revents & POLLIN), !!(f[1].revents & POLLOUT));
    write(p[1], "abc", 3);
    n = poll(f, 1, -1);
    printf("poll data: %d in %d\n", n, !!(f[0].revents & POLLIN));
    int avail = -1;
    ioctl(p[0], FIONREAD, &avail);
    printf("fionread %d\n", avail);
    char b[8];
    read(p[0], b, sizeof b);

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct timespec to = {0, 30 * 1000000};
    n = ppoll(f, 1, &to, NULL);
    printf("ppoll timeout: %d waited >= 30ms %d\n", n, ms_since(&t0) >= 29);

    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    struct timeval tv = {0, 20000};
    n = select(p[0] + 1, &rs, NULL, NULL, &tv);
    printf("select timeout: %d\n", n);

    if (fork() == 0) {
        usleep(50000);
        write(p[1], "x", 1);
        _exit(0);
    }
    n = poll(f, 1, 5000);
    printf("poll woken by child: %d in %d\n", n, !!(f[0].revents & POLLIN));
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    struct timespec ts = {1, 0};
    n = pselect(p[0] + 1, &rs, NULL, NULL, &ts, NULL);
    printf("pselect ready: %d set %d\n", n, FD_ISSET(p[0], &rs));
    wait(NULL);
    read(p[0], b, 1);
    close(p[1]);
    n = poll(f, 1, 1000);
    printf("poll after close: %d hup %d\n", n, !!(f[0].revents & POLLHUP));
    struct pollfd bad = {.fd = 99, .events = POLLIN};
    n = poll(&bad, 1, 0);
    printf("poll bad fd: %d nval %d\n", n, !!(bad.revents & POLLNVAL));
    struct timespec sl = {0, 10000000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    nanosleep(&sl, NULL);
    printf("nanosleep >= 10ms %d\n", ms_since(&t0) >= 9);
    return 0;
}
