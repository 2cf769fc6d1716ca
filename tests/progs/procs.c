/* procs: fork is private both ways (data, bss, heap, stack, an anonymous mapping, and a read()
 * into a page the child still shares with its parent), many forks in a row, nested forks,
 * vfork, wait4 and waitid statuses and options (WNOHANG, WNOWAIT, P_PID, P_PGID, P_ALL),
 * ECHILD, EINVAL, getppid, process groups and sessions; MAP_SHARED anonymous memory is shared
 * with children (pages touched before the fork and after it, by the child and by a grandchild,
 * a read() into it, across mremap and madvise(MADV_DONTNEED)). Stable output. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static char data_buf[64] = "data-initial";
static char bss_buf[8192];

static void child_memory(void) {
    char stack_buf[64];
    strcpy(stack_buf, "stack-initial");
    char *heap = malloc(100000);
    strcpy(heap, "heap-initial");
    char *anon = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    strcpy(anon, "anon-initial");
    strcpy(anon + 2 * 4096, "third");
    strcpy(bss_buf, "bss-initial");
    int go[2], back[2];
    if (pipe(go) || pipe(back))
        return;
    pid_t me = getpid();
    pid_t c = fork();
    if (c == 0) {
        char b;
        read(go[0], &b, 1); /* the parent has overwritten everything by now */
        printf("child sees: %s %s %s %s %s %s\n", data_buf, bss_buf, stack_buf, heap, anon,
               anon + 2 * 4096);
        printf("child: ppid is parent %d\n", getppid() == me);
        strcpy(data_buf, "data-child");
        strcpy(heap, "heap-child");
        /* The Sentry (or the host) writes into a page still shared with the parent. */
        ssize_t n = read(go[0], anon + 2 * 4096, 5);
        printf("child read %zd: %.5s\n", n, anon + 2 * 4096);
        write(back[1], "k", 1);
        _exit(7);
    }
    strcpy(data_buf, "data-parent");
    strcpy(bss_buf, "bss-parent");
    strcpy(stack_buf, "stack-parent");
    strcpy(heap, "heap-parent");
    strcpy(anon, "anon-parent");
    write(go[1], "g", 1);
    write(go[1], "PIPED", 5);
    char k;
    read(back[0], &k, 1);
    printf("parent keeps: %s %s %s %s %s %s\n", data_buf, bss_buf, stack_buf, heap, anon,
           anon + 2 * 4096);
    int st = 0;
    pid_t w = waitpid(c, &st, 0);
    printf("wait4: pid ok %d exited %d code %d\n", w == c, WIFEXITED(st), WEXITSTATUS(st));
    close(go[0]);
    close(go[1]);
    close(back[0]);
    close(back[1]);
    munmap(anon, 3 * 4096);
    free(heap);
}

static void many_forks(void) {
    static int counter;
    long sum = 0;
    for (int i = 0; i < 40; i++) {
        counter++; /* each fork sees the parent's count so far, then changes only its copy */
        pid_t c = fork();
        if (c == 0) {
            int mine = counter;
            counter = 1000;
            _exit(mine & 0xff);
        }
        int st = 0;
        waitpid(c, &st, 0);
        sum += WEXITSTATUS(st);
    }
    printf("40 forks: sum of exit codes %ld (counter %d)\n", sum, counter);
}

