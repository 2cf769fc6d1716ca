/* escape_links CASE FIX MODE TESTPID VMMPATH VMMPID — symlink resolution limits (see
 * escape_common.h).
 *   loop   a symlink to itself (links/loop, and /tmp/x -> /tmp/x made now): open and stat
 *          fail with ELOOP and the sandbox lives on;
 *   chain  links/c0 -> target, c1 -> c0, ...: c39 (40 links) opens, c40 (41 links) fails with
 *          ELOOP, as on Linux; the same with a chain of absolute links made now in /tmp. */
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

int main(int argc, char **argv) {
    const char *c = setup(argc, argv);
    if (!strcmp(c, "loop"))
        return case_loop();
    if (!strcmp(c, "chain"))
        return case_chain();
    return unknown_case(c);
}
