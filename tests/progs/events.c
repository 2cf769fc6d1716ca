/* events: epoll (level and edge triggered, EPOLLONESHOT, EPOLLRDHUP on pipes, epoll inside
 * epoll, closing watched fds, error cases), eventfd (EFD_SEMAPHORE, EFD_NONBLOCK,
 * EFD_CLOEXEC), timerfd (relative and absolute, CLOCK_REALTIME/MONOTONIC/BOOTTIME, periodic,
 * gettime), signalfd (kill, SIGCHLD, mask updates), and poll/select/epoll over all of them,
 * with other processes waking a blocked waiter. Stable output. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "errname.h"

/* An address nothing is mapped at (a volatile, so the compiler does not object). */
static void *volatile bad_ptr = (void *)8;

static long ms_since(struct timespec *a) {
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (b.tv_sec - a->tv_sec) * 1000 + (b.tv_nsec - a->tv_nsec) / 1000000;
}


static int add(int ep, int fd, uint32_t events, uint64_t data) {
    struct epoll_event e = {.events = events, .data.u64 = data};
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
}

/* One epoll_wait; prints count and, for one event, its events and data. */
static int wait1(const char *what, int ep, int timeout) {
    struct epoll_event e[8];
    int n = epoll_wait(ep, e, 8, timeout);
    if (n < 0) {
        printf("%s: %s\n", what, err(n));
        return n;
    }
    printf("%s: %d", what, n);
    /* In data order: the order of several ready events is the kernel's business. */
    for (uint64_t d = 0; d < 1000; d++)
        for (int i = 0; i < n; i++)
            if (e[i].data.u64 == d) printf(" [events %#x data %llu]", e[i].events, (unsigned long long)d);
    printf("\n");
    return n;
}

