/* symlinks DIR: symlink resolution in an empty directory DIR the test made — chains of 40
 * (followed) and 41 (ELOOP) links, loops, links to directories walked through, relative links
 * with "..", dangling links created through, O_NOFOLLOW, links into /proc and /dev, and the
 * links /dev has. Natively the links are made on the host; in the sandbox, in its overlay.
 * Prints one line per check, so the native and sandboxed runs compare. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static void show(const char *what, long r) {
    if (r < 0)
        printf("%s = -1 %s\n", what, strerror(errno));
    else
        printf("%s = %ld\n", what, r);
}

/* Reads up to 63 bytes of `path` and prints them (or the error). */
static void cat(const char *path) {
    char buf[64] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf("cat %s: %s\n", path, strerror(errno));
        return;
    }
    long n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = 0;
    printf("cat %s: %ld [%s]\n", path, n, buf);
}

static void link_to(const char *target, const char *path) {
    if (symlink(target, path) != 0)
        printf("symlink %s -> %s: %s\n", path, target, strerror(errno));
}

static void stat_kind(const char *path, int follow) {
    struct stat st;
    int r = follow ? stat(path, &st) : lstat(path, &st);
    if (r != 0) {
        printf("%s %s: %s\n", follow ? "stat" : "lstat", path, strerror(errno));
        return;
    }
    const char *k = S_ISDIR(st.st_mode)   ? "dir"
                    : S_ISLNK(st.st_mode) ? "link"
                    : S_ISREG(st.st_mode) ? "file"
                    : S_ISCHR(st.st_mode) ? "chr"
                                          : "other";
    printf("%s %s: %s", follow ? "stat" : "lstat", path, k);
    if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode))
        printf(" size %ld", (long)st.st_size);
    if (S_ISCHR(st.st_mode))
        printf(" %u:%u", major(st.st_rdev), minor(st.st_rdev));
    printf("\n");
}

static void show_link(const char *path) {
    char buf[256];
    long n = readlink(path, buf, sizeof buf - 1);
    if (n < 0) {
        printf("readlink %s: %s\n", path, strerror(errno));
        return;
    }
    buf[n] = 0;
    printf("readlink %s: %s\n", path, buf);
}

int main(int argc, char **argv) {
    if (argc < 2 || chdir(argv[1]) != 0)
        return 2;
    char name[32], prev[32];
    int fd = open("f", O_CREAT | O_WRONLY, 0644);
    show("write f", write(fd, "data\n", 5));
    close(fd);

    /* c1 -> f, c2 -> c1, ..., c41 -> c40: opening cN follows N links. */
    strcpy(prev, "f");
    for (int i = 1; i <= 41; i++) {
        snprintf(name, sizeof name, "c%d", i);
        link_to(prev, name);
        strcpy(prev, name);
    }
    cat("c1");
    cat("c40");
    cat("c41");
    stat_kind("c40", 1);
    stat_kind("c41", 1);
    stat_kind("c41", 0);
    show_link("c41");

    /* Loops. */
    link_to("x", "x");
    link_to("b", "a");
    link_to("a", "b");
    cat("x");
    cat("a");
    stat_kind("x", 1);
    show("open x O_CREAT", open("x", O_CREAT | O_WRONLY, 0644));

    /* O_NOFOLLOW on a link. */
    show("open c1 O_NOFOLLOW", open("c1", O_RDONLY | O_NOFOLLOW));

    /* A link to a directory, walked through; a chain of them. */
    show("mkdir d", mkdir("d", 0755));
    link_to("d", "dl");
    link_to("dl", "dl2");
    fd = open("dl/y", O_CREAT | O_WRONLY, 0644);
    show("write dl/y", write(fd, "why\n", 4));
    close(fd);
    cat("d/y");
    cat("dl2/y");
    stat_kind("dl", 1);
    stat_kind("dl", 0);
    stat_kind("dl2/y", 1);
    show("mkdir dl/e", mkdir("dl/e", 0755));
    stat_kind("d/e", 1);
    show("rename dl/y dl2/z", rename("dl/y", "dl2/z"));
    cat("d/z");
    show("unlink dl/z", unlink("dl/z"));
    stat_kind("d/z", 1);
    show("chdir dl", chdir("dl"));
    stat_kind("e", 1);
    show("chdir ..", chdir(".."));

    /* Relative links with "..", absolute ones, and one through a link to a directory. */
    show("mkdir sub", mkdir("sub", 0755));
    link_to("../f", "sub/up");
    cat("sub/up");
    char abs[512];
    snprintf(abs, sizeof abs, "%s/f", argv[1]);
    link_to(abs, "abs");
    cat("abs");
    link_to("../c40", "d/back");
    cat("dl/back");

    /* A dangling link: O_CREAT creates its target; O_EXCL refuses. */
    link_to("newfile", "dang");
    show("open dang O_CREAT|O_EXCL", open("dang", O_CREAT | O_EXCL | O_WRONLY, 0644));
    fd = open("dang", O_CREAT | O_WRONLY, 0644);
    show("write dang", write(fd, "new\n", 4));
    close(fd);
    cat("newfile");

    /* Links into the kernel's own trees. */
    link_to("/proc/self/comm", "pc");
    cat("pc");
    link_to("/proc/self", "ps");
    cat("ps/comm");
    link_to("/dev/null", "dn");
    stat_kind("dn", 1);
    cat("dn");
    show_link("/dev/stdin");
    show_link("/dev/fd");
    stat_kind("/dev/fd", 0);
    stat_kind("/dev/null", 0);
    stat_kind("/dev", 1);
    fd = open("/dev/fd/1", O_WRONLY);
    show("write /dev/fd/1", fd < 0 ? -1 : write(fd, "via /dev/fd/1\n", 14));
    fflush(stdout);
    cat("/dev/stdin");
    return 0;
}