static void nested(void) {
    int fd[2];
    pipe(fd);
    pid_t c = fork();
    if (c == 0) {
        strcpy(data_buf, "child-level");
        pid_t g = fork();
        if (g == 0) {
            char msg[80];
            int n = snprintf(msg, sizeof msg, "grandchild sees %s\n", data_buf);
            strcpy(data_buf, "grandchild-level");
            write(fd[1], msg, n);
            _exit(0);
        }
        int st;
        waitpid(g, &st, 0);
        char msg[80];
        int n = snprintf(msg, sizeof msg, "child keeps %s\n", data_buf);
        write(fd[1], msg, n);
        _exit(0);
    }
    close(fd[1]);
    waitpid(c, NULL, 0);
    char buf[200];
    ssize_t n = read(fd[0], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    printf("%sparent keeps %s\n", buf, data_buf);
    close(fd[0]);
}

static void vforked(void) {
    pid_t c = vfork();
    if (c == 0)
        _exit(3);
    int st = 0;
    waitpid(c, &st, 0);
    printf("vfork: exited %d code %d\n", WIFEXITED(st), WEXITSTATUS(st));
}

static void waits(void) {
    /* A child killed by a signal. */
    pid_t c = fork();
    if (c == 0) {
        pause();
        _exit(0);
    }
    int st = 0;
    printf("WNOHANG while running: %d\n", waitpid(c, &st, WNOHANG));
    kill(c, SIGKILL);
    waitpid(c, &st, 0);
    printf("killed: signaled %d sig %d\n", WIFSIGNALED(st), WTERMSIG(st));

    /* waitid: WNOHANG with a live child zeroes the info; WNOWAIT leaves the zombie. */
    int fd[2];
    pipe(fd);
    c = fork();
    if (c == 0) {
        char b;
        read(fd[0], &b, 1);
        _exit(5);
    }
    siginfo_t si;
    memset(&si, 0xff, sizeof si);
    int r = waitid(P_PID, c, &si, WEXITED | WNOHANG);
    printf("waitid WNOHANG: %d pid %d signo %d\n", r, si.si_pid, si.si_signo);
    write(fd[1], "x", 1);
    memset(&si, 0, sizeof si);
    r = waitid(P_PID, c, &si, WEXITED | WNOWAIT);
    printf("waitid WNOWAIT: %d pid ok %d signo %d code %d status %d\n", r, si.si_pid == c,
           si.si_signo, si.si_code, si.si_status);
    memset(&si, 0, sizeof si);
    r = waitid(P_ALL, 0, &si, WEXITED);
    printf("waitid P_ALL: %d pid ok %d code %d status %d\n", r, si.si_pid == c, si.si_code,
           si.si_status);
    errno = 0;
    r = waitid(P_PID, c, &si, WEXITED);
    printf("waitid reaped: %d ECHILD %d\n", r, errno == ECHILD);
    errno = 0;
    r = waitid(P_PID, c, &si, 0);
    printf("waitid no options: %d EINVAL %d\n", r, errno == EINVAL);
    errno = 0;
    r = waitid(7, 0, &si, WEXITED);
    printf("waitid bad idtype: %d EINVAL %d\n", r, errno == EINVAL);
    errno = 0;
    r = wait(NULL);
    printf("wait without children: %d ECHILD %d\n", r, errno == ECHILD);
    errno = 0;
    r = waitpid(-1, NULL, 0x100);
    printf("wait4 bad options: %d EINVAL %d\n", r, errno == EINVAL);
    close(fd[0]);
    close(fd[1]);

    /* A killed child through waitid, and P_PGID with the child in its own group. */
    c = fork();
    if (c == 0) {
        setpgid(0, 0);
        pause();
        _exit(0);
    }
    setpgid(c, c); /* also in the parent, so both orders work */
    kill(c, SIGTERM);
    memset(&si, 0, sizeof si);
    r = waitid(P_PGID, c, &si, WEXITED);
    printf("waitid P_PGID: %d pid ok %d killed %d sig %d\n", r, si.si_pid == c,
           si.si_code == CLD_KILLED, si.si_status);
}

static void groups(void) {
    pid_t c = fork();
    if (c == 0) {
        int ok = setpgid(0, 0) == 0 && getpgid(0) == getpid() && getpgrp() == getpid();
        pid_t s = fork();
        if (s == 0) {
            pid_t sid = setsid();
            _exit(sid == getpid() && getsid(0) == getpid() && getpgid(0) == getpid() ? 0 : 1);
        }
        int st = 0;
        waitpid(s, &st, 0);
        _exit(ok && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1);
    }
    int st = 0;
    waitpid(c, &st, 0);
    printf("setpgid/setsid in children: %s\n", WEXITSTATUS(st) == 0 ? "ok" : "FAILED");
    errno = 0;
    int r = setpgid(0, 0) == 0 ? setsid() : -1;
    printf("setsid as a group leader: %d EPERM %d\n", r, errno == EPERM);
}

static void shared_memory(void) {
    long pg = 4096;
    char *sh = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    char *pr = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED || pr == MAP_FAILED) {
        printf("shared mmap failed\n");
        return;
    }
    strcpy(sh, "before");
    strcpy(pr, "private");
    int fds[2];
    if (pipe(fds) != 0)
        return;
    pid_t c = fork();
    if (c == 0) {
        // Page 0 was touched before the fork, pages 1-3 were not.
        strcpy(sh, "child wrote 0");
        strcpy(sh + pg, "child wrote 1");
        strcpy(pr, "child private");
        if (write(fds[1], "piped", 5) != 5)
            _exit(2);
        if (read(fds[0], sh + 2 * pg, 5) != 5) // the Sentry writes into shared memory
            _exit(3);
        pid_t g = fork();
        if (g == 0) {
            strcpy(sh + 3 * pg, "grandchild");
            _exit(0);
        }
        waitpid(g, NULL, 0);
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    printf("shared: %s | %s | %.5s | %s | private: %s\n", sh, sh + pg, sh + 2 * pg, sh + 3 * pg,
           pr);
    // The parent writes, a new child reads; the contents survive MADV_DONTNEED (shared memory
    // keeps them) and a move by mremap.
    strcpy(sh + pg, "parent wrote 1");
    madvise(sh, pg, MADV_DONTNEED);
    char *moved = mremap(sh, 4 * pg, 8 * pg, MREMAP_MAYMOVE);
    if (moved == MAP_FAILED) {
        printf("mremap failed\n");
        return;
    }
    c = fork();
    if (c == 0) {
        printf("child sees: %s | %s\n", moved, moved + pg);
        strcpy(moved, "second child");
        _exit(0);
    }
    waitpid(c, &st, 0);
    printf("after second child: %s\n", moved);
    munmap(moved, 8 * pg);
    munmap(pr, pg);
    close(fds[0]);
    close(fds[1]);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    child_memory();
    many_forks();
    nested();
    vforked();
    waits();
    groups();
    shared_memory();
    return 0;
}