static void epoll_basics(void) {
    printf("epoll_create(0) %s\n", err(epoll_create(0)));
    printf("epoll_create1(bad) %s\n", err(epoll_create1(1)));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    printf("cloexec %d\n", fcntl(ep, F_GETFD));
    struct stat st;
    fstat(ep, &st);
    printf("epoll st_mode %o\n", st.st_mode);
    char link[64] = {0}, path[32];
    snprintf(path, sizeof path, "/proc/self/fd/%d", ep);
    readlink(path, link, sizeof link - 1);
    printf("epoll link %s\n", link);
    char buf[16];
    printf("read epoll %s\n", err(read(ep, buf, 8)));

    int p[2];
    pipe(p);
    printf("add %s\n", err(add(ep, p[0], EPOLLIN, 7)));
    wait1("lt empty", ep, 0);
    write(p[1], "ab", 2);
    wait1("lt data", ep, 0);
    wait1("lt again", ep, 0);
    read(p[0], buf, 2);
    wait1("lt drained", ep, 0);

    struct epoll_event e = {.events = EPOLLIN | EPOLLET, .data.u64 = 8};
    printf("mod et %s\n", err(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &e)));
    wait1("et empty", ep, 0);
    write(p[1], "a", 1);
    wait1("et edge", ep, 0);
    wait1("et no new edge", ep, 0);
    write(p[1], "b", 1);
    wait1("et second edge", ep, 0);
    /* A bad buffer: EFAULT, and the edge is still there. */
    write(p[1], "c", 1);
    printf("et efault %s\n", err(epoll_wait(ep, bad_ptr, 1, 0)));
    wait1("et after efault", ep, 0);
    read(p[0], buf, 3);

    e.events = EPOLLIN | EPOLLONESHOT;
    e.data.u64 = 9;
    epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &e);
    write(p[1], "d", 1);
    wait1("oneshot", ep, 0);
    write(p[1], "e", 1);
    wait1("oneshot disabled", ep, 0);
    printf("rearm %s\n", err(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &e)));
    wait1("oneshot rearmed", ep, 0);
    read(p[0], buf, 2);

    /* Errors. */
    printf("add again %s\n", err(add(ep, p[0], EPOLLIN, 1)));
    printf("mod unknown %s\n", err(epoll_ctl(ep, EPOLL_CTL_MOD, p[1], &e)));
    printf("del unknown %s\n", err(epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL)));
    printf("add self %s\n", err(add(ep, ep, EPOLLIN, 1)));
    printf("add bad fd %s\n", err(add(ep, 99, EPOLLIN, 1)));
    printf("not an epoll %s\n", err(add(p[0], p[1], EPOLLIN, 1)));
    printf("bad op %s\n", err(epoll_ctl(ep, 77, p[1], &e)));
    printf("bad event ptr %s\n", err(epoll_ctl(ep, EPOLL_CTL_ADD, p[1], bad_ptr)));
    e.events = EPOLLIN | EPOLLEXCLUSIVE;
    printf("mod exclusive %s\n", err(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &e)));
    e.events = EPOLLIN | EPOLLEXCLUSIVE | EPOLLONESHOT;
    printf("add exclusive oneshot %s\n", err(epoll_ctl(ep, EPOLL_CTL_ADD, p[1], &e)));
    int f = open("/proc/self/exe", O_RDONLY);
    printf("add regular file %s\n", err(add(ep, f, EPOLLIN, 1)));
    close(f);
    int d = open("/", O_RDONLY | O_DIRECTORY);
    printf("add directory %s\n", err(add(ep, d, EPOLLIN, 1)));
    close(d);
    int nul = open("/dev/null", O_RDONLY);
    printf("add /dev/null %s\n", err(add(ep, nul, EPOLLIN, 1)));
    close(nul);
    struct epoll_event evs[4];
    printf("wait maxevents 0 %s\n", err(epoll_wait(ep, evs, 0, 0)));
    printf("wait not epoll %s\n", err(epoll_wait(p[0], evs, 4, 0)));
    printf("wait bad fd %s\n", err(epoll_wait(99, evs, 4, 0)));
    printf("del %s\n", err(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL)));
    wait1("after del", ep, 0);

    /* Hang-ups: EPOLLRDHUP is a socket's, not a pipe's. */
    add(ep, p[0], EPOLLIN | EPOLLRDHUP, 10);
    add(ep, p[1], EPOLLOUT, 11);
    epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL);
    int q[2];
    pipe(q);
    add(ep, q[0], EPOLLIN | EPOLLRDHUP, 12);
    close(q[1]);
    wait1("writer closed", ep, 0);
    epoll_ctl(ep, EPOLL_CTL_DEL, q[0], NULL);
    close(q[0]);
    wait1("write end", ep, 0);
    close(p[0]);
    wait1("reader closed", ep, 0);
    close(p[1]);
    wait1("closed fds leave the set", ep, 0);

    /* A dup keeps the watch alive; closing the last descriptor ends it. */
    pipe(p);
    add(ep, p[0], EPOLLIN, 13);
    int dup_fd = dup(p[0]);
    close(p[0]);
    write(p[1], "x", 1);
    wait1("watch through dup", ep, 0);
    printf("del closed fd %s\n", err(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL)));
    close(dup_fd);
    wait1("last close", ep, 0);

    /* Stdout (a pipe or a terminal) is writable. */
    printf("add stdout %s\n", err(add(ep, 1, EPOLLOUT, 14)));
    fflush(stdout);
    wait1("stdout", ep, 0);
    epoll_ctl(ep, EPOLL_CTL_DEL, 1, NULL);

    /* Several ready, fewer slots: level-triggered ones take turns. */
    int r[3][2];
    for (int i = 0; i < 3; i++) {
        pipe(r[i]);
        write(r[i][1], "z", 1);
        add(ep, r[i][0], EPOLLIN, 100 + i);
    }
    int seen = 0;
    for (int round = 0; round < 2; round++) {
        int n = epoll_wait(ep, evs, 2, 0);
        printf("round %d: %d\n", round, n);
        for (int i = 0; i < n; i++) seen |= 1 << (evs[i].data.u64 - 100);
    }
    printf("all served %d\n", seen == 7);
    for (int i = 0; i < 3; i++) close(r[i][0]), close(r[i][1]);

    /* Events come in the order their files woke up (Linux's ready list). */
    int o = epoll_create1(0);
    for (int i = 0; i < 3; i++) {
        pipe(r[i]);
        add(o, r[i][0], EPOLLIN, 200 + i);
    }
    write(r[1][1], "z", 1);
    write(r[0][1], "z", 1);
    write(r[2][1], "z", 1);
    for (int round = 0; round < 3; round++) {
        int n = epoll_wait(o, evs, 2, 0);
        printf("order %d:", round);
        for (int i = 0; i < n; i++) printf(" %llu", (unsigned long long)evs[i].data.u64);
        printf("\n");
    }
    for (int i = 0; i < 3; i++) close(r[i][0]), close(r[i][1]);
    close(o);
    pipe(p);
    add(ep, p[0], EPOLLIN, 15);

    /* Epoll inside epoll. */
    int outer = epoll_create1(0);
    printf("add inner %s\n", err(add(outer, ep, EPOLLIN, 20)));
    printf("loop %s\n", err(add(ep, outer, EPOLLIN, 21)));
    wait1("outer idle", outer, 0);
    struct pollfd pf = {.fd = ep, .events = POLLIN};
    printf("poll inner idle %d\n", poll(&pf, 1, 0));
    write(p[1], "y", 1);
    wait1("outer", outer, 0);
    { int pn = poll(&pf, 1, 0);
      printf("poll inner %d revents %#x\n", pn, pf.revents); }
    read(p[0], buf, 1);
    wait1("outer drained", outer, 0);

    /* Timeouts and wake-ups from another process. */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int n = epoll_wait(ep, evs, 4, 30);
    printf("timeout: %d waited >= 30ms %d\n", n, ms_since(&t0) >= 29);
    if (fork() == 0) {
        usleep(50000);
        write(p[1], "w", 1);
        _exit(0);
    }
    wait1("woken by child", ep, 5000);
    wait1("nested woken", outer, 5000);
    wait(NULL);
    read(p[0], buf, 1);
    close(outer);
    close(ep);
    close(p[0]);
    close(p[1]);
}

