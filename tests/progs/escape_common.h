/* Shared by the escape_*.c programs (tests/tests/escapes.rs runs them; never natively).
 *
 * Every program is `escape_X CASE FIX MODE TESTPID VMMPATH VMMPID`:
 *   CASE     which attempt to make;
 *   FIX      the fixture directory as the sandbox sees it ("" when it is the root);
 *   MODE     default (host / with the overlay), fixture (--root FIX), ro, rw;
 *   TESTPID  the host pid of the test harness, VMMPATH vmm's binary, VMMPID vmm's host pid.
 * Each check prints `PASS name: detail` or `FAIL name: detail` (`INFO` for what only the
 * harness can judge); the program ends with `END fails=N` and exits N (the harness checks vmm
 * exits with exactly that). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define UNUSED __attribute__((unused))

static int fails;
static const char *FIX = "", *MODE = "default", *VMMPATH = "/nonexistent-vmm";
static long TESTPID = -1, VMMPID = -1;

UNUSED static void vreport(const char *tag, const char *name, const char *fmt, va_list ap) {
    printf("%s %s: ", tag, name);
    vprintf(fmt, ap);
    putchar('\n');
    fflush(stdout);
}

__attribute__((format(printf, 2, 3))) UNUSED static void pass(const char *name, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport("PASS", name, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 2, 3))) UNUSED static void fail(const char *name, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport("FAIL", name, fmt, ap);
    va_end(ap);
    fails++;
}

__attribute__((format(printf, 2, 3))) UNUSED static void info(const char *name, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport("INFO", name, fmt, ap);
    va_end(ap);
}

UNUSED static int check(int ok, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
UNUSED static int check(int ok, const char *name, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(ok ? "PASS" : "FAIL", name, fmt, ap);
    va_end(ap);
    if (!ok)
        fails++;
    return ok;
}

UNUSED static int finish(void) {
    printf("END fails=%d\n", fails);
    fflush(stdout);
    return fails > 100 ? 100 : fails;
}

UNUSED static int is_mode(const char *m) { return strcmp(MODE, m) == 0; }
/* Writes land somewhere (the overlay or, with --rw, the fixture copy). */
UNUSED static int writable(void) { return !is_mode("ro"); }

/* FIX + suffix, in a static ring of buffers. */
UNUSED static const char *fx(const char *suffix) {
    static char bufs[8][4096];
    static int n;
    char *b = bufs[n++ & 7];
    snprintf(b, 4096, "%s%s", FIX, suffix);
    return b;
}

/* Reads a whole file into a static buffer; -1 with errno on failure. */
static char filebuf[1 << 20];
UNUSED static long read_file(const char *path) {
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0)
        return -1;
    long n = 0;
    for (;;) {
        long r = read(fd, filebuf + n, sizeof filebuf - 1 - n);
        if (r < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (r == 0)
            break;
        n += r;
        if (n >= (long)sizeof filebuf - 1)
            break;
    }
    close(fd);
    filebuf[n] = 0;
    return n;
}

UNUSED static const char *line_with(const char *buf, long n, const char *needle) {
    static char line[512];
    const char *p = memmem(buf, n, needle, strlen(needle));
    if (!p)
        return NULL;
    const char *s = p, *e = p;
    while (s > buf && s[-1] != '\n')
        s--;
    while (e < buf + n && *e != '\n')
        e++;
    long l = e - s < 511 ? e - s : 511;
    memcpy(line, s, l);
    line[l] = 0;
    return line;
}

/* Parses the common arguments; returns CASE. */
UNUSED static const char *setup(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 7) {
        fprintf(stderr, "usage: %s CASE FIX MODE TESTPID VMMPATH VMMPID\n", argv[0]);
        exit(99);
    }
    FIX = argv[2];
    MODE = argv[3];
    TESTPID = atol(argv[4]);
    VMMPATH = argv[5];
    VMMPID = atol(argv[argc - 1]);
    return argv[1];
}

UNUSED static int unknown_case(const char *c) {
    fail("usage", "unknown case %s", c);
    return finish();
}
