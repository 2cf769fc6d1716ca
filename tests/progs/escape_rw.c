/* escape_rw CASE FIX MODE TESTPID VMMPATH VMMPID — writes aimed outside the root (see
 * escape_common.h). Case `outside`: rename, renameat2, link, linkat (AT_SYMLINK_FOLLOW of a
 * link pointing out), symlink, mkdir, open(O_CREAT) and rename of a directory, each aimed at
 * the fixture's sibling directory `outside` through `..`, /proc/self/root/.., a directory fd
 * and climbing symlinks. Outcomes are only reported (INFO): the harness checks the host
 * (`outside` unchanged, nothing new next to the root). In the default mode the same paths
 * are plain host paths (FIX/../outside): the overlay must keep the host unchanged. */
#include "escape_common.h"

static void report(const char *name, long r) {
    info(name, "%s", r < 0 ? strerror(errno) : "succeeded");
}

static int case_outside(void) {
    if (!writable()) {
        info("outside", "--ro: nothing can be written");
    }
    char out[512], o2[512];
    /* The sibling as a plain path (reaches it only when the root is the host's /), and as
     * climbs from the root. */
    const char *targets[] = {"/../outside", "/proc/self/root/../outside", "/links/out", "/links/outabs", NULL, NULL};
    snprintf(out, sizeof out, "%s/../outside", FIX);
    targets[4] = out;
    int fd = open("/tmp/escape_f", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd >= 0) {
        if (write(fd, "moved\n", 6) != 6)
            info("write", "%s", strerror(errno));
        close(fd);
    }
    /* A control: the same calls aimed inside the root work, so the refusals below are about
     * where they aim. */
    if (writable()) {
        check(rename("/tmp/escape_f", "/tmp/escape_f2") == 0 && rename("/tmp/escape_f2", "/tmp/escape_f") == 0,
              "rename-inside", "rename within /tmp: %s", strerror(errno));
        check(mkdir("/tmp/escape_in", 0755) == 0 && rmdir("/tmp/escape_in") == 0, "mkdir-inside", "mkdir in /tmp: %s",
              strerror(errno));
    }
    for (int i = 0; targets[i]; i++) {
        char n[64];
        snprintf(o2, sizeof o2, "%s/moved", targets[i]);
        snprintf(n, sizeof n, "rename-%d", i);
        report(n, rename("/tmp/escape_f", o2));
        snprintf(n, sizeof n, "renameat2-%d", i);
        report(n, syscall(SYS_renameat2, AT_FDCWD, "/tmp/escape_f", AT_FDCWD, o2, 1 /* NOREPLACE */));
        snprintf(o2, sizeof o2, "%s/hardlink", targets[i]);
        snprintf(n, sizeof n, "link-%d", i);
        report(n, link(fx("/etc/hostname"), o2));
        snprintf(o2, sizeof o2, "%s/symlink", targets[i]);
        snprintf(n, sizeof n, "symlink-%d", i);
        report(n, symlink("/etc/hostname", o2));
        snprintf(o2, sizeof o2, "%s/newdir", targets[i]);
        snprintf(n, sizeof n, "mkdir-%d", i);
        report(n, mkdir(o2, 0755));
        snprintf(o2, sizeof o2, "%s/created", targets[i]);
        snprintf(n, sizeof n, "creat-%d", i);
        fd = open(o2, O_CREAT | O_WRONLY, 0644);
        report(n, fd);
        if (fd >= 0) {
            if (write(fd, "escaped\n", 8) < 0)
                info("write", "%s", strerror(errno));
            close(fd);
        }
        snprintf(o2, sizeof o2, "%s/secret", targets[i]);
        snprintf(n, sizeof n, "append-secret-%d", i);
        fd = open(o2, O_WRONLY | O_APPEND);
        report(n, fd);
        if (fd >= 0) {
            if (write(fd, "overwritten\n", 12) < 0)
                info("write", "%s", strerror(errno));
            close(fd);
        }
        snprintf(n, sizeof n, "truncate-secret-%d", i);
        report(n, truncate(o2, 0));
        snprintf(n, sizeof n, "chmod-secret-%d", i);
        report(n, chmod(o2, 0777));
        snprintf(n, sizeof n, "unlink-secret-%d", i);
        report(n, unlink(o2));
    }
    /* A hard link to what a symlink pointing outside names. */
    if (symlink("/../outside/secret", "/tmp/escape_sl") == 0 || errno == EEXIST)
        report("linkat-follow", linkat(AT_FDCWD, "/tmp/escape_sl", AT_FDCWD, "/tmp/escape_hl", AT_SYMLINK_FOLLOW));
    report("linkat-follow-fixture", linkat(AT_FDCWD, "/links/outabs/secret", AT_FDCWD, "/tmp/escape_hl2", AT_SYMLINK_FOLLOW));
    /* From a directory fd of the root, climbing. */
    int root = open("/", O_RDONLY | O_DIRECTORY);
    fd = open("/tmp/escape_g", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd >= 0)
        close(fd);
    report("renameat-dirfd", renameat(AT_FDCWD, "/tmp/escape_g", root, "../outside/moved2"));
    report("mkdirat-dirfd", mkdirat(root, "../../outside/dir2", 0755));
    report("openat-dirfd", openat(root, "../outside/created2", O_CREAT | O_WRONLY, 0644));
    /* A directory moved out, and the root itself renamed. */
    mkdir("/tmp/escape_d", 0755);
    report("rename-dir", rename("/tmp/escape_d", "/../outside/d"));
    report("rename-root", rename("/tmp", "/../outside/tmp"));
    if (root >= 0)
        close(root);
    unlink("/tmp/escape_f");
    unlink("/tmp/escape_g");
    unlink("/tmp/escape_sl");
    unlink("/tmp/escape_hl");
    unlink("/tmp/escape_hl2");
    rmdir("/tmp/escape_d");
    return finish();
}

int main(int argc, char **argv) {
    const char *c = setup(argc, argv);
    if (!strcmp(c, "outside"))
        return case_outside();
    return unknown_case(c);
}