static volatile int got_usr1;
static void on_usr1(int s) { (void)s; got_usr1++; }

static void epoll_pwait_mask(void) {
    int ep = epoll_create1(0);
    int p[2];
    pipe(p);
    add(ep, p[0], EPOLLIN, 1);
    struct sigaction sa = {.sa_handler = on_usr1};
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t block, empty, cur;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigemptyset(&empty);
    sigprocmask(SIG_BLOCK, &block, NULL);
    kill(getpid(), SIGUSR1);
    struct epoll_event e;
    int n = epoll_wait(ep, &e, 1, 20);
    printf("blocked signal: %d handled %d\n", n, got_usr1);
    n = syscall(SYS_epoll_pwait, ep, &e, 1, 1000, &empty, 8);
    printf("epoll_pwait: %s handled %d\n", err(n), got_usr1);
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf("mask restored %d\n", sigismember(&cur, SIGUSR1));
    if (fork() == 0) {
        usleep(30000);
        kill(getppid(), SIGUSR1);
        _exit(0);
    }
    n = syscall(SYS_epoll_pwait, ep, &e, 1, 5000, &empty, 8);
    printf("epoll_pwait woken by a signal: %s handled %d\n", err(n), got_usr1);
    wait(NULL);
    write(p[1], "x", 1);
    n = syscall(SYS_epoll_pwait, ep, &e, 1, 0, &empty, 8);
    printf("epoll_pwait ready: %d\n", n);
    printf("bad sigsetsize %s\n", err(syscall(SYS_epoll_pwait, ep, &e, 1, 0, &empty, 4)));
    struct timespec ts = {0, 10000000};
    n = syscall(SYS_epoll_pwait2, ep, &e, 1, &ts, NULL, 8);
    printf("epoll_pwait2: %d\n", n);
    read(p[0], &n, 1);
    ts.tv_nsec = 20000000;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    n = syscall(SYS_epoll_pwait2, ep, &e, 1, &ts, NULL, 8);
    printf("epoll_pwait2 timeout: %d waited >= 20ms %d\n", n, ms_since(&t0) >= 19);
    ts.tv_nsec = -1;
    printf("epoll_pwait2 bad timeout %s\n", err(syscall(SYS_epoll_pwait2, ep, &e, 1, &ts, NULL, 8)));
    /* ppoll's mask too. */
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    kill(getpid(), SIGUSR1);
    n = ppoll(&pf, 1, NULL, &empty);
    printf("ppoll mask: %s handled %d\n", err(n), got_usr1);
    sigprocmask(SIG_UNBLOCK, &block, NULL);
    close(ep);
    close(p[0]);
    close(p[1]);
}

