/* sec_host_probe PATH...: for each path, what the sandbox may do with it, one line each:
 *   PATH r=<open O_RDONLY> w=<open O_RDWR> p=<open O_PATH> s=<stat> l=<lstat>
 * each OK (with the file type for stat/lstat: reg, dir, chr, blk, fifo, sock, lnk) or an
 * errno name. A successful open reads (or, O_RDWR, writes) nothing.
 * `sec_host_probe --create PATH MODE`: creat(PATH, MODE), then chmod(PATH, MODE) and
 * mkdir(PATH.d, MODE) + chmod(PATH.d, MODE): prints the results (the test checks the host). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "errname.h"

static const char *kind(mode_t m) {
    switch (m & S_IFMT) {
    case S_IFREG: return "reg";
    case S_IFDIR: return "dir";
    case S_IFCHR: return "chr";
    case S_IFBLK: return "blk";
    case S_IFIFO: return "fifo";
    case S_IFSOCK: return "sock";
    case S_IFLNK: return "lnk";
    default: return "?";
    }
}

static void try_open(const char *tag, const char *p, int flags) {
    int fd = open(p, flags | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        printf(" %s=%s", tag, errno_name(errno));
    } else {
        printf(" %s=OK", tag);
        close(fd);
    }
}

static void try_stat(const char *tag, const char *p, int follow) {
    struct stat st;
    int r = follow ? stat(p, &st) : lstat(p, &st);
    if (r < 0)
        printf(" %s=%s", tag, errno_name(errno));
    else
        printf(" %s=%s", tag, kind(st.st_mode));
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "--create")) {
        mode_t mode = (mode_t)strtol(argv[3], NULL, 8);
        umask(0);
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_EXCL, mode);
        printf("creat %s\n", fd < 0 ? errno_name(errno) : "OK");
        if (fd >= 0)
            close(fd);
        printf("chmod %s\n", chmod(argv[2], mode) < 0 ? errno_name(errno) : "OK");
        char d[4096];
        snprintf(d, sizeof d, "%s.d", argv[2]);
        printf("mkdir %s\n", mkdir(d, mode) < 0 ? errno_name(errno) : "OK");
        printf("chmod dir %s\n", chmod(d, mode) < 0 ? errno_name(errno) : "OK");
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        printf("%s", argv[i]);
        try_open("r", argv[i], O_RDONLY);
        try_open("w", argv[i], O_RDWR);
        try_open("p", argv[i], O_PATH);
        try_stat("s", argv[i], 1);
        try_stat("l", argv[i], 0);
        printf("\n");
    }
    return 0;
}
