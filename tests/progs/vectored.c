/* vectored DIR: preadv/pwritev/preadv2/pwritev2 (and readv/writev beside them) on a host file
 * (DIR/a.txt = "hello\n", made by the test), a file written in the sandbox (/tmp), and a pipe:
 * offsets and the file position, -1 as "the position", RWF_APPEND, the flags Linux takes and
 * refuses, bad offsets, counts and pointers, descriptors with no position. Prints results and
 * contents only, so the native and sandboxed runs compare. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "errname.h"

#ifndef RWF_APPEND
#define RWF_APPEND 0x10
#endif

static void res(const char *what, long r) {
    if (r < 0)
        printf("%s: %s\n", what, errno_name(errno));
    else
        printf("%s: %ld\n", what, r);
}

/* Raw syscalls: libc wrappers may emulate or check flags themselves. */
static long preadv2_(int fd, const struct iovec *iov, int cnt, long off, int flags) {
    return syscall(SYS_preadv2, fd, iov, cnt, off, 0L, flags);
}
static long pwritev2_(int fd, const struct iovec *iov, int cnt, long off, int flags) {
    return syscall(SYS_pwritev2, fd, iov, cnt, off, 0L, flags);
}

static void show_pos(const char *what, int fd) {
    printf("%s: position %ld\n", what, (long)lseek(fd, 0, SEEK_CUR));
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    char path[4096];
    snprintf(path, sizeof path, "%s/a.txt", argv[1]);
    int h = open(path, O_RDONLY);
    char a[4] = {0}, b[8] = {0};
    struct iovec iov[2] = {{a, 3}, {b, 7}};
    res("host preadv at 1", syscall(SYS_preadv, h, iov, 2, 1L, 0L));
    printf("host read %s|%s\n", a, b);
    show_pos("host", h);
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    res("host preadv2 at 0", preadv2_(h, iov, 2, 0, 0));
    printf("host read %s|%s\n", a, b);
    lseek(h, 2, SEEK_SET);
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    res("host preadv2 at -1", preadv2_(h, iov, 2, -1, 0));
    printf("host read %s|%s\n", a, b);
    show_pos("host after -1", h);
    res("host preadv past the end", syscall(SYS_preadv, h, iov, 2, 100L, 0L));
    res("host preadv negative", syscall(SYS_preadv, h, iov, 2, -2L, 0L));
    res("host preadv2 -2", preadv2_(h, iov, 2, -2, 0));
    res("host pwritev (read-only)", syscall(SYS_pwritev, h, iov, 2, 0L, 0L));
    res("host preadv2 RWF_HIPRI|DSYNC|SYNC", preadv2_(h, iov, 1, 0, 7));
    res("host preadv2 bad flag", preadv2_(h, iov, 1, 0, 0x1000));
    res("host preadv no vectors", syscall(SYS_preadv, h, iov, 0, 0L, 0L));
    res("host preadv 1025 vectors", syscall(SYS_preadv, h, iov, 1025, 0L, 0L));
    res("host preadv bad iov pointer", syscall(SYS_preadv, h, (void *)8, 1, 0L, 0L));
    struct iovec bad = {(void *)8, 4};
    res("host preadv bad buffer", syscall(SYS_preadv, h, &bad, 1, 0L, 0L));
    close(h);

    char tmp[64];
    snprintf(tmp, sizeof tmp, "/tmp/vmm-vectored-%d", getpid());
    int f = open(tmp, O_CREAT | O_EXCL | O_RDWR, 0600);
    struct iovec w[3] = {{"abc", 3}, {"", 0}, {"defg", 4}};
    res("tmp pwritev at 2", syscall(SYS_pwritev, f, w, 3, 2L, 0L));
    show_pos("tmp", f);
    char all[32] = {0};
    pread(f, all, sizeof all - 1, 0);
    printf("tmp has %zu bytes, %d leading zeros, then %s\n", strlen(all + 2) + 2,
           all[0] == 0 && all[1] == 0, all + 2);
    res("tmp pwritev2 at 0", pwritev2_(f, w, 1, 0, 0));
    res("tmp pwritev2 at -1", pwritev2_(f, w + 2, 1, -1, 0));
    show_pos("tmp after -1", f);
    res("tmp pwritev2 RWF_APPEND at 1", pwritev2_(f, w, 1, 1, RWF_APPEND));
    show_pos("tmp after append at 1", f);
    res("tmp pwritev2 RWF_APPEND at -1", pwritev2_(f, w + 2, 1, -1, RWF_APPEND));
    show_pos("tmp after append at -1", f);
    memset(all, 0, sizeof all);
    ssize_t n = pread(f, all, sizeof all - 1, 0);
    for (ssize_t i = 0; i < n; i++)
        if (!all[i]) all[i] = '.';
    printf("tmp now %s\n", all);
    char c[5] = {0};
    struct iovec r1 = {c, 4};
    res("tmp preadv at 9", syscall(SYS_preadv, f, &r1, 1, 9L, 0L));
    printf("tmp read %s\n", c);
    int wo = open(tmp, O_WRONLY);
    res("tmp preadv on a write-only fd", syscall(SYS_preadv, wo, &r1, 1, 0L, 0L));
    close(wo);
    close(f);
    unlink(tmp);

    int p[2];
    pipe(p);
    res("pipe pwritev", syscall(SYS_pwritev, p[1], w, 1, 0L, 0L));
    res("pipe pwritev2 at -1", pwritev2_(p[1], w, 1, -1, 0));
    res("pipe preadv", syscall(SYS_preadv, p[0], &r1, 1, 0L, 0L));
    memset(c, 0, sizeof c);
    res("pipe preadv2 at -1", preadv2_(p[0], &r1, 1, -1, 0));
    printf("pipe read %s\n", c);
    res("closed fd preadv", syscall(SYS_preadv, 999, &r1, 1, 0L, 0L));

    /* sendfile from file to file (shutil.copyfile's way): at the destination's position,
     * from an offset (which moves) or the source's position. */
    char src[64], dst[64];
    snprintf(src, sizeof src, "/tmp/vmm-vectored-src-%d", getpid());
    snprintf(dst, sizeof dst, "/tmp/vmm-vectored-dst-%d", getpid());
    int s = open(src, O_CREAT | O_RDWR | O_TRUNC, 0600);
    write(s, "hello, sendfile", 15);
    int d = open(dst, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    off_t off = 7;
    res("sendfile 8 from offset 7", sendfile(d, s, &off, 100));
    printf("offset now %ld, source position %ld, destination position %ld\n", (long)off,
           (long)lseek(s, 0, SEEK_CUR), (long)lseek(d, 0, SEEK_CUR));
    lseek(s, 0, SEEK_SET);
    res("sendfile 5 from the position", sendfile(d, s, NULL, 5));
    printf("source position %ld\n", (long)lseek(s, 0, SEEK_CUR));
    close(d);
    d = open(dst, O_WRONLY | O_APPEND);
    lseek(d, 0, SEEK_SET);
    off = 0;
    res("sendfile to O_APPEND", sendfile(d, s, &off, 2));
    close(d);
    char got[32] = {0};
    d = open(dst, O_RDONLY);
    read(d, got, sizeof got - 1);
    printf("destination %s\n", got);
    res("sendfile to a read-only descriptor", sendfile(d, s, &off, 2));
    close(d);

    /* copy_file_range: from offsets (which move; the positions stay) or the positions. */
    d = open(dst, O_RDWR | O_TRUNC);
    loff_t in_off = 7, out_off = 2;
    res("copy_file_range 8 at offsets", syscall(SYS_copy_file_range, s, &in_off, d, &out_off, 100L, 0));
    printf("offsets now %ld %ld, positions %ld %ld\n", (long)in_off, (long)out_off,
           (long)lseek(s, 0, SEEK_CUR), (long)lseek(d, 0, SEEK_CUR));
    lseek(s, 0, SEEK_SET);
    res("copy_file_range 5 at the positions", syscall(SYS_copy_file_range, s, NULL, d, NULL, 5L, 0));
    printf("positions %ld %ld\n", (long)lseek(s, 0, SEEK_CUR), (long)lseek(d, 0, SEEK_CUR));
    in_off = 100;
    res("copy_file_range at the end", syscall(SYS_copy_file_range, s, &in_off, d, NULL, 5L, 0));
    res("copy_file_range flags", syscall(SYS_copy_file_range, s, NULL, d, NULL, 5L, 1));
    in_off = 0, out_off = 2;
    res("copy_file_range overlapping in one file",
        syscall(SYS_copy_file_range, d, &in_off, d, &out_off, 5L, 0));
    res("copy_file_range to a pipe", syscall(SYS_copy_file_range, s, NULL, p[1], NULL, 5L, 0));
    memset(got, 0, sizeof got);
    pread(d, got, sizeof got - 1, 0);
    for (int i = 0; i < (int)sizeof got - 1; i++)
        if (!got[i]) got[i] = '.';
    printf("destination %s\n", got);

    /* splice: file to pipe (from an offset that moves), pipe to pipe, pipe to file. */
    int q[2], q2[2];
    pipe(q);
    pipe(q2);
    loff_t so = 7;
    res("splice file to pipe", splice(s, &so, q[1], NULL, 8, 0));
    printf("offset now %ld, position %ld\n", (long)so, (long)lseek(s, 0, SEEK_CUR));
    res("splice pipe to pipe 3", splice(q[0], NULL, q2[1], NULL, 3, 0));
    lseek(d, 0, SEEK_SET);
    loff_t dof = 1;
    res("splice pipe to file at 1", splice(q2[0], NULL, d, &dof, 100, 0));
    res("splice the rest to the file's position", splice(q[0], NULL, d, NULL, 100, 0));
    printf("file offset %ld, position %ld\n", (long)dof, (long)lseek(d, 0, SEEK_CUR));
    memset(got, 0, sizeof got);
    pread(d, got, sizeof got - 1, 0);
    for (int i = 0; i < (int)sizeof got - 1; i++)
        if (!got[i]) got[i] = '.';
    printf("destination %s\n", got);
    res("splice file to file", splice(s, NULL, d, NULL, 5, 0));
    res("splice offset on a pipe", splice(q[0], &so, d, NULL, 5, 0));
    res("splice an empty pipe, nonblocking", splice(q[0], NULL, d, NULL, 5, SPLICE_F_NONBLOCK));
    close(q[1]);
    res("splice an empty pipe without writers", splice(q[0], NULL, d, NULL, 5, 0));
    res("splice a bad flag", splice(q[0], NULL, d, NULL, 5, 0x100));

    /* tee: copies between pipes, leaving the source as it was. */
    int t1[2], t2[2];
    pipe(t1);
    pipe(t2);
    write(t1[1], "teedata", 7);
    res("tee 3", tee(t1[0], t2[1], 3, 0));
    char tb[16] = {0};
    res("read the copy", read(t2[0], tb, sizeof tb));
    printf("copy %s\n", tb);
    memset(tb, 0, sizeof tb);
    res("read the source", read(t1[0], tb, sizeof tb));
    printf("source %s\n", tb);
    res("tee an empty pipe, nonblocking", tee(t1[0], t2[1], 3, SPLICE_F_NONBLOCK));
    res("tee from a file", tee(s, t2[1], 3, 0));
    res("tee to the read end", tee(t1[0], t2[0], 3, 0));
    close(t1[1]);
    res("tee without writers", tee(t1[0], t2[1], 3, 0));
    close(d);
    close(s);
    unlink(src);
    unlink(dst);
    return 0;
}