static void eventfds(void) {
    uint64_t v = 0;
    printf("eventfd2 bad flags %s\n", err(eventfd(0, 0x10)));
    int e = eventfd(5, 0);
    { ssize_t rn = read(e, &v, 8);
      printf("read %zd value %llu\n", rn, (unsigned long long)v); }
    printf("cloexec %d flags %#x\n", fcntl(e, F_GETFD), fcntl(e, F_GETFL) & ~0100000);
    close(e);
    e = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    printf("cloexec %d flags %#x\n", fcntl(e, F_GETFD), fcntl(e, F_GETFL) & ~0100000);
    struct stat st;
    fstat(e, &st);
    printf("eventfd st_mode %o\n", st.st_mode);
    char link[64] = {0}, path[32];
    snprintf(path, sizeof path, "/proc/self/fd/%d", e);
    readlink(path, link, sizeof link - 1);
    printf("eventfd link %s\n", link);
    printf("empty %s\n", err(read(e, &v, 8)));
    struct pollfd pf = {.fd = e, .events = POLLIN | POLLOUT};
    { int pn = poll(&pf, 1, 0);
      printf("poll empty %d revents %#x\n", pn, pf.revents); }
    v = 3;
    write(e, &v, 8);
    v = 4;
    write(e, &v, 8);
    { int pn = poll(&pf, 1, 0);
      printf("poll 7 %d revents %#x\n", pn, pf.revents); }
    char small[4];
    printf("short read %s\n", err(read(e, small, 4)));
    printf("short write %s\n", err(write(e, small, 4)));
    v = 0;
    { ssize_t rn = read(e, &v, 8);
      printf("read %zd value %llu\n", rn, (unsigned long long)v); }
    v = UINT64_MAX;
    printf("write max %s\n", err(write(e, &v, 8)));
    v = UINT64_MAX - 1;
    printf("write max-1 %s\n", err(write(e, &v, 8)));
    pf.events = POLLOUT;
    { int pn = poll(&pf, 1, 0);
      printf("poll full %d revents %#x\n", pn, pf.revents); }
    v = 1;
    printf("overflow %s\n", err(write(e, &v, 8)));
    printf("bad buffer %s\n", err(write(e, bad_ptr, 8)));
    read(e, &v, 8);
    close(e);

    e = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
    for (int i = 0; i < 4; i++) {
        v = 0;
        long r = read(e, &v, 8);
        printf("semaphore read %s %llu\n", err(r), (unsigned long long)v);
    }
    close(e);

    /* A blocking read woken by another process; epoll and select on an eventfd. */
    e = eventfd(0, 0);
    int ep = epoll_create1(0);
    add(ep, e, EPOLLIN | EPOLLET, 5);
    wait1("eventfd idle", ep, 0);
    if (fork() == 0) {
        usleep(30000);
        uint64_t one = 2;
        write(e, &one, 8);
        _exit(0);
    }
    v = 0;
    { ssize_t rn = read(e, &v, 8);
      printf("blocking read %zd value %llu\n", rn, (unsigned long long)v); }
    wait(NULL);
    wait1("eventfd edge after read", ep, 0);
    v = 1;
    write(e, &v, 8);
    wait1("eventfd edge", ep, 0);
    wait1("eventfd no new edge", ep, 0);
    write(e, &v, 8);
    wait1("eventfd write is an edge", ep, 0);
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(e, &rs);
    struct timeval tv = {0, 0};
    printf("select %d\n", select(e + 1, &rs, NULL, NULL, &tv));
    close(ep);
    close(e);
}

