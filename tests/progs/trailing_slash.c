/* trailing_slash: a path ending in '/' names a directory, compared with Linux: open with
 * O_CREAT is EISDIR whether or not the name exists, open of a file through it ENOTDIR, of a
 * missing name ENOENT; stat, mkdir and rmdir alike. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errname.h"

static void res(const char *what, long r) {
    printf("%s: %s\n", what, r < 0 ? errno_name(errno) : "ok");
}

int main(void) {
    char d[64], f[80], p[96];
    snprintf(d, sizeof d, "/tmp/vmm-slash-%d", getpid());
    snprintf(f, sizeof f, "%s/f", d);
    mkdir(d, 0700);
    close(open(f, O_CREAT | O_WRONLY, 0600));
    snprintf(p, sizeof p, "%s/m/", d);
    res("O_CREAT missing/", open(p, O_CREAT | O_WRONLY, 0600));
    printf("made nothing: %d\n", access(p, F_OK) < 0 && errno == ENOENT);
    snprintf(p, sizeof p, "%s/", d);
    res("O_CREAT dir/", open(p, O_CREAT | O_RDONLY, 0600));
    snprintf(p, sizeof p, "%s/", f);
    res("O_CREAT file/", open(p, O_CREAT | O_WRONLY, 0600));
    res("O_CREAT|O_EXCL file/", open(p, O_CREAT | O_EXCL | O_WRONLY, 0600));
    res("open file/", open(p, O_RDONLY));
    struct stat st;
    res("stat file/", stat(p, &st));
    snprintf(p, sizeof p, "%s/n/", d);
    res("open missing/", open(p, O_RDONLY));
    snprintf(p, sizeof p, "%s/", d);
    res("open dir/", open(p, O_RDONLY));
    res("open dir/ for writing", open(p, O_WRONLY));
    res("stat dir/", stat(p, &st));
    snprintf(p, sizeof p, "%s/sub/", d);
    res("mkdir sub/", mkdir(p, 0700));
    res("rmdir sub/", rmdir(p));
    unlink(f);
    rmdir(d);
    return 0;
}
