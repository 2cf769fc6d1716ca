/* escape_links CASE FIX MODE TESTPID VMMPATH VMMPID — symlink resolution limits (see
 * escape_common.h).
 *   loop   a symlink to itself (links/loop, and /tmp/x -> /tmp/x made now): open and stat
 *          fail with ELOOP and the sandbox lives on;
 *   chain  links/c0 -> target, c1 -> c0, ...: c39 (40 links) opens, c40 (41 links) fails with
 *          ELOOP, as on Linux; the same with a chain of absolute links made now in /tmp;
 *   swap   the harness swaps /swap/l on the host, as fast as it can, between a directory
 *          holding `secret` ("inside") and links out of the root (the host path of the
 *          fixture's sibling `outside`, and a climb to it) while this opens, reads and
 *          creates through it (by path, from a directory fd, from a cwd inside it): never a
 *          byte of the outside's secret, and nothing made there (the harness checks the host). */
#include "escape_common.h"

static void want_eloop(const char *name, const char *path) {
    char n[128];
    int fd = open(path, O_RDONLY);
    snprintf(n, sizeof n, "%s-open", name);
    if (fd >= 0) {
        fail(n, "%s opened", path);
        close(fd);
    } else {
        check(errno == ELOOP, n, "%s: %s (want ELOOP)", path, strerror(errno));
    }
    struct stat st;
    snprintf(n, sizeof n, "%s-stat", name);
    if (stat(path, &st) == 0)
        fail(n, "stat %s succeeded", path);
    else
        check(errno == ELOOP, n, "stat %s: %s (want ELOOP)", path, strerror(errno));
}

static int case_loop(void) {
    want_eloop("loop-fixture", fx("/links/loop"));
    want_eloop("loop-fixture-pair", fx("/links/ping"));
    if (writable()) {
        unlink("/tmp/x");
        if (symlink("/tmp/x", "/tmp/x") == 0)
            want_eloop("loop-tmp", "/tmp/x");
        else
            fail("loop-tmp", "symlink: %s", strerror(errno));
        want_eloop("loop-tmp-dir", "/tmp/x/y");
        unlink("/tmp/x");
    }
    return finish();
}

static void want_ok(const char *name, const char *path) {
    long n = read_file(path);
    if (n < 0)
        fail(name, "%s: %s (40 links must resolve)", path, strerror(errno));
    else
        check(strncmp(filebuf, "chain-ok", 8) == 0, name, "%s read %ld bytes", path, n);
}

static int case_chain(void) {
    want_ok("chain40-fixture", fx("/links/c39"));
    want_eloop("chain41-fixture", fx("/links/c40"));
    if (writable()) {
        char p[64], t[64];
        int fd = open("/tmp/chain_target", O_CREAT | O_WRONLY | O_TRUNC, 0644);
        if (fd < 0 || write(fd, "chain-ok\n", 9) != 9) {
            fail("chain-tmp", "cannot write /tmp/chain_target: %s", strerror(errno));
            return finish();
        }
        close(fd);
        for (int i = 0; i <= 40; i++) {
            snprintf(p, sizeof p, "/tmp/ch%d", i);
            if (i == 0)
                snprintf(t, sizeof t, "/tmp/chain_target");
            else
                snprintf(t, sizeof t, "/tmp/ch%d", i - 1);
            unlink(p);
            if (symlink(t, p) != 0) {
                fail("chain-tmp", "symlink %s: %s", p, strerror(errno));
                return finish();
            }
        }
        want_ok("chain40-tmp", "/tmp/ch39");
        want_eloop("chain41-tmp", "/tmp/ch40");
        for (int i = 0; i <= 40; i++) {
            snprintf(p, sizeof p, "/tmp/ch%d", i);
            unlink(p);
        }
        unlink("/tmp/chain_target");
    }
    return finish();
}

/* One look through the swapped link: 1 when it read the inside's secret, 0 otherwise. */
static int missed;
static int look(const char *name, int dirfd, const char *path, int *leaks) {
    int fd = openat(dirfd, path, O_RDONLY);
    if (fd < 0) {
        missed++;
        return 0;
    }
    char b[64] = {0};
    long n = read(fd, b, sizeof b - 1);
    close(fd);
    if (n > 0 && strstr(b, "SECRET-OUTSIDE")) {
        if ((*leaks)++ == 0)
            fail(name, "read the outside's secret through %s", path);
        return 0;
    }
    return n > 0 && strncmp(b, "inside", 6) == 0;
}

static int case_swap(void) {
    char path[512], dir[512];
    snprintf(path, sizeof path, "%s", fx("/swap/l/secret"));
    snprintf(dir, sizeof dir, "%s", fx("/swap"));
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd < 0) {
        fail("swap", "open %s: %s (the harness makes it)", dir, strerror(errno));
        return finish();
    }
    int leaks = 0, inside = 0, cwd_inside = 0, made = 0;
    /* 500 rounds: the swaps land in the middle of walks hundreds of times (2000 rounds of
     * host operations, each a VM exit emulated under TCG, ran past the harness's 60 s in
     * the kvm rig with --rw). */
    for (int i = 0; i < 500; i++) {
        inside += look("swap-path", AT_FDCWD, path, &leaks);
        inside += look("swap-dirfd", dfd, "l/secret", &leaks);
        if (fchdir(dfd) == 0 && chdir("l") == 0) {
            cwd_inside += look("swap-cwd", AT_FDCWD, "secret", &leaks);
            if (writable()) {
                int fd = open("made", O_CREAT | O_WRONLY, 0644);
                if (fd >= 0) {
                    made++;
                    close(fd);
                    unlink("made");
                }
            }
        }
        if (chdir("/") != 0)
            fail("swap-chdir", "chdir /: %s", strerror(errno));
    }
    close(dfd);
    check(leaks == 0, "swap-leaks", "%d reads of the outside's secret", leaks);
    /* The swaps happened while this looked: some looks found the inside. */
    check(inside + cwd_inside > 0, "swap-inside", "inside read %d times by path or fd, %d from a cwd", inside,
          cwd_inside);
    info("swap-made", "%d files made (and removed) from a cwd inside the link", made);
    info("swap-missed", "%d looks found no file (the link pointed out of the root then)", missed);
    return finish();
}

int main(int argc, char **argv) {
    const char *c = setup(argc, argv);
    if (!strcmp(c, "loop"))
        return case_loop();
    if (!strcmp(c, "chain"))
        return case_chain();
    if (!strcmp(c, "swap"))
        return case_swap();
    return unknown_case(c);
}