static void timerfds(void) {
    printf("timerfd bad clock %s\n", err(timerfd_create(CLOCK_PROCESS_CPUTIME_ID, 0)));
    printf("timerfd bad flags %s\n", err(timerfd_create(CLOCK_MONOTONIC, 1)));
    int t = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    printf("cloexec %d\n", fcntl(t, F_GETFD));
    char link[64] = {0}, path[32];
    snprintf(path, sizeof path, "/proc/self/fd/%d", t);
    readlink(path, link, sizeof link - 1);
    printf("timerfd link %s\n", link);
    struct itimerspec its = {0}, old;
    timerfd_gettime(t, &old);
    printf("disarmed %ld %ld\n", (long)old.it_value.tv_sec, old.it_value.tv_nsec);
    printf("settime bad flags %s\n", err(timerfd_settime(t, 4, &its, NULL)));
    its.it_value.tv_nsec = 1000000000;
    printf("settime bad nsec %s\n", err(timerfd_settime(t, 0, &its, NULL)));
    its.it_value.tv_nsec = 0;
    printf("settime not a timer %s\n", err(timerfd_settime(1, 0, &its, NULL)));
    printf("gettime not a timer %s\n", err(timerfd_gettime(1, &old)));
    printf("settime bad ptr %s\n", err(timerfd_settime(t, 0, bad_ptr, NULL)));
    uint64_t v = 0;
    printf("write %s\n", err(write(t, &v, 8)));

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    its.it_value.tv_nsec = 50000000;
    timerfd_settime(t, 0, &its, NULL);
    timerfd_gettime(t, &old);
    printf("armed: 0 < left <= 50ms %d\n",
           old.it_value.tv_sec == 0 && old.it_value.tv_nsec > 0 && old.it_value.tv_nsec <= 50000000);
    char small[4];
    printf("short read %s\n", err(read(t, small, 4)));
    ssize_t rn = read(t, &v, 8);
    printf("blocking read %zd expirations %llu waited >= 50ms %d\n", rn, (unsigned long long)v,
           ms_since(&t0) >= 49);
    timerfd_gettime(t, &old);
    printf("expired %ld %ld\n", (long)old.it_value.tv_sec, old.it_value.tv_nsec);

    /* Periodic. */
    its.it_value.tv_nsec = 10000000;
    its.it_interval.tv_nsec = 10000000;
    timerfd_settime(t, 0, &its, NULL);
    usleep(55000);
    read(t, &v, 8);
    printf("periodic expirations >= 4 %d\n", v >= 4);
    timerfd_gettime(t, &old);
    printf("interval %ld\n", old.it_interval.tv_nsec);
    memset(&its, 0, sizeof its);
    timerfd_settime(t, 0, &its, &old);
    printf("old interval %ld\n", old.it_interval.tv_nsec);
    fcntl(t, F_SETFL, O_NONBLOCK);
    printf("disarmed read %s\n", err(read(t, &v, 8)));
    close(t);

    /* Absolute on CLOCK_REALTIME, read through epoll (the wait ends with the expiry). */
    t = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    its.it_value = now;
    its.it_value.tv_nsec += 30000000;
    if (its.it_value.tv_nsec >= 1000000000) its.it_value.tv_sec++, its.it_value.tv_nsec -= 1000000000;
    timerfd_settime(t, TFD_TIMER_ABSTIME, &its, NULL);
    printf("not yet %s\n", err(read(t, &v, 8)));
    int ep = epoll_create1(0);
    add(ep, t, EPOLLIN, 30);
    wait1("realtime timer", ep, -1);
    struct timespec after;
    clock_gettime(CLOCK_REALTIME, &after);
    printf("not before the time %d\n", after.tv_sec > its.it_value.tv_sec ||
                                            (after.tv_sec == its.it_value.tv_sec &&
                                             after.tv_nsec >= its.it_value.tv_nsec));
    { ssize_t rn = read(t, &v, 8);
      printf("read %zd expirations %llu\n", rn, (unsigned long long)v); }
    /* An absolute time already past expires at once. */
    its.it_value.tv_sec = 1;
    timerfd_settime(t, TFD_TIMER_ABSTIME, &its, NULL);
    /* (Linux counts the expiry in its timer interrupt, a moment later.) */
    wait1("past time", ep, 1000);
    close(t);

    /* CLOCK_BOOTTIME through poll and select. */
    t = timerfd_create(CLOCK_BOOTTIME, 0);
    memset(&its, 0, sizeof its);
    its.it_value.tv_nsec = 20000000;
    timerfd_settime(t, 0, &its, NULL);
    struct pollfd pf = {.fd = t, .events = POLLIN};
    { int pn = poll(&pf, 1, 2000);
      printf("poll boottime %d revents %#x\n", pn, pf.revents); }
    read(t, &v, 8);
    timerfd_settime(t, 0, &its, NULL);
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(t, &rs);
    printf("select boottime %d\n", select(t + 1, &rs, NULL, NULL, NULL));
    close(t);
    close(ep);
}

