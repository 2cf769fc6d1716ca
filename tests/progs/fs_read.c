/* fs_read DIR: read-only filesystem syscalls against a fixture the test makes in DIR:
 *   a.txt = "hello\n", b.txt = "two\nlines\n", link -> a.txt, sub/ (empty directory).
 * Prints one line per check (stable facts only), so the native and sandboxed runs compare. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static void show(const char *what, long r) {
    if (r < 0)
        printf("%s = -1 errno %d\n", what, errno);
    else
        printf("%s = %ld\n", what, r);
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    char buf[256];
    show("chdir", chdir(argv[1]));
    char cwd[4096];
    printf("getcwd matches: %d\n", getcwd(cwd, sizeof cwd) && !strcmp(cwd, argv[1]));
    show("getcwd tiny buffer", getcwd(cwd, 2) ? 0 : -1);

    int fd = open("a.txt", O_RDONLY);
    printf("open a.txt ok: %d\n", fd >= 0);
    long n = read(fd, buf, 3);
    printf("read %ld: %.3s\n", n, buf);
    show("lseek cur", lseek(fd, 0, SEEK_CUR));
    n = pread(fd, buf, 3, 1);
    printf("pread %ld: %.3s\n", n, buf);
    show("lseek cur after pread", lseek(fd, 0, SEEK_CUR));
    show("lseek end", lseek(fd, 0, SEEK_END));
    show("read at eof", read(fd, buf, 10));
    show("lseek negative", lseek(fd, -100, SEEK_SET));
    struct stat st;
    fstat(fd, &st);
    printf("fstat size %lld reg %d\n", (long long)st.st_size, S_ISREG(st.st_mode));
    show("pread negative offset", pread(fd, buf, 1, -1));

    show("stat link", stat("link", &st));
    printf("stat link: size %lld reg %d\n", (long long)st.st_size, S_ISREG(st.st_mode));
    show("lstat link", lstat("link", &st));
    printf("lstat link: lnk %d\n", S_ISLNK(st.st_mode));
    n = readlink("link", buf, sizeof buf);
    printf("readlink link %ld: %.*s\n", n, (int)(n > 0 ? n : 0), buf);
    show("readlink regular file", readlink("a.txt", buf, sizeof buf));
    show("open missing", open("missing", O_RDONLY));
    show("open through a file", open("a.txt/x", O_RDONLY));
    show("stat missing", stat("missing", &st));
    unsigned char sx[256];
    unsigned long long sx_size;
    show("statx a.txt", syscall(332 /* statx */, AT_FDCWD, "a.txt", 0, 0x7ff /* STATX_BASIC_STATS */, sx));
    memcpy(&sx_size, sx + 40, 8);
    printf("statx size %llu\n", sx_size);

    int d = open(".", O_RDONLY | O_DIRECTORY);
    printf("open dir ok: %d\n", d >= 0);
    show("read a directory", read(d, buf, 10));
    char dents[4096];
    long got = syscall(SYS_getdents64, d, dents, sizeof dents);
    char *names[16];
    int count = 0;
    for (long off = 0; off < got && count < 16;) {
        struct { unsigned long long ino; long long off; unsigned short reclen; unsigned char type; char name[]; } *e = (void *)(dents + off);
        names[count++] = strdup(e->name);
        off += e->reclen;
    }
    qsort(names, count, sizeof *names, cmp);
    printf("getdents:");
    for (int i = 0; i < count; i++)
        printf(" %s", names[i]);
    printf("\n");
    show("getdents at end", syscall(SYS_getdents64, d, dents, sizeof dents));
    show("rewind dir", lseek(d, 0, SEEK_SET));
    printf("getdents again non-empty: %d\n", syscall(SYS_getdents64, d, dents, sizeof dents) > 0);
    show("getdents on a file", syscall(SYS_getdents64, fd, dents, sizeof dents));

    int b = openat(d, "b.txt", O_RDONLY);
    n = read(b, buf, sizeof buf);
    printf("openat b.txt read %ld: %.3s\n", n, buf);
    show("openat missing", openat(d, "nope", O_RDONLY));
    show("openat relative to a file", openat(b, "x", O_RDONLY));
    show("chdir sub", chdir("sub"));
    show("fchdir back", fchdir(d));
    show("stat after fchdir", stat("a.txt", &st));

    int e = dup(fd);
    show("lseek via dup shares offset", lseek(e, 0, SEEK_CUR));
    show("dup2 to 10", dup2(fd, 10));
    show("dup2 same fd", dup2(10, 10));
    show("dup3 same fd", dup3(10, 10, 0));
    show("fcntl setfd", fcntl(10, F_SETFD, FD_CLOEXEC));
    show("fcntl getfd", fcntl(10, F_GETFD));
    printf("fcntl dupfd >= 20: %d\n", fcntl(fd, F_DUPFD, 20) >= 20);
    show("fcntl getfl", fcntl(fd, F_GETFL) & O_ACCMODE);
    show("close", close(fd));
    show("read closed fd", read(fd, buf, 1));
    show("close bad fd", close(999));

    show("access a.txt R_OK", access("a.txt", R_OK));
    show("access missing", access("missing", F_OK));
    show("access dir X_OK", access(".", X_OK));
    show("access a.txt X_OK", access("a.txt", X_OK));
    int p = open("a.txt", O_PATH);
    printf("O_PATH open ok: %d\n", p >= 0);
    show("read an O_PATH fd", read(p, buf, 1));

    char up[4096];
    snprintf(up, sizeof up, "/../../..%s/a.txt", argv[1]);
    int u = open(up, O_RDONLY);
    n = read(u, buf, 5);
    printf("dotdot at the root read %ld: %.5s\n", n, buf);
    return 0;
}
