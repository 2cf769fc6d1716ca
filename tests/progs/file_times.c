/* file_times: the times of files and directories made in the sandbox (/tmp): equal at
 * creation, utimensat/futimens with given times, UTIME_NOW and UTIME_OMIT (each time apart),
 * writes and truncation moving mtime and ctime together, utimensat on a symlink itself
 * (AT_SYMLINK_NOFOLLOW), a directory, bad nanoseconds, and both times omitted on a missing
 * path. Prints only exact given times and comparisons, never the clock. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "errname.h"

static long long ns(struct timespec t) { return t.tv_sec * 1000000000LL + t.tv_nsec; }

static void pause_a_little(void) {
    struct timespec d = {0, 20 * 1000 * 1000};
    nanosleep(&d, NULL);
}

int main(void) {
    char f[64], d[64], l[64];
    snprintf(f, sizeof f, "/tmp/vmm-times-%d", getpid());
    snprintf(d, sizeof d, "/tmp/vmm-times-%d.d", getpid());
    snprintf(l, sizeof l, "/tmp/vmm-times-%d.l", getpid());
    int fd = open(f, O_CREAT | O_EXCL | O_RDWR, 0600);
    struct stat s0, s;
    fstat(fd, &s0);
    printf("created: atime = mtime %d, mtime = ctime %d\n", ns(s0.st_atim) == ns(s0.st_mtim),
           ns(s0.st_mtim) == ns(s0.st_ctim));
    pause_a_little();

    struct timespec t[2] = {{1, 2003000}, {4, 5006000}};
    printf("utimensat %s\n", err(utimensat(AT_FDCWD, f, t, 0)));
    stat(f, &s);
    printf("given: atime %lld mtime %lld, ctime moved on %d\n", ns(s.st_atim), ns(s.st_mtim),
           ns(s.st_ctim) > ns(s0.st_ctim));
    struct timespec omit_a[2] = {{0, UTIME_OMIT}, {7, 0}};
    printf("futimens, atime omitted %s\n", err(futimens(fd, omit_a)));
    fstat(fd, &s);
    printf("now: atime %lld mtime %lld\n", ns(s.st_atim), ns(s.st_mtim));
    struct timespec now_m[2] = {{9, 0}, {0, UTIME_NOW}};
    futimens(fd, now_m);
    fstat(fd, &s);
    printf("mtime UTIME_NOW: atime %lld, mtime later than the creation %d, = ctime %d\n",
           ns(s.st_atim), ns(s.st_mtim) > ns(s0.st_mtim), ns(s.st_mtim) == ns(s.st_ctim));

    futimens(fd, t);
    struct stat before;
    fstat(fd, &before);
    pause_a_little();
    write(fd, "x", 1);
    fstat(fd, &s);
    printf("write: mtime moved %d, = ctime %d, atime kept %lld\n",
           ns(s.st_mtim) > ns(before.st_ctim), ns(s.st_mtim) == ns(s.st_ctim), ns(s.st_atim));
    futimens(fd, t);
    pause_a_little();
    ftruncate(fd, 100);
    fstat(fd, &s);
    printf("ftruncate: mtime moved %d, = ctime %d\n", ns(s.st_mtim) > 4005006000LL,
           ns(s.st_mtim) == ns(s.st_ctim));
    futimens(fd, t);
    pause_a_little();
    truncate(f, 10);
    stat(f, &s);
    printf("truncate: mtime moved %d\n", ns(s.st_mtim) > 4005006000LL);
    futimens(fd, t);
    close(fd);
    pause_a_little();
    fd = open(f, O_WRONLY | O_TRUNC);
    fstat(fd, &s);
    printf("O_TRUNC: mtime moved %d, size %ld\n", ns(s.st_mtim) > 4005006000LL, (long)s.st_size);
    printf("futimens NULL %s\n", err(futimens(fd, NULL)));
    fstat(fd, &s);
    printf("both now: atime = mtime %d, mtime = ctime %d\n", ns(s.st_atim) == ns(s.st_mtim),
           ns(s.st_mtim) == ns(s.st_ctim));
    /* O_TRUNC through /proc/self/fd (a reopen of the same file) moves its times too, and an
     * O_APPEND descriptor's pwrite appends (Linux ignores the offset), leaving the position. */
    futimens(fd, t);
    pause_a_little();
    char via[64];
    snprintf(via, sizeof via, "/proc/self/fd/%d", fd);
    int fd2 = open(via, O_WRONLY | O_TRUNC | O_APPEND);
    fstat(fd2, &s);
    printf("O_TRUNC via /proc/self/fd: mtime moved %d, size %ld\n", ns(s.st_mtim) > 4005006000LL,
           (long)s.st_size);
    write(fd2, "abc", 3);
    printf("pwrite O_APPEND %ld", (long)pwrite(fd2, "Z", 1, 0));
    fstat(fd2, &s);
    char got[8] = {0};
    int rd = open(f, O_RDONLY);
    pread(rd, got, sizeof got - 1, 0);
    close(rd);
    printf(", size %ld, contents %s, position %ld\n", (long)s.st_size, got,
           (long)lseek(fd2, 0, SEEK_CUR));
    close(fd2);
    close(fd);

    mkdir(d, 0700);
    printf("dir utimensat %s\n", err(utimensat(AT_FDCWD, d, t, 0)));
    stat(d, &s);
    printf("dir: atime %lld mtime %lld\n", ns(s.st_atim), ns(s.st_mtim));

    symlink(f, l);
    struct stat fs0;
    stat(f, &fs0);
    struct timespec t2[2] = {{11, 0}, {12, 0}};
    printf("symlink nofollow %s\n", err(utimensat(AT_FDCWD, l, t2, AT_SYMLINK_NOFOLLOW)));
    struct stat ls;
    lstat(l, &ls);
    stat(f, &s);
    printf("link itself: atime %lld mtime %lld; its file unchanged %d\n", ns(ls.st_atim),
           ns(ls.st_mtim), ns(s.st_mtim) == ns(fs0.st_mtim));
    printf("through the link %s\n", err(utimensat(AT_FDCWD, l, t, 0)));
    stat(f, &s);
    printf("its file: mtime %lld\n", ns(s.st_mtim));

    struct timespec bad[2] = {{0, 1000000000}, {0, 0}};
    printf("bad nsec %s\n", err(utimensat(AT_FDCWD, f, bad, 0)));
    struct timespec omit[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    printf("both omitted, missing path %s\n",
           err(utimensat(AT_FDCWD, "/tmp/vmm-times-none/x", omit, 0)));
    printf("missing path %s\n", err(utimensat(AT_FDCWD, "/tmp/vmm-times-none/x", t, 0)));
    printf("bad flag %s\n", err(utimensat(AT_FDCWD, f, t, 0x4)));
    unlink(l);
    unlink(f);
    rmdir(d);
    return 0;
}