static void signalfds(void) {
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigaddset(&m, SIGUSR2);
    sigaddset(&m, SIGCHLD);
    sigprocmask(SIG_BLOCK, &m, NULL);
    printf("signalfd bad size %s\n", err(syscall(SYS_signalfd4, -1, &m, 4, 0)));
    printf("signalfd bad flags %s\n", err(signalfd(-1, &m, 1)));
    printf("signalfd not one %s\n", err(signalfd(1, &m, 0)));
    printf("signalfd bad fd %s\n", err(signalfd(99, &m, 0)));
    int s = signalfd(-1, &m, SFD_NONBLOCK | SFD_CLOEXEC);
    printf("cloexec %d\n", fcntl(s, F_GETFD));
    char link[64] = {0}, path[32];
    snprintf(path, sizeof path, "/proc/self/fd/%d", s);
    readlink(path, link, sizeof link - 1);
    printf("signalfd link %s\n", link);
    struct signalfd_siginfo si[2];
    printf("empty %s\n", err(read(s, si, sizeof si)));
    printf("short read %s\n", err(read(s, si, 100)));
    kill(getpid(), SIGUSR2);
    kill(getpid(), SIGUSR1);
    struct pollfd pf = {.fd = s, .events = POLLIN};
    { int pn = poll(&pf, 1, 0);
      printf("poll %d revents %#x\n", pn, pf.revents); }
    sigset_t pend;
    sigpending(&pend);
    printf("pending usr1 %d usr2 %d\n", sigismember(&pend, SIGUSR1), sigismember(&pend, SIGUSR2));
    long n = read(s, si, sizeof si);
    printf("read %ld\n", n);
    for (int i = 0; i < n / (long)sizeof si[0]; i++)
        printf("  signo %u code %d pid ok %d\n", si[i].ssi_signo, si[i].ssi_code,
               si[i].ssi_pid == (uint32_t)getpid());
    sigpending(&pend);
    printf("taken %d\n", !sigismember(&pend, SIGUSR1) && !sigismember(&pend, SIGUSR2));

    /* Narrowing the mask of the same descriptor. */
    sigset_t only2;
    sigemptyset(&only2);
    sigaddset(&only2, SIGUSR2);
    printf("update returns fd %d\n", signalfd(s, &only2, 0) == s);
    kill(getpid(), SIGUSR1);
    printf("usr1 not in mask %s\n", err(read(s, si, sizeof si)));
    sigset_t all;
    sigemptyset(&all);
    sigaddset(&all, SIGUSR1);
    sigaddset(&all, SIGCHLD);
    sigaddset(&all, SIGUSR2);
    signalfd(s, &all, 0);
    read(s, si, sizeof si);
    printf("usr1 with the mask back %u\n", si[0].ssi_signo);

    /* Blocking reads: a child's exit (SIGCHLD), a signal from a child; epoll on it. */
    int b = signalfd(-1, &all, 0);
    int ep = epoll_create1(0);
    add(ep, b, EPOLLIN, 40);
    wait1("signalfd idle", ep, 0);
    pid_t c = fork();
    if (c == 0) {
        usleep(30000);
        _exit(3);
    }
    n = read(b, si, sizeof si[0]);
    printf("sigchld %ld signo %u code %d status %d pid ok %d\n", n, si[0].ssi_signo, si[0].ssi_code,
           si[0].ssi_status, si[0].ssi_pid == (uint32_t)c);
    waitpid(c, NULL, 0);
    c = fork();
    if (c == 0) {
        usleep(30000);
        kill(getppid(), SIGUSR2);
        _exit(0);
    }
    wait1("signalfd woken", ep, 5000);
    n = read(b, si, sizeof si[0]);
    printf("from child %ld signo %u code %d pid ok %d\n", n, si[0].ssi_signo, si[0].ssi_code,
           si[0].ssi_pid == (uint32_t)c);
    waitpid(c, NULL, 0);
    /* The child's exit is pending as SIGCHLD by now: blocked, it stays pending though
     * ignored; unblocked, it is gone. */
    sigset_t pend2, chld;
    sigpending(&pend2);
    printf("sigchld pending while blocked %d\n", sigismember(&pend2, SIGCHLD));
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_UNBLOCK, &chld, NULL);
    sigpending(&pend2);
    printf("sigchld discarded when unblocked %d\n", !sigismember(&pend2, SIGCHLD));
    sigprocmask(SIG_BLOCK, &chld, NULL);
    kill(getpid(), SIGUSR2);
    signal(SIGUSR2, SIG_IGN);
    sigpending(&pend2);
    printf("SIG_IGN discards a blocked pending signal %d\n", !sigismember(&pend2, SIGUSR2));
    signal(SIGUSR2, SIG_DFL);
    close(ep);
    close(b);
    close(s);
    sigprocmask(SIG_UNBLOCK, &m, NULL);
}

