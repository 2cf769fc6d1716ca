/* rename: rename/renameat2 in the sandbox's /tmp: files (onto nothing, onto a file), symlinks
 * (moved as themselves), directories the program made (with their whole tree, onto an empty
 * directory, not onto a non-empty one, a file, or into themselves), RENAME_NOREPLACE, unknown
 * flags, a missing source, a file onto a directory. Prints results, contents and link targets
 * only, so the native and sandboxed runs compare. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "errname.h"

static char base[64];

static const char *P(const char *name) {
    static char bufs[4][160];
    static int i;
    char *b = bufs[i++ % 4];
    snprintf(b, 160, "%s/%s", base, name);
    return b;
}

static void put(const char *name, const char *text) {
    int fd = open(P(name), O_CREAT | O_TRUNC | O_WRONLY, 0600);
    write(fd, text, strlen(text));
    close(fd);
}

static void show(const char *name) {
    char buf[64] = {0};
    struct stat s;
    if (lstat(P(name), &s) != 0) {
        printf("  %s: %s\n", name, errno_name(errno));
    } else if (S_ISLNK(s.st_mode)) {
        readlink(P(name), buf, sizeof buf - 1);
        printf("  %s: symlink to %s\n", name, buf);
    } else if (S_ISDIR(s.st_mode)) {
        printf("  %s: directory\n", name);
    } else {
        int fd = open(P(name), O_RDONLY);
        read(fd, buf, sizeof buf - 1);
        close(fd);
        printf("  %s: file %s\n", name, buf);
    }
}

static long rename2(const char *a, const char *b, unsigned flags) {
    return syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, flags);
}

int main(void) {
    snprintf(base, sizeof base, "/tmp/vmm-rename-%d", getpid());
    mkdir(base, 0700);
    put("a", "alpha");
    put("b", "beta");
    printf("file onto nothing %s\n", err(rename(P("a"), P("a2"))));
    show("a");
    show("a2");
    printf("file onto a file %s\n", err(rename(P("a2"), P("b"))));
    show("a2");
    show("b");
    symlink("b", P("l"));
    printf("symlink %s\n", err(rename(P("l"), P("l2"))));
    show("l");
    show("l2");
    put("c", "gamma");
    printf("noreplace onto a file %s\n", err(rename2(P("c"), P("b"), 1)));
    printf("noreplace onto nothing %s\n", err(rename2(P("c"), P("c2"), 1)));
    show("c2");
    printf("unknown flag %s\n", err(rename2(P("c2"), P("c3"), 8)));
    printf("missing source %s\n", err(rename(P("none"), P("x"))));

    mkdir(P("d"), 0700);
    mkdir(P("d/sub"), 0700);
    put("d/f", "in d");
    put("d/sub/g", "in sub");
    symlink("../f", P("d/sub/up"));
    printf("directory with its tree %s\n", err(rename(P("d"), P("e"))));
    show("d");
    show("e/f");
    show("e/sub/g");
    show("e/sub/up");
    printf("  opens through the moved link: %s\n", err(open(P("e/sub/up"), O_RDONLY)));
    mkdir(P("empty"), 0700);
    printf("onto an empty directory %s\n", err(rename(P("e"), P("empty"))));
    show("e");
    show("empty/sub/g");
    mkdir(P("full"), 0700);
    put("full/x", "x");
    printf("onto a non-empty directory %s\n", err(rename(P("empty"), P("full"))));
    printf("directory onto a file %s\n", err(rename(P("empty"), P("b"))));
    printf("file onto a directory %s\n", err(rename(P("b"), P("full"))));
    printf("into itself %s\n", err(rename(P("empty"), P("empty/sub/deeper"))));
    printf("onto itself %s\n", err(rename(P("empty"), P("empty"))));
    printf("noreplace directory onto a directory %s\n", err(rename2(P("empty"), P("full"), 1)));
    const char *r1 = err(unlink(P("empty/sub/up")));
    const char *r2 = err(unlink(P("empty/sub/g")));
    const char *r3 = err(rmdir(P("empty/sub")));
    const char *r4 = err(unlink(P("empty/f")));
    const char *r5 = err(rmdir(P("empty")));
    printf("moved tree removable: %s %s %s %s %s\n", r1, r2, r3, r4, r5);
    unlink(P("full/x"));
    rmdir(P("full"));
    unlink(P("b"));
    unlink(P("l2"));
    unlink(P("c2"));
    printf("cleaned up %s\n", err(rmdir(base)));
    return 0;
}