static void sigwaits(void) {
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigaddset(&m, SIGUSR2);
    sigprocmask(SIG_BLOCK, &m, NULL);
    struct timespec zero = {0, 0}, short_wait = {0, 20000000};
    siginfo_t si;
    printf("sigtimedwait none %s\n", err(sigtimedwait(&m, &si, &zero)));
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const char *res = err(sigtimedwait(&m, &si, &short_wait));
    printf("sigtimedwait timeout %s waited >= 20ms %d\n", res, ms_since(&t0) >= 19);
    kill(getpid(), SIGUSR2);
    int r = sigtimedwait(&m, &si, &zero);
    printf("sigtimedwait %d signo %d code %d pid ok %d\n", r, si.si_signo, si.si_code,
           si.si_pid == getpid());
    pid_t c = fork();
    if (c == 0) {
        usleep(30000);
        kill(getppid(), SIGUSR1);
        _exit(0);
    }
    r = sigwaitinfo(&m, &si);
    printf("sigwaitinfo from child %d pid ok %d\n", r, si.si_pid == c);
    waitpid(c, NULL, 0);
    int sig = 0;
    kill(getpid(), SIGUSR1);
    r = sigwait(&m, &sig);
    printf("sigwait %d sig %d\n", r, sig);
    printf("bad size %s\n", err(syscall(SYS_rt_sigtimedwait, &m, NULL, &zero, 4)));
    struct timespec bad = {0, -1};
    printf("bad timeout %s\n", err(sigtimedwait(&m, &si, &bad)));
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf("mask kept %d\n", sigismember(&cur, SIGUSR1));
    sigprocmask(SIG_UNBLOCK, &m, NULL);

    /* ioctl FIONBIO/FIOCLEX on any descriptor. */
    int e = eventfd(0, 0);
    int on = 1;
    printf("FIONBIO %d ", ioctl(e, FIONBIO, &on));
    uint64_t v;
    printf("read %s\n", err(read(e, &v, 8)));
    ioctl(e, FIOCLEX);
    printf("FIOCLEX %d ", fcntl(e, F_GETFD));
    ioctl(e, FIONCLEX);
    printf("FIONCLEX %d\n", fcntl(e, F_GETFD));
    close(e);
}

static void pidfds(void) {
    printf("pidfd_open bad flags %s\n", err(syscall(SYS_pidfd_open, getpid(), 1)));
    printf("pidfd_open 0 %s\n", err(syscall(SYS_pidfd_open, 0, 0)));
    printf("pidfd_open missing %s\n", err(syscall(SYS_pidfd_open, 4000000, 0)));
    int self = syscall(SYS_pidfd_open, getpid(), 0);
    printf("self cloexec %d\n", fcntl(self, F_GETFD));
    struct pollfd pf = {.fd = self, .events = POLLIN};
    printf("self alive %d\n", poll(&pf, 1, 0));
    printf("signal 0 to self %s\n", err(syscall(SYS_pidfd_send_signal, self, 0, NULL, 0)));
    printf("bad flags %s\n", err(syscall(SYS_pidfd_send_signal, self, 0, NULL, 0x100)));
    printf("not a pidfd %s\n", err(syscall(SYS_pidfd_send_signal, 1, 0, NULL, 0)));
    close(self);

    pid_t c = fork();
    if (c == 0) {
        usleep(50000);
        _exit(5);
    }
    int pfd = syscall(SYS_pidfd_open, c, 0);
    pf.fd = pfd;
    printf("child running %d\n", poll(&pf, 1, 0));
    int ep = epoll_create1(0);
    add(ep, pfd, EPOLLIN, 50);
    wait1("pidfd exit", ep, 5000);
    { int pn = poll(&pf, 1, 0);
      printf("poll exited %d revents %#x\n", pn, pf.revents); }
    siginfo_t si = {0};
    printf("waitid P_PIDFD %s", err(waitid(P_PIDFD, pfd, &si, WEXITED)));
    printf(" pid ok %d code %d status %d\n", si.si_pid == c, si.si_code, si.si_status);
    printf("waitid bad pidfd %s\n", err(waitid(P_PIDFD, 1, &si, WEXITED)));
    close(ep);
    close(pfd);

    c = fork();
    if (c == 0) {
        pause();
        _exit(0);
    }
    pfd = syscall(SYS_pidfd_open, c, 0);
    printf("send SIGTERM %s\n", err(syscall(SYS_pidfd_send_signal, pfd, SIGTERM, NULL, 0)));
    memset(&si, 0, sizeof si);
    waitid(P_PIDFD, pfd, &si, WEXITED);
    printf("killed code %d status %d\n", si.si_code, si.si_status);
    printf("send to the dead %s\n", err(syscall(SYS_pidfd_send_signal, pfd, SIGTERM, NULL, 0)));
    close(pfd);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    pidfds();
    sigwaits();
    epoll_basics();
    epoll_pwait_mask();
    eventfds();
    timerfds();
    signalfds();
    return 0;
}
